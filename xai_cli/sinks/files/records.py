"""One input's outputs: its pictures, raw maps, JSON record and manifest line.

Runs in a writer thread with CPU arrays only. Every file is written atomically; the JSON
record is written last, so a record on disk means its pictures are there too.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np

from xai_cli.outputs import atomic
from xai_cli.outputs.layout import Layout, target_tag
from xai_cli.render.heatmap import encode_png, render_panel
from xai_cli.summary import SCHEMA_VERSION


@dataclass
class MapResult:
    """One method's map for one input and one target, on the CPU."""

    method: str
    signed: bool
    target: dict  # rank, index, label, probability
    amap: np.ndarray  # (H, W) float32, model-input pixels
    stats: dict
    params: dict
    layer: str | None
    seconds: float
    details: dict = field(default_factory=dict)


@dataclass
class ItemJob:
    """Everything needed to write one input's outputs."""

    rel: PurePosixPath
    path: str
    base_record: dict  # schema_version, input, model, preprocess, prediction
    original: np.ndarray
    box: tuple[float, float, float, float]
    results: list[MapResult]
    several_targets: bool
    model_name: str
    save_raw: bool
    render_max_side: int


def write_item(job: ItemJob, layout: Layout) -> dict:
    """Render and write one input's files; return its manifest line."""
    outputs: list[str] = []
    methods: dict[str, list[dict]] = {}
    problems: list[str] = []
    for r in job.results:
        tag = target_tag(r.target["rank"], r.target["index"], r.target["label"], job.several_targets)
        entry = {"target": r.target, "params": r.params, "layer": r.layer, "png": None, "raw": None,
                 "seconds": round(r.seconds, 6), "stats": r.stats, "details": r.details}
        methods.setdefault(r.method, []).append(entry)
        if not r.stats["finite"]:
            # Never draw NaN/Inf as a blank picture: record it, write no PNG.
            problems.append(f"{r.method}: attributions contain NaN or Inf (try --precision fp32 or fewer steps)")
            continue
        title = f"{r.method} · {_name(r.target)} ({r.target['probability']:.1%})"
        subtitle = (f"{job.model_name}" + (" (RANDOM WEIGHTS)" if job.base_record["model"]["random_init"] else "")
                    + f" · rank {r.target['rank']}" + (f" · layer {r.layer}" if r.layer else ""))
        panel = render_panel(job.original, r.amap, job.box, signed=r.signed, title=title, subtitle=subtitle,
                             peak_xy=tuple(r.stats["peak_xy"]), max_side=job.render_max_side)
        save_picture(layout, job.rel, r.method, tag, encode_png(panel), r.amap if job.save_raw else None, entry, outputs)
    record = dict(job.base_record)
    record["methods"] = methods
    return finish_record(layout, job.rel, record, problems, outputs)


def save_picture(layout: Layout, rel: PurePosixPath, method: str, tag: str | None, png: bytes,
                 raw: np.ndarray | None, entry: dict, outputs: list[str]) -> None:
    """Write one method's PNG (and raw scores as .npy, if given); note their paths in ``entry`` and ``outputs``."""
    path = layout.picture(rel, method, tag)
    atomic.write_bytes(layout.abs(path), png, layout.root)
    entry["png"] = str(path)
    outputs.append(str(path))
    if raw is not None:
        path = layout.raw(rel, method, tag)
        buf = io.BytesIO()
        np.save(buf, raw.astype(np.float32))
        atomic.write_bytes(layout.abs(path), buf.getvalue(), layout.root)
        entry["raw"] = str(path)
        outputs.append(str(path))


def finish_record(layout: Layout, rel: PurePosixPath, record: dict, problems: list[str], outputs: list[str]) -> dict:
    """Set the record's status, write it last (its presence means its files are there), return the manifest line."""
    record["status"] = "error" if problems else "ok"
    if problems:
        record["reason"] = "; ".join(problems)
    rec_path = layout.record(rel)
    atomic.write_json(layout.abs(rec_path), record, layout.root)
    line = {"input": str(rel), "status": record["status"], "record": str(rec_path), "outputs": outputs}
    if problems:
        line["reason"] = record["reason"]
    return line


def write_failure(rel: PurePosixPath, path: str, reason: str, sha256: str | None, model: dict, layout: Layout) -> dict:
    """The record and manifest line of an input that could not be explained."""
    record = {"schema_version": SCHEMA_VERSION, "status": "error", "reason": reason,
              "input": {"path": path, "rel": str(rel), "sha256": sha256}, "model": model}
    rec_path = layout.record(rel)
    atomic.write_json(layout.abs(rec_path), record, layout.root)
    return {"input": str(rel), "status": "error", "reason": reason, "record": str(rec_path), "outputs": []}


def _name(target: dict) -> str:
    return f"'{target['label']}'" if target.get("label") else f"class {target['index']}"
