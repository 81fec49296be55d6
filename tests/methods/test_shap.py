"""KernelSHAP against brute-force Shapley values, efficiency, and the expected-gradients path."""

from __future__ import annotations

import importlib.util
import itertools
import math

import pytest
import torch
from torch import nn

from tests.conftest import frozen, images
from tests.methods.test_lime import smooth_pixels
from xai_cli.errors import UsageError
from xai_cli.methods._perturb import segment_means
from xai_cli.methods._segments import grid_segments
from xai_cli.methods.registry import build_params
from xai_cli.methods.shap import Shap, ShapParams

HAS_EXPECTED_GRADIENTS = importlib.util.find_spec("xai_cli.methods._expected_gradients") is not None


def brute_force_shapley(model, x, target, seg, m, output):
    """phi_j = sum_{S not containing j} |S|! (M - |S| - 1)! / M! (f(S + j) - f(S)), every S evaluated,
    hidden superpixels filled with their mean colour as the method does."""
    fill = segment_means(x[None], seg[None], m)[0]  # (C, H, W)
    subsets = torch.tensor(list(itertools.product([False, True], repeat=m)))  # (2^M, M), row k = bits of k
    images_ = torch.where(subsets[:, seg][:, None], x, fill)  # (2^M, C, H, W)
    with torch.no_grad():
        out = model(images_)
    f = (out.softmax(1) if output == "probability" else out)[:, target].double()  # (2^M,)
    index = {tuple(s.tolist()): k for k, s in enumerate(subsets)}
    phi = torch.zeros(m, dtype=torch.float64)
    for s in subsets:
        size = int(s.sum())
        for j in torch.nonzero(~s).flatten().tolist():
            with_j = s.clone()
            with_j[j] = True
            weight = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
            phi[j] += weight * (f[index[tuple(with_j.tolist())]] - f[index[tuple(s.tolist())]])
    return phi, f[-1], f[0]


@pytest.mark.parametrize("output,n_samples", [("probability", 510), ("logit", 512), ("logit", 5000)])
def test_all_coalitions_give_exact_shapley_values(one_conv, output, n_samples):
    x, target, m = images(1, 16, seed=2), 1, 9  # a 3x3 grid: 2^9 - 2 = 510 coalitions
    params = ShapParams(segmentation="grid", n_segments=m, n_samples=n_samples, output=output, perturbations_per_eval=100)
    out = Shap(one_conv, params).explain(x, torch.tensor([target]), [0])
    seg = grid_segments(16, 16, m)
    phi, f_x, f_empty = brute_force_shapley(one_conv, x[0], target, seg, m, output)
    assert phi.abs().max() > 1e-3
    torch.testing.assert_close(out.maps[0].double(), phi[seg], rtol=1e-5, atol=1e-6 * float(phi.abs().max()))
    d = out.details[0]
    assert d["n_evaluations"] == 512
    assert abs(d["efficiency_gap"]) < 1e-12
    assert d["expected_value"] == pytest.approx(float(f_empty), rel=1e-6)
    assert float(phi.sum()) == pytest.approx(float(f_x - f_empty), rel=1e-9)


def test_sampled_coalitions_keep_efficiency_and_budget(one_conv):
    x, t, seeds = smooth_pixels(2, 32, seed=3) * 4 - 2, torch.tensor([0, 2]), [4, 5]
    out = Shap(one_conv, ShapParams(segmentation="slic", n_segments=40, n_samples=150)).explain(x, t, seeds)
    for d in out.details:
        assert d["n_segments"] > 10 and d["n_evaluations"] <= 152
        assert abs(d["efficiency_gap"]) < 1e-9 and d["efficiency_gap_relative"] < 1e-9


