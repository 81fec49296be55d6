"""Expected Gradients: Erion, Janizek, Sturmfels, Lundberg & Lee, "Improving performance of deep
learning models with axiomatic attribution priors and expected gradients", Nature Machine
Intelligence 2021. https://arxiv.org/abs/1906.10670

Integrated Gradients averaged over baselines x' drawn from a background set D, with the path
integral estimated by Monte Carlo along with the expectation over baselines:

    phi_j(x) = E_{x' ~ D, a ~ U(0, 1)} [ (x_j - x'_j) * d f(x' + a (x - x')) / d x_j ]
             ~ 1/S sum_k (x_j - x'_k,j) * d f(x'_k + a_k (x - x'_k)) / d x_j

the semantics of ``shap.GradientExplainer`` (without ``local_smoothing``). Efficiency,
sum_j phi_j = f(x) - E_D[f(x')], holds only in expectation over the S samples; each item's
gap and the Monte Carlo standard error of sum_j phi_j are reported so they can be judged.

Not a registered method: the ``shap`` method calls it for ``--shap-algorithm gradient``.
"""

from __future__ import annotations

import torch
from torch import nn

from xai_cli.methods._gradients import item_generator, relative_error, summed_gradients, target_scores


def expected_gradients(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    background: torch.Tensor,
    n_samples: int,
    seeds: list[int],
    internal_batch_size: int,
) -> tuple[torch.Tensor, list[dict]]:
    """Expected-gradients attributions of ``model(inputs)[i, targets[i]]``.

    Item i draws its S background rows and path positions from a generator seeded with
    ``seeds[i]`` alone, so its result does not depend on the other items in the batch.

    Args:
        model: The classifier, frozen, in eval mode.
        inputs: (N, C, H, W) model inputs, on the model's device.
        targets: (N,) class indices.
        background: (B, C, H, W) baseline rows in model-input space, on the same device.
        n_samples: S, the gradient samples per item.
        seeds: One seed per item.
        internal_batch_size: (item, sample) rows per forward/backward pass; bounds memory,
            never changes the result beyond float rounding.

    Returns:
        ``(attributions, details)``: (N, C, H, W) float32 attributions, and per item a dict with
        ``f_x``, ``f_background_mean`` (E_D f(x') over the whole background), ``sum_attributions``,
        ``delta`` (sum - (f_x - f_background_mean)), ``efficiency_error`` (|delta| relative to the
        gap) and ``sum_std_error`` (Monte Carlo standard error of the sum).

    Raises:
        ValueError: Mismatched shapes or counts, or a non-positive sample or batch count.
    """
    n, b = inputs.shape[0], background.shape[0]
    if n_samples < 1 or internal_batch_size < 1:
        raise ValueError(f"n_samples and internal_batch_size must be >= 1, got {n_samples}, {internal_batch_size}")
    if len(seeds) != n or targets.shape[0] != n:
        raise ValueError(f"{n} inputs but {targets.shape[0]} targets and {len(seeds)} seeds")
    if b < 1 or background.shape[1:] != inputs.shape[1:]:
        raise ValueError(f"background {tuple(background.shape)} does not match inputs {tuple(inputs.shape)}")

    rows_of, alphas = _draws(seeds, n_samples, b)  # (N, S) background row indices, (N, S) path positions
    rows_of, alphas = rows_of.to(inputs.device), alphas.to(inputs.device, inputs.dtype)
    inputs, background = inputs.detach(), background.detach()

    def rows(items, ks):
        bg = background[rows_of[items, ks]]  # (R, C, H, W)
        diffs = inputs[items] - bg  # (R, C, H, W)
        points = bg + alphas[items, ks, None, None, None] * diffs  # (R, C, H, W)
        return points, targets[items], diffs / n_samples

    attrs, row_sums = summed_gradients(model, n, n_samples, internal_batch_size, rows, inputs.device)
    f_x = target_scores(model, inputs, targets, internal_batch_size)  # (N,)
    f_bg = _background_logits(model, background, internal_batch_size)[:, targets].mean(0)  # (N,)
    return attrs, _efficiency(attrs, row_sums * n_samples, f_x, f_bg)


def _draws(seeds: list[int], n_samples: int, n_background: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each item's background rows and alphas ~ U(0, 1), from its own seed (on the CPU)."""
    picks, alphas = [], []
    for seed in seeds:
        g = item_generator(seed)
        picks.append(torch.randint(n_background, (n_samples,), generator=g))
        alphas.append(torch.rand(n_samples, generator=g))
    return torch.stack(picks), torch.stack(alphas)  # (N, S), (N, S)


@torch.no_grad()
def _background_logits(model: nn.Module, background: torch.Tensor, batch_size: int) -> torch.Tensor:
    chunks = [model(background[s:s + batch_size].clone()) for s in range(0, background.shape[0], batch_size)]
    return torch.cat(chunks).float()  # (B, K)


def _efficiency(attrs: torch.Tensor, per_sample: torch.Tensor, f_x: torch.Tensor, f_bg: torch.Tensor) -> list[dict]:
    """Per item: sum(phi) against f(x) - E f(x'), and the Monte Carlo standard error of sum(phi).

    ``per_sample[i, k]`` is sample k's estimate of sum(phi_i); their mean is the sum itself.
    """
    total = attrs.double().flatten(1).sum(1).cpu()  # (N,)
    f_x, f_bg = f_x.double().cpu(), f_bg.double().cpu()
    delta = total - (f_x - f_bg)
    error = relative_error(delta, f_x, f_bg)
    s = per_sample.shape[1]
    # One sample has no spread to estimate; None (JSON null) rather than NaN, which JSON lacks.
    std_error = (per_sample.double().std(1).cpu() / s**0.5).tolist() if s > 1 else [None] * len(total)
    return [{"f_x": float(a), "f_background_mean": float(m), "sum_attributions": float(t), "delta": float(d),
             "efficiency_error": float(e), "sum_std_error": se}
            for a, m, t, d, e, se in zip(f_x, f_bg, total, delta, error, std_error)]
