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
from xai_cli.render.fonts import draw_line
from xai_cli.render.fonts import length as text_length
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
    finite = amap if np.isfinite(amap).all() else amap[np.isfinite(amap)]  # (a copy only where needed)
    if finite.size == 0:
        return Scale(0.0, 1.0, cmap, False)
    if not signed and finite.min() >= 0:
        top = float(finite.max())
        return Scale(0.0, top if top > 0 else 1.0, cmap, False)
    size = np.abs(finite)
    top = float(size.max())
    m = float(np.percentile(size, 99.5, overwrite_input=True))  # ``size`` is ours: no second copy
    m = m if m > 0 else top or 1.0
    return Scale(-m, m, "rdbu_r", bool(top > m))


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
    out = np.zeros(size, dtype=np.float32)
    rows, cols = _inside_slices(box, size)
    if rows.stop > rows.start and cols.stop > cols.start:
        out[rows, cols] = _resample_inside(amap, box, rows, cols)
    return out


def _resample_inside(amap: np.ndarray, box: tuple[float, float, float, float], rows: slice, cols: slice) -> np.ndarray:
    """``to_image_grid`` over the pixels ``rows`` x ``cols`` (inside the box) only: (rows, cols) float32."""
    left, top, bw, bh = box
    sx, sy = amap.shape[1] / bw, amap.shape[0] / bh
    source = ((cols.start - left) * sx, (rows.start - top) * sy, (cols.stop - left) * sx, (rows.stop - top) * sy)
    amap = np.ascontiguousarray(amap, dtype=np.float32)
    if not np.isfinite(amap).all():
        amap = np.nan_to_num(amap)
    resized = Image.fromarray(amap, "F").resize(
        (cols.stop - cols.start, rows.stop - rows.start), Image.Resampling.BILINEAR, box=source)
    return np.asarray(resized)


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
_DIM3 = np.repeat(_DIM[:, None], 3, axis=1)  # grey level -> its dimmed (r, g, b)
_SIGNED_ALPHA = 0.85  # a signed map's opacity at its scale's ends


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
    if original.ndim == 2:
        return grey_panel(original, amap, box, scale, alpha, np.empty((h, w, 3), np.uint8))
    rows, cols = _inside_slices(box, (h, w))
    out = _DIM.take(original)
    inner = original[rows, cols]
    if amap is None or scale is None or inner.size == 0:
        out[rows, cols] = inner
    else:
        out[rows, cols] = _coloured(inner, amap, box, rows, cols, scale, alpha)
    return out


def grey_panel(grey: np.ndarray, amap: np.ndarray | None, box: tuple[float, float, float, float], scale: Scale | None,
               alpha: float, out: np.ndarray) -> np.ndarray:
    """``overlay`` of a grey input ((h, w) uint8) written into ``out`` ((h, w, 3) uint8, e.g. the
    picture's panel), each pixel once: the frame around the model's view dimmed, then the view
    coloured (or grey where there is no map). Writing into the picture saves drawing the panel
    and copying it (0.25 ms at 320²)."""
    rows, cols = _inside_slices(box, grey.shape)
    r0, r1 = rows.start, max(rows.start, rows.stop)
    c0, c1 = cols.start, max(cols.start, cols.stop)
    for frame in (np.s_[:r0], np.s_[r1:], np.s_[r0:r1, :c0], np.s_[r0:r1, c1:]):
        out[frame] = _DIM3.take(grey[frame], axis=0)
    if r1 > r0 and c1 > c0:
        inner = grey[r0:r1, c0:c1]
        if amap is not None and scale is not None:
            out[r0:r1, c0:c1] = _coloured_grey(inner, amap, box, rows, cols, scale, alpha)
        else:
            out[r0:r1, c0:c1] = inner[..., None]
    return out


def _colour_index(values: np.ndarray, scale: Scale) -> np.ndarray:
    """Map values -> colour-table rows (uint8), exactly as ``colormap.apply`` picks them."""
    idx = np.subtract(values, scale.vmin)  # float32, like (values - vmin) / (vmax - vmin) in one buffer
    span = scale.vmax - scale.vmin
    idx /= span
    if not (0 < span < np.inf) or not np.isfinite(idx).all():  # NaN -> 0 and ±inf -> the ends, as apply does
        np.nan_to_num(idx, copy=False, nan=0.0)
    np.clip(idx, 0, 1, out=idx)
    idx *= 255
    np.rint(idx, out=idx)
    return idx.astype(np.uint8)


