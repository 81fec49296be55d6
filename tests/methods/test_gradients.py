"""The input-gradient methods' shared forward: one pass predicts and gives every target's gradient."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import images
from xai_cli.methods.guided_backprop import GuidedBackprop
from xai_cli.methods.saliency import Saliency


@pytest.mark.parametrize("cls", [Saliency, GuidedBackprop])
def test_explain_predicted_is_predict_then_explain_in_one_forward(cls, resnet18):
    method = cls(resnet18)
    x = images(3, 64, seed=4)
    calls = []
    handle = resnet18.register_forward_hook(lambda *_: calls.append(1))
    try:
        out = method.explain_predicted(x, lambda p: torch.sort(p, dim=1, descending=True, stable=True).indices[:, :2])
    finally:
        handle.remove()
    assert len(calls) == 1  # the prediction is the gradient pass's own forward
    probs = method.predict(x)
    torch.testing.assert_close(out.probs, probs)
    assert torch.equal(out.targets, torch.sort(probs, dim=1, descending=True, stable=True).indices[:, :2])
    for k, expl in enumerate(out.explanations):  # each rank's map is the one explain gives that target alone
        alone = method.explain(x, out.targets[:, k]).maps
        assert alone.abs().max() > 0
        torch.testing.assert_close(expl.maps, alone, rtol=1e-5, atol=1e-7)
    assert not any(m._forward_hooks for m in resnet18.modules())  # guided backprop's ReLU hooks are gone
