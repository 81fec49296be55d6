"""Attribution statistics of a batch of image maps, computed on the maps' device: only small
numbers come back to the host."""

from __future__ import annotations

import math

import numpy as np
import torch

from xai_cli.modalities.base import TOP_SHARE, degenerate


def attribution_stats(maps: torch.Tensor) -> list[dict]:
    """Per-map statistics of a (N, H, W) batch.

    Returns:
        One dict per map: min, max, mean, ``top10_mass`` (the share of sum|A| held by the 10 %
        of pixels with the largest |A|: 0.1 for a flat map, 1.0 for one concentrated in a
        tenth of the image), ``peak_input_px`` (row, col of the largest value, in model-input
        pixels), ``finite`` (False if any value is NaN or infinite) and ``degenerate`` (why the
        map shows nothing: "zero", "near_zero", "constant", or None; see ``modalities.base.degenerate``).
    """
    n = maps.shape[0]
    flat = maps.reshape(n, -1).float()  # (N, P)
    finite = torch.isfinite(flat).all(dim=1)
    safe = torch.nan_to_num(flat, nan=0.0, posinf=0.0, neginf=0.0)
    mag = safe.abs()
    k = max(1, math.ceil(TOP_SHARE * flat.shape[1]))
    top = _top_sum(mag, k)
    total = mag.sum(dim=1)
    share = torch.where(total > 0, top / total.clamp_min(1e-30), torch.zeros_like(total))
    peak = safe.argmax(dim=1)
    rows = torch.stack([safe.min(1).values, safe.max(1).values, safe.mean(1), share, peak.float(), finite.float()], 1).cpu().tolist()
    width = maps.shape[-1]
    return [
        {"min": r[0], "max": r[1], "mean": r[2], "top10_mass": r[3],
         "peak_input_px": [int(r[4]) // width, int(r[4]) % width], "finite": bool(r[5]),
         "degenerate": degenerate(r[0], r[1]) if r[5] else None}
        for r in rows
    ]


def _top_sum(mag: torch.Tensor, k: int) -> torch.Tensor:
    """Per row of (N, P), the sum of its ``k`` largest values.

    Which values, not their order, matters: on the CPU numpy's introselect finds them in 2.5 ms
    for eight 224² maps where ``topk`` took 6.1 ms (one thread; it sorts what it selects), the
    main thread's largest cost after the model's own in a Grad-CAM run; elsewhere ``topk``
    without sorting (4.0 ms on the CPU).
    """
    if mag.device.type == "cpu":
        values = mag.detach().numpy()
        return torch.from_numpy(np.partition(values, values.shape[1] - k, axis=1)[:, -k:].sum(axis=1))
    return mag.topk(k, dim=1, sorted=False).values.sum(dim=1)
