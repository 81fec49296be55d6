"""Does the map point at the object? Scores of (N, H, W) maps against (N, H, W) boolean masks.

- Pointing game (Zhang et al., "Top-down Neural Attention by Excitation Backprop", IJCV 2018,
  https://arxiv.org/abs/1608.00507): a hit when the map's maximum lies within 15 px of the object.
- Energy-based pointing game (Wang et al., "Score-CAM", CVPR-W 2020, https://arxiv.org/abs/1910.01279):
  the share of the map's positive energy inside the object's bounding box.
- Relevance mass accuracy and relevance rank accuracy (Arras et al., "CLEVR-XAI", Information
  Fusion 2022, https://arxiv.org/abs/2003.07258): the share of positive relevance inside the
  mask, and the share of the mask's K pixels (K = mask size) among the K most relevant ones.

Items whose mask is empty score NaN (aggregation drops them), as in Quantus.
Masks for text: :func:`word_mask_from_spans` turns a rationale's character spans into words.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage

Array = np.ndarray | torch.Tensor


def _np(a: Array, dtype=None) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=dtype)


def _check(maps: Array, masks: Array) -> tuple[np.ndarray, np.ndarray]:
    m, s = _np(maps, np.float64), _np(masks).astype(bool)
    if m.shape != s.shape or m.ndim != 3:
        raise ValueError(f"maps and masks must both be (N, H, W), got {m.shape} and {s.shape}")
    return m, s


def _empty_to_nan(scores: np.ndarray, masks: np.ndarray) -> np.ndarray:
    scores = scores.astype(np.float64)
    scores[~masks.reshape(len(masks), -1).any(axis=1)] = np.nan
    return scores


def pointing_game(maps: Array, masks: Array, tolerance: float = 15.0) -> np.ndarray:
    """1.0 where a maximum of the map lies within ``tolerance`` px (Euclidean) of the mask, else 0.0.

    With ties, any maximal pixel counts (as Quantus does); ``tolerance=0`` is Quantus's game.

    Args:
        maps: (N, H, W) attributions.
        masks: (N, H, W) bool, True on the object.
        tolerance: Pixels; the paper's 15 is at ImageNet scale (224 px).

    Returns:
        (N,) float64: 1.0 hit, 0.0 miss, NaN for an empty mask.
    """
    m, s = _check(maps, masks)
    hits = np.zeros(len(m))
    for i in range(len(m)):
        peak = m[i] == m[i].max()
        near = s[i] if tolerance <= 0 else ndimage.distance_transform_edt(~s[i]) <= tolerance
        hits[i] = float((peak & near).any())
    return _empty_to_nan(hits, s)


def box_masks(masks: Array) -> np.ndarray:
    """(N, H, W) bool -> the same shape, True on each mask's bounding box."""
    s = _np(masks).astype(bool)
    out = np.zeros_like(s)
    for i, mask in enumerate(s):
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if rows.size:
            out[i, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] = True
    return out


def masks_from_boxes(boxes: Sequence[Sequence[Sequence[float]]], height: int, width: int) -> np.ndarray:
    """Boolean masks from boxes: ``boxes[i]`` lists item i's ``(x0, y0, x1, y1)`` boxes in pixels.

    A box covers the pixels whose centres lie in [x0, x1) x [y0, y1); an item may have several
    boxes (their union) or none (an empty mask).

    Returns:
        (N, height, width) bool.
    """
    out = np.zeros((len(boxes), height, width), dtype=bool)
    cy, cx = np.arange(height)[:, None] + 0.5, np.arange(width)[None, :] + 0.5
    for i, item in enumerate(boxes):
        for x0, y0, x1, y1 in item:
            out[i] |= (cx >= x0) & (cx < x1) & (cy >= y0) & (cy < y1)
    return out


def energy_pointing_game(maps: Array, masks: Array, use_box: bool = True) -> np.ndarray:
    """Share of the map's positive energy inside the object's bounding box (Score-CAM, sec. 4.2).

    Args:
        maps: (N, H, W) attributions; negative values count as 0.
        masks: (N, H, W) bool.
        use_box: Score against the mask's bounding box (the paper); False uses the mask itself.

    Returns:
        (N,) float64 in [0, 1] (0 for an all-zero map), NaN for an empty mask.
    """
    m, s = _check(maps, masks)
    return _mass_inside(np.clip(m, 0, None), box_masks(s) if use_box else s, s)


def relevance_mass_accuracy(maps: Array, masks: Array, positive_only: bool = True) -> np.ndarray:
    """Relevance inside the mask over the relevance in all of the map (Arras et al. 2022, eq. 1).

    Args:
        maps: (N, H, W) attributions.
        masks: (N, H, W) bool.
        positive_only: Count positive relevance only, as the paper does; False uses the raw
            values (Quantus's ``RelevanceMassAccuracy(abs=False)``).

    Returns:
        (N,) float64, NaN for an empty mask.
    """
    m, s = _check(maps, masks)
    return _mass_inside(np.clip(m, 0, None) if positive_only else m, s, s)


def _mass_inside(m: np.ndarray, region: np.ndarray, masks: np.ndarray) -> np.ndarray:
    n = len(m)
    inside, total = (m * region).reshape(n, -1).sum(1), m.reshape(n, -1).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(total != 0, inside / np.where(total != 0, total, 1), 0.0)
    return _empty_to_nan(score, masks)


def relevance_rank_accuracy(maps: Array, masks: Array) -> np.ndarray:
    """Share of the K most relevant pixels that lie in the mask, K = the mask's size (Arras et al. 2022, eq. 2).

    Ties are broken in raster order (a stable sort).

    Returns:
        (N,) float64, NaN for an empty mask.
    """
    m, s = _check(maps, masks)
    n = len(m)
    flat_m, flat_s = m.reshape(n, -1), s.reshape(n, -1)
    order = np.argsort(-flat_m, axis=1, kind="stable")  # (N, HW)
    k = flat_s.sum(1)  # (N,)
    in_mask = np.take_along_axis(flat_s, order, axis=1)  # (N, HW), mask along the ranking
    top = np.arange(flat_s.shape[1])[None, :] < k[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        score = (in_mask & top).sum(1) / np.maximum(k, 1)
    return _empty_to_nan(score, s)


def word_mask_from_spans(word_spans: Sequence[tuple[int, int]], rationale: Sequence[tuple[int, int]]) -> np.ndarray:
    """Which words of a document a rationale covers: a word is in when its characters overlap a span.

    Args:
        word_spans: ``(start, end)`` character offsets of each word (``TextItem.word_spans()``).
        rationale: ``(start, end)`` character spans of the rationale (end exclusive).

    Returns:
        (W,) bool.
    """
    return np.array([any(s < re and rs < e for rs, re in rationale) for s, e in word_spans], dtype=bool)


def token_mask_from_words(word_mask: np.ndarray, word_ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """(W,) word mask -> (L,) token mask (False on special tokens, word id -1)."""
    w = np.asarray(word_ids)
    return np.where(w >= 0, np.asarray(word_mask, dtype=bool)[np.clip(w, 0, None)], False)
