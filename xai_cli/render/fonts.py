"""The fonts every picture is drawn with: DejaVu Sans, shipped in the package.

Shipped (``xai_cli/render/fonts/``, licence in ``fonts/LICENSE``: the Bitstream Vera licence,
free to copy and redistribute) so every machine and CI draws the same pixels and has glyphs
for ≥, ≤, −, ·, accented labels and most scripts; Pillow's built-in font has none of these
and draws a box instead.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PIL import ImageFont

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


def has_glyphs(text: str, fnt: ImageFont.FreeTypeFont | None = None) -> bool:
    """True when ``fnt`` draws every character of ``text`` with its own glyph, not the
    missing-glyph box (compared with the box drawn for a private-use code point)."""
    fnt = fnt or font(20)
    def pixels(ch: str) -> bytes:
        mask = fnt.getmask(ch)
        return str(mask.size).encode() + bytes(mask)

    box = pixels("\ue000")
    return all(ch.isspace() or pixels(ch) != box for ch in text)
