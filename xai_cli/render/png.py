"""PNG bytes of a rendered picture, written by hand because Pillow's encoder is the writer's
largest cost.

Pillow tries the five PNG row filters on every row and then deflates with zlib. Measured on
the panel of a 256² photo (772×376 px, thread CPU time, bench/writer_bench.py): Pillow at
``compress_level=1`` 6.9 ms; here, numpy's "Up" filter for every row (one vectorised
subtraction) and ISA-L's deflate at level 1 (``isal``) 0.8 ms, with files as small as
Pillow's (within a few %). Where ``isal`` is not installed, zlib's run-length strategy at
level 1 (about 2.5x faster than Pillow, files the same size) stands in. The pixels are the
same either way: tests/render decodes both with Pillow and compares them exactly.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
from PIL import Image

try:  # ISA-L's deflate: 4-5x zlib's speed at level 1 on x86-64 and arm64
    from isal import isal_zlib as _isal
except ImportError:  # pragma: no cover - exercised where the wheel is missing
    _isal = None

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPE = {"L": (0, 1), "RGB": (2, 3), "RGBA": (6, 4)}  # mode -> (PNG colour type, channels)
_UP = 2  # PNG filter type "Up": each byte minus the byte above it


def encode_png(img: Image.Image) -> bytes:
    """The picture as PNG bytes (8 bits per channel; L, RGB and RGBA by hand, other modes by
    Pillow).

    Every row is filtered "Up" (the first row has nothing above it, so it is stored as is
    under the same filter), then deflated as one stream.
    """
    if img.mode not in _COLOUR_TYPE:
        import io

        buf = io.BytesIO()
        img.save(buf, format="PNG", compress_level=1)
        return buf.getvalue()
    colour_type, channels = _COLOUR_TYPE[img.mode]
    w, h = img.size
    rows = np.asarray(img, dtype=np.uint8).reshape(h, w * channels)
    raw = np.empty((h, w * channels + 1), dtype=np.uint8)
    raw[:, 0] = _UP
    raw[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=raw[1:, 1:])  # uint8 arithmetic wraps modulo 256, as PNG wants
    header = struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0)
    return b"".join((_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", _deflate(raw.data)), _chunk(b"IEND", b"")))


def _deflate(data) -> bytes:
    if _isal is not None:
        return _isal.compress(data, 1)
    packer = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    return packer.compress(data) + packer.flush()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))
