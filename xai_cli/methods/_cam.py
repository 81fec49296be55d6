"""What the class-activation-map methods share: the layer, its captured activations and
gradients, ViT token grids, and the final ``ReLU(sum_k w_k A^k)`` upsampled to the input.

Grad-CAM, Grad-CAM++ and Score-CAM differ only in the channel weights w_k (as in
pytorch-grad-cam, where each overrides ``get_cam_weights``). The layer is chosen once, the same
way for all of them (``find_spatial_layer``: the last spatial grid of a CNN, the last block's
pre-attention norm of a ViT), or named with the ``layer`` parameter.
"""

from __future__ import annotations

import time
from abc import abstractmethod

from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from xai_cli.methods._gradients import batch_layout
from xai_cli.methods._vit import model_logits
from xai_cli.methods.base import Explanation, Method, Predicted
from xai_cli.models.layers import find_spatial_layer, get_layer, patch_size, token_grid, tokens_to_grid


@dataclass(frozen=True)
class GradCamParams:
    layer: str | None = None  # dotted module name; None = the last layer with a spatial grid (or ViT tokens)


class LayerMethod(Method):
    """Base of the methods that read one layer: Grad-CAM's layer choice (named, or the last layer
    with a spatial grid; a ViT's tokens read as their patch grid)."""

    Params: ClassVar[type] = GradCamParams

    def __init__(self, model, params=None, normalization=None) -> None:
        super().__init__(model, params, normalization)
        self._layer_name: str | None = self.params.layer
        if self._layer_name is not None:
            get_layer(model, self._layer_name)  # fail early, with suggestions

    def layer_name(self, example: torch.Tensor) -> str:
        if self._layer_name is None:
            self._layer_name = find_spatial_layer(self.model, example[:1])
        return self._layer_name

    def _grid(self, t: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """A layer output as (N, K, h, w): ViT tokens (N, T, C) are read as their patch grid."""
        if t.dim() == 3:
            prefix, gh, gw = token_grid(t.shape[1], tuple(inputs.shape[-2:]), patch_size(self.model))
            return tokens_to_grid(t, prefix, gh, gw)
        return t


class CamMethod(LayerMethod):
    """Base of the CAM methods: subclasses define ``channel_weights``.

    Attributes:
        uses_gradients: False for gradient-free weights (Score-CAM): no backward pass is run.
    """

    uses_gradients: ClassVar[bool] = True

    @abstractmethod
    def channel_weights(self, acts: torch.Tensor, grads: torch.Tensor | None, inputs: torch.Tensor,
                        targets: torch.Tensor) -> torch.Tensor:
        """(N, K, h, w) activations and their gradients -> (N, K, 1, 1) channel weights."""

    def _explain(self, inputs, targets, seeds):
        return self.explain_predicted(inputs, lambda probs: targets[:, None], seeds).explanations[0]

    def explain_predicted(self, inputs, pick, seeds=None):
        """One forward serves the prediction and every target's gradient (``retain_graph``).

        Measured with bench/ (resnet18 224², CPU): the separate prediction forward was 48 % of
        the engine's Grad-CAM time.
        """
        name = self.layer_name(inputs)
        # In the model's fastest layout (``batch_layout``: channels_last for a conv net on the CPU):
        # resnet18 224² Grad-CAM at fp32, 1 thread, 40.0 -> 34.5 ms per input (oneDNN's max-pool
        # alone took 53 ms per batch of 8 in NCHW, 3.3 in channels_last); maps r 0.9999995.
        x = inputs.detach().contiguous(memory_format=batch_layout(self.model, inputs))
        with _captured(get_layer(self.model, name)) as store, torch.set_grad_enabled(self.uses_gradients):
            t = time.perf_counter()
            logits = model_logits(self.model(x))  # (N, classes)
            probs = torch.softmax(logits.detach().float(), dim=1)
            forward_seconds = time.perf_counter() - t
            targets = pick(probs).to(logits.device)  # (N, K)
            scores = logits.gather(1, targets)  # (N, K)
            acts = store["a"]
            grads = []
            for k in range(targets.shape[1] if self.uses_gradients else 0):
                # Items are independent: the gradient of the sum is each item's own gradient.
                (grad,) = torch.autograd.grad(scores[:, k].sum(), acts, retain_graph=k + 1 < targets.shape[1])
                grads.append(grad)
        acts = self._grid(acts.detach().float(), inputs)  # (N, K, h, w); float32 also under bf16 autocast
        cams = []
        for k in range(targets.shape[1]):
            grad = self._grid(grads[k].float(), inputs) if grads else None
            weights = self.channel_weights(acts, grad, inputs, targets[:, k])  # (N, K, 1, 1)
            cam = F.relu((weights * acts).sum(dim=1, keepdim=True))  # (N, 1, h, w)
            up = F.interpolate(cam, size=inputs.shape[-2:], mode="bilinear", align_corners=False)[:, 0]  # (N, H, W)
            cams.append(Explanation(up.float(), layer=name))
        return Predicted(probs, targets, cams, forward_seconds)


@contextmanager
def _captured(layer):
    """Keep ``layer``'s output during the block (as a grad-requiring tensor); the hook is always removed.

    Gradients are then taken w.r.t. that output only (``autograd.grad``), not the weights or
    the input, so the backward pass stops at the layer.
    """
    store: dict[str, torch.Tensor] = {}

    def keep(_module, _inputs, output):
        if torch.is_grad_enabled() and not output.requires_grad:  # frozen weights, input needs no grad: make A a leaf
            output = output.detach().requires_grad_(True)
        store["a"] = output
        return output

    handle = layer.register_forward_hook(keep)
    try:
        yield store
    finally:
        handle.remove()
