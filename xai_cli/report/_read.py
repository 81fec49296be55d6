"""Read a run folder, tolerantly: the manifest, the per-input records, audit.json, compare.json.

Every reader here accepts missing keys and unknown extra keys, because audit and compare are
written by other commands whose formats may grow; what is not understood is left out, never
raised about. Only a folder with nothing to show (no manifest and no compare inputs) is an error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from xai_cli.errors import UsageError

# Keys of an audit.json / compare.json per-input entry that name the input or point at files.
_ID_KEYS = ("input", "name", "path", "rel")
_PICTURE_KEYS = ("picture", "png", "image", "diff_png", "pictures")
# Numeric leaves under these keys are not measures (sample sizes, indices, curves' axes).
_SKIP_KEYS = {"n", "index", "rank", "i", "steps", "seed", "curve", "curves", "ci", "ci_low", "ci_high", "x", "y"}


def read_json(path: Path) -> Any | None:
    """``json.load`` or None when the file is missing or does not parse."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def iter_manifest(run_dir: Path) -> Iterator[dict]:
    """The manifest's lines, in input order; a line that does not parse is kept as an error row."""
    path = run_dir / "manifest.jsonl"
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                entry = {"input": f"manifest.jsonl line {n}", "status": "error", "reason": "this manifest line does not parse"}
            if isinstance(entry, dict):
                yield entry


