"""Occlusion: Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014.
https://arxiv.org/abs/1311.2901

A square window slides over the input (all channels at once); each position is replaced by a
baseline and the drop of the target's output is credited to the window's pixels, averaged
over the windows that cover each pixel — Captum's ``Occlusion`` semantics:

    d_j    = f(x) - f(x with window j set to the baseline)
    map_p  = sum_{j covers p} d_j / #{j covers p}

Windows start at 0, stride, 2 stride, ... (ceil((H - window) / stride) + 1 positions per side,
the last one clipped at the border, as Captum does). The baseline ``zero`` is a model input of 0
— the dataset's mean colour after normalisation, the grey square of the paper and Captum's
default — or ``black`` pixels. Signed: a negative value means hiding the pixels raised the
score. The (item, window) rows of the batch are evaluated ``perturbations_per_eval`` per forward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from xai_cli.core.fold import forward_only
from xai_cli.errors import UsageError
from xai_cli.methods._perturb import Output, check_targets
from xai_cli.methods._vit import model_logits
from xai_cli.methods.base import Explanation, Method
from xai_cli.methods.registry import register_method


@dataclass(frozen=True)
class OcclusionParams:
    window: int = 16  # side of the square window, in model-input pixels (clipped to the input)
    stride: int = 8  # step between window positions; at most the window
    baseline: Literal["zero", "black"] = "zero"  # what the window shows: model input 0, or black pixels
    output: Output = "logit"  # the score explained: softmax probability or raw logit
    perturbations_per_eval: int = 64  # occluded inputs per forward pass (memory, not results)

    def validate(self) -> None:
        if self.window < 1 or self.stride < 1 or self.perturbations_per_eval < 1:
            raise UsageError("occlusion needs window, stride and perturbations_per_eval >= 1",
                             f"got {self.window}, {self.stride}, {self.perturbations_per_eval}")
        if self.stride > self.window:
            raise UsageError(f"occlusion.stride {self.stride} is larger than the window {self.window}",
                             "pixels between windows would get no score; use a stride <= window")
        if self.baseline not in ("zero", "black"):
            raise UsageError(f"unknown occlusion baseline {self.baseline!r}", "use zero or black")
        if self.output not in ("probability", "logit"):
            raise UsageError(f"unknown output {self.output!r}", "use 'probability' or 'logit'")


@register_method
class Occlusion(Method):
    name = "occlusion"
    regions = True
    summary = "drop of the class score when a sliding grey square hides each region"
    paper = "Zeiler & Fergus 2014, arXiv:1311.2901"
    signed = True
    Params = OcclusionParams

    @torch.no_grad()
    def _explain(self, inputs, targets, seeds):
        p = self.params
        n, (h, w) = inputs.shape[0], inputs.shape[-2:]
        boxes = window_boxes(h, w, p.window, p.stride).to(inputs.device)  # (J, 4): y0, y1, x0, x1
        n_win = boxes.shape[0]
        base = torch.zeros_like(inputs[:1]) if p.baseline == "zero" else self.from_pixels(torch.zeros_like(inputs[:1]))
        f_x = self._scores(inputs, targets)  # (N,)
        total = torch.zeros((n, h, w), dtype=torch.float64, device=inputs.device)  # (N, H, W)
        for start in range(0, n * n_win, p.perturbations_per_eval):
            rows = torch.arange(start, min(start + p.perturbations_per_eval, n * n_win), device=inputs.device)  # (B,)
            item = rows // n_win
            masks = box_masks(boxes[rows % n_win], h, w)  # (B, H, W) bool: inside the window
            occluded = torch.where(masks[:, None], base, inputs[item])  # (B, C, H, W)
            drop = (f_x[item] - self._scores(occluded, targets[item])).double()  # (B,)
            weighted = drop[:, None, None] * masks  # (B, H, W)
            for i in range(int(item[0]), int(item[-1]) + 1):  # fixed-order per-item sums: reproducible
                total[i] += weighted[item == i].sum(0)
        counts = box_masks(boxes, h, w).sum(0).clamp(min=1)  # (H, W): windows covering each pixel
        detail = {"windows": n_win, "window": min(p.window, h, w), "stride": p.stride, "baseline": p.baseline}
        return Explanation((total / counts).float(), [dict(detail) for _ in range(n)])

    def _scores(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        with forward_only(self.model, inputs.device) as model:  # BatchNorms folded: core/fold.py
            logits = model_logits(model(inputs)).float()  # (B, classes)
        check_targets(targets, logits.shape[1])
        if self.params.output == "probability":
            logits = logits.softmax(dim=1)
        return logits.gather(1, targets[:, None])[:, 0]  # (B,)


def window_boxes(h: int, w: int, window: int, stride: int) -> torch.Tensor:
    """Captum's window positions: (J, 4) int64 rows (y0, y1, x0, x1), row-major."""
    def starts(size: int) -> list[int]:
        win = min(window, size)
        return [k * stride for k in range(math.ceil((size - win) / stride) + 1)]

    wh, ww = min(window, h), min(window, w)
    return torch.tensor([(y, min(y + wh, h), x, min(x + ww, w)) for y in starts(h) for x in starts(w)], dtype=torch.long)


def box_masks(boxes: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, 4) boxes -> (B, H, W) bool masks."""
    ys = torch.arange(h, device=boxes.device)[None, :, None]  # (1, H, 1)
    xs = torch.arange(w, device=boxes.device)[None, None, :]  # (1, 1, W)
    b = boxes[:, :, None, None]  # (B, 4, 1, 1)
    return (ys >= b[:, 0]) & (ys < b[:, 1]) & (xs >= b[:, 2]) & (xs < b[:, 3])
