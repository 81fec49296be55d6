"""SmoothGrad, SmoothGrad² and VarGrad against Captum's NoiseTunnel with the same noise draws."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.conftest import frozen, images
from xai_cli.errors import UsageError
from xai_cli.methods._gradients import item_generator
from xai_cli.methods.base import Normalization
from xai_cli.methods.registry import get_method
from xai_cli.methods.wrappers import NoiseTunnelParams

GRAY = Normalization((0.0,), (1.0,))


@pytest.fixture
def gray_net() -> nn.Module:
    """One input channel: a map reduced over channels is then the per-channel attribution Captum aggregates."""
    torch.manual_seed(3)
    return frozen(nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                                nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3)))


def our_noise(x: torch.Tensor, seeds: list[int], n: int, level: float) -> torch.Tensor:
    """The wrapper's draws, in Captum's row order (item-major, ``repeat_interleave``)."""
    rows = []
    for i, seed in enumerate(seeds):
        g, std = item_generator(seed), level * float(x[i].max() - x[i].min())
        rows += [torch.randn(x.shape[1:], generator=g) * std for _ in range(n)]
    return torch.stack(rows)


@pytest.mark.parametrize("kind", ["smoothgrad", "smoothgrad_sq", "vargrad"])
@pytest.mark.parametrize("base", ["saliency", "ig"])
def test_agrees_with_captum_noise_tunnel(gray_net, monkeypatch, kind, base):
    from captum.attr import IntegratedGradients, NoiseTunnel, Saliency

    x, t, seeds, n = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 2, 1]), [4, 5, 6], 6
    params = NoiseTunnelParams(base=base, base_params="steps=20" if base == "ig" else "", n_samples=n, samples_per_eval=4)
    ours = get_method(kind)(gray_net, params, GRAY).explain(x, t, seeds).maps

    noise = our_noise(x, seeds, n, params.noise_level)
    monkeypatch.setattr(NoiseTunnel, "_add_noise_to_input",
                        staticmethod(lambda inp, stdev, k: inp.repeat_interleave(k, dim=0) + noise))
    reference = Saliency(gray_net) if base == "saliency" else IntegratedGradients(gray_net)
    extra = {"n_steps": 20} if base == "ig" else {}
    theirs = NoiseTunnel(reference).attribute(x.clone().requires_grad_(), nt_type=kind, nt_samples=n, target=t, **extra)
    torch.testing.assert_close(ours, theirs[:, 0].detach().float(), rtol=1e-4, atol=1e-6)


def test_results_do_not_depend_on_samples_per_eval(one_conv):
    x, t = images(3, 12, seed=2), torch.tensor([0, 2, 1])
    maps = [get_method("vargrad")(one_conv, NoiseTunnelParams(n_samples=5, samples_per_eval=b)).explain(x, t, [1, 2, 3]).maps
            for b in (1, 7, 100)]
    torch.testing.assert_close(maps[0], maps[1], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(maps[0], maps[2], rtol=1e-5, atol=1e-7)


def test_wraps_gradcam_and_keeps_its_layer(one_conv):
    out = get_method("smoothgrad")(one_conv, NoiseTunnelParams(base="gradcam", n_samples=3)).explain(
        images(2, 16), torch.tensor([0, 1]), [0, 1])
    assert out.layer == "relu" and out.maps.shape == (2, 16, 16) and out.details[0]["base"] == "gradcam"


def test_bad_bases_are_usage_errors(one_conv):
    for params in (NoiseTunnelParams(base="vargrad"), NoiseTunnelParams(base="saliancy"),
                   NoiseTunnelParams(base="ig", base_params="stepz=3"), NoiseTunnelParams(base="ig", base_params="steps")):
        with pytest.raises(UsageError):
            get_method("smoothgrad")(one_conv, params)
