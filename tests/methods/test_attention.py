"""Attention rollout / raw attention: values by hand, capture without side effects, HF models."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.conftest import frozen, images
from xai_cli.errors import MethodError, UsageError
from xai_cli.methods._vit import capture_attention
from xai_cli.methods.attention import AttentionRollout, rollout
from xai_cli.methods.registry import build_params


@pytest.fixture(scope="module")
def vit(tiny_vit) -> nn.Module:
    """tiny_vit with a seeded random head (torchvision zero-initialises it: tiny_vit's logits are all 0)."""
    model = copy.deepcopy(tiny_vit)
    torch.manual_seed(1)
    nn.init.normal_(model.heads.head.weight, std=0.5)
    nn.init.normal_(model.heads.head.bias, std=0.1)
    return model


def numpy_rollout(layers: list[np.ndarray], fusion: str = "mean", discard_ratio: float = 0.0) -> np.ndarray:
    """Rollout of ONE item, by plain loops: layers are (heads, T, T) arrays, first layer first."""
    t = layers[0].shape[-1]
    result = np.eye(t)
    for attn in layers:
        fused = np.zeros((t, t))
        for i in range(t):
            for j in range(t):
                fused[i, j] = attn[:, i, j].mean() if fusion == "mean" else attn[:, i, j].max()
        if discard_ratio > 0:
            k = int(t * t * discard_ratio)
            order = np.argsort(fused.ravel(), kind="stable")[:k]
            flat = fused.ravel().copy()
            flat[[o for o in order if o != 0]] = 0.0  # never the class token's self-attention
            fused = flat.reshape(t, t)
        step = 0.5 * fused + 0.5 * np.eye(t)
        for i in range(t):
            step[i] = step[i] / step[i].sum()
        new = np.zeros((t, t))
        for i in range(t):
            for j in range(t):
                new[i, j] = sum(step[i, k] * result[k, j] for k in range(t))
        result = new
    return result


def random_attention(n: int, heads: int, t: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(n, heads, t, t, generator=g, dtype=torch.float64), dim=-1)


def hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_rollout_worked_by_hand():
    # Every token attends only to token 1: A' = [[.5, .5], [0, 1]], and A'A' = [[.25, .75], [0, 1]].
    attn = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])  # (N=1, heads=1, T=2, T=2)
    flow = rollout([attn, attn])
    torch.testing.assert_close(flow[0], torch.tensor([[0.25, 0.75], [0.0, 1.0]]))


