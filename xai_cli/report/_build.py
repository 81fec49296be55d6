"""Build ``RUN_DIR/report/``: index.html, assets/, data/ (index + detail chunks), thumbnails.

The page is static and works from ``file://``: Chromium refuses ``fetch()`` of local JSON there,
so the data ships as JavaScript files that call ``XAI.index(...)`` / ``XAI.chunk(...)``, loaded
by ``<script>`` tags — the index at once, a detail chunk only when one of its inputs is opened.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from importlib import resources
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

from xai_cli.report._inputs import Job, process
from xai_cli.report._read import gate_of, input_key, iter_manifest, load_run, metric_table, per_input_entries, worst_lists

CHUNK = 250  # inputs per detail chunk file
WORST_N = 10
_IN_PROCESS_BELOW = 64  # inputs: fewer than this are processed without a pool


def build_report(
    run_dir: str | os.PathLike,
    *,
    out: str | os.PathLike | None = None,
    thumbnails: bool = True,
    workers: int | None = None,
    page_size: int = 60,
    title: str | None = None,
    progress=None,
) -> Path:
    """Write a static HTML report of a run folder (explain, audit or compare) and return its index.html.

    Args:
        run_dir: The ``--out`` folder of a run (holds ``manifest.jsonl``; ``run.json``,
            ``audit.json`` and ``compare.json`` are read when present).
        out: Where to write the report. Default: ``RUN_DIR/report``.
        thumbnails: Make card thumbnails and input previews (JPEG; reused on a rerun when newer
            than their source). Without them the grid shows the full heatmap PNGs, scaled.
        workers: Processes reading records and making thumbnails. Default: the CPU count (≤ 8);
            0 works in this process.
        page_size: Cards per page of the grid.
        title: The page's title. Default: the run folder's name and model.
        progress: Something with ``advance(n)`` (e.g. ``xai_cli.console.progress``), or None.

    Returns:
        The path of ``index.html``.

    Raises:
        UsageError: ``run_dir`` is not a run folder.
    """
    run_dir = Path(run_dir).resolve()
    docs = load_run(run_dir)
    report_dir = Path(out).resolve() if out else run_dir / "report"
    (report_dir / "data" / "detail").mkdir(parents=True, exist_ok=True)
    _copy_assets(report_dir)

    config = (docs["run"] or {}).get("config") or {}
    roots = tuple(str(r) for r in config.get("inputs") or [] if isinstance(r, str))
    audit_by_input = _by_input(docs["audit"])
    compare_by_input = _by_input(docs["compare"])
    entries = _entries(run_dir, docs["compare"], docs["audit"])
    jobs = (Job(i, e, str(run_dir), str(report_dir), roots, thumbnails,
                audit_by_input.get(str(e.get("input"))), compare_by_input.get(str(e.get("input"))))
            for i, e in enumerate(entries))

    index = _Index()
    chunk: list[dict] = []
    for row, detail in _run(jobs, workers, len(entries)):
        index.add(row)
        chunk.append(detail)
        if len(chunk) == CHUNK:
            _write_chunk(report_dir, (index.total - 1) // CHUNK, chunk)
            chunk = []
        if progress is not None:
            progress.advance(1)
    if chunk:
        _write_chunk(report_dir, (index.total - 1) // CHUNK, chunk)

    run = docs["run"] or {}
    meta = {
        "chunk": CHUNK, "page_size": page_size, "thumbnails": thumbnails,
        "title": title or _title(run_dir, run),
        "run_rel": Path(os.path.relpath(run_dir, report_dir)).as_posix(),
    }
    _write_js(report_dir / "data" / "index.js", "XAI.index(", {**meta, **index.to_dict()})
    html = _render(meta, run, docs, index)
    tmp = report_dir / "index.html.tmp"
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, report_dir / "index.html")
    return report_dir / "index.html"


def _entries(run_dir: Path, compare, audit=None) -> list[dict]:
    if (run_dir / "manifest.jsonl").is_file():
        return list(iter_manifest(run_dir))
    # a compare or audit folder without a manifest: its per-input entries are the rows
    return [{"input": input_key(e), "status": e.get("status", "ok"), "reason": e.get("reason")}
            for e in per_input_entries(compare) or per_input_entries(audit) if input_key(e)]


def _by_input(doc) -> dict[str, dict]:
    return {key: e for e in per_input_entries(doc) if (key := input_key(e))}


def _run(jobs: Iterable[Job], workers: int | None, n: int) -> Iterator[tuple[dict, dict]]:
    """``process`` over the jobs, in order; in worker processes when there are enough inputs."""
    if workers is None:
        workers = min(os.cpu_count() or 1, 8)
    if workers <= 1 or n < _IN_PROCESS_BELOW:
        yield from map(process, jobs)
        return
    # fork: the workers only need json and PIL, and start in milliseconds
    ctx = get_context("fork") if "fork" in get_all_start_methods() else None
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        yield from pool.map(process, jobs, chunksize=64)


class _Index:
    """The grid's data, one column per field, so 100,000 rows stay a few MB and sort fast."""

    def __init__(self) -> None:
        self.total = 0
        self.methods: list[str] = []
        self.labels: list[str] = []
        self._label_ids: dict[str, int] = {}
        self.cols = {k: [] for k in ("name", "status", "label", "prob", "mask", "tmask", "orig")}
        self.sparse = {k: {} for k in ("reason", "stem", "png", "snippet", "top")}
        self.numeric: dict[str, dict[int, float]] = {}
        self.statuses = {"ok": 0, "error": 0}

    def add(self, row: dict) -> None:
        i = self.total
        self.total += 1
        status = row["status"] if row["status"] in ("ok", "error") else "error"
        self.statuses[status] += 1
        label = row["label"]
        if label is not None and label not in self._label_ids:
            self._label_ids[label] = len(self.labels)
            self.labels.append(label)
        mask = tmask = 0
        stem = row["stem"]
        for method, png in row["pngs"].items():
            if method not in self.methods:
                self.methods.append(method)
            k = self.methods.index(method)
            mask |= 1 << k
            if method in row["thumbs"]:
                tmask |= 1 << k
            if png != f"{stem}.{method}.png":  # the usual name is rebuilt in JS; others are stored
                self.sparse["png"].setdefault(i, {})[k] = png
        self.cols["name"].append(row["name"])
        self.cols["status"].append(0 if status == "ok" else 1)
        self.cols["label"].append(self._label_ids.get(label, -1) if label is not None else -1)
        self.cols["prob"].append(None if row["prob"] is None else round(row["prob"], 5))
        self.cols["mask"].append(mask)
        self.cols["tmask"].append(tmask)
        self.cols["orig"].append(row["orig"] or 0)  # 0: none; "jpg": inputs/<stem>.jpg + .thumb.jpg; ".png"...: a copy
        if stem != _default_stem(row["name"]):
            self.sparse["stem"][i] = stem
        for key in ("reason", "snippet", "top"):
            if row.get(key):
                self.sparse[key][i] = row[key]
        for key, value in row["cols"].items():
            self.numeric.setdefault(key, {})[i] = value

    def to_dict(self) -> dict:
        numeric = {k: [v.get(i) for i in range(self.total)] for k, v in sorted(self.numeric.items())}
        return {"total": self.total, "methods": self.methods, "labels": self.labels, **self.cols,
                **self.sparse, "numeric": numeric, "counts": self.statuses}


