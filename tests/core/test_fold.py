"""The forward-only copy (core/fold.py): BatchNorms folded into their convolutions compute the
model's function, only where that is safe, made once per model and remade when its weights
change; LIME's and KernelSHAP's scores through it are the model's."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from xai_cli.core import fold
from xai_cli.core.fold import forward_copy
from xai_cli.core.precision import active_arithmetic, autocast_model
from xai_cli.methods import _perturb


def _trained_like(model: nn.Module) -> nn.Module:
    """Random BatchNorm statistics and affine terms, so a wrong fold cannot hide behind 0/1."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.2)
    return model.eval()


@pytest.mark.parametrize("name,left", [("resnet18", 0), ("vgg11_bn", 0), ("densenet121", 62)])
def test_the_folded_copy_computes_the_models_function(name, left):
    """densenet's BatchNorms after a concatenation have no convolution to go into: they stay."""
    torch.manual_seed(0)
    model = _trained_like(getattr(torchvision.models, name)(weights=None))
    copy = forward_copy(model, "fp32")
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        want, got = model(x), copy(x)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in copy.modules()) == left
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) > left  # the model itself is untouched


class _Shared(nn.Module):
    """A convolution whose output feeds its BatchNorm and a skip connection: not foldable."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.conv2, self.bn2 = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        y = self.conv(x)
        z = self.bn(y) + y
        return self.head(self.bn2(self.conv2(z)).mean((2, 3)))


def test_only_a_norm_reading_a_convolution_alone_is_folded():
    model = _trained_like(_Shared())
    copy = forward_copy(model, "fp32")
    assert isinstance(copy.bn, nn.BatchNorm2d) and isinstance(copy.bn2, nn.Identity)
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(copy(x), model(x), rtol=1e-5, atol=1e-6)


def test_made_once_remade_after_a_weight_change_and_never_in_training_or_without_batchnorm():
    model = _trained_like(torchvision.models.resnet18(weights=None, num_classes=5))
    first = forward_copy(model, "fp32")
    assert forward_copy(model, "fp32") is first
    with torch.no_grad():
        model.layer1[0].conv1.weight.mul_(2)
    second = forward_copy(model, "fp32")
    assert second is not first
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(second(x), model(x), rtol=1e-4, atol=1e-4)
    assert forward_copy(model.train(), "fp32") is None
    assert forward_copy(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)).eval(), "fp32") is None


def test_the_copy_carries_no_wrapper_or_hook_of_the_model():
    """Made while the engine has the model under bf16 autocast, with a hook on a layer."""
    model = _trained_like(torchvision.models.resnet18(weights=None, num_classes=5))
    seen = []
    model.layer4.register_forward_hook(lambda *a: seen.append(1))
    x = torch.randn(2, 3, 64, 64)
    with autocast_model(model, "bf16", torch.device("cpu")):
        assert active_arithmetic(model) == "bf16"
        copy = forward_copy(model, "bf16")
        seen.clear()
        with torch.no_grad(), autocast_model(copy, "bf16", torch.device("cpu")):
            out = copy(x)
        assert not seen and "forward" not in copy.__dict__
        with torch.no_grad():
            want = model(x)
    assert active_arithmetic(model) == "fp32"
    assert copy.conv1.weight.dtype == torch.bfloat16 and copy.fc.weight.dtype == torch.float32  # head in fp32
    assert out.dtype == torch.float32
    assert torch.corrcoef(torch.stack([out.flatten(), want.flatten()]))[0, 1] > 0.999


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_perturbed_scores_through_the_copy_are_the_models(monkeypatch, precision):
    model = _trained_like(torchvision.models.resnet18(weights=None, num_classes=7))
    g = torch.Generator().manual_seed(3)
    inputs, fill = torch.randn(2, 3, 64, 64, generator=g), torch.zeros(2, 3, 64, 64)
    segments = (torch.arange(64)[:, None] // 16 * 4 + torch.arange(64)[None, :] // 16).expand(2, 64, 64).contiguous()
    masks = torch.rand(20, 16, generator=g) > 0.5
    targets = torch.tensor([1, 4])

    def scores():
        with autocast_model(model, precision, torch.device("cpu")):
            return _perturb.perturbed_scores(model, inputs, fill, segments, masks, [0, 9, 20], targets, "probability", 8)

    calls = []
    real = fold.forward_copy
    monkeypatch.setattr(fold, "forward_copy", lambda m, a: calls.append(a) or real(m, a))
    fast = scores()
    monkeypatch.setattr(fold, "forward_copy", lambda m, a: None)
    plain = scores()
    assert calls == [precision]
    if precision == "fp32":
        torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-6)
    else:
        assert torch.corrcoef(torch.stack([fast, plain]))[0, 1] > 0.99


class _KeepsActivation(nn.Module):
    """Keeps a non-leaf tensor as an attribute after a forward with gradients: deepcopy refuses it."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.head = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2)

    def forward(self, x):
        self.kept = self.bn(self.conv(x))
        return self.head(self.kept.mean((2, 3)))


def test_models_that_cannot_or_must_not_be_folded_run_as_they_are():
    x = torch.randn(2, 3, 8, 8)
    weight_normed = nn.Sequential(torch.nn.utils.parametrizations.weight_norm(nn.Conv2d(3, 4, 3)),
                                  _trained_like(nn.Sequential(nn.BatchNorm2d(4)))[0]).eval()
    copy = forward_copy(weight_normed, "fp32")
    assert copy is None or isinstance(copy[1], nn.BatchNorm2d)  # the parametrized conv keeps its norm
    with torch.no_grad(), fold.forward_only(weight_normed, torch.device("cpu")) as m:
        torch.testing.assert_close(m(x), weight_normed(x))
    half_trained = _trained_like(torchvision.models.resnet18(weights=None, num_classes=3))
    half_trained.layer1[0].bn1.train()
    assert forward_copy(half_trained, "fp32") is None  # a norm in training mode uses the batch's statistics
    keeps = _KeepsActivation().eval()
    keeps(x).sum().backward()
    assert forward_copy(keeps, "fp32") is None
    with torch.no_grad(), fold.forward_only(keeps, torch.device("cpu")) as m:
        torch.testing.assert_close(m(x), keeps(x))  # the model itself (its batches channels_last)


def test_forward_only_gives_a_conv_net_its_images_channels_last_on_the_cpu():
    """Occlusion's, RISE's and the audit's NCHW batches reach the model channels_last; other
    arguments, and a model without convolutions, are passed as they are."""
    seen = []

    class Probe(nn.Module):
        def __init__(self, conv: bool):
            super().__init__()
            self.layer = nn.Conv2d(3, 2, 1) if conv else nn.Identity()

        def forward(self, x, extra=None):
            seen.append((x.is_contiguous(memory_format=torch.channels_last), x.is_contiguous(),
                         None if extra is None else extra.is_contiguous()))
            return x.flatten(1)

    x, extra = torch.randn(2, 3, 5, 5), torch.randn(2, 3)
    for conv, device in [(True, "cpu"), (False, "cpu")]:
        with torch.no_grad(), fold.forward_only(Probe(conv).eval(), torch.device(device)) as m:
            m(x, extra)
    assert seen == [(True, False, True), (False, True, True)]
