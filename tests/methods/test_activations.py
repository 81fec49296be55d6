"""Layer activations: the strongest channels, tiled as the docstring says; labelled not an attribution."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tests.conftest import images
from xai_cli.methods.activations import LayerActivationParams, LayerActivations


def test_montage_by_hand_on_one_conv(one_conv):
    x = images(2, 8, seed=3)
    out = LayerActivations(one_conv, LayerActivationParams(channels=2)).explain(x, torch.tensor([0, 1]))
    a = F.relu(one_conv.conv(x))  # (2, 2, 8, 8): the relu layer, both channels
    order = a.mean((2, 3)).argsort(1, descending=True)
    for i in range(2):
        d = out.details[i]
        assert d["not_an_attribution"] and not d["class_specific"] and d["layer"] == "relu"
        assert d["channels"] == order[i].tolist() and d["montage_grid"] == [2, 2]
        for j, ch in enumerate(d["channels"]):  # tile j = channel scaled by its max, 4x4 (8 // 2)
            want = F.interpolate(a[i:i + 1, ch:ch + 1] / a[i, ch].abs().max(), size=(4, 4), mode="bilinear")[0, 0]
            torch.testing.assert_close(out.maps[i, :4, 4 * j:4 * j + 4], want, rtol=1e-5, atol=1e-6)
        assert out.maps[i, 4:].abs().sum() == 0  # 2 channels fill the first row of the 2x2 grid


def test_maps_do_not_depend_on_the_target(one_conv):
    x = images(2, 16)
    method = LayerActivations(one_conv, LayerActivationParams(mode="sum"))
    torch.testing.assert_close(method.explain(x, torch.tensor([0, 0])).maps, method.explain(x, torch.tensor([2, 1])).maps)


def test_vit_token_grid(tiny_vit):
    out = LayerActivations(tiny_vit, LayerActivationParams(channels=4)).explain(images(2, 32), torch.tensor([0, 1]))
    assert out.layer == "encoder.layers.encoder_layer_1.ln_1" and out.maps.shape == (2, 32, 32)
    assert torch.isfinite(out.maps).all() and len(out.details[0]["channels"]) == 4
