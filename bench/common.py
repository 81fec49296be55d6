"""What every benchmark row shares: the size presets, the seeded models, the generated inputs,
and the clock (warm-up, CUDA synchronisation, median of repeats, peak GPU memory).
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Size:
    """One preset of the benchmark's sizes.

    Attributes:
        cnn: torchvision CNN for every method but attention.
        vit: "vit_b_16", or "tiny" (a 2-layer 64 px ViT for the CI smoke test).
        side: Model input side (crop), px; JPEGs are ``side * 256 / 224`` px square.
        batch: Inputs per batch (xai's ``--batch-size``; the peers' batches of inputs).
        rows: Rows per forward pass inside a method: ``ig.internal_batch_size`` for xai and
            Captum, ``perturbations_per_eval`` for xai's expected gradients (LIME and KernelSHAP keep
            xai's default, ``_perturb.eval_rows``), lime's larger batch_size.
        n_fast: Inputs for the one-pass methods (gradcam, saliency, guided_backprop, attention).
        n_ig: Inputs for integrated gradients.
        n_slow: Inputs for LIME and SHAP.
        ig_steps, lime_samples, kernel_evals, gradient_samples: The methods' sample counts.
        repeats: Timed repeats of the cheap measurements (the median is reported).
    """

    cnn: str
    vit: str
    side: int
    batch: int
    rows: int
    n_fast: int
    n_ig: int
    n_slow: int
    ig_steps: int
    lime_samples: int
    kernel_evals: int
    gradient_samples: int
    repeats: int

    @property
    def photo(self) -> int:
        return round(self.side * 256 / 224)

    def to_dict(self) -> dict:
        return asdict(self)


SIZES: dict[str, Size] = {
    # CI smoke: seconds on 2 CPU cores; the counts are far below the methods' defaults.
    "small": Size("resnet18", "tiny", 64, 8, 32, 8, 2, 1, 8, 32, 32, 16, 2),
    # A CPU measurement at the real sample counts, one input for the slow methods.
    "medium": Size("resnet18", "vit_b_16", 224, 8, 32, 16, 2, 1, 50, 1000, 500, 200, 3),
    # The issue's GPU setting: resnet50 224², batch 64, the methods' default counts.
    "full": Size("resnet50", "vit_b_16", 224, 64, 128, 512, 64, 8, 50, 1000, 500, 200, 3),
}


def build_cnn(name: str, seed: int = 0) -> nn.Module:
    """A seeded, randomly initialised torchvision classifier in eval mode (no download)."""
    import torchvision

    torch.manual_seed(seed)
    return torchvision.models.get_model(name, weights=None).eval()


def build_vit(kind: str, side: int, seed: int = 0) -> nn.Module:
    """ViT-B/16, or a tiny 2-layer ViT, with a random head (torchvision zero-initialises it,
    which would make every logit 0 and every gradient map all-zero)."""
    import torchvision
    from torchvision.models.vision_transformer import VisionTransformer

    torch.manual_seed(seed)
    if kind == "tiny":
        vit = VisionTransformer(image_size=side, patch_size=16, num_layers=2, num_heads=2, hidden_dim=32,
                                mlp_dim=64, num_classes=1000)
    else:
        vit = torchvision.models.get_model(kind, weights=None, image_size=side)
    nn.init.normal_(vit.heads.head.weight, std=0.02)
    nn.init.normal_(vit.heads.head.bias, std=0.02)
    return vit.eval()


def set_weight_grads(model: nn.Module, enabled: bool) -> None:
    """xai freezes weights (as ``load_model`` does); the peers get models as their docs show."""
    for p in model.parameters():
        p.requires_grad_(enabled)


def write_jpegs(folder: Path, n: int, side: int, seed: int = 0) -> list[Path]:
    """``n`` seeded photo-like JPEGs: smooth colour fields with a few blobs, plus grain.

    Smooth content gives segmenters (quickshift, SLIC) realistic superpixel counts; white
    noise would give hundreds of tiny ones.
    """
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / side
    paths = []
    for i in range(n):
        coarse = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize((side, side), Image.BICUBIC)
        img = np.asarray(coarse, dtype=np.float32)
        for _ in range(4):
            cx, cy, r = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.2)
            blob = ((xx - cx) ** 2 + (yy - cy) ** 2) < r**2
            img[blob] = rng.integers(0, 256, 3)
        img += rng.normal(0, 6, img.shape)
        path = folder / f"img{i:05d}.jpg"
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


@dataclass
class Timing:
    """One measurement: seconds per input (median over repeats) and peak GPU memory."""

    seconds_per_item: float
    peak_mib: float | None
    n_items: int
    repeats: int

    @property
    def items_per_second(self) -> float:
        return 1.0 / self.seconds_per_item


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(run: Callable[[], object], n_items: int, device: torch.device, repeats: int = 3,
            warm: Callable[[], object] | None = None) -> Timing:
    """Time ``run()`` (which processes ``n_items`` inputs) after one ``warm()`` call.

    Args:
        run: The timed workload.
        n_items: Inputs ``run`` processes.
        device: Synchronised around each timed call when CUDA.
        repeats: Timed calls; the median is reported.
        warm: Warm-up (kernels, cuDNN autotuning, allocator); default ``run`` itself.
    """
    (warm or run)()
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(max(1, repeats)):
        _sync(device)
        t0 = time.perf_counter()
        run()
        _sync(device)
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return Timing(statistics.median(times) / n_items, peak, n_items, len(times))


def ceiling(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, device: torch.device, repeats: int,
            backward: bool = True) -> Timing:
    """The model's own throughput at this batch: forward, plus the backward pass to the input
    that every gradient method needs (weights frozen, as xai runs them)."""
    set_weight_grads(model, False)

    def run():
        if not backward:
            with torch.no_grad():
                model(x)
            return
        xg = x.detach().requires_grad_(True)
        score = model(xg).gather(1, targets[:, None]).sum()
        torch.autograd.grad(score, xg)

    return measure(run, x.shape[0], device, repeats)


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def save_report(stem: Path, report: dict, text: str) -> None:
    """A bench's result as ``stem.md`` (the table people read) and ``stem.json`` (every figure)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".md").write_text(text, encoding="utf-8")
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
