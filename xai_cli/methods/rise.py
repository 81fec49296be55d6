"""RISE: Petsiuk, Das & Saenko, "RISE: Randomized Input Sampling for Explanation of Black-box
Models", BMVC 2018. https://arxiv.org/abs/1806.07421

N random binary s x s grids (each cell on with probability p) are upsampled bilinearly to
(s + 1) x cell, cell = ceil(H / s), and cropped at a random shift in [0, cell) — smooth masks
M_i in [0, 1] of the input's size. With f the target's probability on the masked input
(pixels multiplied by the mask, i.e. blended towards black):

    S = 1 / (N p)  sum_i  f(I . M_i) M_i          (eq. 6, E[M] = p)

Black-box: only forward passes. Each item's masks come from its own seed (grids and shifts
drawn on the CPU, upsampled on the device chunk by chunk, never all N at once); the (item,
mask) rows of the whole batch are evaluated ``perturbations_per_eval`` per forward pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from xai_cli.core.fold import forward_only
from xai_cli.errors import UsageError
from xai_cli.methods._gradients import item_generator
from xai_cli.methods._perturb import Output, check_targets
from xai_cli.methods._vit import model_logits
from xai_cli.methods.base import Explanation, Method
from xai_cli.methods.registry import register_method


@dataclass(frozen=True)
class RiseParams:
    n_samples: int = 4000  # N masks per item (the paper's ImageNet setting)
    grid: int = 7  # s, cells per side of the low-resolution mask
    p: float = 0.5  # probability that a cell is kept
    output: Output = "probability"  # the score explained: softmax probability or raw logit
    perturbations_per_eval: int = 256  # masked inputs per forward pass (memory, not results)

    def validate(self) -> None:
        if self.n_samples < 1 or self.grid < 1 or self.perturbations_per_eval < 1:
            raise UsageError("rise needs n_samples, grid and perturbations_per_eval >= 1",
                             f"got {self.n_samples}, {self.grid}, {self.perturbations_per_eval}")
        if not 0 < self.p <= 1:
            raise UsageError(f"rise.p must be in (0, 1], got {self.p}", "the paper uses 0.5")
        if self.output not in ("probability", "logit"):
            raise UsageError(f"unknown output {self.output!r}", "use 'probability' or 'logit'")


@register_method
class Rise(Method):
    name = "rise"
    regions = True
    summary = "average of random smooth masks weighted by the target probability of the masked input"
    paper = "Petsiuk et al. 2018, arXiv:1806.07421"
    Params = RiseParams

    @torch.no_grad()
    def _explain(self, inputs, targets, seeds):
        p = self.params
        n, size = inputs.shape[0], tuple(inputs.shape[-2:])
        draws = [rise_draws(p.n_samples, p.grid, p.p, size, seed) for seed in seeds]
        grids = torch.cat([g for g, _ in draws]).to(inputs.device)  # (N*S, s, s)
        shifts = torch.cat([s for _, s in draws]).to(inputs.device)  # (N*S, 2)
        black = self.from_pixels(torch.zeros_like(inputs[:1]))  # (1, C, H, W)
        sal = torch.zeros((n,) + size, dtype=torch.float64, device=inputs.device)  # (N, H, W)
        total = n * p.n_samples
        for start in range(0, total, p.perturbations_per_eval):
            stop = min(start + p.perturbations_per_eval, total)
            item = torch.arange(start, stop, device=inputs.device) // p.n_samples  # (B,)
            masks = upsample_masks(grids[start:stop], shifts[start:stop], size).to(inputs.dtype)  # (B, H, W)
            masked = black + masks[:, None] * (inputs[item] - black)  # (B, C, H, W): pixels * mask
            with forward_only(self.model, inputs.device) as model:  # BatchNorms folded: core/fold.py
                logits = model_logits(model(masked)).float()  # (B, classes)
            if start == 0:
                check_targets(targets, logits.shape[1])
            if p.output == "probability":
                logits = logits.softmax(dim=1)
            weighted = logits.gather(1, targets[item, None])[:, 0].double()[:, None, None] * masks.double()  # (B, H, W)
            # An item's rows are contiguous; a per-item sum in a fixed order stays reproducible.
            for i in range(start // p.n_samples, (stop - 1) // p.n_samples + 1):
                lo, hi = max(i * p.n_samples, start) - start, min((i + 1) * p.n_samples, stop) - start
                sal[i] += weighted[lo:hi].sum(0)
        maps = (sal / (p.n_samples * p.p)).float()  # (N, H, W)
        return Explanation(maps, [{"n_masks": p.n_samples, "grid": p.grid, "p": p.p} for _ in range(n)])


def rise_draws(n: int, s: int, p: float, size: tuple[int, int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One item's random masks, as small draws: ``(grids (n, s, s) bool, shifts (n, 2) int64)``, CPU."""
    g = item_generator(seed)
    grids = torch.rand((n, s, s), generator=g) < p  # (n, s, s)
    cell = [math.ceil(d / s) for d in size]
    shifts = torch.stack([torch.randint(0, c, (n,), generator=g) for c in cell], dim=1)  # (n, 2): (dy, dx)
    return grids, shifts


def upsample_masks(grids: torch.Tensor, shifts: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, s, s) grids -> (B, H, W) smooth masks: bilinear to (s + 1) cells, cropped at each shift."""
    b, s = grids.shape[0], grids.shape[-1]
    h, w = size
    up_size = ((s + 1) * math.ceil(h / s), (s + 1) * math.ceil(w / s))
    up = F.interpolate(grids[:, None].float(), size=up_size, mode="bilinear", align_corners=False)[:, 0]  # (B, UH, UW)
    ys = shifts[:, 0, None] + torch.arange(h, device=grids.device)  # (B, H)
    xs = shifts[:, 1, None] + torch.arange(w, device=grids.device)  # (B, W)
    rows = torch.arange(b, device=grids.device)[:, None, None]  # (B, 1, 1)
    return up[rows, ys[:, :, None], xs[:, None, :]]  # (B, H, W)
