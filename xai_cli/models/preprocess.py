"""Image preprocessing that remembers its geometry.

A heatmap is computed on the model's input (after resize and crop); to draw it over the
original picture we need to know which rectangle of the original that input covers. So we
apply the same steps as torchvision's ``ImageClassification`` transform, but by hand, and
return that rectangle with the tensor.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocess:
    """How an image becomes a model input.

    Attributes:
        resize_size: Target of the resize step (shorter side, or both sides with ``squash``).
        crop_size: Side of the centre crop taken after resizing (the model's input size).
        mean: Per-channel mean subtracted after scaling to [0, 1].
        std: Per-channel standard deviation divided by.
        interpolation: ``bilinear`` or ``bicubic`` (antialiased, as torchvision does).
        mode: ``shorter-side`` keeps the aspect ratio (torchvision's weights transforms);
            ``squash`` resizes both sides to ``resize_size`` (the embedded demo model).
    """

    resize_size: int = 256
    crop_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: Literal["bilinear", "bicubic", "nearest"] = "bilinear"
    mode: Literal["shorter-side", "squash"] = "shorter-side"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_torchvision(cls, transform) -> Preprocess:
        """Read the steps of a torchvision ``weights.transforms()`` object."""
        def first(v):
            return int(v[0] if isinstance(v, (list, tuple)) else v)

        return cls(
            resize_size=first(transform.resize_size),
            crop_size=first(transform.crop_size),
            mean=tuple(float(m) for m in transform.mean),
            std=tuple(float(s) for s in transform.std),
            interpolation=transform.interpolation.value,
        )


@dataclass(frozen=True)
class CropBox:
    """The rectangle of the original image, in its own pixels, that the model input covers."""

    left: float
    top: float
    width: float
    height: float

    def to_list(self) -> list[float]:
        return [round(self.left, 3), round(self.top, 3), round(self.width, 3), round(self.height, 3)]


def _resized_size(w: int, h: int, p: Preprocess) -> tuple[int, int]:
    if p.mode == "squash":
        return p.resize_size, p.resize_size
    # torchvision's rule for an int size: the shorter side becomes `size`, the longer is truncated.
    if w <= h:
        return p.resize_size, int(p.resize_size * h / w)
    return int(p.resize_size * w / h), p.resize_size


def crop_box(w: int, h: int, p: Preprocess) -> CropBox:
    """Where the model's ``crop_size`` square input lies in a ``w`` x ``h`` original."""
    rw, rh = _resized_size(w, h, p)
    # torchvision's center_crop offsets; a crop larger than the resized image is zero-padded.
    left = int(round((rw - p.crop_size) / 2.0))
    top = int(round((rh - p.crop_size) / 2.0))
    sx, sy = w / rw, h / rh
    return CropBox(left * sx, top * sy, p.crop_size * sx, p.crop_size * sy)


def preprocess_image(img: Image.Image, p: Preprocess) -> tuple[torch.Tensor, CropBox]:
    """Resize, centre-crop and normalise an RGB PIL image.

    Returns:
        The input tensor (3, crop, crop) and the crop's rectangle in the original's pixels.
    """
    w, h = img.size
    x = TF.to_tensor(_resize_crop(img, w, h, p))  # (3, crop, crop) in [0, 1]
    return TF.normalize(x, list(p.mean), list(p.std)), crop_box(w, h, p)


def preprocess_tensor(img: torch.Tensor, p: Preprocess) -> tuple[torch.Tensor, CropBox]:
    """``preprocess_image`` for a (3, H, W) uint8 tensor on any device (torch's antialiased
    resize: within a few levels of PIL's, not bit-identical)."""
    h, w = img.shape[-2:]
    x = _resize_crop(img, w, h, p).float().div_(255)
    return TF.normalize(x, list(p.mean), list(p.std)), crop_box(w, h, p)


def _resize_crop(img, w: int, h: int, p: Preprocess):
    rw, rh = _resized_size(w, h, p)
    img = TF.resize(img, [rh, rw], interpolation=InterpolationMode(p.interpolation), antialias=True)
    return TF.center_crop(img, [p.crop_size, p.crop_size])


def to_original(point_xy: tuple[float, float], box: CropBox, crop_size: int) -> tuple[float, float]:
    """Map a (x, y) position in model-input pixels to the original image's pixels."""
    x, y = point_xy
    return box.left + (x + 0.5) * box.width / crop_size - 0.5, box.top + (y + 0.5) * box.height / crop_size - 0.5


def denormalize(x: torch.Tensor, p: Preprocess) -> np.ndarray:
    """(3, H, W) normalised tensor -> (H, W, 3) uint8, for drawing the model's view."""
    mean = torch.tensor(p.mean).view(3, 1, 1)
    std = torch.tensor(p.std).view(3, 1, 1)
    img = (x.detach().cpu() * std + mean).clamp(0, 1)
    return (img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
