"""The per-input JSON record (``<stem>.json``) and its attribution statistics.

Statistics are computed for the whole batch at once on the maps' device; only small
numbers come back to the host.
"""

from __future__ import annotations

import math

import torch

SCHEMA_VERSION = "1.0"
TOP_SHARE = 0.10  # "share of attribution mass in the top 10 % of pixels"


def attribution_stats(maps: torch.Tensor) -> list[dict]:
    """Per-map statistics of a (N, H, W) batch.

    Returns:
        One dict per map: min, max, mean, ``top10_mass`` (the share of sum|A| held by the 10 %
        of pixels with the largest |A|: 0.1 for a flat map, 1.0 for one concentrated in a
        tenth of the image), ``peak`` (row, col of the largest value, in model-input pixels),
        and ``finite`` (False if any value is NaN or infinite).
    """
    n = maps.shape[0]
    flat = maps.reshape(n, -1).float()  # (N, P)
    finite = torch.isfinite(flat).all(dim=1)
    safe = torch.nan_to_num(flat, nan=0.0, posinf=0.0, neginf=0.0)
    mag = safe.abs()
    k = max(1, math.ceil(TOP_SHARE * flat.shape[1]))
    top = mag.topk(k, dim=1).values.sum(dim=1)
    total = mag.sum(dim=1)
    share = torch.where(total > 0, top / total.clamp_min(1e-30), torch.zeros_like(total))
    peak = safe.argmax(dim=1)
    rows = torch.stack([safe.min(1).values, safe.max(1).values, safe.mean(1), share, peak.float(), finite.float()], 1).cpu().tolist()
    width = maps.shape[-1]
    return [
        {"min": r[0], "max": r[1], "mean": r[2], "top10_mass": r[3],
         "peak_input_px": [int(r[4]) // width, int(r[4]) % width], "finite": bool(r[5])}
        for r in rows
    ]


def prediction_entry(indices: list[int], probs: list[float], labels: list[str] | None) -> list[dict]:
    """Top-k prediction rows: rank, class index, label (or None), probability."""
    return [
        {"rank": r + 1, "index": i, "label": labels[i] if labels and i < len(labels) else None, "probability": p}
        for r, (i, p) in enumerate(zip(indices, probs))
    ]
