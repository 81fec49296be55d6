"""Max-sensitivity (Yeh et al., "On the (In)fidelity and Sensitivity of Explanations",
NeurIPS 2019, https://arxiv.org/abs/1901.09392), with Captum's ``sensitivity_max`` defaults:

    SENS_max(x) = max_k || e(x + d_k) - e(x) ||_F / || e(x) ||_F,   d_k ~ U[-r, r]^{C x H x W}

with r = 0.02 in model-input units, 10 samples, Frobenius norms; a zero ``|| e(x) ||`` counts
as 1 (Captum's guard). Lower is more stable. The N x samples perturbed inputs are explained
``inputs_per_explain`` at a time (any method, through an ``explain`` callable); results do not
depend on that knob, and each item's noise depends only on its seed.
"""

from __future__ import annotations

from collections.abc import Sequence

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
) -> np.ndarray:
    """Max-sensitivity of each item's map.

    Args:
        explain: ``explain(model, x, targets) -> (N, H, W)`` maps.
        model: The model explained.
        x: (N, C, H, W) model inputs.
        targets: (N,) classes explained (kept for the perturbed copies).
        radius: Half-width of the L-inf ball, in model-input units (Captum: 0.02).
        n_samples: Perturbations per item (Captum: 10).
        seeds: One seed per item for its noise.
        inputs_per_explain: Perturbed inputs per ``explain`` call.
        maps: The unperturbed maps, if already computed.
        noise: (N, K, C, H, W) perturbations to use instead of drawing them (for comparisons
            with other implementations).

    Returns:
        (N,) float64.
    """
    n = x.shape[0]
    if noise is None:
        noise = uniform_noise(tuple(x.shape), n_samples, radius, seeds)
    k = noise.shape[1]
    base = (maps if maps is not None else explain(model, x, targets)).detach().double().reshape(n, -1)  # (N, F)
    perturbed = (x.detach().unsqueeze(1) + noise.to(x)).reshape(n * k, *x.shape[1:])  # (N K, C, H, W), item-major
    row_targets = targets.repeat_interleave(k)
    diffs = torch.empty(n * k, dtype=torch.float64)
    for lo in range(0, n * k, inputs_per_explain):
        hi = min(lo + inputs_per_explain, n * k)
        m = explain(model, perturbed[lo:hi], row_targets[lo:hi]).detach().double().reshape(hi - lo, -1)  # (B, F)
        diffs[lo:hi] = torch.linalg.vector_norm(m.cpu() - base.cpu()[torch.arange(lo, hi) // k], dim=1)
    norms = torch.linalg.vector_norm(base.cpu(), dim=1)
    norms = torch.where(norms == 0, torch.ones_like(norms), norms)
    return (diffs.view(n, k) / norms[:, None]).amax(dim=1).numpy()
