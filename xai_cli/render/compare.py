"""The compare picture: A | B | B - A for one input, read at a glance.

A and B share one colour scale (so "B is hotter in the corner" is visible, not an artefact of
two auto-scaled bars), the difference has its own diverging scale centred on 0, and each
panel is captioned with its model's prediction. Built from :mod:`xai_cli.render.heatmap`'s
pieces; pure numpy/PIL, never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from xai_cli.render import tokens
from xai_cli.render.heatmap import (
    Scale,
    box_mask,
    choose_scale,
    colour_bar,
    overlay,
    text_width,
    to_image_grid,
)

Box = tuple[float, float, float, float]
MIN_PANEL_SIDE = 192  # small inputs (the 96 px demo digits) are enlarged so captions fit


@dataclass(frozen=True)
class Side:
    """One model's half of a comparison.

    Attributes:
        model: Name shown in the caption (``demo-digits``).
        label: The predicted class's name.
        prob: The predicted class's probability.
        amap: ``(H, W)`` attribution map in that model's input pixels.
        box: (left, top, width, height) of that model's input in the original image's pixels.
    """

    model: str
    label: str
    prob: float
    amap: np.ndarray
    box: Box

    def caption(self, tag: str) -> tuple[str, str]:
        return f"{tag}: {self.model}", f"predicts {self.label} ({self.prob:.1%})"


def render_compare(original: np.ndarray, a: Side, b: Side, *, method: str, signed: bool = False,
                   title: str = "", max_side: int = 1024) -> Image.Image:
    """The A | B | B - A picture of one input.

    Args:
        original: ``(h, w, 3)`` uint8 image the maps are drawn over.
        a: Model (or method) A's prediction and map.
        b: B's.
        method: Explanation method name(s), shown in the title (``gradcam``, ``gradcam vs ig``).
        signed: The maps are signed (IG, saliency with sign): A and B get a symmetric scale.
        title: Leading text of the title (e.g. the input's file name).
        max_side: Cap on each panel's longest side, in pixels.

    Returns:
        The picture; the difference is taken on the original's pixel grid, inside the part
        both models saw (0 elsewhere).
    """
    original, boxes = _panel_size(original, (a.box, b.box), max_side)
    h, w = original.shape[:2]
    grid_a = to_image_grid(a.amap, boxes[0], (h, w))
    grid_b = to_image_grid(b.amap, boxes[1], (h, w))
    seen = box_mask(boxes[0], (h, w)) & box_mask(boxes[1], (h, w))
    diff = np.where(seen, grid_b - grid_a, 0.0)
    shared, diff_scale = compare_scales(a.amap, b.amap, diff, signed)
    panels = [
        (overlay(original, a.amap, boxes[0], shared), a.caption("A")),
        (overlay(original, b.amap, boxes[1], shared), b.caption("B")),
        (overlay(original, diff, (0.0, 0.0, float(w), float(h)), diff_scale), ("B - A", "red: B higher, blue: A")),
    ]
    return _compose(panels, (shared, diff_scale), f"{title}  {method}: A | B | B - A".strip())


def compare_scales(map_a: np.ndarray, map_b: np.ndarray, diff: np.ndarray, signed: bool) -> tuple[Scale, Scale]:
    """(scale shared by A and B, symmetric diverging scale of ``diff``), as ``choose_scale`` picks them."""
    shared = choose_scale(np.concatenate([np.ravel(map_a), np.ravel(map_b)]), signed)
    return shared, choose_scale(diff, signed=True)


def _panel_size(original: np.ndarray, boxes: tuple[Box, Box], max_side: int) -> tuple[np.ndarray, list[Box]]:
    """Scale the image (and boxes) so its longest side is in [MIN_PANEL_SIDE, max_side]."""
    h, w = original.shape[:2]
    f = min(max(1.0, MIN_PANEL_SIDE / max(h, w)), max_side / max(h, w))
    if f == 1.0:
        return original, list(boxes)
    if f > 1:  # enlarge by whole pixels: crisp, and the digit's strokes stay as drawn
        f = float(int(np.ceil(f)))
        resample = Image.Resampling.NEAREST
    else:
        resample = Image.Resampling.LANCZOS
    size = (max(1, round(w * f)), max(1, round(h * f)))
    scaled = np.asarray(Image.fromarray(original).resize(size, resample))
    return scaled, [tuple(v * f for v in box) for box in boxes]


def _compose(panels: list[tuple[np.ndarray, tuple[str, str]]], scales: tuple, title: str) -> Image.Image:
    h, w = panels[0][0].shape[:2]
    # DejaVu where available (the token pictures' font): it has the colour bar's "≥" and "≤".
    fs = int(np.clip(w / 16, 11, 22))
    font, small = tokens.font(fs), tokens.font(max(10, fs - 2))
    pad, bar_w = max(6, fs // 2), fs * 5
    caption_h = 2 * (small.size + 3)
    header = 2 * pad + fs
    top = header + caption_h
    slots = [w + pad, w + bar_w + pad, w + bar_w]  # a colour bar after B (shared) and after B - A
    width = max(pad + sum(slots) + pad, text_width(title, font) + 2 * pad)
    canvas = Image.new("RGB", (width, top + max(h, 5 * fs) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((pad, pad), title, fill="black", font=font)
    x = pad
    for i, (picture, (line1, line2)) in enumerate(panels):
        draw.text((x, header), _fit(line1, small, w), fill="black", font=small)
        draw.text((x, header + small.size + 3), _fit(line2, small, w), fill=(90, 90, 90), font=small)
        canvas.paste(Image.fromarray(picture), (x, top))
        if i >= 1:
            colour_bar(canvas, draw, (x + w + pad // 2, top), max(h, 5 * fs), scales[i - 1], small)
        x += slots[i]
    return canvas


def _fit(text: str, font, width: int) -> str:
    """``text`` cut with "..." to fit ``width`` pixels."""
    if text_width(text, font) <= width:
        return text
    while text and text_width(text + "...", font) > width:
        text = text[:-1]
    return text + "..."
