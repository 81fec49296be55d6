"""Decoding one image file into the model's input, or a one-line reason why not.

Each file is read once: the bytes give the sha256 and are then decoded from memory.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image, ImageOps

from xai_cli.inputs.discover import InputFile
from xai_cli.inputs.read import Failure
from xai_cli.models.preprocess import CropBox, Preprocess, preprocess_image


@dataclass
class ImageItem:
    """A decoded input, ready for the model, with what its record and picture need."""

    index: int
    original: np.ndarray  # (h, w, 3) uint8, upright, as a person sees the file
    tensor: torch.Tensor  # (3, crop, crop) normalised
    box: CropBox  # the part of `original` the tensor covers
    sha256: str
    mode: str  # the file's colour mode before conversion ("RGB", "L", "RGBA", "P", ...)
    notes: list[str] = field(default_factory=list)  # conversions a user should know about

    @property
    def size(self) -> tuple[int, int]:
        return self.original.shape[1], self.original.shape[0]


def to_rgb(img: Image.Image, notes: list[str]) -> Image.Image:
    """Convert any PIL mode to RGB the way a viewer would show it.

    Transparency is composited over white (what most viewers show); 16-bit and float images
    are scaled from their own range, not clipped at 255.
    """
    if img.mode == "RGB":
        return img
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        notes.append(f"{img.mode} image: transparent pixels composited over white")
        img = img.convert("RGBA")
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, img).convert("RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        notes.append(f"{img.mode} image: scaled from its range [{lo:g}, {hi:g}] to 8 bits")
        scaled = np.zeros_like(arr) if hi <= lo else (arr - lo) / (hi - lo) * 255.0
        return Image.fromarray(scaled.round().astype(np.uint8), "L").convert("RGB")
    if img.mode == "CMYK":
        notes.append("CMYK image: converted to RGB without a colour profile")
    return img.convert("RGB")


def decode_image(index: int, file: InputFile, data: bytes, preprocess: Preprocess) -> ImageItem | Failure:
    """Hash, decode and preprocess one image from its bytes; never raises for a bad file."""
    digest = hashlib.sha256(data).hexdigest()
    if not data:
        return Failure(index, "empty file (0 bytes): re-export or remove it", digest)
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if getattr(img, "n_frames", 1) > 1:
                notes.append(f"animated image with {img.n_frames} frames: explained the first frame only")
            img.seek(0)
            img.load()
        mode = img.mode
        img = ImageOps.exif_transpose(img)
        img = to_rgb(img, notes)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        return Failure(index, f"image too large ({e}); raise the max-pixels limit if you trust it", digest)
    except Image.UnidentifiedImageError:
        return Failure(index, "not an image format xai can decode (wrong extension, or not an image): convert it to PNG or JPEG", digest)
    except Exception as e:  # PIL raises many types for broken files: all mean "not a decodable image"
        return Failure(index, f"not a decodable image ({type(e).__name__}: {str(e)[:120]}): is the file complete?", digest)
    tensor, box = preprocess_image(img, preprocess)
    return ImageItem(index, np.asarray(img, dtype=np.uint8).copy(), tensor, box, digest, mode, notes)

