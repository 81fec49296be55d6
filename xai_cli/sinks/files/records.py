"""One input's files: its pictures, raw scores, JSON record and manifest line.

Runs in a writer thread with CPU data only. Every file is written atomically; the JSON record
is written last, so a record on disk means its pictures are there too (resume relies on it).
The common fields are built here; the modality adds its own (``Modality.record_fields``,
``map_fields``) and draws the pictures.
"""

from __future__ import annotations

import io
from pathlib import PurePosixPath

import numpy as np

from xai_cli.core.results import ItemResult, RunInfo
from xai_cli.modalities import get_modality
from xai_cli.render.png import encode_png
from xai_cli.sinks.files import atomic
from xai_cli.sinks.files.layout import Layout, target_tag
from xai_cli.sinks.files.resume import listed_outputs

SCHEMA_VERSION = "1.0"


def write_result(result: ItemResult, run: RunInfo, layout: Layout, save_raw: bool) -> dict:
    """Write one input's files (a failed input: its record only); return its manifest line."""
    if result.status == "skipped":
        return {"input": str(result.rel), "status": "ok", "resumed": True, "record": str(layout.record(result.rel)),
                "outputs": result.outputs}
    if result.item is None:
        return _write_failure(result, run, layout)
    modality = get_modality(result.modality)
    ranks = len({m.target.rank for m in result.maps})
    outputs: list[str] = []
    methods: dict[str, list[dict]] = {}
    for m in result.maps:
        entry = {"target": m.target.to_dict(), "params": m.params, "precision": m.precision, "png": None, "raw": None,
                 "seconds": round(m.seconds, 6), "stats": m.stats, "details": m.details, **modality.map_fields(result, m)}
        if m.colour_range is not None:
            entry["colour_range"] = list(m.colour_range)
        methods.setdefault(m.method, []).append(entry)
        if not m.finite:
            continue  # never draw NaN/Inf as a blank picture: the record says so
        tag = target_tag(m.target.rank, m.target.index, m.target.label, ranks)
        png = encode_png(modality.picture(result, m, run))
        _save(layout, layout.picture(result.rel, m.method, tag), png, entry, "png", outputs)
        if save_raw:
            buf = io.BytesIO()
            np.save(buf, m.scores.astype(np.float32))
            _save(layout, layout.raw(result.rel, m.method, tag), buf.getvalue(), entry, "raw", outputs)
    record = {"schema_version": SCHEMA_VERSION, "status": result.status, **modality.record_fields(result, run),
              "model": run.model, "precision": run.config.precision, "prediction": result.prediction.to_list(),
              "prediction_tie": result.prediction.tied if result.prediction.tied > 1 else None,
              "config_key": run.config_key, "methods": methods}
    if result.reason:
        record["reason"] = result.reason
    return _finish(layout, result, record, outputs)


def _save(layout: Layout, path, data: bytes, entry: dict, key: str, outputs: list[str]) -> None:
    atomic.write_bytes(layout.abs(path), data, layout.root)
    entry[key] = str(path)
    outputs.append(str(path))


def _write_failure(result: ItemResult, run: RunInfo, layout: Layout) -> dict:
    record = {"schema_version": SCHEMA_VERSION, "status": "error", "reason": result.reason,
              "input": {"path": result.path, "rel": str(result.rel), "sha256": result.sha256}, "model": run.model}
    return _finish(layout, result, record, [])


def _finish(layout: Layout, result: ItemResult, record: dict, outputs: list[str]) -> dict:
    """Write the record last (its presence means its files are there); return the manifest line.

    A record lists exactly its input's files: what an earlier record of the same input listed and
    this one does not (another method, target or --save-raw setting) is removed once the new
    record is written, and counted in the manifest line (``removed``). No file is orphaned.
    """
    rec_path = layout.record(result.rel)
    stale = set(listed_outputs(atomic.read_json(layout.abs(rec_path), layout.root))) - set(outputs)
    atomic.write_json(layout.abs(rec_path), record, layout.root)
    line = {"input": str(result.rel), "status": record["status"], "record": str(rec_path), "outputs": outputs}
    if record.get("prediction"):  # skim a run without opening every record
        top = record["prediction"][0]
        line["top1"] = {"index": top["index"], "label": top["label"], "probability": top["probability"]}
    if record["status"] != "ok":
        line["reason"] = record["reason"]
    removed = [p for p in sorted(stale) if atomic.remove(layout.abs(PurePosixPath(p)), layout.root)]
    if removed:
        line["removed"] = removed
    return line

