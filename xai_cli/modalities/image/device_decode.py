"""JPEG decoding on the run's device (``decode="device"``): nvJPEG on a GPU, libjpeg-turbo
through ``torchvision.io`` on a CPU.

The loader's workers still read and hash every file, and read its header with PIL (size,
colour mode, the decompression-bomb guard) without decoding it; a baseline RGB or greyscale
JPEG then travels as its bytes (a ``PendingImage``) and the engine's process decodes a whole
batch at once with ``torchvision.io.decode_jpeg(..., device=device)``, resizes, crops and
normalises it there. Everything else (PNG, TIFF, CMYK or animated files, and any JPEG the
device decoder refuses) takes the CPU path of ``decode.decode_image``, which also gives the
one-line reason for a broken file. On a GPU box this moves the largest CPU cost of a run
(decoding; ~4 ms per 256² photo, far more for camera photos) off the loader's cores.

The device path's pixels are not bit-identical to PIL's (another IDCT, and torch's antialiased
resize instead of PIL's): tests/modalities/image compares the two on the same files.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from xai_cli.inputs.discover import InputFile
from xai_cli.inputs.read import Failure
from xai_cli.modalities.image.decode import ImageItem, decode_image
from xai_cli.models.preprocess import Preprocess, preprocess_tensor

_MODES = {"RGB", "L"}  # what the device decoders handle (not CMYK, not palette)


@dataclass
class PendingImage:
    """A JPEG read and hashed by a loader worker, to be decoded on the device."""

    index: int
    file: InputFile
    data: bytes
    sha256: str
    mode: str
    notes: list[str] = field(default_factory=list)


def read_for_device(index: int, file: InputFile, data: bytes, preprocess: Preprocess
                    ) -> PendingImage | ImageItem | Failure:
    """In a loader worker: a ``PendingImage`` for a JPEG the device can decode, else the CPU
    path's ``decode_image`` result."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:  # the header only: size and mode, no pixels
                fmt, mode, frames = img.format, img.mode, getattr(img, "n_frames", 1)
    except Exception:  # noqa: BLE001 - decode_image gives the reason (bomb, not an image, truncated)
        fmt = mode = None
        frames = 1
    if fmt != "JPEG" or mode not in _MODES or frames != 1:
        return decode_image(index, file, data, preprocess)
    return PendingImage(index, file, data, hashlib.sha256(data).hexdigest(), mode)


def decode_batch(items: list, preprocess: Preprocess, device: torch.device) -> list[ImageItem | Failure]:
    """Decode the batch's ``PendingImage``s on ``device`` (others are passed through), in order."""
    pending = [i for i, it in enumerate(items) if isinstance(it, PendingImage)]
    if not pending:
        return items
    from torchvision.io import ImageReadMode, decode_jpeg

    out = list(items)
    datas = [torch.frombuffer(bytearray(items[i].data), dtype=torch.uint8) for i in pending]
    try:  # one call for the batch: nvJPEG decodes them together
        images = decode_jpeg(datas, mode=ImageReadMode.RGB, device=device, apply_exif_orientation=True)
    except RuntimeError:  # one bad file fails the batched call: find it file by file
        images = []
        for d in datas:
            try:
                images.append(decode_jpeg(d, mode=ImageReadMode.RGB, device=device, apply_exif_orientation=True))
            except RuntimeError:
                images.append(None)
    for i, img in zip(pending, images):
        it = items[i]
        if img is None:  # the CPU path decodes it, or says in one line why it cannot
            out[i] = decode_image(it.index, it.file, it.data, preprocess)
            continue
        out[i] = _item(it, img, preprocess)
    return out


def _item(it: PendingImage, img: torch.Tensor, p: Preprocess) -> ImageItem:
    """A decoded (3, H, W) uint8 image on the device -> the model's input and the picture's original."""
    x, box = preprocess_tensor(img, p)
    original = img.permute(1, 2, 0).cpu().numpy()  # (h, w, 3) uint8: what the picture draws
    return ImageItem(it.index, np.ascontiguousarray(original), x, box, it.sha256, it.mode, list(it.notes))