def number(value: Any) -> float | None:
    """A finite float from a JSON scalar (bools count as 0/1), else None."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


_WRAPPERS = {"methods", "metrics", "measures"}  # grouping keys left out of a measure's name


def flatten_numbers(obj: Any, prefix: str = "", depth: int = 3) -> dict[str, float]:
    """Numeric leaves of nested dicts as ``{"a.b.c": value}``; lists and skipped keys left out.

    A dict holding ``value`` (or ``mean``) is read as that scalar, so ``{"auc": {"value": 0.4}}``
    gives ``auc`` = 0.4. Grouping keys (``methods``, ``metrics``, ``measures``) are not part of
    the names: ``{"methods": {"gradcam": {"iou": 0.5}}}`` gives ``gradcam.iou``.
    """
    out: dict[str, float] = {}
    if not isinstance(obj, dict) or depth < 0:
        return out
    for key, value in obj.items():
        if key in _SKIP_KEYS or key in _ID_KEYS or key in _PICTURE_KEYS:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict) and key in _WRAPPERS:
            out.update(flatten_numbers(value, prefix, depth))
        elif isinstance(value, dict):
            scalar = number(value.get("value", value.get("mean")))
            if scalar is not None:
                out[name] = scalar
            else:
                out.update(flatten_numbers(value, name + ".", depth - 1))
        else:
            v = number(value)
            if v is not None:
                out[name] = v
    return out


def input_key(entry: dict) -> str | None:
    """The input an audit/compare per-input entry is about (matches the manifest's ``input``)."""
    for key in _ID_KEYS:
        value = entry.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and isinstance(value.get("rel") or value.get("path"), str):
            return value.get("rel") or value.get("path")
    return None


def per_input_entries(doc: Any) -> list[dict]:
    """The per-input list of an audit.json or compare.json: ``inputs``, ``items`` or ``per_input``."""
    if not isinstance(doc, dict):
        return []
    for key in ("inputs", "items", "per_input"):
        value = doc.get(key)
        if isinstance(value, list):
            return [e for e in value if isinstance(e, dict)]
        if isinstance(value, dict):  # {input: {...}}
            return [{"input": k, **v} for k, v in value.items() if isinstance(v, dict)]
    return []


def pictures_of(entry: dict) -> dict[str, str]:
    """Picture paths of a compare entry, by method (``""`` when the entry has one picture)."""
    out: dict[str, str] = {}
    for key in _PICTURE_KEYS:
        value = entry.get(key)
        if isinstance(value, str):
            out.setdefault("", value)
        elif isinstance(value, dict):
            out.update({k: v for k, v in value.items() if isinstance(v, str)})
    methods = entry.get("methods")
    if isinstance(methods, dict):
        for m, sub in methods.items():
            if isinstance(sub, dict):
                for key in _PICTURE_KEYS:
                    if isinstance(sub.get(key), str):
                        out.setdefault(m, sub[key])
    return out


def gate_of(doc: Any) -> dict | None:
    """The gate's verdict and checks of an audit.json / compare.json, or None when it has no gate.

    Returns:
        ``{"verdict": "passed" | "failed" | "warnings", "checks": [...], "failed": n, "total": n}``;
        each check keeps its own keys plus ``passed`` (bool), ``severity`` and ``message``.
    """
    if not isinstance(doc, dict):
        return None
    gate = doc.get("gate")
    checks = doc.get("checks")
    if isinstance(gate, dict):
        checks = gate.get("checks", checks)
    elif isinstance(gate, list):
        checks = gate
    if not isinstance(checks, list):
        checks = []
    checks = [c for c in checks if isinstance(c, dict)]
    if not checks and not isinstance(gate, dict) and "passed" not in doc:
        return None
    failed_fail = [c for c in checks if c.get("passed") is False and c.get("severity", "fail") != "warn"]
    failed_warn = [c for c in checks if c.get("passed") is False and c.get("severity") == "warn"]
    stated = (gate if isinstance(gate, dict) else doc).get("passed")
    if stated is False or failed_fail:
        verdict = "failed"
    elif failed_warn:
        verdict = "warnings"
    else:
        verdict = "passed"
    ordered = failed_fail + failed_warn + [c for c in checks if c.get("passed") is not False]
    return {"verdict": verdict, "checks": ordered, "failed": len(failed_fail) + len(failed_warn), "total": len(checks)}


def metric_table(doc: Any) -> list[dict]:
    """Audit's per-method, per-metric summary rows: method, metric, mean, median, p10, ci, n.

    Read from ``doc["methods"]`` (or ``doc["metrics"]``) shaped ``{method: {metric: {mean, ...}}}``;
    compare's ``aggregates`` (or ``summary``) shaped ``{measure: {mean, ...}}`` or
    ``{method: {measure: {...}}}`` gives rows with an empty or named method.
    """
    if not isinstance(doc, dict):
        return []
    rows = []
    for key in ("methods", "metrics", "aggregates", "summary"):
        block = doc.get(key)
        if not isinstance(block, dict):
            continue
        for outer, inner in block.items():
            if not isinstance(inner, dict):
                if number(inner) is not None:
                    rows.append({"method": "", "metric": outer, "mean": number(inner)})
                continue
            if _is_stat_block(inner):
                rows.append(_stat_row("", outer, inner))
                continue
            for metric, stats in inner.items():
                if isinstance(stats, dict) and _is_stat_block(stats):
                    rows.append(_stat_row(outer, metric, stats))
                elif number(stats) is not None:
                    rows.append({"method": outer, "metric": metric, "mean": number(stats)})
        if rows:
            break
    return rows


def _is_stat_block(d: dict) -> bool:
    return any(k in d for k in ("mean", "median", "p10", "value"))


def _stat_row(method: str, metric: str, stats: dict) -> dict:
    ci = stats.get("ci")
    if ci is None and "ci_low" in stats:  # audit.json writes the interval's ends as two keys
        ci = [stats.get("ci_low"), stats.get("ci_high")]
    ci = [number(v) for v in ci] if isinstance(ci, list) and len(ci) == 2 else None
    return {
        "method": method, "metric": metric, "mean": number(stats.get("mean", stats.get("value"))),
        "median": number(stats.get("median")), "p10": number(stats.get("p10")), "ci": ci, "n": number(stats.get("n")),
    }


def worst_lists(doc: Any) -> dict[str, list[dict]]:
    """``worst`` (or ``worst_inputs``) of an audit/compare file: ``{measure: [{input, value}, ...]}``."""
    if not isinstance(doc, dict):
        return {}
    block = doc.get("worst", doc.get("worst_inputs"))
    out: dict[str, list[dict]] = {}
    if isinstance(block, dict):
        for measure, items in block.items():
            if isinstance(items, list):
                out[measure] = [_worst_item(x) for x in items if _worst_item(x)]
    elif isinstance(block, list):
        out["worst"] = [_worst_item(x) for x in block if _worst_item(x)]
    return {k: v for k, v in out.items() if v}


def _worst_item(x: Any) -> dict | None:
    if isinstance(x, str):
        return {"input": x, "value": None}
    if isinstance(x, dict) and input_key(x):
        value = next((number(x[k]) for k in ("value", "score") if k in x), None)
        return {"input": input_key(x), "value": value}
    return None


def _audit_lines(path: Path) -> list[dict]:
    """audit.jsonl's lines (one per input: status, reason, per-method metrics), the curves and
    target left out (the page sorts and filters by the numbers)."""
    out = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if isinstance(e, dict) and e.get("input"):
            methods = {m: {"metrics": v.get("metrics", {})} for m, v in (e.get("methods") or {}).items() if isinstance(v, dict)}
            out.append({"input": e["input"], "status": e.get("status", "ok"), "reason": e.get("reason"), "methods": methods})
    return out


def load_run(run_dir: Path) -> dict:
    """run.json, audit.json and compare.json of a run folder (each None when absent)."""
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir} is not a folder", "give the --out folder of an xai explain, audit or compare run")
    docs = {name: read_json(run_dir / f"{name}.json") for name in ("run", "audit", "compare")}
    if isinstance(docs["audit"], dict) and not per_input_entries(docs["audit"]):
        docs["audit"]["inputs"] = _audit_lines(run_dir / "audit.jsonl")  # the audit's per-input scores
    if (not (run_dir / "manifest.jsonl").is_file() and not per_input_entries(docs["compare"])
            and not per_input_entries(docs["audit"])):
        raise UsageError(f"{run_dir} has no manifest.jsonl", "give the --out folder of an xai explain, audit or compare run")
    return docs
