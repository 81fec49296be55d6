"""The fonts every picture is drawn with: DejaVu Sans, shipped in the package.

Shipped (``xai_cli/render/fonts/``, licence in ``fonts/LICENSE``: the Bitstream Vera licence,
free to copy and redistribute) so every machine and CI draws the same pixels and has glyphs
for ≥, ≤, −, ·, accented labels and most scripts; Pillow's built-in font has none of these
and draws a box instead.
"""

from __future__ import annotations

import functools
import threading
import unicodedata
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
    drawn = _composed(text, size, bold) or _freetype(text, size, bold)
    drawn[0].flags.writeable = False  # shared by every thread
    return drawn


def _freetype(text: str, size: int, bold: bool) -> tuple[np.ndarray, int, int]:
    """``line_mask`` drawn by Pillow (FreeType lays the line out and renders every glyph)."""
    mask, (dx, dy) = font(size, bold).getmask2(text, "L", anchor="la", start=(0.0, 0.0))
    # Pillow's own wrapper of its core image: 8 µs, where bytes(mask) reads it pixel by pixel (85 µs)
    return np.array(Image.Image()._new(mask)), dx, dy


# A line whose end is a number ("gradcam · explains 'tabby cat' (93.1%)", a colour bar's "0.234")
# is drawn as Pillow would draw it, from its stem's cached mask and each digit's cached glyph:
# the title of every picture is new (its probability), and FreeType took 0.18 ms for it (it
# renders each glyph twice), the composition 0.03 (thread CPU, AMD EPYC). Exact because Pillow
# renders each glyph at the origin and places it at the pen position rounded to a whole pixel
# (``font_render``: PIXEL(x) + bitmap_left, x the sum of the layout's 26.6 advances), blending
# overlapping glyphs with its own rule (``_over``: Pillow 10.2 on; 10.1 kept the larger value, hence
# pyproject's pillow>=10.2); the tail's characters are ones HarfBuzz
# shapes one by one (no ligatures, no context), and a kerned pair sends the line to FreeType.
# tests/render/test_panel_pixels.py compares tens of thousands of lines with Pillow's drawing.
_TAIL = frozenset("0123456789.,%()−-+eE≥≤' ")
_RTL_OR_EMBEDDING = frozenset({"R", "AL", "AN", "RLE", "RLO", "RLI", "LRE", "LRO", "LRI", "PDF", "PDI", "FSI"})


def _composed(text: str, size: int, bold: bool) -> tuple[np.ndarray, int, int] | None:
    """``line_mask`` composed from a cached stem and glyphs, or None where that would not be exact."""
    k = next((i for i, c in enumerate(text) if c.isdigit()), None)
    if k is None or not _TAIL.issuperset(text[k:]) or not _simple_stem(text[:k]):
        return None
    parts, x64, prev = [], 0, None  # parts: (mask, x, y) from the pen; x64: the pen in 1/64 px
    if k:
        stem = _stem(text[:k], size, bold)
        parts.append(stem[:3])
        x64, prev = stem[3], text[k - 1]
    for ch in text[k:]:
        mask, dx, dy, advance = _glyph(ch, size, bold)
        if prev is not None and _advance64(prev + ch, size, bold) != _advance64(prev, size, bold) + advance:
            return None  # a kerned pair: its glyphs' places are HarfBuzz's, not the sum of their advances
        parts.append((mask, ((x64 + 32) >> 6) + dx, dy))  # Pillow's PIXEL(): the pen rounded half up
        x64 += advance
        prev = ch
    x0, y0 = min(p[1] for p in parts), min(p[2] for p in parts)
    x1, y1 = max(p[1] + p[0].shape[1] for p in parts), max(p[2] + p[0].shape[0] for p in parts)
    out = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for mask, x, y in parts:
        region = out[y - y0:y - y0 + mask.shape[0], x - x0:x - x0 + mask.shape[1]]
        region[...] = _over(mask, region) if region.any() else mask
    return out, x0, y0


def _over(src: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Pillow's blend of a glyph's coverage over what earlier glyphs left (``font_render``):
    where both cover a pixel, CLIP8(src + MULDIV255(target, 255 - src))."""
    s, t = src.astype(np.uint32), target.astype(np.uint32)
    tmp = t * (255 - s) + 128
    both = np.minimum(s + (((tmp >> 8) + tmp) >> 8), 255)
    return np.where(s > 0, np.where(t > 0, both, s), t).astype(np.uint8)


def _simple_stem(stem: str) -> bool:
    """The stem is laid out left to right in a script whose run a number cannot reorder or
    reshape (below Hebrew, or punctuation and symbols): digits after it go on to its right."""
    return all((c < "\u0590" or "\u2000" <= c < "\u2c00") and unicodedata.bidirectional(c) not in _RTL_OR_EMBEDDING
               for c in stem)


@functools.lru_cache(maxsize=512)
def _stem(stem: str, size: int, bold: bool) -> tuple[np.ndarray, int, int, int]:
    """A line's text before its number, drawn by FreeType: (mask, dx, dy, its advance in 1/64 px)."""
    return _shared(*_freetype(stem, size, bold), _advance64(stem, size, bold))


@functools.lru_cache(maxsize=1024)
def _glyph(ch: str, size: int, bold: bool) -> tuple[np.ndarray, int, int, int]:
    """One character drawn by FreeType: (mask, dx, dy, its advance in 1/64 px)."""
    return _shared(*_freetype(ch, size, bold), _advance64(ch, size, bold))


def _shared(mask: np.ndarray, *rest: int) -> tuple:
    """A cached mask, read-only: every thread's lines are composed from it."""
    mask.flags.writeable = False
    return (mask, *rest)


@functools.lru_cache(maxsize=4096)
def _advance64(text: str, size: int, bold: bool) -> int:
    """The pen's advance over ``text`` in 1/64 px, as Pillow's layout sums it (``getlength`` is it / 64)."""
    return round(font(size, bold).getlength(text) * 64)


@functools.lru_cache(maxsize=1024)
def length(fnt: ImageFont.FreeTypeFont, text: str) -> float:
    """``fnt.getlength(text)``, cached like ``line_mask`` (a line is measured before it is drawn,
    to wrap it: with Pillow's text shaping that is half the cost of drawing it)."""
    return fnt.getlength(text)


_CACHED = (line_mask, length, _stem, _glyph, _advance64)


def clear_caches() -> None:
    """Forget every cached line, stem, glyph and advance."""
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