def _coloured(inner: np.ndarray, amap: np.ndarray, box, rows: slice, cols: slice, scale: Scale,
              alpha: float) -> np.ndarray:
    """The box's pixels with the map's colours over ``inner`` ((h, w, c) uint8), blended per pixel."""
    values = _resample_inside(amap, box, rows, cols)
    colours = colormap.LUTS[scale.cmap].take(_colour_index(values, scale), axis=0)
    if scale.cmap == "rdbu_r":  # signed: near-zero stays see-through, strong values opaque
        a = np.abs(values) * (_SIGNED_ALPHA * 256 / max(abs(scale.vmax), abs(scale.vmin)))
        weight = np.minimum(a, _SIGNED_ALPHA * 256).round().astype(np.uint16)[..., None]  # alpha in 1/256ths
    else:
        weight = np.uint16(round(alpha * 256))
    blend = colours.astype(np.uint16) * weight
    blend += inner * (256 - weight)
    blend += 128
    blend >>= 8
    return blend.astype(np.uint8)


def _coloured_grey(inner: np.ndarray, amap: np.ndarray, box, rows: slice, cols: slice, scale: Scale,
                   alpha: float) -> np.ndarray:
    """``_coloured`` over a grey base ((h, w) uint8): one look-up per pixel in a table of every
    (colour row, grey level) pair, made once per colour map (``_blend_table``).

    The per-pixel blend (colour look-up, opacity, three passes on uint16 planes) took about
    1 ms of a 256² photo's picture, the table look-up 0.3 ms (thread CPU; 1.19 against 0.62 ms
    for a signed 280² box, resampling included). A non-negative map's pixels are the per-pixel
    blend's exactly. A signed map's opacity comes from its colour's row instead of its own
    value, rounded in floating point: within 1 level of the float formula, like the per-pixel
    blend, and about a quarter of its pixels one level off that blend's (a sweep of every
    value and grey level finds rare ones two apart: the two roundings on either side of the
    float value; tests/render). A diverging scale that is not symmetric around 0 (never made
    by ``choose_scale`` or ``--scale run``) takes the per-pixel blend.
    """
    signed = scale.cmap == "rdbu_r"
    if signed and scale.vmin != -scale.vmax:
        return _coloured(inner[..., None], amap, box, rows, cols, scale, alpha)
    index = _colour_index(_resample_inside(amap, box, rows, cols), scale).astype(np.uint16)
    index <<= 8
    index |= inner
    return _blend_table(scale.cmap, signed, alpha).take(index, axis=0)


@functools.lru_cache(maxsize=16)
def _blend_table(cmap: str, signed: bool, alpha: float) -> np.ndarray:
    """(65536, 3) uint8: row ``idx * 256 + g`` = colour ``idx`` of ``cmap`` over grey level ``g``.

    Non-negative maps: the per-pixel blend's integer arithmetic (alpha in 1/256ths, rounded
    half up), so the same pixels. Signed maps: row ``idx`` of a symmetric scale [-m, m] stands
    for the value m * (2 idx / 255 - 1), whose opacity is blended in floating point and
    rounded: the opacity is off by at most 0.85/255 from the pixel's own value's, so each
    pixel is within 1 level of the float formula.
    """
    colours = colormap.LUTS[cmap].astype(np.float64)[:, None, :]  # (256, 1, 3)
    g = np.arange(256, dtype=np.float64)[None, :, None]
    if signed:
        a = np.abs(np.arange(256) * (2 / 255) - 1)[:, None, None] * _SIGNED_ALPHA
        table = np.floor(g + (colours - g) * a + 0.5)
    else:
        weight = round(alpha * 256)
        table = np.floor((colours * weight + g * (256 - weight) + 128) / 256)
    table = np.ascontiguousarray(np.broadcast_to(table, (256, 256, 3)), dtype=np.uint8).reshape(65536, 3)
    table.flags.writeable = False
    return table


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
    if text_length(fnt, text) <= width:  # most lines fit: one (cached) measurement instead of one per word
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


