"""Small JPEG thumbnails, made once: a rerun keeps every thumbnail newer than its source.

A picture already small enough is not thumbnailed at all (the page shows it scaled): decoding
and encoding is most of a report's build time, and most heatmaps of small inputs are small.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CARD_SIDE = 144  # px, the longest side of a card's thumbnail
PREVIEW_SIDE = 512  # px, the longest side of an input's preview in the detail view
SMALL_ENOUGH = 2 * CARD_SIDE  # px: a heatmap up to this size is shown as it is on a card
_BROWSER_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "WEBP": ".webp", "BMP": ".bmp"}


def is_fresh(dst: Path, src: Path) -> bool:
    """True when ``dst`` exists and is at least as new as ``src`` (so it is reused)."""
    try:
        return dst.stat().st_mtime_ns >= src.stat().st_mtime_ns
    except OSError:
        return False


def card_thumbnail(src: Path, dst: Path) -> bool | None:
    """A card-sized JPEG of a heatmap at ``dst``; False when ``src`` is small enough as it is.

    Returns None when the source cannot be read.
    """
    if is_fresh(dst, src):
        return True
    size = _png_size(src)
    if size is not None and max(size) <= SMALL_ENOUGH:
        return False
    from PIL import Image

    try:
        with Image.open(src) as im:
            if max(im.size) <= SMALL_ENOUGH:
                return False
            _save(_rgb(im), [(dst, CARD_SIDE)])
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return True


def _png_size(path: Path) -> tuple[int, int] | None:
    """A PNG's size from its IHDR chunk (24 bytes read), or None for anything else."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def input_preview(src: Path, preview: Path) -> str | None:
    """The input's preview for the report, named after ``preview`` (a path without suffix).

    A small image in a format browsers show is copied as it is (one file for the card and the
    detail view); anything else becomes ``<preview>.jpg`` (≤ 512 px) plus ``<preview>.thumb.jpg``.

    Returns:
        The suffix of the copy (``".png"``...), ``"jpg"`` for the two JPEGs, or None when the
        input cannot be read.
    """
    from PIL import Image

    try:
        with Image.open(src) as im:
            suffix = _BROWSER_FORMATS.get(im.format or "")
            if suffix and max(im.size) <= PREVIEW_SIDE and not _rotated(im):
                dst = preview.with_name(preview.name + suffix)
                if not is_fresh(dst, src):
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    tmp = dst.with_name(dst.name + f".{os.getpid()}.tmp")
                    shutil.copyfile(src, tmp)
                    os.replace(tmp, dst)
                return suffix
            big, small = preview.with_name(preview.name + ".jpg"), preview.with_name(preview.name + ".thumb.jpg")
            if not (is_fresh(big, src) and is_fresh(small, src)):
                im.draft("RGB", (PREVIEW_SIDE, PREVIEW_SIDE))  # JPEG: decode at a reduced scale
                from PIL import ImageOps

                _save(_rgb(ImageOps.exif_transpose(im)), [(big, PREVIEW_SIDE), (small, CARD_SIDE)])
            return "jpg"
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def _rotated(im) -> bool:
    if im.format not in ("JPEG", "WEBP"):  # PNG's EXIF may sit after the pixels: reading it decodes them
        return False
    try:
        return im.getexif().get(0x0112, 1) != 1  # EXIF orientation: leave it to the JPEG path
    except Exception:  # noqa: BLE001 - a broken EXIF block only means "not rotated"
        return False


def _save(im, sizes: list[tuple[Path, int]]) -> None:
    """Shrink ``im`` in steps, largest size first; write each as JPEG atomically."""
    from PIL import Image

    for dst, side in sorted(sizes, key=lambda x: -x[1]):
        im.thumbnail((side, side), Image.Resampling.LANCZOS, reducing_gap=2.0)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(dst.name + f".{os.getpid()}.tmp")
        im.save(tmp, "JPEG", quality=82)
        os.replace(tmp, dst)


def _rgb(im):
    """RGB on a white background (transparency, palettes, 16-bit grey all end up the same way)."""
    from PIL import Image

    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        bg = Image.new("RGB", im.size, "white")
        bg.paste(im, mask=im.getchannel("A"))
        return bg
    if im.mode.startswith("I"):
        im = im.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    return im.convert("RGB")
