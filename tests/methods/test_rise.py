"""RISE against the paper's sum worked out mask by mask on a tiny model, with the same masks."""

from __future__ import annotations

import torch

from tests.conftest import images
from xai_cli.methods.base import Normalization
from xai_cli.methods.rise import Rise, RiseParams, rise_draws, upsample_masks


def test_matches_hand_computation_with_the_same_masks(one_conv):
    norm = Normalization((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    x, t, seeds = images(2, 10, seed=5), torch.tensor([2, 0]), [11, 12]
    params = RiseParams(n_samples=50, grid=3, p=0.4, perturbations_per_eval=7)
    ours = Rise(one_conv, params, norm).explain(x, t, seeds).maps
    mean, std = norm.tensors(x)
    for i in range(2):
        grids, shifts = rise_draws(50, 3, 0.4, (10, 10), seeds[i])
        total = torch.zeros(10, 10, dtype=torch.float64)
        for k in range(50):
            m = upsample_masks(grids[k:k + 1], shifts[k:k + 1], (10, 10))[0]  # (H, W)
            pixels = (x[i] * std[0] + mean[0]) * m  # I . M in pixel space
            prob = torch.softmax(one_conv(((pixels - mean[0]) / std[0])[None]), 1)[0, t[i]]
            total += prob.double() * m.double()
        torch.testing.assert_close(ours[i], (total / (50 * 0.4)).float(), rtol=1e-5, atol=1e-6)


def test_masks_look_like_the_papers():
    grids, shifts = rise_draws(400, 7, 0.5, (64, 48), seed=0)
    masks = upsample_masks(grids, shifts, (64, 48))
    assert masks.shape == (400, 64, 48) and masks.min() >= 0 and masks.max() <= 1
    assert abs(grids.float().mean() - 0.5) < 0.02 and abs(masks.mean() - 0.5) < 0.03
    assert shifts[:, 0].max() == 9 and shifts[:, 1].max() == 6  # ceil(64/7) - 1, ceil(48/7) - 1
    assert masks.std() > 0.2  # smooth, but not averaged away


def test_results_do_not_depend_on_perturbations_per_eval(one_conv):
    x, t = images(3, 12, seed=2), torch.tensor([0, 2, 1])
    a = Rise(one_conv, RiseParams(n_samples=40, perturbations_per_eval=1)).explain(x, t, [1, 2, 3]).maps
    b = Rise(one_conv, RiseParams(n_samples=40, perturbations_per_eval=1000)).explain(x, t, [1, 2, 3]).maps
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_paper_defaults():
    p = RiseParams()
    assert (p.n_samples, p.grid, p.p) == (4000, 7, 0.5)
