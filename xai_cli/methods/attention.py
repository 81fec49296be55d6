"""Attention rollout and raw attention of a vision transformer.

Rollout: Abnar & Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020.
https://arxiv.org/abs/2005.00928 — with the head fusion and ``discard_ratio`` of jacobgil's
vit-explain (https://github.com/jacobgil/vit-explain):

    A_l     = fuse_heads(attention of layer l)          (mean or max over heads)
    A'_l    = rownorm( 0.5 A_l + 0.5 I )                (the residual connection)
    rollout = A'_L A'_(L-1) ... A'_1
    map     = rollout[CLS, patch tokens]                reshaped to the (gh, gw) patch grid

``raw`` is the last layer's fused attention row of the class token. Both are upsampled
bilinearly to the input size. Neither depends on the target class: the details say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from xai_cli.errors import MethodError, UsageError
from xai_cli.methods._vit import capture_attention, has_attention, model_logits
from xai_cli.methods.base import Explanation, Method
from xai_cli.methods.registry import all_methods, register_method
from xai_cli.models.layers import patch_size, token_grid


@dataclass(frozen=True)
class AttentionParams:
    mode: Literal["rollout", "raw"] = "rollout"  # rollout over all layers, or the last layer's CLS row
    head_fusion: Literal["mean", "max"] = "mean"  # how each layer's heads are combined
    discard_ratio: float = 0.0  # rollout only: zero this fraction of each layer's weakest attention

    def validate(self) -> None:
        if self.mode not in ("rollout", "raw"):
            raise UsageError(f"bad attention mode {self.mode!r}", "use rollout or raw")
        if self.head_fusion not in ("mean", "max"):
            raise UsageError(f"bad head_fusion {self.head_fusion!r}", "use mean or max")
        if not 0.0 <= self.discard_ratio < 1.0:
            raise UsageError(f"discard_ratio {self.discard_ratio} is outside [0, 1)", "try 0.9, as vit-explain does")


@register_method
class AttentionRollout(Method):
    """Where a ViT's class token attends, rolled out through the layers (not class-specific)."""

    name = "attention"
    summary = "attention rollout (or last-layer class-token attention) of a vision transformer; not class-specific"
    paper = "Abnar & Zuidema 2020, arXiv:2005.00928"
    signed = False
    needs_transformer = True
    Params = AttentionParams

    def __init__(self, model, params=None, normalization=None) -> None:
        super().__init__(model, params, normalization)
        require_attention(model, self.name)

    def _explain(self, inputs, targets, seeds):
        with torch.no_grad(), capture_attention(self.model) as attentions:
            logits = model_logits(self.model(inputs))  # (N, classes)
        if not attentions:
            raise MethodError("the model returned no attention weights", "attention supports torchvision vit_* "
                              "and Hugging Face ViT/DeiT with eager attention")
        if targets.min() < 0 or targets.max() >= logits.shape[1]:
            raise ValueError(f"target class out of range: the model has {logits.shape[1]} classes")
        tokens = attentions[-1].shape[-1]
        prefix, gh, gw = token_grid(tokens, tuple(inputs.shape[-2:]), patch_size(self.model))
        if prefix < 1:
            raise MethodError(f"the model's {tokens} tokens have no class token", "use gradcam instead")
        p = self.params
        if p.mode == "rollout":
            flow = rollout(attentions, p.head_fusion, p.discard_ratio)  # (N, T, T)
        else:
            flow = fuse_heads(attentions[-1].float(), p.head_fusion)  # (N, T, T)
        cls_row = flow[:, 0, prefix:]  # (N, gh*gw): the class token's attention to each patch
        grid = cls_row.reshape(-1, 1, gh, gw)  # (N, 1, gh, gw)
        maps = F.interpolate(grid, size=inputs.shape[-2:], mode="bilinear", align_corners=False)  # (N, 1, H, W)
        detail = {"class_specific": False, "grid": [gh, gw], "prefix_tokens": prefix, "layers": len(attentions)}
        return Explanation(maps[:, 0], details=[dict(detail) for _ in range(inputs.shape[0])])


def require_attention(model, method: str) -> None:
    """Raise ``MethodError`` (naming the methods that work on any model) if ``model`` has no attention to read."""
    if not has_attention(model):
        others = [n for n, c in all_methods().items()
                  if "image" in c.modalities and not getattr(c, "needs_transformer", False)]
        raise MethodError(f"{method} needs a vision transformer, and this model has no attention layers",
                          f"use a method that works on any model: {', '.join(others) or 'gradcam'}")


def fuse_heads(attention: torch.Tensor, how: str) -> torch.Tensor:
    """(N, heads, T, T) -> (N, T, T): the mean or the max over heads."""
    return attention.mean(dim=1) if how == "mean" else attention.amax(dim=1)


def rollout(attentions: list[torch.Tensor], head_fusion: str = "mean", discard_ratio: float = 0.0) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020, eq. in §3) of one forward pass.

    Args:
        attentions: One (N, heads, T, T) tensor per layer, first layer first.
        head_fusion: "mean" or "max" over heads.
        discard_ratio: Per item and layer, zero this fraction of the smallest fused weights
            (never the class token's attention to itself), as vit-explain does, before adding I.

    Returns:
        (N, T, T) rolled-out attention; row i says how much of token i's final state flows
        from each input token. Rows sum to 1.
    """
    flow = None
    for attention in attentions:
        fused = fuse_heads(attention.float(), head_fusion)  # (N, T, T)
        if discard_ratio > 0:
            fused = _discard_lowest(fused, discard_ratio)
        eye = torch.eye(fused.shape[-1], dtype=fused.dtype, device=fused.device)  # (T, T)
        step = 0.5 * fused + 0.5 * eye  # (N, T, T): half the flow goes through the residual
        step = step / step.sum(dim=-1, keepdim=True)  # (N, T, T), rows sum to 1
        flow = step if flow is None else step @ flow  # (N, T, T)
    return flow


def _discard_lowest(fused: torch.Tensor, ratio: float) -> torch.Tensor:
    """Zero the ``ratio`` smallest of each item's T*T weights, except [CLS, CLS]."""
    flat = fused.flatten(1).clone()  # (N, T*T)
    k = int(flat.shape[1] * ratio)
    if k == 0:
        return fused
    drop = torch.zeros_like(flat, dtype=torch.bool)  # (N, T*T)
    drop.scatter_(1, flat.topk(k, dim=1, largest=False).indices, True)
    drop[:, 0] = False  # vit-explain keeps the class token's self-attention
    return flat.masked_fill(drop, 0.0).view_as(fused)  # (N, T, T)
