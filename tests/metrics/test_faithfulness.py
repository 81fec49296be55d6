"""Deletion/insertion against a hand computation on a linear model, chunk-size invariance, seeds,
and the plan that sends every distinct image through the model exactly once."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from xai_cli.methods.base import Normalization
from xai_cli.metrics.faithfulness import deletion_insertion

C, H, W = 2, 12, 12
NORM = Normalization(mean=(0.3, 0.6), std=(0.5, 0.25))


def linear_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(C * H * W, 3)).double().eval()
    return model


def hand_curve(model: nn.Module, start: np.ndarray, end: np.ndarray, order: np.ndarray, target: int, steps: int):
    """The curve by loops: step s puts end's values on the first floor(s HW / S) pixels of order."""
    wmat, b = model[1].weight.detach().numpy(), model[1].bias.detach().numpy()
    out = []
    for s in range(steps + 1):
        img = start.copy()
        for p in order[: s * H * W // steps]:
            img[:, p // W, p % W] = end[:, p // W, p % W]
        logits = wmat @ img.ravel() + b
        e = np.exp(logits - logits.max())
        out.append(e[target] / e.sum())
    curve = np.array(out)
    return curve, np.trapezoid(curve, np.linspace(0, 1, steps + 1)) if hasattr(np, "trapezoid") else np.trapz(curve, dx=1 / steps)


def test_curves_match_a_hand_computation_on_a_linear_model():
    model = linear_model()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, C, H, W, generator=g, dtype=torch.float64)
    maps = torch.randn(3, H, W, generator=g)
    targets = torch.tensor([0, 2, 1])
    steps = 7
    out = deletion_insertion(model, x, maps, targets, normalization=NORM, steps=steps, seeds=[5, 6, 7],
                             perturbations_per_eval=10)
    mean, std = np.array(NORM.mean)[:, None, None], np.array(NORM.std)[:, None, None]
    black = np.broadcast_to((0.0 - mean) / std, (C, H, W))
    for i in range(3):
        xi = x[i].numpy()
        # RISE's blur: Gaussian sigma 5 truncated to an 11 px kernel, reflected at the edges.
        blurred = np.stack([ndimage.gaussian_filter(ch, 5.0, truncate=1.0, mode="mirror") for ch in xi])
        order = np.argsort(-maps[i].numpy().ravel(), kind="stable")
        rand = torch.randperm(H * W, generator=torch.Generator().manual_seed(5 + i)).numpy()
        for kind, start, end in (("deletion", xi, black), ("insertion", blurred, xi)):
            c = out[kind]
            curve, auc = hand_curve(model, start, end, order, int(targets[i]), steps)
            np.testing.assert_allclose(c.curve[i], curve, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(c.auc[i], auc, rtol=1e-5, atol=1e-6)
            rcurve, rauc = hand_curve(model, start, end, rand, int(targets[i]), steps)
            np.testing.assert_allclose(c.random_curve[i], rcurve, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(c.random_auc[i], rauc, rtol=1e-5, atol=1e-6)
    d, ins = out["deletion"], out["insertion"]
    np.testing.assert_allclose(d.gain, d.random_auc - d.auc)
    np.testing.assert_allclose(ins.gain, ins.auc - ins.random_auc)
    assert d.fractions[0] == 0 and d.fractions[-1] == 1


def test_deletion_of_the_true_contributions_beats_random():
    """On a linear model, ordering pixels by their contribution to the target's margin is the
    best deletion order there is: it must beat a random ordering."""
    model = linear_model()
    x = torch.randn(4, C, H, W, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    targets = torch.tensor([0, 1, 2, 0])
    wmat = model[1].weight.detach().view(3, C, H, W)
    baseline = ((0.0 - torch.tensor(NORM.mean)) / torch.tensor(NORM.std)).view(1, C, 1, 1).double()
    # Contribution of each pixel to (target logit - mean of the others) when it is deleted.
    margin = wmat[targets] - (wmat.sum(0, keepdim=True) - wmat[targets]) / 2  # (N, C, H, W)
    maps = (margin * (x - baseline)).sum(1).float()  # (N, H, W)
    d = deletion_insertion(model, x, maps, targets, normalization=NORM, kinds=("deletion",))["deletion"]
    assert (d.gain > 0).all(), d.gain


@pytest.mark.parametrize("chunk", [1, 13, 10_000])
def test_results_do_not_depend_on_the_chunk_size(one_conv, chunk):
    g = torch.Generator().manual_seed(3)
    x, maps = torch.randn(3, 3, 16, 16, generator=g), torch.rand(2, 3, 16, 16, generator=g)  # two maps per input
    targets = torch.tensor([0, 1, 2])
    ref = deletion_insertion(one_conv, x, maps, targets, steps=5, perturbations_per_eval=64)
    out = deletion_insertion(one_conv, x, maps, targets, steps=5, perturbations_per_eval=chunk)
    for kind in ("deletion", "insertion"):
        np.testing.assert_allclose(out[kind].curve, ref[kind].curve, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(out[kind].random_curve, ref[kind].random_curve, rtol=1e-5, atol=1e-7)


class RowRecorder(nn.Module):
    """The model, keeping every row it is given."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.rows = model, []

    def forward(self, x):
        self.rows.append(x.detach().clone())
        return self.model(x)


@pytest.mark.parametrize("per_input_baseline", [False, True])
@pytest.mark.parametrize("given", [False, True])
def test_each_distinct_image_is_evaluated_once_and_curves_match_the_hand_computation(given, per_input_baseline):
    """Three maps per input in one call: the random ordering, the input, its blur and the
    baseline are evaluated once (the baseline once per batch unless it varies by input), no
    row twice; and every curve is still the straightforward one, map by map."""
    model = RowRecorder(linear_model())
    n, m, steps = 3, 3, 6
    g = torch.Generator().manual_seed(8)
    x = torch.randn(n, C, H, W, generator=g, dtype=torch.float64)
    maps = torch.randn(m, n, H, W, generator=g)
    targets = torch.tensor([1, 0, 2])
    baseline = torch.randn(n, C, H, W, generator=g, dtype=torch.float64) if per_input_baseline else 0.0
    with torch.no_grad():
        p = model.model(x).softmax(1)[torch.arange(n), targets]
    out = deletion_insertion(model, x, maps, targets, normalization=NORM, steps=steps, seeds=[4, 5, 6],
                             baseline=baseline, perturbations_per_eval=17, probabilities=p if given else None)
    rows = torch.cat(model.rows).reshape(-1, C * H * W)
    interior = 2 * (m + 1) * n * (steps - 1)  # (kind, random + M maps, input, steps 1..S-1)
    endpoints = (0 if given else n) + n + (n if per_input_baseline else 1)  # inputs, blurs, baselines
    assert rows.shape[0] == interior + endpoints
    assert torch.unique(rows, dim=0).shape[0] == rows.shape[0], "an image went through the model twice"
    assert model.rows[0].shape[0] == 17
    mean, std = np.array(NORM.mean)[:, None, None], np.array(NORM.std)[:, None, None]
    for i in range(n):
        xi = x[i].numpy()
        blurred = np.stack([ndimage.gaussian_filter(ch, 5.0, truncate=1.0, mode="mirror") for ch in xi])
        end = baseline[i].numpy() if per_input_baseline else np.broadcast_to((0.0 - mean) / std, (C, H, W))
        rand = torch.randperm(H * W, generator=torch.Generator().manual_seed(4 + i)).numpy()
        for kind, a, b in (("deletion", xi, end), ("insertion", blurred, xi)):
            c = out[kind]
            rcurve, rauc = hand_curve(model.model, a, b, rand, int(targets[i]), steps)
            for j in range(m):
                order = np.argsort(-maps[j, i].numpy().ravel(), kind="stable")
                curve, auc = hand_curve(model.model, a, b, order, int(targets[i]), steps)
                np.testing.assert_allclose(c.curve[j, i], curve, rtol=1e-5, atol=1e-6)
                np.testing.assert_allclose(c.auc[j, i], auc, rtol=1e-5, atol=1e-6)
                np.testing.assert_allclose(c.random_curve[j, i], rcurve, rtol=1e-5, atol=1e-6)
                np.testing.assert_allclose(c.random_auc[j, i], rauc, rtol=1e-5, atol=1e-6)


def test_stacked_maps_give_the_curves_of_separate_calls(one_conv):
    g = torch.Generator().manual_seed(9)
    x, maps = torch.randn(2, 3, 16, 16, generator=g), torch.rand(3, 2, 16, 16, generator=g)
    targets = torch.tensor([2, 0])
    both = deletion_insertion(one_conv, x, maps, targets, steps=4, seeds=[3, 7])
    for j in range(3):
        alone = deletion_insertion(one_conv, x, maps[j], targets, steps=4, seeds=[3, 7])
        for kind, c in both.items():
            for name in ("curve", "random_curve", "auc", "random_auc", "gain"):
                np.testing.assert_allclose(getattr(c, name)[j], getattr(alone[kind], name), rtol=1e-5, atol=1e-7)


def test_seeds_fix_the_random_ordering_and_items_do_not_interact(one_conv):
    g = torch.Generator().manual_seed(4)
    x, maps = torch.randn(3, 3, 16, 16, generator=g), torch.rand(3, 16, 16, generator=g)
    targets = torch.tensor([2, 1, 0])
    a = deletion_insertion(one_conv, x, maps, targets, steps=5, seeds=[1, 2, 3])["deletion"]
    b = deletion_insertion(one_conv, x, maps, targets, steps=5, seeds=[1, 2, 3])["deletion"]
    c = deletion_insertion(one_conv, x, maps, targets, steps=5, seeds=[9, 2, 3])["deletion"]
    alone = deletion_insertion(one_conv, x[1:2], maps[1:2], targets[1:2], steps=5, seeds=[2])["deletion"]
    np.testing.assert_array_equal(a.random_curve, b.random_curve)
    assert not np.allclose(a.random_curve[0], c.random_curve[0])
    np.testing.assert_allclose(a.random_curve[1], alone.random_curve[0], rtol=1e-6)
    np.testing.assert_allclose(a.curve[1], alone.curve[0], rtol=1e-6)


def test_bad_shapes_are_refused(one_conv):
    with pytest.raises(ValueError, match="maps must be"):
        deletion_insertion(one_conv, torch.zeros(2, 3, 8, 8), torch.zeros(2, 4, 4), torch.tensor([0, 1]))
