"""Score-CAM: Wang, Wang, Du, Yang, Zhang, Ding, Mardziel & Hu, "Score-CAM: Score-Weighted
Visual Explanations for Convolutional Neural Networks", CVPR workshops 2020.
https://arxiv.org/abs/1910.01279

Each channel A^k of the layer, upsampled to the input and scaled to [0, 1], masks the input;
the model's target score on that masked input weighs the channel:

    H^k   = minmax( up(A^k) )
    s_k   = f_c( X * H^k )                 (the target logit)
    w_k   = softmax_k( s )                 (over the channels)
    L^c   = ReLU( sum_k w_k A^k )

as pytorch-grad-cam's ``ScoreCAM`` computes it (bilinear upsampling with aligned corners,
softmax over channels of logits; the paper's baseline score f(X_b) cancels in the softmax).
Gradient-free. Layer choice and ViT grids are Grad-CAM's (``_cam.CamMethod``). The (item,
channel) masked inputs of the whole batch are evaluated ``perturbations_per_eval`` per forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from xai_cli.core.fold import forward_only
from xai_cli.errors import UsageError
from xai_cli.methods._cam import CamMethod, GradCamParams
from xai_cli.methods._vit import model_logits
from xai_cli.methods.registry import register_method


@dataclass(frozen=True)
class ScoreCamParams(GradCamParams):
    perturbations_per_eval: int = 64  # masked inputs per forward pass (memory, not results)

    def validate(self) -> None:
        if self.perturbations_per_eval < 1:
            raise UsageError(f"perturbations_per_eval must be at least 1, got {self.perturbations_per_eval}")


@register_method
class ScoreCAM(CamMethod):
    name = "scorecam"
    summary = "class activation map weighted by the target score of the input masked by each channel"
    paper = "Wang et al. 2020, arXiv:1910.01279"
    Params = ScoreCamParams
    uses_gradients = False

    @torch.no_grad()
    def channel_weights(self, acts, grads, inputs, targets):
        n, k = acts.shape[:2]
        scores = torch.empty(n * k, dtype=torch.float32, device=inputs.device)  # (N*K,)
        step = self.params.perturbations_per_eval
        for start in range(0, n * k, step):
            rows = torch.arange(start, min(start + step, n * k), device=inputs.device)  # (B,)
            item, channel = rows // k, rows % k
            masks = channel_masks(acts[item, channel], inputs.shape[-2:])  # (B, H, W)
            with forward_only(self.model, inputs.device) as model:  # BatchNorms folded, no layer hooks: core/fold.py
                logits = model_logits(model(inputs[item] * masks[:, None].to(inputs.dtype))).float()  # (B, classes)
            scores[start:start + rows.shape[0]] = logits.gather(1, targets[item, None])[:, 0]
        return torch.softmax(scores.view(n, k), dim=1)[:, :, None, None].to(acts.dtype)  # (N, K, 1, 1)


def channel_masks(maps: torch.Tensor, size) -> torch.Tensor:
    """(B, h, w) channel activations -> (B, H, W) masks in [0, 1] (pytorch-grad-cam's scaling)."""
    up = F.interpolate(maps[:, None].float(), size=tuple(size), mode="bilinear", align_corners=True)[:, 0]  # (B, H, W)
    lo = up.flatten(1).amin(1)[:, None, None]
    hi = up.flatten(1).amax(1)[:, None, None]
    return (up - lo) / (hi - lo + 1e-8)
