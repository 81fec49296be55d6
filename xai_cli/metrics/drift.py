"""Explanation drift between two models (or two methods) on the same inputs: pure numpy.

Every function takes a batch of maps, ``(N, H, W)`` for images or ``(N, T)`` for text tokens,
one row per input, and returns one number per input. Maps A and B of one input must cover
the same field of view (the caller maps each model's input frame back onto the image first);
they may differ in resolution, see :func:`align`. NaN values in a map count as 0.

* :func:`spearman`: rank correlation of |A| and |B| (average ranks for ties, as scipy).
* :func:`top_iou`: overlap of the two maps' top 10 % pixels (tokens) by |value|.
* :func:`region_share`: share of a map's positive attribution that lies inside a region.
* :func:`prediction_flip`: whether the top-1 class differs.
* :func:`drift`: all of the map measures at once, after :func:`align`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

TOP_FRACTION = 0.1


def common_grid(shape_a: tuple[int, ...], shape_b: tuple[int, ...]) -> tuple[int, ...]:
    """The grid two maps are compared on: the larger size along each axis.

    Upsampling the coarser map keeps the finer one's detail; downsampling would alias a
    pixel-level map (saliency) unless it were filtered first.

    Raises:
        ValueError: 1-D token maps of different lengths (tokens cannot be interpolated:
            two tokenizations must be aligned by the caller), or maps of different rank.
    """
    if len(shape_a) != len(shape_b):
        raise ValueError(f"maps of different rank: {shape_a} and {shape_b}")
    if len(shape_a) == 1 and shape_a != shape_b:
        raise ValueError(f"token maps of different lengths ({shape_a[0]} and {shape_b[0]}) cannot be compared")
    return tuple(max(a, b) for a, b in zip(shape_a, shape_b, strict=True))


def to_grid(maps: np.ndarray, shape: tuple[int, ...], *, nearest: bool = False) -> np.ndarray:
    """Resample a batch of maps ``(N, *grid)`` onto ``shape``.

    2-D maps are resized with PIL in float mode: bilinear with pixel centres aligned
    (half-pixel convention, as ``torch.nn.functional.interpolate(align_corners=False)`` and
    the heatmap pictures), or nearest-neighbour for masks (``nearest=True``). A map already
    on ``shape`` is returned as float64 unchanged.

    Raises:
        ValueError: 1-D maps whose length differs from ``shape``.
    """
    maps = np.nan_to_num(np.asarray(maps, dtype=np.float64))
    if tuple(maps.shape[1:]) == tuple(shape):
        return maps
    if maps.ndim != 3 or len(shape) != 2:
        raise ValueError(f"cannot resample maps of shape {maps.shape[1:]} onto {tuple(shape)}")
    resample = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    h, w = shape
    return np.stack([
        np.asarray(Image.fromarray(m.astype(np.float32), mode="F").resize((w, h), resample), dtype=np.float64)
        for m in maps
    ])


def align(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both batches of maps on their :func:`common_grid`, float64, NaN -> 0.

    Raises:
        ValueError: Different batch sizes, or shapes :func:`common_grid` rejects.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{a.shape[0]} maps for A but {b.shape[0]} for B")
    grid = common_grid(a.shape[1:], b.shape[1:])
    return to_grid(a, grid), to_grid(b, grid)


def _flat(maps: np.ndarray) -> np.ndarray:
    maps = np.nan_to_num(np.asarray(maps, dtype=np.float64))
    return maps.reshape(maps.shape[0], -1)


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..P along the last axis of ``(N, P)``, ties sharing their mean rank.

    The same as ``scipy.stats.rankdata(values, method="average", axis=1)``.
    """
    values = np.asarray(values)
    n, p = values.shape
    order = np.argsort(values, axis=1, kind="stable")
    ordered = np.take_along_axis(values, order, axis=1)
    starts = np.ones((n, p), bool)  # True where a run of equal values begins
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    ends = np.ones((n, p), bool)  # True where a run ends
    ends[:, :-1] = starts[:, 1:]
    pos = np.arange(p)
    first = np.maximum.accumulate(np.where(starts, pos, 0), axis=1)  # run start of each position
    last = np.minimum.accumulate(np.where(ends, pos, p - 1)[:, ::-1], axis=1)[:, ::-1]  # run end
    ranks = np.empty((n, p))
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=1)
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of ``|a|`` and ``|b|`` per input.

    Args:
        a: ``(N, ...)`` maps of model/method A.
        b: ``(N, ...)`` maps of B, on the same grid (see :func:`align`).

    Returns:
        ``(N,)`` float64 in [-1, 1]; NaN where either map is constant (as scipy).
    """
    ra, rb = average_ranks(np.abs(_flat(a))), average_ranks(np.abs(_flat(b)))
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    denom = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (ra * rb).sum(axis=1) / denom
    return np.where(denom > 0, np.clip(rho, -1.0, 1.0), np.nan)


def top_mask(maps: np.ndarray, fraction: float = TOP_FRACTION) -> np.ndarray:
    """Bool ``(N, P)``: each map's top ``fraction`` of pixels (tokens) by ``|value|``.

    The cut is the ``ceil(fraction * P)``-th largest ``|value|``; every pixel tied with it is
    kept (no arbitrary tie-break), and pixels of value 0 never count as top.

    Raises:
        ValueError: ``fraction`` outside (0, 1].
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    mag = np.abs(_flat(maps))
    k = int(np.ceil(fraction * mag.shape[1]))
    cut = np.partition(mag, mag.shape[1] - k, axis=1)[:, mag.shape[1] - k]  # k-th largest
    return (mag >= cut[:, None]) & (mag > 0)


