"""Grad-CAM against a hand computation and against Captum's LayerGradCam."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import images
from xai_cli.errors import UsageError
from xai_cli.methods.gradcam import GradCAM, GradCamParams
from xai_cli.models.layers import find_spatial_layer


def test_matches_hand_computation_on_one_conv(one_conv):
    # y = fc(mean_hw(A)), A = relu(conv(x)): dy_c/dA_k = W[c, k] / (h w) at every position,
    # so alpha_k = W[c, k] / (h w) and L = relu(sum_k alpha_k A_k). Same size (padding 1): no resampling.
    x = images(2, 6)
    targets = torch.tensor([2, 0])
    a = F.relu(one_conv.conv(x))  # (2, 2, 6, 6)
    w = one_conv.fc.weight[targets] / 36.0  # (2, 2)
    expected = F.relu((w[:, :, None, None] * a).sum(1))
    out = GradCAM(one_conv).explain(x, targets)
    assert out.layer == "relu"
    torch.testing.assert_close(out.maps, expected, rtol=1e-5, atol=1e-6)


def test_agrees_with_captum_layergradcam_on_resnet18(resnet18):
    from captum.attr import LayerAttribution, LayerGradCam

    x = images(3, 64, seed=3)
    targets = torch.tensor([1, 500, 999])
    ours = GradCAM(resnet18, GradCamParams(layer="layer4")).explain(x, targets).maps
    cam = LayerGradCam(resnet18, resnet18.layer4).attribute(x.clone().requires_grad_(), target=targets, relu_attributions=True)
    theirs = LayerAttribution.interpolate(cam, (64, 64), interpolate_mode="bilinear")[:, 0]
    assert ours.abs().max() > 0
    torch.testing.assert_close(ours, theirs.detach(), rtol=1e-4, atol=1e-6)


def test_auto_layer_for_resnet_is_layer4(resnet18):
    assert find_spatial_layer(resnet18, images(1, 64)) == "layer4"


def test_unknown_layer_suggests_near_names(resnet18):
    with pytest.raises(UsageError) as err:
        GradCAM(resnet18, GradCamParams(layer="layer5"))
    assert "layer4" in str(err.value)


def test_hooks_released_after_error(resnet18):
    method = GradCAM(resnet18, GradCamParams(layer="layer4"))
    with pytest.raises(RuntimeError):
        method.explain(images(1, 64), torch.tensor([5000]))
    assert not any(m._forward_hooks for m in resnet18.modules())
