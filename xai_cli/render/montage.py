"""Layer activations as a montage: each tile one channel's response (scaled to its own maximum),
labelled with its channel number, the input beside it. Not an attribution, and the picture says
so — the tiles do not line up with the input, so nothing is laid over it."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from xai_cli.render import colormap
from xai_cli.render.heatmap import font_pair

SIDE = 384  # the montage's side: tiles of ~128 px for the default 9 channels


def render_montage(original: np.ndarray, amap: np.ndarray, grid: int, channels: list[int], *, title: str,
                   subtitle: str) -> Image.Image:
    """The input | the montage of ``grid`` x ``grid`` tiles (values in [-1, 1], 0 as the darkest)."""
    big, small = font_pair(SIDE)
    tiles = Image.fromarray(colormap.apply(np.clip(amap, 0, 1), "turbo")).resize((SIDE, SIDE), Image.NEAREST)
    h, w = original.shape[:2]
    k = SIDE / max(h, w)
    inp = Image.fromarray(original).resize((max(1, round(w * k)), max(1, round(h * k))),
                                           Image.NEAREST if k > 1 else Image.BILINEAR)
    pad, gap = 8, 12
    head = big.size + small.size + 3 * pad
    canvas = Image.new("RGB", (inp.width + gap + SIDE + 2 * pad, max(inp.height, SIDE) + head + pad), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((pad, pad), title, fill="black", font=big)
    draw.text((pad, pad + big.size + pad // 2), subtitle, fill=(90, 90, 90), font=small)
    canvas.paste(inp, (pad, head))
    x0 = pad + inp.width + gap
    canvas.paste(tiles, (x0, head))
    step = SIDE / grid
    for j, ch in enumerate(channels):
        r, c = divmod(j, grid)
        x, y = x0 + round(c * step), head + round(r * step)
        draw.rectangle([x, y, x + round(step) - 1, y + round(step) - 1], outline="white")
        draw.text((x + 3, y + 2), f"ch {ch}", fill="white", font=small, stroke_width=1, stroke_fill="black")
    return canvas
