"""Layer activations: which channels of a layer respond most to the input, and where. Not an
attribution — it does not depend on the target class, and says so in ``details``.

The feature-map visualisation of Zeiler & Fergus, "Visualizing and Understanding Convolutional
Networks", ECCV 2014 (https://arxiv.org/abs/1311.2901), in its simplest form: the top ``channels``
channels by mean activation over the layer's grid, each upsampled bilinearly and scaled by its
own largest |value|, then either

    montage  tiled row-major (strongest first) in a ceil(sqrt(k)) x ceil(sqrt(k)) grid over the
             input's frame, each tile showing its whole channel (tiles do not align with the input)
    sum      added up at input resolution (aligned with the input)

The layer is Grad-CAM's (named, or the last spatial grid / the last block's pre-attention norm
of a ViT, read as its patch grid).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from xai_cli.errors import UsageError
from xai_cli.methods._cam import LayerMethod, _captured
from xai_cli.methods._perturb import check_targets
from xai_cli.methods._vit import model_logits
from xai_cli.methods.base import Explanation, Method
from xai_cli.methods.registry import register_method
from xai_cli.models.layers import get_layer


@dataclass(frozen=True)
class LayerActivationParams:
    layer: str | None = None  # dotted module name; None = Grad-CAM's default layer
    channels: int = 9  # how many of the most responsive channels to show
    mode: Literal["montage", "sum"] = "montage"  # a grid of the top channels, or their sum as one map

    def validate(self) -> None:
        if self.channels < 1:
            raise UsageError(f"channels must be at least 1, got {self.channels}")
        if self.mode not in ("montage", "sum"):
            raise UsageError(f"unknown mode {self.mode!r}", "use montage or sum")


@register_method
class LayerActivations(LayerMethod):
    name = "activations"
    summary = "the most responsive channels of a layer, as a montage; not an attribution (no class)"
    paper = "Zeiler & Fergus 2014, arXiv:1311.2901"
    Params = LayerActivationParams
    uses_gradients = False

    explain_predicted = Method.explain_predicted  # no shared forward to save: the maps ignore the target

    @torch.no_grad()
    def _explain(self, inputs, targets, seeds):
        name = self.layer_name(inputs)
        with _captured(get_layer(self.model, name)) as store:
            logits = model_logits(self.model(inputs))  # (N, classes)
        check_targets(targets, logits.shape[1])  # not used, but a wrong class is still an error
        acts = self._grid(store["a"].detach().float(), inputs)  # (N, K, h, w)
        k = min(self.params.channels, acts.shape[1])
        response, top = acts.mean(dim=(2, 3)).topk(k, dim=1)  # (N, k): strongest first
        chosen = acts.gather(1, top[:, :, None, None].expand(-1, -1, *acts.shape[2:]))  # (N, k, h, w)
        scale = chosen.abs().flatten(2).amax(2).clamp(min=1e-12)[:, :, None, None]
        chosen = chosen / scale  # each channel in [-1, 1]
        size = tuple(inputs.shape[-2:])
        if self.params.mode == "sum":
            maps = F.interpolate(chosen, size=size, mode="bilinear", align_corners=False).sum(1)  # (N, H, W)
            grid = None
        else:
            maps, grid = montage(chosen, size), math.ceil(math.sqrt(k))
        details = [{"not_an_attribution": True, "class_specific": False, "layer": name, "mode": self.params.mode,
                    "channels": top[i].tolist(), "mean_activation": [round(v, 6) for v in response[i].tolist()],
                    "montage_grid": [grid, grid] if grid else None} for i in range(inputs.shape[0])]
        return Explanation(maps.float(), details, layer=name)


def montage(channels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, k, h, w) maps -> (N, H, W): tiles of H // g x W // g, g = ceil(sqrt(k)), row-major."""
    n, k = channels.shape[:2]
    g = math.ceil(math.sqrt(k))
    th, tw = size[0] // g, size[1] // g
    out = channels.new_zeros((n,) + size)  # (N, H, W)
    if th == 0 or tw == 0:
        return out
    tiles = F.interpolate(channels, size=(th, tw), mode="bilinear", align_corners=False)  # (N, k, th, tw)
    for j in range(k):
        r, c = divmod(j, g)
        out[:, r * th:(r + 1) * th, c * tw:(c + 1) * tw] = tiles[:, j]
    return out
