"""The fonts every picture is drawn with: DejaVu Sans, shipped in the package.

Shipped (``xai_cli/render/fonts/``, licence in ``fonts/LICENSE``: the Bitstream Vera licence,
free to copy and redistribute) so every machine and CI draws the same pixels and has glyphs
for ≥, ≤, −, ·, accented labels and most scripts; Pillow's built-in font has none of these
and draws a box instead.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import numpy as np
from PIL import Image, ImageFont

FOLDER = Path(__file__).parent / "fonts"
_loaded = threading.local()


def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu Sans (Bold) at ``size`` px, loaded once per size and thread (a load takes 0.2 ms
    and a picture needs two; a FreeType face must not be shared by threads that draw at once,
    and the writer draws in several)."""
    fonts = _loaded.__dict__.setdefault("fonts", {})
    key = (size, bold)
    if key not in fonts:
        fonts[key] = ImageFont.truetype(str(FOLDER / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")), size)
    return fonts[key]


@functools.lru_cache(maxsize=512)  # the lines every picture shares stay (each used per picture): ≤ ~4 MB
def line_mask(text: str, size: int, bold: bool = False) -> tuple[np.ndarray, int, int]:
    """One line of ``text`` as ``ImageDraw.text`` draws it: (its anti-aliased coverage, (h, w)
    uint8, read-only; dx, dy from the pen position to the mask's corner).

    Cached, because a run's pictures repeat most of their lines (the model, "the model's top
    prediction", the legend, a colour bar's "0") and FreeType takes 0.03-0.2 ms a line (more on
    a loaded box): a picture's 7 lines were about 1 ms of a 256² photo's picture.
    """
    mask, (dx, dy) = font(size, bold).getmask2(text, "L", anchor="la", start=(0.0, 0.0))
    # Pillow's own wrapper of its core image: 8 µs, where bytes(mask) reads it pixel by pixel (85 µs)
    pixels = np.array(Image.Image()._new(mask))
    pixels.flags.writeable = False  # shared by every thread
    return pixels, dx, dy


@functools.lru_cache(maxsize=1024)
def length(fnt: ImageFont.FreeTypeFont, text: str) -> float:
    """``fnt.getlength(text)``, cached like ``line_mask`` (a line is measured before it is drawn,
    to wrap it: with Pillow's text shaping that is half the cost of drawing it)."""
    return fnt.getlength(text)


_CACHED = (line_mask, length)


def clear_caches() -> None:
    """Forget every cached line (``line_mask``, ``length``)."""
    for cached in _CACHED:
        cached.cache_clear()


def draw_line(pixels: np.ndarray, xy: tuple[int, int], text: str, size: int, bold: bool,
              ink: tuple[int, int, int]) -> None:
    """Draw one line of ``text`` into ``pixels`` ((h, w, 3) uint8) at the pen position ``xy``,
    pixel for pixel as ``ImageDraw.text`` would (Pillow's 8-bit blend of ``ink`` over what is
    there, clipped to the picture)."""
    mask, dx, dy = line_mask(text, size, bold)
    x, y = xy[0] + dx, xy[1] + dy
    h, w = pixels.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + mask.shape[1], w), min(y + mask.shape[0], h)
    if x1 <= x0 or y1 <= y0:
        return
    m = mask[y0 - y:y1 - y, x0 - x:x1 - x]
    region = pixels[y0:y1, x0:x1]
    if region.min() == 255:  # on white (every line of a picture): the blend is a table of the coverage
        region[:] = _on_white(ink).take(m, axis=0)
        return
    m = m[..., None].astype(np.uint32)
    blend = region * (255 - m) + np.asarray(ink, np.uint32) * m + 128  # Pillow's BLEND + DIV255
    region[:] = ((blend >> 8) + blend) >> 8


@functools.lru_cache(maxsize=16)
def _on_white(ink: tuple[int, int, int]) -> np.ndarray:
    m = np.arange(256, dtype=np.uint32)[:, None]
    blend = 255 * (255 - m) + np.asarray(ink, np.uint32)[None, :] * m + 128
    return (((blend >> 8) + blend) >> 8).astype(np.uint8)


def has_glyphs(text: str, fnt: ImageFont.FreeTypeFont | None = None) -> bool:
    """True when ``fnt`` draws every character of ``text`` with its own glyph, not the
    missing-glyph box (compared with the box drawn for a private-use code point)."""
    fnt = fnt or font(20)
    def pixels(ch: str) -> bytes:
        mask = fnt.getmask(ch)
        return str(mask.size).encode() + bytes(mask)

    box = pixels("\ue000")
    return all(ch.isspace() or pixels(ch) != box for ch in text)
