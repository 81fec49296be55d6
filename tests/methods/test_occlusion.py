"""Occlusion against Captum's Occlusion (same windows, strides and baseline)."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import images
from xai_cli.errors import UsageError
from xai_cli.methods.base import Normalization
from xai_cli.methods.occlusion import Occlusion, OcclusionParams


@pytest.mark.parametrize(("size", "window", "stride"), [(16, 4, 4), (13, 4, 3), (12, 5, 2), (9, 20, 4)])
def test_agrees_with_captum(one_conv, size, window, stride):
    from captum.attr import Occlusion as Reference

    x, t = images(3, size, seed=size), torch.tensor([0, 2, 1])
    ours = Occlusion(one_conv, OcclusionParams(window=window, stride=stride, perturbations_per_eval=5)).explain(x, t).maps
    win = min(window, size)
    theirs = Reference(one_conv).attribute(x, sliding_window_shapes=(3, win, win), strides=(3, stride, stride),
                                           baselines=0, target=t)
    torch.testing.assert_close(theirs[:, 0], theirs[:, 2])  # the window covers every channel
    torch.testing.assert_close(ours, theirs[:, 0].float(), rtol=1e-4, atol=1e-6)
    assert ours.abs().sum() > 0


def test_black_baseline_and_probability_match_captum(one_conv):
    from captum.attr import Occlusion as Reference

    norm = Normalization((0.4, 0.5, 0.6), (0.2, 0.3, 0.25))
    x, t = images(2, 10, seed=1), torch.tensor([1, 0])
    ours = Occlusion(one_conv, OcclusionParams(window=3, stride=2, baseline="black", output="probability"),
                     norm).explain(x, t).maps
    mean, std = norm.tensors(x)
    theirs = Reference(lambda z: one_conv(z).softmax(1)).attribute(
        x, sliding_window_shapes=(3, 3, 3), strides=(3, 2, 2), baselines=(-mean / std).expand_as(x), target=t)
    torch.testing.assert_close(ours, theirs[:, 0].float(), rtol=1e-4, atol=1e-7)


def test_results_do_not_depend_on_perturbations_per_eval(one_conv):
    x, t = images(3, 12, seed=2), torch.tensor([0, 2, 1])
    a = Occlusion(one_conv, OcclusionParams(window=4, stride=2, perturbations_per_eval=1)).explain(x, t).maps
    b = Occlusion(one_conv, OcclusionParams(window=4, stride=2, perturbations_per_eval=999)).explain(x, t).maps
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_stride_larger_than_window_is_refused():
    with pytest.raises(UsageError):
        OcclusionParams(window=4, stride=5).validate()
