"""ROAD: RemOve And Debias (Rong et al., "A Consistent and Efficient Evaluation Strategy for
Attribution Methods", ICML 2022, https://arxiv.org/abs/2202.00449).

The top ``p`` % of pixels (MoRF: most relevant first; LeRF: least relevant first) are removed
and filled by noisy linear imputation: each removed pixel is the weighted mean of its eight
neighbours (1/6 for the four sharing an edge, 1/12 for the diagonals), solved jointly as one
sparse linear system per image, plus Gaussian noise (std 0.01, pytorch-grad-cam's default), so
the removal itself leaks no shape to the model. Scores are the target's softmax probability
averaged over the percentiles 10, 20, ..., 90: ``road_morf`` (lower is better), ``road_lerf``
(higher is better) and ``road_gain = road_lerf - road_morf``. Imputation is in model-input space
(it commutes with the per-channel normalisation; the noise is in those units). All imputed
images of a batch go through the model in chunks of ``perturbations_per_eval``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import sparse
from scipy.sparse.linalg import spsolve
from torch import nn

from xai_cli.metrics._forward import DEFAULT_CHUNK, item_seeds, target_probabilities

ROAD_PERCENTILES: tuple[int, ...] = (10, 20, 30, 40, 50, 60, 70, 80, 90)
_NEIGHBOURS = [(-1, 0, 1 / 6), (1, 0, 1 / 6), (0, -1, 1 / 6), (0, 1, 1 / 6),
               (-1, -1, 1 / 12), (-1, 1, 1 / 12), (1, -1, 1 / 12), (1, 1, 1 / 12)]


def noisy_linear_impute(x: np.ndarray, removed: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """(C, H, W) image with the ``removed`` (H, W) pixels imputed from their neighbours, plus noise."""
    c, h, w = x.shape
    ys, xs = np.nonzero(removed)
    k = len(ys)
    if k == 0:
        return x.copy()
    index = np.full((h, w), -1)
    index[ys, xs] = np.arange(k)
    rows, cols, vals = [np.arange(k)], [np.arange(k)], []
    diag, b = np.zeros(k), np.zeros((k, c))
    for dy, dx, wt in _NEIGHBOURS:
        ny, nx = ys + dy, xs + dx
        ok = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        diag[ok] += wt
        j = np.where(ok, index[np.clip(ny, 0, h - 1), np.clip(nx, 0, w - 1)], -1)
        inner = ok & (j >= 0)  # a removed neighbour: an unknown
        rows.append(np.flatnonzero(inner)), cols.append(j[inner]), vals.append(np.full(inner.sum(), -wt))
        known = ok & (j < 0)
        b[known] += wt * x[:, ny[known], nx[known]].T
    a = sparse.csc_matrix((np.concatenate([diag, *vals]), (np.concatenate(rows), np.concatenate(cols))), shape=(k, k))
    solved = spsolve(a, b).reshape(k, c)  # (k, C)
    out = x.copy()
    out[:, ys, xs] = solved.T + rng.normal(0.0, noise, size=(c, k))
    return out


def road(model: nn.Module, x: torch.Tensor, maps: torch.Tensor, targets: torch.Tensor, *,
         percentiles: Sequence[int] = ROAD_PERCENTILES, noise: float = 0.01, seeds: Sequence[int] | None = None,
         perturbations_per_eval: int = DEFAULT_CHUNK) -> dict[str, np.ndarray]:
    """ROAD's MoRF and LeRF scores of a batch.

    Args:
        model: Returns (B, classes) logits.
        x: (N, C, H, W) model inputs.
        maps: (N, H, W) attributions.
        targets: (N,) classes explained.
        percentiles: Shares of pixels removed, in percent.
        noise: Std of the imputation noise, in model-input units.
        seeds: One seed per item for its noise.
        perturbations_per_eval: Imputed images per forward pass.

    Returns:
        ``{"road_morf", "road_lerf", "road_gain"}``, each (N,) float64.
    """
    n, c, h, w = x.shape
    xs = x.detach().float().cpu().numpy()
    order = np.argsort(-maps.detach().float().cpu().reshape(n, -1).numpy(), axis=1, kind="stable")  # (N, HW)
    images = []
    for i, seed in enumerate(item_seeds(seeds, n)):
        rng = np.random.default_rng(seed)
        for first in (order[i], order[i][::-1]):  # MoRF, then LeRF
            for p in percentiles:
                removed = np.zeros(h * w, dtype=bool)
                removed[first[:int(round(p / 100 * h * w))]] = True
                images.append(noisy_linear_impute(xs[i], removed.reshape(h, w), noise, rng))
    batch = torch.from_numpy(np.stack(images)).to(x)  # (N 2 P, C, H, W)
    per = 2 * len(percentiles)
    row_targets = targets.to(x.device).repeat_interleave(per)
    probs = target_probabilities(model, len(batch), lambda lo, hi: ((batch[lo:hi],), row_targets[lo:hi]),
                                 perturbations_per_eval).reshape(n, 2, len(percentiles))
    morf, lerf = probs[:, 0].mean(axis=1), probs[:, 1].mean(axis=1)
    return {"road_morf": morf, "road_lerf": lerf, "road_gain": lerf - morf}