@dataclass(frozen=True, eq=False)
class Display:
    """One input as its pictures show it, shared by every map of that input (``prepare``).

    Attributes:
        photo: (h, w, 3) uint8, the input at display size.
        grey: (h, w) uint8, its light grey copy (``grey``): a map's colours go over it.
        box: (left, top, width, height) of the model input in ``photo``'s pixels.
        factor: The display size over the input's own.
    """

    photo: np.ndarray
    grey: np.ndarray
    box: tuple[float, float, float, float]
    factor: float


def prepare(original: np.ndarray, box: tuple[float, float, float, float], style: Style = Style()) -> Display:
    """``original`` ((h, w, 3) uint8) at display size, with its grey copy: what every picture of
    that input starts from. Make it once per input and hand it to each of its maps'
    ``panel_pixels``: enlarging a 224² photo to 320 px is 0.18 ms (``enlarge_bicubic``)."""
    h, w = original.shape[:2]
    f, resample = display_factor(h, w, style)
    if f != 1.0:
        size = (max(1, round(w * f)), max(1, round(h * f)))
        if resample == Image.Resampling.BICUBIC:
            original = enlarge_bicubic(original, size)
        else:
            # Shrinking: a box reduction by the whole factor first, then Lanczos for the rest (PIL's
            # reducing_gap=1): 1024 -> 512 px in 1.5 ms instead of 14 ms for Lanczos all the way,
            # and the box average is itself an antialiasing filter.
            original = np.asarray(Image.fromarray(original).resize(size, resample, reducing_gap=1.0 if f < 1 else None))
        box = tuple(v * f for v in box)
    g = grey(original)
    for a in (original, g):
        a.flags.writeable = False  # shared by an input's pictures (and by writer threads)
    return Display(original, g, box, f)


