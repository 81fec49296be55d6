"""One input of a run -> its grid row (small, goes in the index) and its detail (loaded on demand).

Runs in worker processes: only json and PIL, never torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from xai_cli.report._read import flatten_numbers, number, pictures_of, read_json
from xai_cli.report._thumbs import card_thumbnail, input_preview

_STAT_KEYS = ("min", "max", "mean", "sum", "top10_mass", "finite", "peak_xy")
SNIPPET_CHARS = 90


@dataclass(frozen=True)
class Job:
    """What a worker needs for one input."""

    index: int
    entry: dict  # the manifest line
    run_dir: str
    report_dir: str
    input_roots: tuple[str, ...]  # where an input's relative path may be found (run.json's config.inputs)
    thumbs: bool
    audit: dict | None = None  # audit.json's entry for this input
    compare: dict | None = None  # compare.json's entry for this input


def stem_of(entry: dict) -> str:
    """The record's path without ``.json`` (outputs are named ``<stem>.<method>.png``)."""
    record = entry.get("record")
    if isinstance(record, str) and record.endswith(".json"):
        return record[: -len(".json")]
    name = str(entry.get("input", ""))
    return str(PurePosixPath(name).with_suffix("")) if name else ""


def process(job: Job) -> tuple[dict, dict]:
    """Read one input's record, make its thumbnails; return (row, detail)."""
    entry, run_dir, report_dir = job.entry, Path(job.run_dir), Path(job.report_dir)
    name = str(entry.get("input", "?"))
    stem = stem_of(entry)
    status = entry.get("status", "ok")
    record = read_json(run_dir / entry["record"]) if isinstance(entry.get("record"), str) else None
    if not isinstance(record, dict):
        record = {}
    reason = entry.get("reason") or record.get("reason")
    if status == "ok" and entry.get("record") and not record:
        status, reason = "error", f"its record {entry.get('record')} is missing or does not parse"
    prediction = [p for p in record.get("prediction") or [] if isinstance(p, dict)]
    top = prediction[0] if prediction else entry.get("prediction") if isinstance(entry.get("prediction"), dict) else {}
    modality = record.get("modality") or ("text" if "tokens" in record else "image")

    row = {
        "name": name, "stem": stem, "status": status, "reason": reason,
        "label": _label(top), "prob": number(top.get("probability")), "pngs": {}, "thumbs": set(), "orig": None,
        "cols": {}, "snippet": None, "top": None,
    }
    detail = {
        "name": name, "status": status, "reason": reason, "record": entry.get("record"), "modality": modality,
        "input": _input_info(record.get("input")), "prediction": prediction, "methods": [],
        "model": (record.get("model") or {}).get("name"),
    }
    methods = record.get("methods") if isinstance(record.get("methods"), dict) else {}
    for method, entries in methods.items():
        entries = [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
        if not entries:
            continue
        detail["methods"].append({"name": method, "entries": [_entry(e) for e in entries]})
        if isinstance(entries[0].get("png"), str):
            row["pngs"][method] = entries[0]["png"]
        for metric, value in _entry_metrics(entries[0]).items():
            row["cols"][f"audit:{method}.{metric}"] = value
    for metric, value in flatten_numbers(record.get("metrics")).items():
        row["cols"].setdefault(f"audit:{metric}", value)

    if modality == "text":
        _add_text(record, row, detail)
    if job.audit:
        for key, value in flatten_numbers(job.audit).items():
            row["cols"].setdefault(f"audit:{key}", value)
    if job.compare:
        measures = flatten_numbers(job.compare)
        row["cols"].update({f"drift:{k}": v for k, v in measures.items()})
        pictures = pictures_of(job.compare)
        detail["compare"] = {"measures": measures, "pictures": pictures, "a": job.compare.get("a"),
                             "b": job.compare.get("b")}
        for method, png in pictures.items():  # a compare run has no records: its A | B pictures are the cards'
            row["pngs"].setdefault(method or "compare", png)

    if job.thumbs:
        if modality != "text":
            for method, png in row["pngs"].items():
                if card_thumbnail(run_dir / png, report_dir / "thumbs" / f"{png}.jpg"):
                    row["thumbs"].add(method)
            src = _find_input(record.get("input"), job.input_roots, run_dir)
            if src is not None:
                row["orig"] = detail["original"] = input_preview(src, report_dir / "inputs" / stem)
    return row, detail


def _label(p: dict) -> str | None:
    if not p:
        return None
    label = p.get("label")
    return str(label) if label is not None else (str(p["index"]) if "index" in p else None)


def _input_info(info) -> dict:
    if not isinstance(info, dict):
        return {}
    return {k: info[k] for k in ("path", "rel", "size", "mode", "notes", "chars", "encoding", "key", "line") if k in info}


def _entry(e: dict) -> dict:
    """A method entry for the detail view: everything a person reads, no token-level arrays."""
    stats = e.get("stats") if isinstance(e.get("stats"), dict) else {}
    out = {
        "target": e.get("target"), "png": e.get("png"), "layer": e.get("layer"), "seconds": e.get("seconds"),
        "params": e.get("params"), "stats": {k: stats[k] for k in _STAT_KEYS if k in stats},
        "details": {k: v for k, v in (e.get("details") or {}).items() if not isinstance(v, (list, dict))},
        "metrics": _entry_metrics(e),
    }
    if isinstance(stats.get("top_words"), list):
        out["top_words"] = [(w.get("text"), w.get("score")) for w in stats["top_words"][:10] if isinstance(w, dict)]
    if isinstance(e.get("word_scores"), list):
        out["word_scores"] = [round(v, 5) if isinstance(v, float) else v for v in e["word_scores"]]
    return out


def _entry_metrics(e: dict) -> dict[str, float]:
    """Audit's per-input values in a method entry: ``metrics`` (or ``audit``), scalars only."""
    return flatten_numbers(e.get("metrics") if isinstance(e.get("metrics"), dict) else e.get("audit"))


def _add_text(record: dict, row: dict, detail: dict) -> None:
    text = record.get("text") if isinstance(record.get("text"), str) else ""
    words = [w for w in record.get("words") or [] if isinstance(w, dict)]
    detail["text"] = text
    detail["words"] = [[w.get("start"), w.get("end")] for w in words]
    row["snippet"] = text[:SNIPPET_CHARS] + ("…" if len(text) > SNIPPET_CHARS else "")
    for m in detail["methods"]:
        top = m["entries"][0].get("top_words")
        if top:
            row["top"] = f"{m['name']}: " + ", ".join(str(w) for w, _ in top[:3])
            break


def _find_input(info, roots: tuple[str, ...], run_dir: Path) -> Path | None:
    """The original input file, if it is still where the record says (or under an input root)."""
    if not isinstance(info, dict) or not isinstance(info.get("path"), str):
        return None
    path, rel = Path(info["path"]), info.get("rel")
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, run_dir / path]
    for root in roots:
        root_path = Path(root)
        candidates.append(root_path if not rel else root_path / rel)
    return next((c for c in candidates if c.is_file()), None)
