"""Deletion and insertion curves of images (Petsiuk et al., "RISE: Randomized Input Sampling for
Explanation of Black-box Models", BMVC 2018, https://arxiv.org/abs/1806.07421).

Deletion replaces the most relevant pixels, ``HW / steps`` more at each step, by a baseline
(black in pixel space) and follows the target's softmax probability: a faithful map makes it
fall fast (low AUC). Insertion starts from a blurred copy (Gaussian, kernel 11, sigma 5) and
restores the most relevant pixels first: a faithful map makes it rise fast (high AUC).

Each curve comes beside the same curve for a seeded random ordering of the pixels; ``gain`` is
the part of the score a random map would not get (``random - auc`` for deletion, ``auc -
random`` for insertion: higher is better for both).

Every step of every input, for both orderings and both curves, goes through the model in
chunks of ``perturbations_per_eval`` rows, built lazily; results do not depend on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torchvision.transforms.functional import gaussian_blur

from xai_cli.methods.base import Normalization
from xai_cli.metrics._forward import item_seeds, target_probabilities, trapezoid_auc


@dataclass
class Curves:
    """One kind of curve for a batch.

    Attributes:
        kind: ``"deletion"`` or ``"insertion"``.
        fractions: (S+1,) fraction of pixels removed (deletion) or restored (insertion).
        curve: (N, S+1) target probability along the map's ordering.
        random_curve: (N, S+1) the same along a seeded random ordering.
        auc: (N,) trapezoid area under ``curve`` over [0, 1].
        random_auc: (N,) the same for ``random_curve``.
    """

    kind: str
    fractions: np.ndarray
    curve: np.ndarray
    random_curve: np.ndarray
    auc: np.ndarray
    random_auc: np.ndarray

    @property
    def gain(self) -> np.ndarray:
        """(N,) how much better than random (positive = better, for both kinds)."""
        return self.random_auc - self.auc if self.kind == "deletion" else self.auc - self.random_auc

    def metrics(self) -> dict[str, np.ndarray]:
        """Per-item values under their audit names (``deletion_auc``, ``deletion_gain``, ...)."""
        return {f"{self.kind}_auc": self.auc, f"{self.kind}_random_auc": self.random_auc, f"{self.kind}_gain": self.gain}


def pixel_order_ranks(maps: torch.Tensor, seeds: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each pixel comes in the map's order (most relevant first) and in a random order.

    Args:
        maps: (N, H, W) attributions.
        seeds: One seed per item for its random order.

    Returns:
        ``(ranks, random_ranks)``, both (N, H*W) int64: 0 for the pixel removed first. Ties
        keep raster order (a stable sort), so flat maps are ordered deterministically.
    """
    n, hw = maps.shape[0], maps[0].numel()
    order = torch.argsort(-maps.reshape(n, hw).float().cpu(), dim=1, stable=True)  # (N, HW)
    rand = torch.stack([torch.randperm(hw, generator=torch.Generator().manual_seed(s)) for s in item_seeds(seeds, n)])
    return _ranks(order), _ranks(rand)


def _ranks(order: torch.Tensor) -> torch.Tensor:
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(order.shape[1]).expand_as(order).contiguous())
    return ranks


