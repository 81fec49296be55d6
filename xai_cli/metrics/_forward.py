"""Chunked, no-grad evaluation of many perturbed inputs: the one place metrics call the model."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from xai_cli.core.fold import forward_only

DEFAULT_CHUNK = 64
"""Rows per forward pass by default (``perturbations_per_eval``). demo-digits' forward costs
1.35 ms/row at 64 rows and 1.73 at 256 (fp32, 2 threads, quiet 2-core AMX box); on one thread at
load 6, 4.7 vs 6.5 ms/row (fp32) and 2.8 vs 3.3 (bf16), demo-text 0.11 vs 0.13. With 2 threads
on a box loaded 2-3x over, thread synchronisation dominates and 128-256 rows win instead.
bench/audit_bench.py times the sweep."""


@torch.no_grad()
def _softmax_chunks(model: nn.Module, n_rows: int, build: Callable[[int, int], tuple], chunk: int
                    ) -> Iterator[tuple[int, int, torch.Tensor, object]]:
    """``(start, stop, softmax (B, classes) float32, extra)`` per chunk; ``build(start, stop)``
    returns ``(model args, extra)``."""
    if chunk < 1:
        raise ValueError(f"perturbations_per_eval must be at least 1, got {chunk}")
    device = next(model.parameters(), torch.empty(0)).device
    # BatchNorms folded (core/fold.py): resnet18 224², fp32, 1 thread, 64 rows in chunks of 16: 1.06x
    with forward_only(model, device) as run:
        for start in range(0, n_rows, chunk):
            stop = min(start + chunk, n_rows)
            args, extra = build(start, stop)
            yield start, stop, run(*args).float().softmax(dim=1), extra


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
    out = np.empty(n_rows, dtype=np.float64)
    for start, stop, probs, targets in _softmax_chunks(model, n_rows, build, chunk):
        out[start:stop] = probs.gather(1, targets.view(-1, 1).to(probs.device))[:, 0].double().cpu().numpy()
    return out


def probabilities_at(model: nn.Module, n_rows: int, build: Callable[[int, int], tuple], chunk: int,
                     rows: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Softmax probabilities read at ``(rows[r], classes[r])`` for every readout ``r``.

    Each of the ``n_rows`` inputs goes through the model once however many readouts it has
    (an image shared by a batch, such as a black baseline, is read for each item's target).

    Args:
        model: Returns (B, classes) logits for ``model(*args)``.
        n_rows: How many distinct inputs.
        build: ``build(start, stop) -> args`` of rows ``start:stop``, built lazily.
        chunk: Rows per forward pass (memory and speed, never results).
        rows: (R,) int, sorted ascending: the input each readout is taken from.
        classes: (R,) int: the class read.

    Returns:
        (R,) float64.
    """
    rows, classes = np.asarray(rows, dtype=np.int64), np.asarray(classes, dtype=np.int64)
    out = np.empty(len(rows), dtype=np.float64)
    for start, stop, probs, _ in _softmax_chunks(model, n_rows, lambda lo, hi: (build(lo, hi), None), chunk):
        a, b = np.searchsorted(rows, [start, stop])
        at = torch.from_numpy(rows[a:b] - start).to(probs.device), torch.from_numpy(classes[a:b]).to(probs.device)
        out[a:b] = probs[at].double().cpu().numpy()
    return out


def item_seeds(seeds: Sequence[int] | None, n: int) -> list[int]:
    """One seed per item (0 for all by default), as the methods take them."""
    seeds = list(seeds) if seeds is not None else [0] * n
    if len(seeds) != n:
        raise ValueError(f"{n} inputs but {len(seeds)} seeds")
    return seeds


def trapezoid_auc(curves: np.ndarray) -> np.ndarray:
    """(..., S+1) curves sampled at equal steps over [0, 1] -> (...) trapezoid areas."""
    steps = curves.shape[-1] - 1
    return (curves.sum(axis=-1) - 0.5 * (curves[..., 0] + curves[..., -1])) / steps
