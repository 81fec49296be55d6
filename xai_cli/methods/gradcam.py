"""Grad-CAM: Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization", ICCV 2017. https://arxiv.org/abs/1610.02391

    alpha_k^c = mean_ij  d y^c / d A^k_ij
    L^c       = ReLU( sum_k alpha_k^c A^k )

upsampled bilinearly to the input size, as Captum's ``LayerAttribution.interpolate`` and
pytorch-grad-cam do.

Vision transformers: a layer with a (N, T, C) token output is read as a (N, C, gh, gw) image
after dropping its prefix tokens (class, distillation, registers) — pytorch-grad-cam's ViT
``reshape_transform``, with the grid inferred from T instead of passed in. The default layer
is the last block's pre-attention LayerNorm (see ``find_spatial_layer``).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from xai_cli.methods._vit import model_logits
from xai_cli.methods.base import Explanation, Method, Predicted
from xai_cli.methods.registry import register_method
from xai_cli.models.layers import find_spatial_layer, get_layer, patch_size, token_grid, tokens_to_grid


@dataclass(frozen=True)
class GradCamParams:
    layer: str | None = None  # dotted module name; None = the last layer with a spatial grid (or ViT tokens)


@register_method
class GradCAM(Method):
    name = "gradcam"
    summary = "class activation map from the last spatial layer's gradient-weighted channels"
    paper = "Selvaraju et al. 2017, arXiv:1610.02391"
    Params = GradCamParams

    def __init__(self, model, params=None, normalization=None) -> None:
        super().__init__(model, params, normalization)
        self._layer_name: str | None = self.params.layer
        if self._layer_name is not None:
            get_layer(model, self._layer_name)  # fail early, with suggestions

    def layer_name(self, example: torch.Tensor) -> str:
        if self._layer_name is None:
            self._layer_name = find_spatial_layer(self.model, example[:1])
        return self._layer_name

    def _explain(self, inputs, targets, seeds):
        return self.explain_predicted(inputs, lambda probs: targets[:, None], seeds).explanations[0]

    def explain_predicted(self, inputs, pick, seeds=None):
        """One forward serves the prediction and every target's gradient (``retain_graph``).

        Measured with bench/ (resnet18 224², CPU): the separate prediction forward was 48 % of
        the engine's Grad-CAM time.
        """
        name = self.layer_name(inputs)
        with _captured(get_layer(self.model, name)) as store, torch.enable_grad():
            t = time.perf_counter()
            logits = model_logits(self.model(inputs.detach()))  # (N, classes)
            probs = torch.softmax(logits.detach().float(), dim=1)
            forward_seconds = time.perf_counter() - t
            targets = pick(probs).to(logits.device)  # (N, K)
            acts = store["a"]
            cams = []
            for k in range(targets.shape[1]):
                score = logits.gather(1, targets[:, k:k + 1]).sum()  # items are independent: sum = per-item grads
                (grad,) = torch.autograd.grad(score, acts, retain_graph=k + 1 < targets.shape[1])
                cams.append(Explanation(self._cam(acts.detach(), grad, inputs).float(), layer=name))
        return Predicted(probs, targets, cams, forward_seconds)

    def _cam(self, acts: torch.Tensor, grads: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        if acts.dim() == 3:  # ViT tokens (N, T, C) -> (N, C, gh, gw)
            prefix, gh, gw = token_grid(acts.shape[1], tuple(inputs.shape[-2:]), patch_size(self.model))
            acts, grads = tokens_to_grid(acts, prefix, gh, gw), tokens_to_grid(grads, prefix, gh, gw)
        weights = grads.mean(dim=(2, 3), keepdim=True)  # (N, K, 1, 1)
        cam = F.relu((weights * acts).sum(dim=1, keepdim=True))  # (N, 1, h, w)
        return F.interpolate(cam, size=inputs.shape[-2:], mode="bilinear", align_corners=False)[:, 0]  # (N, H, W)


@contextmanager
def _captured(layer):
    """Keep ``layer``'s output during the block (as a grad-requiring tensor); the hook is always removed.

    Gradients are then taken w.r.t. that output only (``autograd.grad``), not the weights or
    the input, so the backward pass stops at the layer.
    """
    store: dict[str, torch.Tensor] = {}

    def keep(_module, _inputs, output):
        if not output.requires_grad:  # weights are frozen and inputs need no grad: make A a leaf
            output = output.detach().requires_grad_(True)
        store["a"] = output
        return output

    handle = layer.register_forward_hook(keep)
    try:
        yield store
    finally:
        handle.remove()