def deletion_insertion(
    model: nn.Module,
    x: torch.Tensor,
    maps: torch.Tensor,
    targets: torch.Tensor,
    *,
    normalization: Normalization | None = None,
    steps: int = 20,
    baseline: float | torch.Tensor = 0.0,
    blur_kernel: int = 11,
    blur_sigma: float = 5.0,
    kinds: Sequence[str] = ("deletion", "insertion"),
    seeds: Sequence[int] | None = None,
    perturbations_per_eval: int = 256,
) -> dict[str, Curves]:
    """Deletion and insertion curves of a batch, each beside a random ordering's.

    Args:
        model: Returns (B, classes) logits; in eval mode.
        x: (N, C, H, W) model inputs (normalised), on the model's device.
        maps: (N, H, W) attributions at the input's resolution.
        targets: (N,) class explained.
        normalization: The mean/std the inputs were normalised with (identity by default).
        steps: Number of steps S; step s removes/restores ``floor(s * H * W / S)`` pixels.
        baseline: Deletion's fill: a pixel value in [0, 1] (0 = black, put into model space
            with ``normalization``) or a model-space tensor broadcastable to (N, C, H, W).
        blur_kernel: Side of insertion's Gaussian kernel (RISE: 11).
        blur_sigma: Its standard deviation in pixels (RISE: 5).
        kinds: Which curves to compute.
        seeds: One seed per item for the random ordering.
        perturbations_per_eval: Perturbed images per forward pass.

    Returns:
        ``{kind: Curves}`` for each of ``kinds``.
    """
    n, _, h, w = x.shape
    if maps.shape != (n, h, w):
        raise ValueError(f"maps must be (N, H, W) = {(n, h, w)}, got {tuple(maps.shape)}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    x = x.detach()
    ranks, random_ranks = pixel_order_ranks(maps, seeds)
    # Each job is one curve of one item: (start image, end image, pixel ranks, target).
    starts, ends, job_ranks, job_targets = [], [], [], []
    for kind in kinds:
        start, end = _endpoints(kind, x, normalization, baseline, blur_kernel, blur_sigma)  # (N, C, H, W) each
        for r in (ranks, random_ranks):
            starts.append(start), ends.append(end), job_ranks.append(r), job_targets.append(targets)
    start, end = torch.cat(starts), torch.cat(ends)  # (J, C, H, W), J = 2 N len(kinds)
    rank = torch.cat(job_ranks).to(x.device)  # (J, HW)
    job_target = torch.cat(job_targets).to(x.device)  # (J,)
    counts = torch.tensor([s * h * w // steps for s in range(steps + 1)], device=x.device)  # (S+1,)

    def build(lo: int, hi: int):
        rows = torch.arange(lo, hi, device=x.device)
        job, step = rows // (steps + 1), rows % (steps + 1)  # (B,), (B,)
        changed = (rank[job] < counts[step, None]).view(-1, 1, h, w)  # (B, 1, H, W)
        return (torch.where(changed, end[job], start[job]),), job_target[job]

    probs = target_probabilities(model, len(job_target) * (steps + 1), build, perturbations_per_eval)
    probs = probs.reshape(len(kinds), 2, n, steps + 1)  # (kinds, ordering, N, S+1)
    fractions = counts.cpu().numpy() / (h * w)
    out = {}
    for k, kind in enumerate(kinds):
        curve, random_curve = probs[k, 0], probs[k, 1]
        out[kind] = Curves(kind, fractions, curve, random_curve, trapezoid_auc(curve), trapezoid_auc(random_curve))
    return out


def _endpoints(kind: str, x: torch.Tensor, normalization: Normalization | None, baseline: float | torch.Tensor,
               blur_kernel: int, blur_sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The images a curve goes from and to: (x, baseline) for deletion, (blurred x, x) for insertion."""
    if kind == "deletion":
        if isinstance(baseline, torch.Tensor):
            return x, baseline.to(x).expand_as(x)
        mean, std = (normalization or Normalization(mean=(0.0,) * x.shape[1], std=(1.0,) * x.shape[1])).tensors(x)
        return x, ((torch.full_like(x[:1], float(baseline)) - mean) / std).expand_as(x)
    if kind == "insertion":
        # Blurring commutes with the per-channel affine normalisation (the kernel sums to 1 and
        # the padding reflects), so the model-space input is blurred directly.
        return gaussian_blur(x, [blur_kernel, blur_kernel], [blur_sigma, blur_sigma]), x
    raise ValueError(f"unknown curve {kind!r}: use 'deletion' or 'insertion'")
