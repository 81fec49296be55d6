"""One input's comparison: both predictions, the drift measures, and the A | B | B - A picture.

The two maps are compared on a common frame:

* images, both models cropping the same part of the picture (the usual case, and always when
  their preprocessing is the same): each model's input frame, the coarser map resized onto the
  finer one (``drift.align``); the region (original pixels) is mapped into that frame;
* images cropped differently: both maps resampled onto the original picture (longest side at
  most ``MAX_GRID``), compared on the pixels both models saw;
* texts with the same tokens: per token; with different tokenizers: per word, when both split
  the text into the same words (else the input fails with the reason).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xai_cli.core.results import ItemResult, MapResult
from xai_cli.metrics.drift import DriftScores, align, drift

MAX_GRID = 512  # side of the original-picture grid maps cropped differently are compared on


@dataclass(frozen=True)
class Measured:
    """The drift measures of one input (region shares None without a region)."""

    spearman: float
    iou: float
    region_share_a: float | None
    region_share_b: float | None
    unit: str  # what was compared: "pixel", "token" or "word"


def measure(ra: ItemResult, rb: ItemResult, region: np.ndarray | None) -> Measured:
    """Compare the first map of ``ra`` (model A) with that of ``rb`` (model B).

    Raises:
        ValueError: The two maps cannot be put on one frame (texts split into different words).
    """
    ma, mb = ra.maps[0], rb.maps[0]
    if ra.modality == "image":
        scores, unit = _image(ra, rb, ma, mb, region), "pixel"
    else:
        scores, unit = _text(ra, rb, ma, mb)
    return Measured(_num(scores.spearman[0]), _num(scores.top_iou[0]),
                    None if scores.region_share_a is None else _num(scores.region_share_a[0]),
                    None if scores.region_share_b is None else _num(scores.region_share_b[0]), unit)


def _num(v) -> float | None:
    v = float(v)
    return None if np.isnan(v) else v


def _image(ra: ItemResult, rb: ItemResult, ma: MapResult, mb: MapResult, region) -> DriftScores:
    box_a, box_b = ra.item.box, rb.item.box
    if box_a.to_list() == box_b.to_list():
        a, b = align(ma.scores[None], mb.scores[None])
        frame = None if region is None else region_in_frame(region, box_a, a.shape[1:])[None]
        return drift(a, b, frame)
    h, w = ra.item.original.shape[:2]
    f = min(1.0, MAX_GRID / max(h, w))
    size = (max(1, round(h * f)), max(1, round(w * f)))
    from xai_cli.render.heatmap import box_mask, to_image_grid

    boxes = [tuple(v * f for v in (bx.left, bx.top, bx.width, bx.height)) for bx in (box_a, box_b)]
    ga, gb = (to_image_grid(m.scores, bx, size) for m, bx in zip((ma, mb), boxes, strict=True))
    seen = box_mask(boxes[0], size) & box_mask(boxes[1], size)
    if region is not None:
        from xai_cli.metrics.drift import to_grid

        region = to_grid(region[None].astype(np.float64), size, nearest=True)[0] > 0.5
    return drift(ga[seen][None], gb[seen][None], None if region is None else region[seen][None])


def region_in_frame(region: np.ndarray, box, grid: tuple[int, int]) -> np.ndarray:
    """A region in original pixels -> bool ``grid`` over the model input's ``box`` (nearest)."""
    from PIL import Image

    img = Image.fromarray(region.astype(np.uint8) * 255, "L")
    left, top = box.left, box.top
    out = img.transform((grid[1], grid[0]), Image.Transform.EXTENT,
                        (left, top, left + box.width, top + box.height), Image.Resampling.NEAREST)
    return np.asarray(out) > 127


def _text(ra: ItemResult, rb: ItemResult, ma: MapResult, mb: MapResult) -> tuple[DriftScores, str]:
    ia, ib = ra.item, rb.item
    if ia.input_ids == ib.input_ids:
        return drift(ma.scores[None], mb.scores[None]), "token"
    if ia.word_spans() == ib.word_spans():
        return drift(ma.extra["word_scores"][None], mb.extra["word_scores"][None]), "word"
    raise ValueError("the two models' tokenizers split this text into different words, so their maps "
                     "cannot be compared token by token or word by word")
