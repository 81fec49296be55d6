"""A counterfactual as a picture: the input, and the input with the removed superpixels blurred,
each captioned with the model's answer (SEDC, Vermeire et al. 2022: "what must change for another
answer"). Built from the map (non-zero exactly on the removed set, in model-input pixels) and the
method's details, so nothing but CPU arrays is needed here."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from xai_cli.render.heatmap import font_pair, text_width, to_image_grid

MIN_SIDE = 192  # small inputs are enlarged (nearest) so the blurred region is visible


def removed_mask(removed: np.ndarray, box: tuple[float, float, float, float], size: tuple[int, int]) -> np.ndarray:
    """Bool (h, w): the original's pixels under the removed set (given in model-input pixels)."""
    return to_image_grid(removed.astype(np.float32), box, size) > 0.5


def counterfactual_image(original: np.ndarray, removed: np.ndarray, box: tuple[float, float, float, float],
                         sigma_input_px: float) -> np.ndarray:
    """``original`` (h, w, 3) uint8 with the pixels under ``removed`` (H, W model-input mask) blurred
    by a Gaussian of ``sigma_input_px`` model-input pixels, scaled to the original's size."""
    mask = removed_mask(removed, box, original.shape[:2])
    scale = box[2] / removed.shape[-1]  # original px per model-input px (box: left, top, width, height)
    blurred = np.asarray(Image.fromarray(original).filter(ImageFilter.GaussianBlur(sigma_input_px * scale)))
    return np.where(mask[..., None], blurred, original)


def render_counterfactual(original: np.ndarray, removed: np.ndarray, box: tuple[float, float, float, float], *,
                          sigma_input_px: float, before: str, after: str, title: str,
                          max_side: int = 1024) -> Image.Image:
    """Input | counterfactual side by side, the removed region outlined, with a title and captions."""
    cf = counterfactual_image(original, removed, box, sigma_input_px)
    h, w = original.shape[:2]
    k = max(1.0, MIN_SIDE / max(h, w))
    k = min(k, max_side / max(h, w)) if max(h, w) * k > max_side else k
    size = (max(1, round(w * k)), max(1, round(h * k)))
    resample = Image.NEAREST if k > 1 else Image.BILINEAR
    left = Image.fromarray(original).resize(size, resample)
    right = Image.fromarray(cf).resize(size, resample)
    edge = np.asarray(Image.fromarray(removed_mask(removed, box, (h, w))).resize(size, Image.NEAREST))
    outline = edge & ~np.asarray(Image.fromarray(edge).filter(ImageFilter.MinFilter(3)))
    right = np.asarray(right).copy()
    right[outline] = (255, 255, 0)
    gap, pad = 12, 8
    big, small = font_pair(size[0])
    head = big.size + small.size + 3 * pad
    canvas = Image.new("RGB", (2 * size[0] + gap + 2 * pad, size[1] + head + small.size + pad), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((pad, pad), _fit(title, big, canvas.width - 2 * pad), fill="black", font=big)
    y = pad + big.size + pad
    for i, (img, caption) in enumerate([(left, before), (Image.fromarray(right), after)]):
        x = pad + i * (size[0] + gap)
        draw.text((x, y), _fit(caption, small, size[0]), fill=(60, 60, 60), font=small)
        canvas.paste(img, (x, head))
    draw.text((pad, head + size[1] + 2), "what must change for another answer: the outlined superpixels, blurred", fill=(90, 90, 90),
              font=small)
    return canvas


def _fit(text: str, font, width: int) -> str:
    while text and text_width(text, font) > width:
        text = text[:-2] + "…" if len(text) > 2 else ""
    return text
