"""Grad-CAM on vision transformers: token grids, the default layer, agreement with pytorch-grad-cam."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from tests.conftest import frozen, images
from xai_cli.errors import MethodError
from xai_cli.methods.gradcam import GradCAM
from xai_cli.models.layers import find_spatial_layer, token_grid, tokens_to_grid

LAST_LN1 = "encoder.layers.encoder_layer_1.ln_1"  # tiny_vit's last block, before its attention


@pytest.fixture(scope="module")
def vit(tiny_vit) -> nn.Module:
    """tiny_vit with a seeded random head: torchvision zero-initialises ViT heads, so tiny_vit's
    logits are all 0 and every gradient, hence every Grad-CAM map, is 0 too."""
    model = copy.deepcopy(tiny_vit)
    torch.manual_seed(1)
    nn.init.normal_(model.heads.head.weight, std=0.5)
    nn.init.normal_(model.heads.head.bias, std=0.1)
    return model


def minmax(maps: torch.Tensor) -> np.ndarray:
    """pytorch-grad-cam's ``scale_cam_image``, per item."""
    m = maps.numpy()
    m = m - m.min(axis=(1, 2), keepdims=True)
    return m / (1e-7 + m.max(axis=(1, 2), keepdims=True))


@pytest.mark.parametrize(("tokens", "size", "patch", "want"), [
    (197, (224, 224), None, (1, 14, 14)),  # class token
    (198, (224, 224), None, (2, 14, 14)),  # + DeiT distillation token
    (201, (224, 224), (16, 16), (5, 14, 14)),  # + 4 registers
    (17, (32, 32), (8, 8), (1, 4, 4)),
    (1 + 14 * 20, (224, 320), (16, 16), (1, 14, 20)),  # non-square, from the patch size
    (16, (32, 32), None, (0, 4, 4)),  # no prefix at all
])
def test_token_grid(tokens, size, patch, want):
    assert token_grid(tokens, size, patch) == want


def test_token_grid_refuses_what_fits_no_grid():
    with pytest.raises(MethodError):
        token_grid(1 + 14 * 20, (224, 320))  # non-square and no patch size


def test_tokens_to_grid_is_row_major():
    tokens = torch.arange(1 + 6, dtype=torch.float32).view(1, 7, 1).expand(1, 7, 2)  # (N, T, C), token i = i
    grid = tokens_to_grid(tokens, 1, 2, 3)  # (1, 2, 2, 3)
    assert grid[0, 1].tolist() == [[1, 2, 3], [4, 5, 6]]


def test_default_layer_is_last_blocks_pre_attention_norm(vit):
    assert find_spatial_layer(vit, images(1, 32)) == LAST_LN1
    assert GradCAM(vit).explain(images(1, 32), torch.tensor([0])).layer == LAST_LN1


def test_torchvision_vit_b_16_default_layer():
    import torchvision

    model = frozen(torchvision.models.vit_b_16(weights=None))
    assert find_spatial_layer(model, torch.zeros(1, 3, 224, 224)) == "encoder.layers.encoder_layer_11.ln_1"


def test_maps_are_finite_nonzero_and_of_input_size(vit):
    out = GradCAM(vit).explain(images(3, 32, seed=2), torch.tensor([0, 1, 4]))
    assert out.maps.shape == (3, 32, 32)
    assert torch.isfinite(out.maps).all()
    assert (out.maps.flatten(1).amax(1) > 0).all(), "every item needs a non-zero map"


def test_batch_invariance(vit):
    x, t = images(4, 32, seed=3), torch.tensor([2, 0, 1, 4])
    method = GradCAM(vit)
    whole = method.explain(x, t).maps
    parts = torch.cat([method.explain(x[i:i + 1], t[i:i + 1]).maps for i in range(4)])
    torch.testing.assert_close(whole, parts, rtol=1e-4, atol=1e-6)


def test_agrees_with_pytorch_grad_cam(vit):
    from pytorch_grad_cam import GradCAM as Reference
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    def reshape_transform(tensor, height=4, width=4):  # the one in pytorch-grad-cam's ViT docs
        result = tensor[:, 1:, :].reshape(tensor.size(0), height, width, tensor.size(2))
        return result.transpose(2, 3).transpose(1, 2)

    x, t = images(3, 32, seed=4), [0, 3, 1]
    ours = GradCAM(vit).explain(x, torch.tensor(t)).maps  # (N, H, W)
    layer = vit.get_submodule(LAST_LN1)
    with Reference(model=vit, target_layers=[layer], reshape_transform=reshape_transform) as cam:
        # The fixture's weights are frozen: an input that needs grad gives the reference its gradients.
        theirs = cam(input_tensor=x.clone().requires_grad_(True), targets=[ClassifierOutputTarget(c) for c in t])
    assert (ours.flatten(1).amax(1) > 0).all()
    np.testing.assert_allclose(minmax(ours), theirs, atol=2e-4)


def test_layers_after_the_last_attention_give_zero_maps(vit):
    # Why the default avoids them: the head reads only the class token, so patch tokens get no gradient.
    out = GradCAM(vit, GradCAM.Params(layer="encoder.ln")).explain(images(2, 32), torch.tensor([0, 1]))
    assert out.maps.abs().sum() == 0


def test_hugging_face_vit_and_deit():
    from transformers import DeiTConfig, ViTConfig, ViTForImageClassification
    from transformers import DeiTForImageClassificationWithTeacher as DeiT

    kw = dict(image_size=32, patch_size=8, num_hidden_layers=2, num_attention_heads=2, hidden_size=16,
              intermediate_size=32, num_labels=5)
    for cls, config, layer in [(ViTForImageClassification, ViTConfig(**kw), "vit.layers.1.layernorm_before"),
                               (DeiT, DeiTConfig(**kw), "deit.layers.1.layernorm_before")]:
        torch.manual_seed(0)
        model = frozen(cls(config))
        out = GradCAM(model).explain(images(2, 32, seed=5), torch.tensor([0, 1]))
        assert out.maps.shape == (2, 32, 32) and torch.isfinite(out.maps).all() and out.maps.abs().sum() > 0
        assert out.layer == layer


def test_cnn_default_layer_unchanged(one_conv, resnet18):
    assert find_spatial_layer(one_conv, images(1, 16)) == "relu"
    assert find_spatial_layer(resnet18, images(1, 64)) == "layer4"


def test_hooks_released(vit):
    def count(model: nn.Module) -> int:
        return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())

    before = count(vit)
    GradCAM(vit).explain(images(2, 32), torch.tensor([0, 1]))
    with pytest.raises(Exception):
        GradCAM(vit).explain(images(2, 32), torch.tensor([0, 99]))
    assert count(vit) == before
