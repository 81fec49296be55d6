"""The pointing game (Zhang et al., "Top-down Neural Attention by Excitation Backprop", ECCV 2016):
a map scores a hit when its peak falls inside the ground-truth region, with a small tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image


def hit(peak_xy: tuple[float, float], mask: np.ndarray, tolerance: int = 2) -> bool:
    """True if the peak (x, y), in the mask's pixels, lies within ``tolerance`` pixels of the mask.

    The paper uses a 15 px tolerance at ImageNet scale; our demo inputs are ~100 px, so 2.
    """
    x, y = int(round(peak_xy[0])), int(round(peak_xy[1]))
    h, w = mask.shape
    y0, y1, x0, x1 = max(0, y - tolerance), min(h, y + tolerance + 1), max(0, x - tolerance), min(w, x + tolerance + 1)
    return bool(y0 < y1 and x0 < x1 and mask[y0:y1, x0:x1].any())


def score_run(out: Path, masks_index: Path, inputs_root: Path) -> dict[str, dict]:
    """Pointing-game score per method of a finished run over inputs that have masks.

    Args:
        out: The run's output folder.
        masks_index: JSON {input path relative to inputs_root's parent: {"label", "mask"}}.
        inputs_root: The folder the run was given.

    Returns:
        {method: {"hits": int, "total": int, "score": float}} over the rank-1 targets.
    """
    index = json.loads(masks_index.read_text())
    scores: dict[str, dict] = {}
    for line in (out / "manifest.jsonl").read_text().splitlines():
        entry = json.loads(line)
        key = _index_key(index, inputs_root, entry["input"])
        if entry["status"] != "ok" or key is None:
            continue
        record = json.loads((out / entry["record"]).read_text())
        mask = np.asarray(Image.open(_mask_path(masks_index, index[key]["mask"]))) > 0
        for method, entries in record["methods"].items():
            s = scores.setdefault(method, {"hits": 0, "total": 0})
            s["hits"] += hit(entries[0]["stats"]["peak_xy"], mask)
            s["total"] += 1
    for s in scores.values():
        s["score"] = s["hits"] / s["total"] if s["total"] else 0.0
    return scores


def _index_key(index: dict, inputs_root: Path, rel: str) -> str | None:
    for candidate in (rel, f"{inputs_root.name}/{rel}", str(Path(inputs_root.name) / rel)):
        if candidate in index:
            return candidate
    return None


def _mask_path(masks_index: Path, rel: str) -> Path:
    # Mask paths in the index are relative to the index's folder or to the sample root above it.
    for base in (masks_index.parent, masks_index.parent.parent):
        if (base / rel).is_file():
            return base / rel
    raise FileNotFoundError(f"mask {rel} named in {masks_index} not found")
