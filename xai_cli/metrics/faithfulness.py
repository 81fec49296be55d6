"""Deletion and insertion curves of images (Petsiuk et al., "RISE: Randomized Input Sampling for
Explanation of Black-box Models", BMVC 2018, https://arxiv.org/abs/1806.07421).

Deletion replaces the most relevant pixels, ``HW / steps`` more at each step, by a baseline
(black in pixel space) and follows the target's softmax probability: a faithful map makes it
fall fast (low AUC). Insertion starts from a blurred copy (Gaussian, kernel 11, sigma 5) and
restores the most relevant pixels first: a faithful map makes it rise fast (high AUC).

Each curve comes beside the same curve for a seeded random ordering of the pixels; ``gain`` is
the part of the score a random map would not get (``random - auc`` for deletion, ``auc -
random`` for insertion: higher is better for both).

Every distinct image of the curves goes through the model once, in chunks of
``perturbations_per_eval`` rows built lazily (results do not depend on it): the unperturbed
input (deletion's first step, insertion's last), the black baseline (deletion's last step, one
image for the whole batch) and the blurred input (insertion's first step) are shared by both
orderings, and the random ordering's curves, which do not depend on the map, are computed once
per input however many maps (methods) are scored on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torchvision.transforms.functional import gaussian_blur

from xai_cli.methods.base import Normalization
from xai_cli.metrics._forward import DEFAULT_CHUNK, item_seeds, probabilities_at, trapezoid_auc


@dataclass
class Curves:
    """One kind of curve for a batch.

    Attributes:
        kind: ``"deletion"`` or ``"insertion"``.
        fractions: (S+1,) fraction of pixels removed (deletion) or restored (insertion).
        curve: (N, S+1) target probability along the map's ordering ((M, N, S+1) for M maps per input).
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
    perturbations_per_eval: int = DEFAULT_CHUNK,
    probabilities: torch.Tensor | np.ndarray | Sequence[float] | None = None,
) -> dict[str, Curves]:
    """Deletion and insertion curves of a batch, each beside a random ordering's.

    Args:
        model: Returns (B, classes) logits; in eval mode.
        x: (N, C, H, W) model inputs (normalised), on the model's device.
        maps: (N, H, W) attributions at the input's resolution, or (M, N, H, W): M maps of
            each input (one per method), scored in one pass that shares what they have in
            common (the random ordering, the unperturbed input, the baseline, the blur).
        targets: (N,) class explained (the same for an input's M maps).
        normalization: The mean/std the inputs were normalised with (identity by default).
        steps: Number of steps S; step s removes/restores ``floor(s * H * W / S)`` pixels.
        baseline: Deletion's fill: a pixel value in [0, 1] (0 = black, put into model space
            with ``normalization``) or a model-space tensor broadcastable to (N, C, H, W).
        blur_kernel: Side of insertion's Gaussian kernel (RISE: 11).
        blur_sigma: Its standard deviation in pixels (RISE: 5).
        kinds: Which curves to compute.
        seeds: One seed per item for the random ordering.
        perturbations_per_eval: Perturbed images per forward pass.
        probabilities: (N,) the target's probability on ``x`` when the caller already has it
            (the explain pass's prediction); else it is computed here.

    Returns:
        ``{kind: Curves}`` for each of ``kinds``; with (M, N, H, W) maps the arrays carry a
        leading M axis (``random_curve`` repeated along it).
    """
    n, _, h, w = x.shape
    stacked = maps.dim() == 4
    maps = maps if stacked else maps[None]  # (M, N, H, W)
    if maps.shape[1:] != (n, h, w):
        raise ValueError(f"maps must be (N, H, W) or (M, N, H, W) with (N, H, W) = {(n, h, w)}, got {tuple(maps.shape)}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    for kind in kinds:
        if kind not in ("deletion", "insertion"):
            raise ValueError(f"unknown curve {kind!r}: use 'deletion' or 'insertion'")
    m, x = maps.shape[0], x.detach()
    ranks, random_ranks = pixel_order_ranks(maps.reshape(m * n, h, w), item_seeds(seeds, n) * m)
    # Ordering 0 is the random one: it does not depend on the map, so it is evaluated once per
    # input however many maps the input has. Orderings 1..M are the maps'.
    order_ranks = torch.cat([random_ranks[:n], ranks]).to(x.device)  # (O N, HW), O = M + 1
    # Blurring commutes with the per-channel affine normalisation (the kernel sums to 1 and the
    # padding reflects), so the model-space input is blurred directly.
    blurred = gaussian_blur(x, [blur_kernel, blur_kernel], [blur_sigma, blur_sigma]) if "insertion" in kinds else None
    base = _baseline(x, normalization, baseline) if "deletion" in kinds else None
    plan = _Plan(x, blurred, base, order_ranks, steps)
    point = plan.curve_points(targets, kinds, probabilities)  # (K, O, N, S+1) readout indices
    curves = plan.run(model, perturbations_per_eval)[point]  # (K, O, N, S+1)
    fractions = plan.counts.cpu().numpy() / (h * w)
    out = {}
    for k, kind in enumerate(kinds):
        curve, random_curve = curves[k, 1:], np.broadcast_to(curves[k, :1], curves[k, 1:].shape).copy()  # (M, N, S+1)
        if not stacked:
            curve, random_curve = curve[0], random_curve[0]
        out[kind] = Curves(kind, fractions, curve, random_curve, trapezoid_auc(curve), trapezoid_auc(random_curve))
    return out


class _Plan:
    """Every distinct image of the curves, once, and where each curve point reads its probability.

    The distinct images (rows) are the unperturbed inputs (deletion's first step and insertion's
    last, for every ordering; not evaluated when the caller gives their probabilities), the
    blurred inputs (insertion's first step), the baseline (deletion's last step: one image for
    the batch unless it varies by input) and the interior steps 1..S-1 of each curve. A row is
    ``where(rank < count, end, start)`` over one table of source images, built a chunk at a time.
    """

    def __init__(self, x: torch.Tensor, blurred: torch.Tensor | None, base: torch.Tensor | None,
                 order_ranks: torch.Tensor, steps: int) -> None:
        n, _, h, w = x.shape
        self.n, self.shape, self.steps, self.order_ranks = n, (h, w), steps, order_ranks
        self.counts = torch.tensor([s * h * w // steps for s in range(steps + 1)], device=x.device)  # (S+1,)
        self.sources = torch.cat([t for t in (x, blurred, base) if t is not None])  # (N [+ N] [+ 1 or N], C, H, W)
        self.blur_at = n if blurred is not None else None
        self.base_at = n + (n if blurred is not None else 0)
        self.base_shared = base is not None and base.shape[0] == 1
        self._rows: list[np.ndarray] = []  # (4, r) blocks: start source, end source, rank row, step
        self._reads: list[np.ndarray] = []  # (2, q) blocks: row, class
        self.n_rows = self.n_reads = 0

    def _add(self, start, end, rank, step, read_rows, classes) -> np.ndarray:
        """Rows ``(start, end, rank, step)`` (arrays) read at ``(read_rows, classes)`` (``read_rows``
        relative to these rows); returns the readouts' indices."""
        self._rows.append(np.stack(np.broadcast_arrays(start, end, rank, step)).astype(np.int64))
        self._reads.append(np.stack([self.n_rows + np.asarray(read_rows), classes]).astype(np.int64))
        self.n_rows += self._rows[-1].shape[1]
        self.n_reads += len(classes)
        return np.arange(self.n_reads - len(classes), self.n_reads)

    def curve_points(self, targets: torch.Tensor, kinds: Sequence[str], probabilities) -> np.ndarray:
        """Plans the rows; returns (K, O, N, S+1): the readout each curve point takes its value from
        (readouts 0..N-1 are the given ``probabilities`` when there are some)."""
        n, steps, items = self.n, self.steps, np.arange(self.n)
        o = self.order_ranks.shape[0] // n
        targets = torch.as_tensor(targets).cpu().numpy().astype(np.int64)  # (N,)
        self.given = probabilities
        if probabilities is not None:
            self.n_reads, at_x = n, items
        else:
            at_x = self._add(items, items, 0, 0, items, targets)
        ends = {}  # kind -> (its first step's readouts, its last step's)
        if self.blur_at is not None:
            ends["insertion"] = (self._add(self.blur_at + items, self.blur_at + items, 0, 0, items, targets), at_x)
        if "deletion" in kinds:
            base = self.base_at + (np.zeros(1, np.int64) if self.base_shared else items)
            at_base = self._add(base, base, 0, 0, np.zeros(n, np.int64) if self.base_shared else items, targets)
            ends["deletion"] = (at_x, at_base)
        point = np.empty((len(kinds), o, n, steps + 1), dtype=np.int64)
        ords, its, sts = (g.ravel() for g in np.meshgrid(np.arange(o), items, np.arange(1, steps), indexing="ij"))
        for k, kind in enumerate(kinds):
            if kind == "deletion":
                start, end = its, self.base_at + (0 if self.base_shared else its)
            else:
                start, end = self.blur_at + its, its
            inner = self._add(start, end, ords * n + its, sts, np.arange(len(its)), targets[its])
            point[k, :, :, 1:steps] = inner.reshape(o, n, steps - 1)
            point[k, :, :, 0], point[k, :, :, steps] = ends[kind][0][None], ends[kind][1][None]
        rows = torch.from_numpy(np.concatenate(self._rows, axis=1)).to(self.sources.device)
        self.start, self.end, self.rank, self.step = rows  # (R,) each
        return point

    def build(self, lo: int, hi: int) -> tuple[torch.Tensor]:
        # Gathers and one where over the chunk: fewer, larger operations than building each
        # curve's steps by broadcasting (0.15 vs 0.24 ms/row at 64 rows, 2 threads, best of 15
        # on the shared 2-core box at load 8), and a small part of a row's forward either way.
        h, w = self.shape
        r = slice(lo, hi)
        changed = (self.order_ranks.index_select(0, self.rank[r]) < self.counts[self.step[r], None]).view(-1, 1, h, w)
        return (torch.where(changed, self.sources.index_select(0, self.end[r]),
                            self.sources.index_select(0, self.start[r])),)  # (B, C, H, W)

    def run(self, model: nn.Module, chunk: int) -> np.ndarray:
        """The value of every readout: the given probabilities first, then the model's."""
        reads = np.concatenate(self._reads, axis=1)
        values = probabilities_at(model, self.n_rows, self.build, chunk, reads[0], reads[1])
        if self.given is None:
            return values
        given = torch.as_tensor(self.given, dtype=torch.float64).cpu().numpy().reshape(self.n)
        return np.concatenate([given, values])


def _baseline(x: torch.Tensor, normalization: Normalization | None, baseline: float | torch.Tensor) -> torch.Tensor:
    """Deletion's end image in model space: (1, C, H, W) when the same for every input, else (N, C, H, W)."""
    if isinstance(baseline, torch.Tensor):
        b = baseline.to(x)
        return b.expand(1, *x.shape[1:]) if b.dim() < 4 or b.shape[0] == 1 else b.expand_as(x)
    mean, std = (normalization or Normalization(mean=(0.0,) * x.shape[1], std=(1.0,) * x.shape[1])).tensors(x)
    return (torch.full_like(x[:1], float(baseline)) - mean) / std


