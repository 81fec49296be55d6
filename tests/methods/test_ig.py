"""Integrated Gradients: completeness, agreement with Captum, batch knobs, baselines, warning."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.conftest import frozen, images
from xai_cli.errors import UsageError, words
from xai_cli.methods.base import Normalization
from xai_cli.methods.ig import IntegratedGradients, IntegratedGradientsParams as P
from xai_cli.methods.registry import build_params

IMAGENET = Normalization((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@pytest.fixture(scope="module")
def demo(demo_model):
    """The shipped demo classifier (xai_cli/models/weights/demo_digits.safetensors)."""
    return demo_model


def _demo_inputs(n: int) -> tuple[torch.Tensor, Normalization]:
    """Real demo images (digits on clutter), normalised as the demo model expects."""
    from sklearn.datasets import load_digits

    from xai_cli.models.demo import DEMO_MEAN, DEMO_STD, render_sample

    digits, rng = load_digits(), np.random.default_rng(0)
    pixels = [render_sample(rng, digits.images[i], int(digits.target[i]))[0] for i in range(n)]
    x = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).float() / 255  # (N, 3, 96, 96)
    norm = Normalization(DEMO_MEAN, DEMO_STD)
    return IntegratedGradients(torch.nn.Identity(), None, norm).from_pixels(x), norm


@pytest.mark.parametrize("baseline", ["black", "blur"])
def test_completeness_within_1_percent_at_64_steps_on_demo(demo, baseline):
    x, norm = _demo_inputs(2)
    targets = demo(x).argmax(1)
    _, details = IntegratedGradients(demo, P(steps=64, baseline=baseline), norm).attribute(x, targets, [0, 1])
    errors = [d["completeness_error"] for d in details]
    assert max(errors) < 0.01, errors


def test_completeness_within_1_percent_at_64_steps_on_resnet18(resnet18):
    # The blur baseline; the black one on an untrained resnet18 is a path through thousands of
    # ReLU kinks, where 64 nodes leave errors of 0.1-5 % (and then the warning says so).
    x = images(2, 64, seed=5)
    ig = IntegratedGradients(resnet18, P(steps=64, baseline="blur"), IMAGENET)
    _, details = ig.attribute(x, torch.tensor([3, 7]), [0, 1])
    errors = [d["completeness_error"] for d in details]
    assert max(errors) < 0.01, errors


@pytest.mark.parametrize("baseline", ["black", "blur", "uniform"])
def test_agrees_with_captum(one_conv, baseline):
    from captum.attr import IntegratedGradients as CaptumIG

    x, t = images(3, 12, seed=2), torch.tensor([0, 1, 2])
    ig = IntegratedGradients(one_conv, P(steps=20, baseline=baseline), IMAGENET)
    ours, _ = ig.attribute(x, t, [4, 5, 6])
    base = ig.baselines(x, [4, 5, 6])
    theirs = CaptumIG(one_conv).attribute(x, base, target=t, n_steps=20, method="gausslegendre")
    assert ours.abs().max() > 0
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-7)


def test_trapezoid_is_the_textbook_rule_captum_scales_by_n_minus_1_over_n(one_conv):
    from captum.attr import IntegratedGradients as CaptumIG

    x, t, steps = images(2, 12, seed=3), torch.tensor([1, 2]), 10
    ours, _ = IntegratedGradients(one_conv, P(steps=steps, method="riemann_trapezoid")).attribute(x, t, [0, 0])
    theirs = CaptumIG(one_conv).attribute(x, torch.zeros_like(x), target=t, n_steps=steps, method="riemann_trapezoid")
    torch.testing.assert_close(ours * (steps - 1) / steps, theirs, rtol=1e-4, atol=1e-7)


def test_exact_on_a_linear_model():
    # f(x) = w . x + c has a constant gradient, so IG = (x - b) * w exactly, for any steps.
    torch.manual_seed(0)
    model = frozen(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 5 * 5, 4)))
    x, t = images(2, 5), torch.tensor([3, 1])
    ig = IntegratedGradients(model, P(steps=3, baseline="uniform"))
    attrs, details = ig.attribute(x, t, [1, 2])
    w = model[1].weight[t].view(2, 3, 5, 5)
    torch.testing.assert_close(attrs, (x - ig.baselines(x, [1, 2])) * w, rtol=1e-5, atol=1e-6)
    assert max(d["completeness_error"] for d in details) < 1e-4


def test_leaves_inputs_alone_with_an_in_place_first_layer():
    torch.manual_seed(0)
    model = frozen(torch.nn.Sequential(torch.nn.ReLU(inplace=True), torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2)))
    x = images(2, 4)
    kept = x.clone()
    IntegratedGradients(model, P(steps=4)).explain(x, torch.tensor([0, 1]), [0, 1])
    assert torch.equal(x, kept)


@pytest.mark.parametrize("baseline", ["black", "noise"])
def test_internal_batch_size_does_not_change_the_result(one_conv, baseline):
    x, t, seeds = images(3, 10, seed=4), torch.tensor([2, 0, 1]), [3, 4, 5]
    results = [IntegratedGradients(one_conv, P(steps=7, baseline=baseline, internal_batch_size=b)).explain(x, t, seeds)
               for b in (1, 5, 64)]
    for other in results[1:]:
        torch.testing.assert_close(other.maps, results[0].maps, rtol=1e-5, atol=1e-7)
        for a, b in zip(other.details, results[0].details):
            assert abs(a["f_x"] - b["f_x"]) < 1e-6 and abs(a["delta"] - b["delta"]) < 1e-5


def test_map_is_the_channel_sum_and_details_are_json(one_conv):
    x, t = images(2, 8), torch.tensor([0, 1])
    method = IntegratedGradients(one_conv, P(steps=8))
    out = method.explain(x, t, [0, 1])
    attrs, _ = method.attribute(x, t, [0, 1])
    assert IntegratedGradients.signed
    torch.testing.assert_close(out.maps, attrs.sum(1))
    assert set(json.loads(json.dumps(out.details))[0]) == {"completeness_error", "delta", "f_x", "f_baseline"}


def test_baselines():
    ig = lambda kind: IntegratedGradients(torch.nn.Identity(), P(baseline=kind), IMAGENET)  # noqa: E731
    x = ig("black").from_pixels(torch.rand(3, 3, 20, 20, generator=torch.Generator().manual_seed(0)))
    black = ig("black").to_pixels(ig("black").baselines(x, [0, 1, 2]))
    torch.testing.assert_close(black, torch.zeros_like(x), atol=1e-6, rtol=0)
    flat = ig("blur").from_pixels(torch.full((1, 3, 20, 20), 0.3))
    torch.testing.assert_close(ig("blur").baselines(flat, [0]), flat)  # a blur keeps a flat image flat
    assert ig("blur").baselines(x, [0, 1, 2]).std() < x.std() / 2
    for kind in ("noise", "uniform"):
        whole = ig(kind).baselines(x, [7, 8, 9])
        pixels = ig(kind).to_pixels(whole)
        assert pixels.min() >= -1e-6 and pixels.max() <= 1 + 1e-6
        torch.testing.assert_close(ig(kind).baselines(x[1:2], [8]), whole[1:2])  # depends on its own seed only
        assert not torch.equal(ig(kind).baselines(x[1:2], [9]), whole[1:2])


def test_warns_when_too_few_steps(demo, monkeypatch):
    printed: list[str] = []
    monkeypatch.setattr("xai_cli.console.warn", printed.append)
    x, norm = _demo_inputs(2)
    targets = demo(x).argmax(1)
    out = IntegratedGradients(demo, P(steps=2), norm).explain(x, targets, [0, 1])
    assert max(d["completeness_error"] for d in out.details) > 0.05
    assert len(out.warnings) == 1 and "ig.steps=4" in out.warnings[0]
    assert words(out.warnings[0], flags=True).endswith("--param ig.steps=4")  # the CLI words it as a flag
    assert printed == []  # returned as data: methods never print
    again = IntegratedGradients(demo, P(steps=64, baseline="blur"), norm).explain(x, targets, [0, 1])
    assert again.warnings == []


@pytest.mark.parametrize("bad", [{"steps": 0}, {"baseline": "grey"}, {"method": "simpson"}, {"internal_batch_size": 0},
                                 {"steps": 1, "method": "riemann_trapezoid"}])
def test_bad_params_are_usage_errors(bad):
    with pytest.raises(UsageError):
        build_params(IntegratedGradients, bad)
    with pytest.raises(UsageError):
        IntegratedGradients(torch.nn.Identity(), P(**bad))
