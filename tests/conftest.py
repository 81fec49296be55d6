"""Tiny seeded fixture models, built offline, shared by the tests."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

os.environ.setdefault("XAI_OFFLINE", "1")  # no test may download anything
torch.set_num_threads(2)


class OneConv(nn.Module):
    """conv(3->2, 3x3, pad 1) -> ReLU -> global average pool -> linear(2->3).

    Small enough that Grad-CAM can be worked out by hand.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2, 3)

    def forward(self, x):
        return self.fc(self.pool(self.relu(self.conv(x))).flatten(1))


def frozen(model: nn.Module) -> nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@pytest.fixture(scope="module")
def one_thread():
    """For tiny models (hidden size 16-32): a second thread only adds synchronisation, which on
    a busy machine costs more than the matmuls (a tiny BERT's saliency: 0.01 s on one thread,
    up to 1 s on two with the box loaded). Restored after the module."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def one_conv() -> nn.Module:
    torch.manual_seed(0)
    return frozen(OneConv())


@pytest.fixture(scope="session")
def resnet18() -> nn.Module:
    """A seeded, randomly initialised torchvision resnet18 (no download)."""
    import torchvision

    torch.manual_seed(0)
    return frozen(torchvision.models.resnet18(weights=None))


@pytest.fixture(scope="session")
def tiny_vit() -> nn.Module:
    """A seeded torchvision VisionTransformer: 32x32 input, 8x8 patches (16 tokens + CLS), 2 layers."""
    from torchvision.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    vit = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=5)
    # torchvision zero-initialises the head: logits would be 0 and every gradient map all-zero.
    nn.init.normal_(vit.heads.head.weight, std=0.5)
    nn.init.normal_(vit.heads.head.bias, std=0.1)
    return frozen(vit)


@pytest.fixture(scope="session")
def demo_model() -> nn.Module:
    from xai_cli.models.demo import build_demo_model

    return frozen(build_demo_model())


def images(n: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    """A seeded batch of normalised-looking inputs (N, 3, size, size)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=g)
