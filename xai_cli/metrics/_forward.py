"""Chunked, no-grad evaluation of many perturbed inputs: the one place metrics call the model."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def target_probabilities(model: nn.Module, n_rows: int, build: Callable[[int, int], tuple[tuple, torch.Tensor]],
                         chunk: int) -> np.ndarray:
    """The target's softmax probability on ``n_rows`` inputs, built and run ``chunk`` rows at a time.

    Args:
        model: Returns (B, classes) logits for ``model(*args)``.
        n_rows: How many rows in all.
        build: ``build(start, stop) -> (args, targets)``: the model's positional arguments and
            the (B,) target class of rows ``start:stop``. Rows are built lazily so that memory
            holds one chunk, never every perturbation at once.
        chunk: Rows per forward pass (memory and speed, never results).

    Returns:
        (n_rows,) float64.
    """
    if chunk < 1:
        raise ValueError(f"perturbations_per_eval must be at least 1, got {chunk}")
    out = np.empty(n_rows, dtype=np.float64)
    for start in range(0, n_rows, chunk):
        stop = min(start + chunk, n_rows)
        args, targets = build(start, stop)
        probs = model(*args).float().softmax(dim=1)  # (B, classes)
        out[start:stop] = probs.gather(1, targets.view(-1, 1).to(probs.device))[:, 0].double().cpu().numpy()
    return out


def item_seeds(seeds: Sequence[int] | None, n: int) -> list[int]:
    """One seed per item (0 for all by default), as the methods take them."""
    seeds = list(seeds) if seeds is not None else [0] * n
    if len(seeds) != n:
        raise ValueError(f"{n} inputs but {len(seeds)} seeds")
    return seeds


def trapezoid_auc(curves: np.ndarray) -> np.ndarray:
    """(N, S+1) curves sampled at equal steps over [0, 1] -> (N,) trapezoid areas."""
    steps = curves.shape[1] - 1
    return (curves.sum(axis=1) - 0.5 * (curves[:, 0] + curves[:, -1])) / steps
