"""Max-sensitivity (Yeh et al., "On the (In)fidelity and Sensitivity of Explanations",
NeurIPS 2019, https://arxiv.org/abs/1901.09392), with Captum's ``sensitivity_max`` defaults:

    SENS_max(x) = max_k || e(x + d_k) - e(x) ||_F / || e(x) ||_F,   d_k ~ U[-r, r]^{C x H x W}

with r = 0.02 in model-input units, 10 samples, Frobenius norms; a zero ``|| e(x) ||`` counts
as 1 (Captum's guard). Lower is more stable. The N x samples perturbed inputs are explained
``inputs_per_explain`` at a time (any method, through an ``explain`` callable); results do not
depend on that knob, and each item's noise depends only on its seed.

Text: token ids cannot be nudged, so :func:`token_max_sensitivity` adds the noise to the word
embeddings (the model's ``inputs_embeds``) of the document's tokens, special tokens included,
padding not, with r = radius x the standard deviation of the word-embedding matrix: the
embeddings' own scale, as normalised pixels have a scale of about 1 (demo-text: std 0.035, so
the default r is 7e-4). Methods that explain by hiding words (LIME, SHAP, counterfactual) take
token ids, not embeddings; the audit records their max-sensitivity as not measured, with why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from xai_cli.metrics._forward import item_seeds
from xai_cli.metrics.randomisation import ExplainFn


def uniform_noise(shape: Sequence[int], n_samples: int, radius: float, seeds: Sequence[int] | None = None
                  ) -> torch.Tensor:
    """(N, K, *shape[1:]) noise uniform in [-radius, radius], item i drawn from ``seeds[i]``."""
    n = shape[0]
    return torch.stack([
        (torch.rand((n_samples, *shape[1:]), generator=torch.Generator().manual_seed(s)) * 2 - 1) * radius
        for s in item_seeds(seeds, n)
    ])


def max_sensitivity(
    explain: ExplainFn,
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    *,
    radius: float = 0.02,
    n_samples: int = 10,
    seeds: Sequence[int] | None = None,
    inputs_per_explain: int = 64,
    maps: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
    rows: Callable[[torch.Tensor, torch.Tensor], Any] | None = None,
) -> np.ndarray:
    """Max-sensitivity of each item's map.

    Args:
        explain: ``explain(model, inputs, targets) -> (N, H, W)`` maps.
        model: The model explained.
        x: (N, C, H, W) model inputs, or what ``rows`` makes inputs of (text: embeddings).
        targets: (N,) classes explained (kept for the perturbed copies).
        radius: Half-width of the L-inf ball, in model-input units (Captum: 0.02).
        n_samples: Perturbations per item (Captum: 10).
        seeds: One seed per item for its noise.
        inputs_per_explain: Perturbed inputs per ``explain`` call.
        maps: The unperturbed maps, if already computed.
        noise: (N, K, C, H, W) perturbations to use instead of drawing them (for comparisons
            with other implementations).
        rows: ``rows(values (B, *x.shape[1:]), items (B,)) -> inputs`` builds what ``explain``
            takes from rows of (perturbed) ``x`` and the items they belong to (default: the
            rows themselves).

    Returns:
        (N,) float64.
    """
    n = x.shape[0]
    if noise is None:
        noise = uniform_noise(tuple(x.shape), n_samples, radius, seeds)
    k = noise.shape[1]
    rows = rows or (lambda values, items: values)
    base = maps if maps is not None else explain(model, rows(x, torch.arange(n)), targets)
    base = base.detach().double().reshape(n, -1)  # (N, F)
    perturbed = (x.detach().unsqueeze(1) + noise.to(x)).reshape(n * k, *x.shape[1:])  # (N K, C, H, W), item-major
    row_targets = targets.repeat_interleave(k)
    diffs = torch.empty(n * k, dtype=torch.float64)
    for lo in range(0, n * k, inputs_per_explain):
        hi = min(lo + inputs_per_explain, n * k)
        items = torch.arange(lo, hi) // k  # (B,)
        m = explain(model, rows(perturbed[lo:hi], items), row_targets[lo:hi]).detach().double().reshape(hi - lo, -1)  # (B, F)
        diffs[lo:hi] = torch.linalg.vector_norm(m.cpu() - base.cpu()[items], dim=1)
    norms = torch.linalg.vector_norm(base.cpu(), dim=1)
    norms = torch.where(norms == 0, torch.ones_like(norms), norms)
    return (diffs.view(n, k) / norms[:, None]).amax(dim=1).numpy()


def token_max_sensitivity(explain: ExplainFn, model: nn.Module, batch, targets: torch.Tensor, *, radius: float = 0.02,
                          n_samples: int = 10, seeds: Sequence[int] | None = None, **options) -> np.ndarray:
    """Max-sensitivity of token maps, the noise added to the word embeddings (module docstring).

    Args:
        explain: ``explain(model, TokenBatch, targets) -> (N, T)``; it is given batches that
            carry ``embeds``, so the method must take embeddings (``takes_embeddings``).
        model: A ``TextClassifier`` (``embed``, ``embedding_scale``).
        batch: The documents, a ``TokenBatch``.
        radius: Half-width of the L-inf ball, in units of the embedding matrix's std.
        n_samples, seeds: As :func:`max_sensitivity`.
        options: ``inputs_per_explain``, ``maps``, passed on to :func:`max_sensitivity`.

    Returns:
        (N,) float64.
    """
    with torch.no_grad():
        embeds = model.embed(batch.input_ids)  # (N, T, D)
    noise = uniform_noise(tuple(embeds.shape), n_samples, radius * model.embedding_scale(), seeds)  # (N, K, T, D)
    noise = noise * batch.attention_mask.cpu()[:, None, :, None]  # padding stays padding
    return max_sensitivity(explain, model, embeds, targets, noise=noise, rows=lambda values, items: batch.rows(items, values),
                           **options)
