"""ROAD's noisy linear imputation and scores."""

from __future__ import annotations

import numpy as np
import torch

from xai_cli.metrics.road import noisy_linear_impute, road


def test_imputation_solves_the_neighbour_mean_equations():
    rng = np.random.default_rng(0)
    x = rng.random((2, 9, 9))
    removed = np.zeros((9, 9), dtype=bool)
    removed[3:6, 2:7] = True
    out = noisy_linear_impute(x, removed, 0.0, rng)
    assert np.array_equal(out[:, ~removed], x[:, ~removed])
    # each removed pixel is the weighted mean of its 8 neighbours (interior: weights sum to 1)
    for y, xx in zip(*np.nonzero(removed)):
        nb = sum(w * out[:, y + dy, xx + dx] for dy, dx, w in
                 [(-1, 0, 1 / 6), (1, 0, 1 / 6), (0, -1, 1 / 6), (0, 1, 1 / 6),
                  (-1, -1, 1 / 12), (-1, 1, 1 / 12), (1, -1, 1 / 12), (1, 1, 1 / 12)])
        assert np.allclose(out[:, y, xx], nb)
    flat = np.ones((1, 9, 9))  # a constant image stays constant
    assert np.allclose(noisy_linear_impute(flat, removed, 0.0, rng), flat)


def test_morf_below_lerf_for_a_map_of_the_evidence():
    class Bright(torch.nn.Module):  # class 1's logit: the brightness of the top-left quarter
        def forward(self, x):
            s = x[:, :, :4, :4].mean(dim=(1, 2, 3)) * 8
            return torch.stack([torch.zeros_like(s), s], dim=1)

    x = torch.zeros(1, 1, 8, 8)
    x[:, :, :4, :4] = 1.0
    maps = x[:, 0].clone()
    r = road(Bright(), x, maps, torch.tensor([1]), noise=0.0, seeds=[0])
    assert r["road_morf"][0] < r["road_lerf"][0] and r["road_gain"][0] > 0