def top_iou(a: np.ndarray, b: np.ndarray, fraction: float = TOP_FRACTION) -> np.ndarray:
    """Intersection over union of the two maps' :func:`top_mask` per input.

    Returns:
        ``(N,)`` in [0, 1]; 1 where neither map has a non-zero pixel (they agree: nothing
        stands out), 0 where only one has.
    """
    ta, tb = top_mask(a, fraction), top_mask(b, fraction)
    inter = (ta & tb).sum(axis=1)
    union = (ta | tb).sum(axis=1)
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def region_share(maps: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """Share of each map's positive attribution that falls inside its region.

    Args:
        maps: ``(N, H, W)`` or ``(N, T)``.
        regions: Non-zero = inside: ``(N, ...)`` one per map, or a single ``(...)`` for all.
            2-D regions on another grid are resized nearest-neighbour onto the maps' grid.

    Returns:
        ``(N,)`` in [0, 1]; NaN where a map has no positive value.
    """
    maps = np.nan_to_num(np.asarray(maps, dtype=np.float64))
    regions = np.asarray(regions)
    if regions.ndim == maps.ndim - 1:
        regions = np.broadcast_to(regions, (maps.shape[0], *regions.shape))
    inside = to_grid(regions != 0, maps.shape[1:], nearest=True) > 0.5
    pos = np.clip(maps, 0, None).reshape(maps.shape[0], -1)
    total = pos.sum(axis=1)
    within = (pos * inside.reshape(maps.shape[0], -1)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, within / total, np.nan)


def prediction_flip(pred_a: np.ndarray, pred_b: np.ndarray) -> np.ndarray:
    """Whether the top-1 class differs per input.

    Args:
        pred_a: ``(N,)`` class indices, or ``(N, C)`` probabilities/logits (argmax taken).
        pred_b: The same for B.

    Returns:
        ``(N,)`` bool.
    """
    top = [np.asarray(p).argmax(axis=1) if np.ndim(p) == 2 else np.asarray(p) for p in (pred_a, pred_b)]
    return top[0] != top[1]


@dataclass(frozen=True)
class DriftScores:
    """Per-input drift measures, each ``(N,)``; the region shares are None without a region."""

    spearman: np.ndarray
    top_iou: np.ndarray
    region_share_a: np.ndarray | None = None
    region_share_b: np.ndarray | None = None


def drift(a: np.ndarray, b: np.ndarray, regions: np.ndarray | None = None,
          fraction: float = TOP_FRACTION) -> DriftScores:
    """:func:`spearman`, :func:`top_iou` and, given ``regions``, :func:`region_share` of A and B.

    The maps are first put on their :func:`common_grid` by :func:`align`.
    """
    a, b = align(a, b)
    shares = (region_share(a, regions), region_share(b, regions)) if regions is not None else (None, None)
    return DriftScores(spearman(a, b), top_iou(a, b, fraction), *shares)
