"""Heatmap pictures a person can read: the input at a readable size, the map over it, a
header naming method, class, probability and the model's top prediction, a colour bar with
values, and the peak marked.

Layout, for one input, is the same width for every method (the text wraps, never widens the
picture), so one input's pictures line up in a grid. Inputs are shown with their longest side
in [``Style.min_side``, ``Style.max_side``]: tiny ones are enlarged by whole pixels (nearest,
so a digit's strokes stay as drawn), big photos are shrunk (the raw map is in ``--save-raw``).

Pure numpy/PIL: rendering gets CPU arrays and never touches the model.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from xai_cli.render import colormap
from xai_cli.render.fonts import font as load_font

OVERLAYS = ("side-by-side", "blend")
WARN = (176, 60, 0)  # a warning line's colour (degenerate map, tied prediction)


@dataclass(frozen=True)
class Style:
    """How a map is drawn (the run's ``--overlay``, ``--cmap`` and picture size).

    Attributes:
        overlay: "side-by-side" (the input as it is, then the map over a grey copy of it) or
            "blend" (the map over a grey copy only). Both colour the map over grey, so a blue
            object under a red peak cannot read as purple.
        cmap: Colour map of non-negative maps; signed maps always use the diverging rdbu_r
            (white at 0, red for, blue against).
        max_side: Longest side of the drawn input, in px (bigger inputs are shrunk).
        min_side: Smaller inputs are enlarged to at least this.
    """

    overlay: str = "side-by-side"
    cmap: str = "turbo"
    max_side: int = 512
    min_side: int = 320


@dataclass(frozen=True)
class Scale:
    """How map values become colours: [vmin, vmax] onto the colour map."""

    vmin: float
    vmax: float
    cmap: str
    clipped: bool  # values beyond [vmin, vmax] are saturated (shown as ≥ / ≤ on the bar)


def choose_scale(amap: np.ndarray, signed: bool, cmap: str = "turbo") -> Scale:
    """Sequential 0..max for non-negative maps; symmetric around 0 for signed ones.

    Signed maps (gradients, IG) have a few extreme pixels; like Captum's visualiser we clip
    at the 99.5th percentile of |value| so the rest is not washed out.
    """
    finite = amap[np.isfinite(amap)]
    if finite.size == 0:
        return Scale(0.0, 1.0, cmap, False)
    if not signed and finite.min() >= 0:
        top = float(finite.max())
        return Scale(0.0, top if top > 0 else 1.0, cmap, False)
    m = float(np.percentile(np.abs(finite), 99.5))
    m = m if m > 0 else float(np.abs(finite).max()) or 1.0
    return Scale(-m, m, "rdbu_r", bool(np.abs(finite).max() > m))


def fixed_scale(amap: np.ndarray, signed: bool, vmin: float, vmax: float, cmap: str = "turbo") -> Scale:
    """A scale fixed for the whole run (``--scale run``), marked clipped when this map goes beyond it."""
    finite = amap[np.isfinite(amap)]
    diverging = signed or vmin < 0
    clipped = bool(finite.size and (finite.max() > vmax or finite.min() < vmin))
    return Scale(vmin, vmax, "rdbu_r" if diverging else cmap, clipped)


def _fmt(v: float) -> str:
    return f"{v:.3g}".replace("-", "−")


WIDEST_LABEL = "≥−8.88e−88"  # the colour bar's widest tick label: the bar's slot is always this wide


def to_image_grid(amap: np.ndarray, box: tuple[float, float, float, float], size: tuple[int, int]) -> np.ndarray:
    """Resample a map in model-input pixels onto an image's ``size`` = (h, w) grid, over ``box``.

    Bilinear (PIL float mode, its separable ``resize`` with a source box: 4x faster than the
    equivalent affine ``transform`` at 672², values equal to 1e-7 when enlarging, antialiased
    when shrinking); 0 outside the pixels wholly inside the box. ``box`` = (left, top, width,
    height) of the model input in the image's pixels.
    """
    h, w = size
    out = np.zeros((h, w), dtype=np.float32)
    rows, cols = _inside_slices(box, size)
    if rows.stop <= rows.start or cols.stop <= cols.start:
        return out
    left, top, bw, bh = box
    sx, sy = amap.shape[1] / bw, amap.shape[0] / bh
    source = ((cols.start - left) * sx, (rows.start - top) * sy, (cols.stop - left) * sx, (rows.stop - top) * sy)
    resized = Image.fromarray(np.nan_to_num(amap).astype(np.float32), "F").resize(
        (cols.stop - cols.start, rows.stop - rows.start), Image.Resampling.BILINEAR, box=source)
    out[rows, cols] = np.asarray(resized)
    return out


def _inside_slices(box: tuple[float, float, float, float], size: tuple[int, int]) -> tuple[slice, slice]:
    """(rows, columns) of the image pixels wholly inside ``box``."""
    h, w = size
    left, top, bw, bh = box
    return (slice(max(0, int(np.ceil(top))), min(h, int(np.floor(top + bh)))),
            slice(max(0, int(np.ceil(left))), min(w, int(np.floor(left + bw)))))


def box_mask(box: tuple[float, float, float, float], size: tuple[int, int]) -> np.ndarray:
    """Bool (h, w): the image pixels wholly inside ``box`` (what the model saw)."""
    inside = np.zeros(size, dtype=bool)
    inside[_inside_slices(box, size)] = True
    return inside


# Rendering works in integers on uint8/uint16 planes: the float32 version of grey + overlay took
# 2.8 ms of a 256² photo's 5.9 ms render and 25 ms for a 1024² one (bench/writer_bench.py);
# results differ from the float formulas by at most 1 in 255 (tests/render/test_render.py).
_LUMA = np.array([77, 150, 29], dtype=np.uint16)  # 0.299, 0.587, 0.114 in 1/256ths (sum 256)
_DIM = np.round(np.arange(256) * 0.35 + 255 * 0.15).astype(np.uint8)  # outside the model's view


def grey(original: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 -> (h, w) uint8 light grey (luma * 0.75 + 51): the map's colours are
    then the only colours."""
    lum = original[..., 0] * _LUMA[0]  # uint16: at most 255 * 256
    lum += original[..., 1] * _LUMA[1]
    lum += original[..., 2] * _LUMA[2]
    # luma * 0.75 + 51, rounded: (lum256 * 3 + 4 * (51 * 256 + 128)) / 1024 in uint32
    out = lum.astype(np.uint32)
    out *= 3
    out += 4 * (51 * 256 + 128)
    out >>= 10
    return out.astype(np.uint8)


def overlay(original: np.ndarray, amap: np.ndarray | None, box: tuple[float, float, float, float], scale: Scale | None,
            alpha: float = 0.5) -> np.ndarray:
    """Blend the map's colours over ``original`` inside ``box``; dim what the model did not see.

    Args:
        original: (h, w, 3) or (h, w) (grey) uint8.
        amap: (H, W) float map in model-input pixels; None draws no colours (a flat map).
        box: (left, top, width, height) of the model input in ``original``'s pixels.

    Returns:
        (h, w, 3) uint8.
    """
    h, w = original.shape[:2]
    base = original if original.ndim == 3 else original[..., None]
    out = np.empty((h, w, 3), dtype=np.uint8)
    out[:] = _DIM[base]  # everything dimmed, then the model's view redrawn
    rows, cols = _inside_slices(box, (h, w))
    inner = base[rows, cols]
    if amap is None or scale is None or inner.size == 0:
        out[rows, cols] = inner
        return out
    values = to_image_grid(amap, box, (h, w))[rows, cols]
    norm = (values - scale.vmin) / (scale.vmax - scale.vmin)
    colours = colormap.apply(norm, scale.cmap)
    if scale.cmap == "rdbu_r":  # signed: near-zero stays see-through, strong values opaque
        a = np.abs(values) * (0.85 * 256 / max(abs(scale.vmax), abs(scale.vmin)))
        weight = np.minimum(a, 0.85 * 256).round().astype(np.uint16)[..., None]  # alpha in 1/256ths
    else:
        weight = np.uint16(round(alpha * 256))
    blend = colours.astype(np.uint16) * weight
    blend += inner * (256 - weight)
    blend += 128
    blend >>= 8
    out[rows, cols] = blend
    return out


def display_factor(h: int, w: int, style: Style) -> tuple[float, Image.Resampling]:
    """How much the input is scaled for display, and with which filter.

    Tiny inputs (at most half of ``min_side``) are enlarged by a whole factor with nearest
    neighbours; others below ``min_side`` smoothly; above ``max_side`` shrunk with Lanczos.
    """
    side = max(h, w)
    if side > style.max_side:
        return style.max_side / side, Image.Resampling.LANCZOS
    if side >= style.min_side:
        return 1.0, Image.Resampling.NEAREST
    f = style.min_side / side
    if f >= 2:
        return float(math.ceil(f)), Image.Resampling.NEAREST
    return f, Image.Resampling.BICUBIC


def wrap(text: str, fnt, width: float) -> list[str]:
    """``text`` on lines at most ``width`` px wide: broken at " · " or spaces, a too-long word
    cut by characters; nothing is dropped."""
    if not text:
        return []
    if fnt.getlength(text) <= width:  # most lines fit: one measurement instead of one per word
        return [text]
    lines, cur = [], ""
    for word in text.split(" "):
        trial = f"{cur} {word}" if cur else word
        if fnt.getlength(trial) <= width:
            cur = trial
            continue
        if cur:
            lines.append(cur)
        cur = ""
        for ch in word:  # a word wider than the line (a long label): cut by characters
            if cur and fnt.getlength(cur + ch) > width:
                lines.append(cur)
                cur = ""
            cur += ch
    if cur:
        lines.append(cur)
    return [line.removesuffix(" ·") for line in lines]


def render_panel(original: np.ndarray, amap: np.ndarray, box: tuple[float, float, float, float], *,
                 signed: bool, title: str, lines: tuple[str, ...] = (), warnings: tuple[str, ...] = (),
                 peak_xy: tuple[float, float] | None = None, style: Style = Style(), scale: Scale | None = None,
                 flat: bool = False) -> Image.Image:
    """The full picture: header lines, the input (and the map over it), a colour bar.

    Args:
        original: (h, w, 3) uint8, the input as decoded.
        amap: (H, W) the map in model-input pixels.
        box: (left, top, width, height) of the model input in ``original``'s pixels.
        title: The first line (bold); ``lines`` follow in grey, ``warnings`` in orange. Every
            line wraps to the picture's width, which depends only on the input and ``style``.
        peak_xy: Where to mark the peak, in ``original``'s pixels (None: no marker).
        scale: A fixed colour scale (``--scale run``); None: the map's own.
        flat: The map is degenerate: drawn without colours and without a scale.
    """
    h, w = original.shape[:2]
    f, resample = display_factor(h, w, style)
    if f != 1.0:
        size = (max(1, round(w * f)), max(1, round(h * f)))
        # Shrinking: a box reduction by the whole factor first, then Lanczos for the rest (PIL's
        # reducing_gap=1): 1024 -> 512 px in 1.5 ms instead of 14 ms for Lanczos all the way,
        # and the box average is itself an antialiasing filter.
        original = np.asarray(Image.fromarray(original).resize(size, resample, reducing_gap=1.0 if f < 1 else None))
        box = tuple(v * f for v in box)
        peak_xy = (peak_xy[0] * f, peak_xy[1] * f) if peak_xy else None
        h, w = original.shape[:2]
    scale = None if flat else scale or choose_scale(amap, signed, style.cmap)
    mapped = Image.fromarray(overlay(grey(original), None if flat else amap, box, scale))
    fs = int(np.clip(round(w / 22), 14, 22))
    font, small = load_font(fs, bold=True), load_font(max(12, fs - 3))
    pad = max(8, fs // 2)
    if peak_xy is not None and not flat:
        _mark(mapped, peak_xy, max(5, min(w, h) // 30))
    panels = [Image.fromarray(original), mapped] if style.overlay == "side-by-side" else [mapped]
    bar_slot = 14 + 6 + _label_width(small)
    width = pad + len(panels) * (w + pad) + bar_slot + pad
    text_w = width - 2 * pad
    rows = [(s, font, "black") for s in wrap(title, font, text_w)]
    rows += [(s, small, (90, 90, 90)) for line in lines for s in wrap(line, small, text_w)]
    rows += [(s, small, WARN) for line in warnings for s in wrap(line, small, text_w)]
    header = pad + sum(round(fnt.size * 1.3) for _, fnt, _ in rows) + pad // 2
    bar_h = max(h, 5 * fs)
    canvas = Image.new("RGB", (width, header + bar_h + pad), "white")
    draw = ImageDraw.Draw(canvas)
    y = pad
    for text, fnt, colour in rows:
        draw.text((pad, y), text, fill=colour, font=fnt)
        y += round(fnt.size * 1.3)
    x = pad
    for p in panels:
        canvas.paste(p, (x, header))
        x += w + pad
    if scale is not None:
        colour_bar(canvas, draw, (x, header), bar_h, scale, small)
    else:
        draw.text((x, header), "no colour\nscale:\nflat map", fill=WARN, font=small)
    return canvas


@functools.lru_cache(maxsize=64)
def _label_width(font) -> int:
    """Width of the colour bar's widest label in ``font`` (fonts are cached, so is this)."""
    return int(np.ceil(font.getlength(WIDEST_LABEL)))


def text_width(text: str, font) -> int:
    return int(np.ceil(font.getlength(text))) if text else 0


def font_pair(width: int):
    """(title font, small font) sized for a picture ``width`` px wide."""
    fs = int(np.clip(max(width, 256) / 28, 12, 22))
    return load_font(fs), load_font(max(11, fs - 3))


def _mark(img: Image.Image, xy: tuple[float, float], r: int) -> None:
    d = ImageDraw.Draw(img)
    x, y = xy
    d.ellipse((x - r, y - r, x + r, y + r), outline="white", width=max(2, r // 3))
    d.ellipse((x - r - 1, y - r - 1, x + r + 1, y + r + 1), outline="black", width=1)


@functools.lru_cache(maxsize=256)
def _ramp(height: int, cmap: str) -> Image.Image:
    """The colour bar's 12 px wide ramp, top = vmax (the same for every picture of a size: made once)."""
    return Image.fromarray(colormap.apply(np.linspace(1, 0, height)[:, None].repeat(12, 1), cmap))


def colour_bar(canvas: Image.Image, draw: ImageDraw.ImageDraw, at: tuple[int, int], height: int, scale: Scale, font) -> None:
    x0, y0 = at
    bh = min(height, canvas.height - y0 - 2)
    canvas.paste(_ramp(bh, scale.cmap), (x0, y0))
    draw.rectangle((x0, y0, x0 + 11, y0 + bh - 1), outline=(60, 60, 60))
    ticks = [(scale.vmax, 0), ((scale.vmin + scale.vmax) / 2, bh // 2), (scale.vmin, bh - 1)]
    for i, (v, dy) in enumerate(ticks):
        label = ("≥" if i == 0 and scale.clipped else "≤" if i == 2 and scale.clipped and scale.vmin < 0 else "") + _fmt(v)
        ty = min(max(y0 + dy - font.size // 2, y0), y0 + bh - font.size)
        draw.line((x0 + 12, y0 + dy, x0 + 15, y0 + dy), fill="black")
        draw.text((x0 + 17, ty), label, fill="black", font=font)
