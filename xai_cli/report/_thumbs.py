"""Small JPEG thumbnails, made once: a rerun keeps every thumbnail newer than its source."""

from __future__ import annotations

import os
from pathlib import Path

CARD_SIDE = 144  # px, the longest side of a card's thumbnail
PREVIEW_SIDE = 512  # px, the longest side of an input's preview in the detail view


def is_fresh(dst: Path, src: Path) -> bool:
    """True when ``dst`` exists and is at least as new as ``src`` (so it is reused)."""
    try:
        return dst.stat().st_mtime_ns >= src.stat().st_mtime_ns
    except OSError:
        return False


def thumbnail(src: Path, sizes: list[tuple[Path, int]]) -> bool:
    """Write ``src`` scaled to fit each ``(dst, max_side)``, as JPEG; reuse fresh ones.

    The source is decoded once for all sizes (and only when one of them is stale). An image
    smaller than a size is kept at its own size. Returns False when the source cannot be read.
    """
    stale = [(dst, side) for dst, side in sizes if not is_fresh(dst, src)]
    if not stale:
        return True
    from PIL import Image, ImageOps

    try:
        with Image.open(src) as im:
            im.draft("RGB", (max(s for _, s in stale),) * 2)  # JPEG: decode at a reduced scale
            im = ImageOps.exif_transpose(im)
            im = _rgb(im)
            for dst, side in sorted(stale, key=lambda x: -x[1]):
                im.thumbnail((side, side), Image.Resampling.LANCZOS, reducing_gap=2.0)
                dst.parent.mkdir(parents=True, exist_ok=True)
                tmp = dst.with_name(dst.name + f".{os.getpid()}.tmp")
                im.save(tmp, "JPEG", quality=82, optimize=False)
                os.replace(tmp, dst)
    except (OSError, ValueError, Image.DecompressionBombError):
        return False
    return True


def _rgb(im):
    """RGB on a white background (transparency, palettes, 16-bit grey all end up the same way)."""
    from PIL import Image

    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        bg = Image.new("RGB", im.size, "white")
        bg.paste(im, mask=im.getchannel("A"))
        return bg
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        im = im.point(lambda v: v / 256).convert("L")
    return im.convert("RGB")
