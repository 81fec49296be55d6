"""Saliency: a hand computation, and Captum's per-channel gradients reduced the paper's way."""

from __future__ import annotations

import torch

from tests.conftest import frozen, images
from xai_cli.methods.saliency import Saliency


def test_linear_model_by_hand():
    # f(x) = w . x + c: the gradient is the weight row, so M_ij = max_c |w_c,i,j|.
    torch.manual_seed(0)
    model = frozen(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 5)))
    t = torch.tensor([4, 0])
    maps = Saliency(model).explain(images(2, 4), t).maps
    expected = model[1].weight[t].view(2, 3, 4, 4).abs().amax(1)
    torch.testing.assert_close(maps, expected)


def test_agrees_with_captum_saliency(one_conv, resnet18):
    from captum.attr import Saliency as CaptumSaliency

    # Captum returns |grad| per channel (abs=True); the paper, and we, take the max over channels.
    for model, size in ((one_conv, 10), (resnet18, 64)):
        x, t = images(3, size, seed=6), torch.tensor([0, 2, 1])
        ours = Saliency(model).explain(x, t).maps
        per_channel = CaptumSaliency(model).attribute(x.clone().requires_grad_(), target=t, abs=True)
        assert ours.abs().max() > 0
        torch.testing.assert_close(ours, per_channel.amax(1), rtol=1e-5, atol=1e-8)


def test_unsigned():
    assert not Saliency.signed