def test_sampled_coalitions_recover_a_model_linear_in_superpixels():
    size, m = 20, 25
    torch.manual_seed(6)
    model = frozen(nn.Sequential(nn.Flatten(), nn.Linear(3 * size * size, 2)))
    x = images(1, size, seed=7)
    out = Shap(model, ShapParams(segmentation="grid", n_segments=m, n_samples=120, output="logit")).explain(
        x, torch.tensor([0]), [1])
    # For a linear game phi_j = f(only j shown) - f(nothing shown), exactly, whatever the coalitions.
    seg = grid_segments(size, size, m)
    fill = segment_means(x, seg[None], m)  # (1, C, H, W)
    w = model[1].weight[0].view(3, size, size)
    beta = torch.stack([((x[0] - fill[0]) * w * (seg == j)).sum() for j in range(m)])
    torch.testing.assert_close(out.maps[0], beta[seg], rtol=1e-4, atol=1e-5 * float(beta.abs().max()))


def test_chunking_does_not_change_results(one_conv):
    x, t, seeds = smooth_pixels(3, 24, seed=8) * 4 - 2, torch.tensor([2, 1, 0]), [3, 2, 1]
    maps = [Shap(one_conv, ShapParams(segmentation="slic", n_segments=20, n_samples=100, perturbations_per_eval=ppe))
            .explain(x, t, seeds).maps for ppe in (5, 64, 1000)]
    torch.testing.assert_close(maps[0], maps[1], rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(maps[0], maps[2], rtol=1e-5, atol=1e-8)


def test_params_resolve_per_algorithm_and_reject_nonsense():
    assert (ShapParams().n_samples, ShapParams().output) == (1000, "probability")
    assert (ShapParams(algorithm="gradient").n_samples, ShapParams(algorithm="gradient").output) == (200, "logit")
    with pytest.raises(UsageError):
        build_params(Shap, {"algorithm": "gradient", "output": "probability"})
    with pytest.raises(UsageError):
        build_params(Shap, {"algorithm": "deep"})
    assert build_params(Shap, {"n_samples": "64", "output": "none"}).output == "probability"


def test_blur_background_goes_from_the_input_to_its_mean_colour(one_conv):
    x = images(1, 32, seed=9)[0]
    bg = Shap(one_conv, ShapParams(algorithm="gradient", n_background=4)).background(x, seed=0)
    assert bg.shape == (4, 3, 32, 32)
    torch.testing.assert_close(bg[-1], x.mean((1, 2), keepdim=True).expand_as(x), rtol=1e-5, atol=1e-6)
    # each copy is smoother than the one before
    roughness = [(b[:, 1:] - b[:, :-1]).abs().mean() for b in bg]
    assert all(a > b for a, b in zip(roughness, roughness[1:]))
    noise = Shap(one_conv, ShapParams(algorithm="gradient", background="uniform", n_background=3))
    assert torch.equal(noise.background(x, 5), noise.background(x, 5))
    assert not torch.equal(noise.background(x, 5), noise.background(x, 6))


@pytest.mark.skipif(not HAS_EXPECTED_GRADIENTS, reason="xai_cli/methods/_expected_gradients.py not written yet")
@pytest.mark.parametrize("background", ["blur", "uniform"])
def test_gradient_algorithm_is_expected_gradients_and_nearly_efficient(one_conv, background):
    x, t, seeds = images(2, 16, seed=10), torch.tensor([0, 1]), [1, 2]
    params = ShapParams(algorithm="gradient", n_samples=400, background=background, n_background=4)
    out = Shap(one_conv, params).explain(x, t, seeds)
    assert out.maps.shape == (2, 16, 16) and torch.isfinite(out.maps).all()
    for d in out.details:
        # a Monte Carlo estimate of the path integral: efficient up to sampling error
        assert d["efficiency_gap_relative"] < 0.25
    chunked = Shap(one_conv, ShapParams(algorithm="gradient", n_samples=400, background=background, n_background=4,
                                        perturbations_per_eval=7)).explain(x, t, seeds)
    torch.testing.assert_close(out.maps, chunked.maps, rtol=1e-4, atol=1e-6)