@pytest.mark.parametrize("fusion", ["mean", "max"])
@pytest.mark.parametrize("discard_ratio", [0.0, 0.5])
def test_rollout_equals_numpy_loops_on_two_layers(fusion, discard_ratio):
    layers = [random_attention(2, 3, 5, seed) for seed in (1, 2)]  # 2 layers of (N=2, heads=3, T=5, T=5)
    flow = rollout(layers, fusion, discard_ratio)
    for item in range(2):
        want = numpy_rollout([a[item].numpy() for a in layers], fusion, discard_ratio)
        np.testing.assert_allclose(flow[item].double().numpy(), want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(flow.sum(-1), torch.ones(2, 5))


@pytest.mark.parametrize("mode", ["rollout", "raw"])
@pytest.mark.parametrize("fusion", ["mean", "max"])
def test_method_on_tiny_vit_equals_numpy_from_captured_weights(tiny_vit, mode, fusion):
    x = images(2, 32, seed=3)
    with torch.no_grad(), capture_attention(tiny_vit) as layers:
        tiny_vit(x)
    assert [tuple(a.shape) for a in layers] == [(2, 2, 17, 17)] * 2
    out = AttentionRollout(tiny_vit, build_params(AttentionRollout, {"mode": mode, "head_fusion": fusion})).explain(
        x, torch.tensor([0, 1]))
    for item in range(2):
        per_layer = [a[item].double().numpy() for a in layers]
        if mode == "rollout":
            flow = numpy_rollout(per_layer, fusion)
        else:  # raw = the fused last layer, without the residual
            flow = per_layer[-1].mean(0) if fusion == "mean" else per_layer[-1].max(0)
        grid = torch.tensor(flow[0, 1:], dtype=torch.float32).view(1, 1, 4, 4)  # CLS -> 16 patches
        want = F.interpolate(grid, size=(32, 32), mode="bilinear", align_corners=False)[0, 0]
        torch.testing.assert_close(out.maps[item], want, rtol=1e-5, atol=1e-6)
    assert out.details[0]["class_specific"] is False and out.details[0]["grid"] == [4, 4]


def test_captured_weights_equal_what_mha_returns(tiny_vit):
    x = images(2, 32, seed=4)
    mhas = [m for m in tiny_vit.modules() if isinstance(m, nn.MultiheadAttention)]
    seen = []
    handles = [m.register_forward_hook(lambda _m, args, _out: seen.append(args[0])) for m in mhas]
    try:
        with torch.no_grad(), capture_attention(tiny_vit) as layers:
            tiny_vit(x)
    finally:
        for h in handles:
            h.remove()
    with torch.no_grad():
        for mha, q, got in zip(mhas, seen, layers, strict=True):
            _, want = mha(q, q, q, need_weights=True, average_attn_weights=False)  # (N, heads, T, T)
            torch.testing.assert_close(got, want)


def test_logits_unchanged_by_capture(vit):
    x = images(3, 32, seed=5)
    with torch.no_grad():
        plain = vit(x)
        with capture_attention(vit):
            captured = vit(x)
    assert plain.abs().sum() > 0
    torch.testing.assert_close(captured, plain, rtol=1e-5, atol=1e-6)


def test_no_hook_or_patch_left_after_success_and_error(tiny_vit):
    before = hook_count(tiny_vit)
    with torch.no_grad(), capture_attention(tiny_vit):
        assert hook_count(tiny_vit) > before
        tiny_vit(images(1, 32))
    assert hook_count(tiny_vit) == before
    with pytest.raises(RuntimeError, match="boom"), capture_attention(tiny_vit):
        raise RuntimeError("boom")
    assert hook_count(tiny_vit) == before
    with pytest.raises(ValueError):
        AttentionRollout(tiny_vit).explain(images(2, 32), torch.tensor([0, 99]))  # no class 99
    assert hook_count(tiny_vit) == before
    assert not any("forward" in vars(m) for m in tiny_vit.modules()), "no module's forward may be patched"


def test_not_class_specific(tiny_vit):
    x = images(2, 32, seed=6)
    method = AttentionRollout(tiny_vit)
    first, other = method.explain(x, torch.tensor([0, 0])), method.explain(x, torch.tensor([3, 4]))
    torch.testing.assert_close(first.maps, other.maps)


def test_a_cnn_is_refused_with_advice(one_conv):
    with pytest.raises(MethodError) as err:
        AttentionRollout(one_conv)
    assert "gradcam" in err.value.hint and "attention" not in err.value.hint.split(":")[-1]


def test_params_are_checked():
    with pytest.raises(UsageError):
        build_params(AttentionRollout, {"mode": "flow"})
    with pytest.raises(UsageError):
        build_params(AttentionRollout, {"discard_ratio": "1.5"})
    assert build_params(AttentionRollout, {"discard_ratio": "0.9"}).discard_ratio == 0.9


# -- Hugging Face ------------------------------------------------------------------------

def hf_vit(attn: str = "eager", seed: int = 0) -> nn.Module:
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(seed)
    config = ViTConfig(image_size=32, patch_size=8, num_hidden_layers=2, num_attention_heads=2, hidden_size=16,
                       intermediate_size=32, num_labels=5, attn_implementation=attn)
    return frozen(ViTForImageClassification(config))


class Logits(nn.Module):
    """How a pipeline may wrap an HF model: a module that returns the logits tensor."""

    def __init__(self, hf: nn.Module) -> None:
        super().__init__()
        self.hf = hf

    def forward(self, x):
        return self.hf(x).logits


def test_hf_rollout_equals_rollout_of_output_attentions():
    model, x = hf_vit(), images(2, 32, seed=7)
    with torch.no_grad():
        official = model(x, output_attentions=True).attentions  # layers of (N, heads, T, T)
    out = AttentionRollout(model).explain(x, torch.tensor([0, 1]))
    for item in range(2):
        flow = numpy_rollout([a[item].double().numpy() for a in official])
        grid = torch.tensor(flow[0, 1:], dtype=torch.float32).view(1, 1, 4, 4)
        want = F.interpolate(grid, size=(32, 32), mode="bilinear", align_corners=False)[0, 0]
        torch.testing.assert_close(out.maps[item], want, rtol=1e-5, atol=1e-6)
    wrapped = AttentionRollout(Logits(model)).explain(x, torch.tensor([0, 1]))
    torch.testing.assert_close(wrapped.maps, out.maps)


def test_hf_capture_leaves_logits_hooks_and_sdpa_alone():
    eager, sdpa, x = hf_vit("eager"), hf_vit("sdpa"), images(2, 32, seed=8)
    with torch.no_grad():
        eager(x, output_attentions=True)  # transformers installs its own recorder hooks once and keeps them
        sdpa(x, output_attentions=True)
        plain = sdpa(x).logits
        before = hook_count(sdpa)
        with capture_attention(sdpa) as layers:
            captured = sdpa(x).logits
    assert len(layers) == 2 and sdpa.config._attn_implementation == "sdpa"
    assert hook_count(sdpa) == before
    torch.testing.assert_close(captured, plain, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(AttentionRollout(sdpa).explain(x, torch.tensor([0, 1])).maps,
                               AttentionRollout(eager).explain(x, torch.tensor([0, 1])).maps)
    with pytest.raises(RuntimeError), capture_attention(sdpa):
        raise RuntimeError("boom")
    assert hook_count(sdpa) == before and sdpa.config._attn_implementation == "sdpa"


def test_deit_distillation_token_is_skipped():
    from transformers import DeiTConfig, DeiTForImageClassificationWithTeacher

    torch.manual_seed(0)
    config = DeiTConfig(image_size=32, patch_size=8, num_hidden_layers=2, num_attention_heads=2, hidden_size=16,
                        intermediate_size=32, num_labels=5, attn_implementation="eager")
    model, x = frozen(DeiTForImageClassificationWithTeacher(config)), images(2, 32, seed=9)
    with torch.no_grad():
        official = model(x, output_attentions=True).attentions  # T = CLS + distillation + 16 patches
    out = AttentionRollout(model).explain(x, torch.tensor([0, 1]))
    assert out.details[0]["prefix_tokens"] == 2 and out.details[0]["grid"] == [4, 4]
    flow = numpy_rollout([a[0].double().numpy() for a in official])
    grid = torch.tensor(flow[0, 2:], dtype=torch.float32).view(1, 1, 4, 4)
    want = F.interpolate(grid, size=(32, 32), mode="bilinear", align_corners=False)[0, 0]
    torch.testing.assert_close(out.maps[0], want, rtol=1e-5, atol=1e-6)
