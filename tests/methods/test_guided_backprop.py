"""Guided backprop: the guided rule by hand, Captum's GuidedBackprop, in-place ReLUs, hook cleanup."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.conftest import frozen, images
from xai_cli.methods._gradients import target_gradients
from xai_cli.methods.guided_backprop import GuidedBackprop


def _relu_then_linear(inplace: bool) -> nn.Module:
    torch.manual_seed(0)
    return frozen(nn.Sequential(nn.ReLU(inplace=inplace), nn.Flatten(), nn.Linear(3 * 4 * 4, 2)))


@pytest.mark.parametrize("inplace", [False, True])
def test_guided_rule_by_hand(inplace):
    # f = w . relu(x): the gradient is (x > 0) * w; guided, only positive gradients pass: (x > 0) * relu(w).
    model = _relu_then_linear(inplace)
    x, t = images(2, 4), torch.tensor([1, 0])
    maps = GuidedBackprop(model).explain(x, t).maps
    w = model[2].weight[t].view(2, 3, 4, 4)
    torch.testing.assert_close(maps, ((x > 0) * w.clamp(min=0)).sum(1))


def test_agrees_with_captum_on_one_conv_and_resnet18(one_conv, resnet18):
    from captum.attr import GuidedBackprop as CaptumGuidedBackprop

    assert any(isinstance(m, nn.ReLU) and m.inplace for m in resnet18.modules())  # the hard case
    for model, size in ((one_conv, 10), (resnet18, 64)):
        x, t = images(3, size, seed=8), torch.tensor([2, 0, 1])
        ours = GuidedBackprop(model).explain(x, t).maps
        with pytest.warns(UserWarning):  # Captum announces its ReLU hooks
            per_channel = CaptumGuidedBackprop(model).attribute(x.clone().requires_grad_(), target=t)
        assert ours.abs().max() > 0
        torch.testing.assert_close(ours, per_channel.sum(1), rtol=1e-5, atol=1e-8)


def test_model_is_plain_again_afterwards_also_after_an_error(resnet18):
    x, t = images(2, 32, seed=9), torch.tensor([5, 6])
    plain_before, _ = target_gradients(resnet18, x, t)
    method = GuidedBackprop(resnet18)
    guided = method.explain(x, t).maps
    assert not torch.allclose(guided, plain_before.sum(1))  # guiding changed something
    with pytest.raises(RuntimeError):
        method.explain(x, torch.tensor([5, 5000]))
    plain_after, _ = target_gradients(resnet18, x, t)
    torch.testing.assert_close(plain_after, plain_before, rtol=0, atol=0)


def test_functional_relu_cannot_be_guided_and_says_so(monkeypatch):
    class FunctionalRelu(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3 * 4 * 4, 2)

        def forward(self, x):
            return self.fc(torch.relu(x).flatten(1))

    printed: list[str] = []
    monkeypatch.setattr("xai_cli.console.warn", printed.append)
    torch.manual_seed(0)
    model = frozen(FunctionalRelu())
    x, t = images(2, 4), torch.tensor([0, 1])
    method = GuidedBackprop(model)
    maps = method.explain(x, t).maps
    assert len(method.warnings) == 1 and "nn.ReLU" in method.warnings[0]
    assert printed == []  # returned as data: methods never print
    plain, _ = target_gradients(model, x, t)
    torch.testing.assert_close(maps, plain.sum(1))


def test_signed():
    assert GuidedBackprop.signed