def _default_stem(name: str) -> str:
    """``name`` without its extension; the same rule as ``defaultStem`` in report.js."""
    dot = name.rfind(".")
    return name[:dot] if dot > name.rfind("/") + 1 else name


def _write_js(path: Path, opening: str, data) -> None:
    """``opening`` + ``JSON.parse("...")`` + ``);``: a script that hands the data to report.js.

    A script, because Chromium refuses ``fetch()`` under ``file://``; a JSON string parsed at
    run time, because V8 reads a large JSON string ten times faster than the same object literal
    (100,000 inputs: 0.4 s instead of 6 s before the first page shows).
    """
    try:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str)
    except ValueError:  # NaN or Infinity (a record's non-finite stats): JSON has no such values
        text = json.dumps(_finite(data), separators=(",", ":"), ensure_ascii=False, default=str)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(f"{opening}JSON.parse({json.dumps(text, ensure_ascii=False)}));\n")
    os.replace(tmp, path)


def _finite(obj):
    """``obj`` with every NaN/Infinity replaced by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _write_chunk(report_dir: Path, n: int, details: list[dict]) -> None:
    _write_js(report_dir / "data" / "detail" / f"{n:05d}.js", f"XAI.chunk({n},", details)


def _copy_assets(report_dir: Path) -> None:
    (report_dir / "assets").mkdir(parents=True, exist_ok=True)
    static = resources.files("xai_cli.report") / "static"
    for name in ("report.js", "report.css"):
        with resources.as_file(static / name) as src:
            shutil.copyfile(src, report_dir / "assets" / name)


def _title(run_dir: Path, run: dict) -> str:
    model = (run.get("model") or {}).get("name") or (run.get("config") or {}).get("model")
    return f"{run_dir.name} · {model}" if model else run_dir.name


def _render(meta: dict, run: dict, docs: dict, index: _Index) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("xai_cli.report", "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True)
    sections = []
    for kind in ("audit", "compare"):
        doc = docs[kind]
        if doc is None:
            continue
        sections.append({
            "kind": kind, "gate": gate_of(doc), "table": metric_table(doc),
            "worst": worst_lists(doc) or _fallback_worst(index, "audit:" if kind == "audit" else "drift:"),
        })
    return env.get_template("index.html.j2").render(
        meta=meta, run=run, config=run.get("config") or {}, counts=index.statuses, total=index.total,
        methods=index.methods, sections=sections,
    )


def _fallback_worst(index: _Index, prefix: str) -> dict[str, list[dict]]:
    """Without a ``worst`` list in the file: the lowest inputs by each measure (flips: the flipped ones)."""
    out = {}
    names = index.cols["name"]
    for key, values in index.numeric.items():
        if not key.startswith(prefix):
            continue
        measure = key[len(prefix):]
        if measure.endswith("flipped"):
            items = [(i, v) for i, v in values.items() if v][:WORST_N]
            label = f"{measure} (the flipped inputs)"
        else:
            items = sorted(values.items(), key=lambda iv: iv[1])[:WORST_N]
            label = f"{measure} (lowest)"
        if items:
            out[label] = [{"input": names[i], "value": v, "row": i} for i, v in items]
    return out