def enlarge_bicubic(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w, 3) uint8 enlarged to ``size`` = (w, h): PIL's bicubic (a = -0.5, its weights and
    8-bit rounding) computed by torch's vectorised uint8 kernel: under 1.5 % of values differ
    from PIL's, by 1 or 2 levels (tests/render/test_panel_pixels.py).

    PIL's own resize was the largest part of drawing a 224² photo's pictures: 1.36 ms of thread
    CPU for 224² -> 320², this 0.18 ms (AMD EPYC; the kernel starts no threads at these sizes,
    so it does not compete with the model's). The photo goes in channels-last without a copy
    and comes back the same way: the public ``interpolate`` returns channels-first, and turning
    that back into (h, w, 3) cost 0.35 ms, so the op's ``out=`` form is called where this torch
    has it.
    """
    import torch

    src = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)[None]  # (1, 3, h, w), channels-last
    out = torch.empty((1, 3, size[1], size[0]), dtype=torch.uint8, memory_format=torch.channels_last)
    try:
        torch.ops.aten._upsample_bicubic2d_aa.out(src, [size[1], size[0]], False, None, None, out=out)
    except (AttributeError, RuntimeError, TypeError):  # a torch without this form of the op
        out = torch.nn.functional.interpolate(src, size=(size[1], size[0]), mode="bicubic", antialias=True)
    return np.ascontiguousarray(out[0].permute(1, 2, 0).numpy())


def render_panel(original: np.ndarray, amap: np.ndarray, box: tuple[float, float, float, float], *,
                 signed: bool, title: str, lines: tuple[str, ...] = (), warnings: tuple[str, ...] = (),
                 peak_xy: tuple[float, float] | None = None, style: Style = Style(), scale: Scale | None = None,
                 flat: bool = False, display: Display | None = None) -> Image.Image:
    """The full picture: header lines, the input (and the map over it), a colour bar.

    ``panel_pixels`` as a PIL image; the arguments are its.
    """
    return Image.fromarray(panel_pixels(original, amap, box, signed=signed, title=title, lines=lines,
                                        warnings=warnings, peak_xy=peak_xy, style=style, scale=scale, flat=flat,
                                        display=display))


def panel_pixels(original: np.ndarray, amap: np.ndarray, box: tuple[float, float, float, float], *,
                 signed: bool, title: str, lines: tuple[str, ...] = (), warnings: tuple[str, ...] = (),
                 peak_xy: tuple[float, float] | None = None, style: Style = Style(), scale: Scale | None = None,
                 flat: bool = False, display: Display | None = None) -> np.ndarray:
    """The full picture, (H, W, 3) uint8: header lines, the input (and the map over it), a colour bar.

    Drawn on a numpy canvas, each text line from its cached mask (``fonts.draw_line``), the
    same pixels as drawing it with PIL's ``ImageDraw`` (tests/render/test_pictures.py), and
    handed to the PNG encoder without a copy.

    Args:
        original: (h, w, 3) uint8, the input as decoded.
        amap: (H, W) the map in model-input pixels.
        box: (left, top, width, height) of the model input in ``original``'s pixels.
        title: The first line (bold); ``lines`` follow in grey, ``warnings`` in orange. Every
            line wraps to the picture's width, which depends only on the input and ``style``.
        peak_xy: Where to mark the peak, in ``original``'s pixels (None: no marker).
        scale: A fixed colour scale (``--scale run``); None: the map's own.
        flat: The map is degenerate: drawn without colours and without a scale.
        display: ``prepare(original, box, style)``, made once for all of an input's maps
            (None: made here).
    """
    d = display or prepare(original, box, style)
    h, w = d.grey.shape
    if peak_xy and d.factor != 1.0:
        peak_xy = (peak_xy[0] * d.factor, peak_xy[1] * d.factor)
    scale = None if flat else scale or choose_scale(amap, signed, style.cmap)
    fs = int(np.clip(round(w / 22), 14, 22))
    sm = max(12, fs - 3)
    font, small = load_font(fs, bold=True), load_font(sm)
    pad = max(8, fs // 2)
    panels = 2 if style.overlay == "side-by-side" else 1
    bar_slot = 14 + 6 + _label_width(small)
    width = pad + panels * (w + pad) + bar_slot + pad
    text_w = width - 2 * pad
    rows = [(s, fs, True, (0, 0, 0)) for s in wrap(title, font, text_w)]
    rows += [(s, sm, False, (90, 90, 90)) for line in lines for s in wrap(line, small, text_w)]
    rows += [(s, sm, False, WARN) for line in warnings for s in wrap(line, small, text_w)]
    header = pad + sum(round(size * 1.3) for _, size, _, _ in rows) + pad // 2
    bar_h = max(h, 5 * fs)
    canvas = np.full((header + bar_h + pad, width, 3), 255, np.uint8)
    y = pad
    for text, size, bold, ink in rows:
        draw_line(canvas, (pad, y), text, size, bold, ink)
        y += round(size * 1.3)
    x = pad
    if panels == 2:
        canvas[header:header + h, x:x + w] = d.photo
        x += w + pad
    mapped = grey_panel(d.grey, amap, d.box, scale, 0.5, canvas[header:header + h, x:x + w])
    if peak_xy is not None and not flat:
        _mark_pixels(mapped, peak_xy, max(5, min(w, h) // 30))
    x += w + pad
    if scale is not None:
        _bar_pixels(canvas, (x, header), bar_h, scale, sm)
    else:  # the one multi-line text: PIL's own line spacing, on the corner it is drawn in
        corner = Image.fromarray(canvas[header:, x:])
        ImageDraw.Draw(corner).text((0, 0), "no colour\nscale:\nflat map", fill=WARN, font=small)
        canvas[header:, x:] = np.asarray(corner)
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


def _mark_pixels(panel: np.ndarray, xy: tuple[float, float], r: int) -> None:
    """``_mark`` on a numpy panel, the same pixels.

    PIL truncates an ellipse's corners to whole pixels and ``r`` is whole, so away from the
    panel's top and left edges the marker is one drawing (``_marker``) moved by whole pixels
    (0.02 ms instead of 0.13 for drawing it); near them (where truncation rounds up) PIL draws
    on the few pixels around the peak, whose crop starts at a whole pixel and stops at the
    panel's edges, where the panel's own drawing would be clipped.
    """
    h, w = panel.shape[:2]
    x, y = xy
    if x - r - 1 >= 0 and y - r - 1 >= 0:
        x0, y0 = int(x - r - 1), int(y - r - 1)
        white, black = _marker(r)
        region = panel[y0:y0 + white.shape[0], x0:x0 + white.shape[1]]
        rh, rw = region.shape[:2]
        region[white[:rh, :rw]] = 255
        region[black[:rh, :rw]] = 0
        return
    x0, y0 = max(0, math.floor(x - r - 1) - 1), max(0, math.floor(y - r - 1) - 1)
    x1, y1 = min(w, math.ceil(x + r + 1) + 2), min(h, math.ceil(y + r + 1) + 2)
    if x1 <= x0 or y1 <= y0:
        return
    crop = Image.fromarray(panel[y0:y1, x0:x1])
    _mark(crop, (x - x0, y - y0), r)
    panel[y0:y1, x0:x1] = np.asarray(crop)


@functools.lru_cache(maxsize=64)
def _marker(r: int) -> tuple[np.ndarray, np.ndarray]:
    """(white pixels, black pixels) of ``_mark`` with its outer corner at (0, 0)."""
    side = 2 * r + 3
    img = Image.new("RGB", (side, side), (1, 2, 3))  # a colour the marker never has
    _mark(img, (r + 1, r + 1), r)
    drawn = np.asarray(img)
    return (drawn == 255).all(axis=2), (drawn == 0).all(axis=2)


@functools.lru_cache(maxsize=256)
def _ramp_pixels(height: int, cmap: str) -> np.ndarray:
    """The colour bar's 12 px wide ramp, top = vmax (the same for every picture of a size: made once)."""
    ramp = colormap.apply(np.linspace(1, 0, height)[:, None].repeat(12, 1), cmap)
    ramp.flags.writeable = False
    return ramp


def _ticks(scale: Scale, y0: int, bh: int, size: int) -> list[tuple[int, str, int]]:
    """The colour bar's ticks: (row of the tick mark, label, row of the label's pen)."""
    ticks = [(scale.vmax, 0), ((scale.vmin + scale.vmax) / 2, bh // 2), (scale.vmin, bh - 1)]
    out = []
    for i, (v, dy) in enumerate(ticks):
        label = ("≥" if i == 0 and scale.clipped else "≤" if i == 2 and scale.clipped and scale.vmin < 0 else "") + _fmt(v)
        out.append((y0 + dy, label, min(max(y0 + dy - size // 2, y0), y0 + bh - size)))
    return out


def colour_bar(canvas: Image.Image, draw: ImageDraw.ImageDraw, at: tuple[int, int], height: int, scale: Scale, font) -> None:
    x0, y0 = at
    bh = min(height, canvas.height - y0 - 2)
    canvas.paste(Image.fromarray(_ramp_pixels(bh, scale.cmap)), (x0, y0))
    draw.rectangle((x0, y0, x0 + 11, y0 + bh - 1), outline=(60, 60, 60))
    for ty_mark, label, ty in _ticks(scale, y0, bh, font.size):
        draw.line((x0 + 12, ty_mark, x0 + 15, ty_mark), fill="black")
        draw.text((x0 + 17, ty), label, fill="black", font=font)


def _bar_pixels(canvas: np.ndarray, at: tuple[int, int], height: int, scale: Scale, size: int) -> None:
    """``colour_bar`` on a numpy canvas, the same pixels (``size``: the labels' regular font)."""
    x0, y0 = at
    bh = min(height, canvas.shape[0] - y0 - 2)
    canvas[y0:y0 + bh, x0:x0 + 12] = _ramp_pixels(bh, scale.cmap)
    frame = canvas[y0:y0 + bh, x0:x0 + 12]  # the ramp's 1 px outline
    frame[[0, -1]] = 60
    frame[:, [0, -1]] = 60
    for ty_mark, label, ty in _ticks(scale, y0, bh, size):
        canvas[ty_mark, x0 + 12:x0 + 16] = 0
        draw_line(canvas, (x0 + 17, ty), label, size, False, (0, 0, 0))
