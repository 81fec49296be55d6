"""Grad-CAM++ and Score-CAM against pytorch-grad-cam (seeded resnet18 and a tiny ViT), and the
layer choice they share with Grad-CAM."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from tests.conftest import images
from xai_cli.methods.gradcam import GradCAM
from xai_cli.methods.gradcampp import GradCAMPlusPlus
from xai_cli.methods.scorecam import ScoreCAM, ScoreCamParams

LAST_LN1 = "encoder.layers.encoder_layer_1.ln_1"


def minmax(maps: torch.Tensor) -> np.ndarray:
    """pytorch-grad-cam's ``scale_cam_image``, per item."""
    m = maps.numpy().astype(np.float64)
    m = m - m.min(axis=(1, 2), keepdims=True)
    return m / (1e-7 + m.max(axis=(1, 2), keepdims=True))


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def reference(cls_name: str, model, layer, x, targets, reshape_transform=None) -> np.ndarray:
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cls = getattr(pytorch_grad_cam, cls_name)
    with cls(model=model, target_layers=[layer], reshape_transform=reshape_transform) as cam:
        if cls_name == "ScoreCAM":
            cam.batch_size = 128
        # The fixture's weights are frozen: an input that needs grad gives the reference its gradients.
        return cam(input_tensor=x.clone().requires_grad_(True), targets=[ClassifierOutputTarget(int(c)) for c in targets])


# Score-CAM runs one forward per channel: layer3's 256 (4x4 grid) keep the test at seconds.
@pytest.mark.parametrize(("ours", "theirs", "layer"), [(GradCAMPlusPlus, "GradCAMPlusPlus", "layer4"),
                                                        (GradCAMPlusPlus, "GradCAMPlusPlus", "layer3"),
                                                        (ScoreCAM, "ScoreCAM", "layer3")])
def test_agrees_with_pytorch_grad_cam_on_resnet18(resnet18, ours, theirs, layer):
    n = 1 if ours is ScoreCAM else 2
    x, t = images(n, 64, seed=3), torch.tensor([1, 500])[:n]
    mine = ours(resnet18, ours.Params(layer=layer)).explain(x, t).maps
    ref = reference(theirs, resnet18, resnet18.get_submodule(layer), x, t)
    assert (mine.flatten(1).amax(1) > 0).all()
    for i in range(n):
        assert pearson(minmax(mine)[i], ref[i]) >= 0.99
    np.testing.assert_allclose(minmax(mine), ref, atol=1e-3)


@pytest.fixture(scope="module")
def vit(tiny_vit) -> nn.Module:
    model = copy.deepcopy(tiny_vit)
    torch.manual_seed(1)
    nn.init.normal_(model.heads.head.weight, std=0.5)
    return model


@pytest.mark.parametrize(("ours", "theirs"), [(GradCAMPlusPlus, "GradCAMPlusPlus"), (ScoreCAM, "ScoreCAM")])
def test_agrees_with_pytorch_grad_cam_on_a_vit_token_grid(vit, ours, theirs):
    def reshape_transform(tensor, height=4, width=4):  # the one in pytorch-grad-cam's ViT docs
        result = tensor[:, 1:, :].reshape(tensor.size(0), height, width, tensor.size(2))
        return result.transpose(2, 3).transpose(1, 2)

    x, t = images(3, 32, seed=4), torch.tensor([0, 3, 1])
    out = ours(vit).explain(x, t)
    assert out.layer == LAST_LN1  # Grad-CAM's default layer
    ref = reference(theirs, vit, vit.get_submodule(LAST_LN1), x, t, reshape_transform)
    np.testing.assert_allclose(minmax(out.maps), ref, atol=1e-3)


def test_same_layer_choice_as_gradcam(one_conv, vit):
    for model, x in ((one_conv, images(1, 16)), (vit, images(1, 32))):
        want = GradCAM(model).explain(x, torch.tensor([1])).layer
        assert all(cls(model).explain(x, torch.tensor([1])).layer == want for cls in (GradCAMPlusPlus, ScoreCAM))


def test_scorecam_results_do_not_depend_on_perturbations_per_eval(one_conv):
    x, t = images(3, 12, seed=2), torch.tensor([0, 2, 1])
    a = ScoreCAM(one_conv, ScoreCamParams(perturbations_per_eval=1)).explain(x, t).maps
    b = ScoreCAM(one_conv, ScoreCamParams(perturbations_per_eval=1000)).explain(x, t).maps
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_gradcampp_hand_computation_on_one_conv(one_conv):
    # dy/dA_k = W[c, k] / (h w) everywhere (global average pool then linear): g is constant per channel.
    x, t = images(2, 6), torch.tensor([2, 0])
    a = torch.relu(one_conv.conv(x)).double()  # (2, 2, 6, 6)
    g = (one_conv.fc.weight[t] / 36.0).double()[:, :, None, None].expand_as(a)
    alpha = g ** 2 / (2 * g ** 2 + a.sum((2, 3), keepdim=True) * g ** 3 + 1e-6)
    w = (alpha * g.clamp(min=0)).sum((2, 3), keepdim=True)
    expected = torch.relu((w * a).sum(1)).float()
    torch.testing.assert_close(GradCAMPlusPlus(one_conv).explain(x, t).maps, expected, rtol=1e-5, atol=1e-6)
