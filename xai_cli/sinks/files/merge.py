"""Shards of one run share ``--out``; merging their parts gives the files one run writes.

Shard K of N writes every input's files as one run does (the inputs of shards are disjoint,
and each shard lays out names over the whole input list, so names never depend on the
split), plus its own parts at the top of ``--out``: ``manifest.K-of-N.jsonl`` (each line
with the input's ``index`` in the run) and ``run.K-of-N.json``, written last. A shard that is
rerun removes its run part first, so a part on disk means that shard finished.

``merge(out)`` — called by the last shard to finish, and by ``xai merge OUT`` — writes
``manifest.jsonl`` (the lines of every part in input order, without ``index``) and
``run.json`` (counts summed, one entry per shard) once all N parts are there.
"""

from __future__ import annotations

import fcntl
import json
import re
from dataclasses import dataclass
from pathlib import Path

from xai_cli.core.shard import Shard
from xai_cli.errors import UsageError
from xai_cli.sinks.files import atomic
from xai_cli.sinks.files.lock import LOCK_NAME

MANIFEST = "manifest.jsonl"
RUN_JSON = "run.json"
_RUN_PART = re.compile(r"run\.(\d+)-of-(\d+)\.json")


def manifest_name(shard: Shard | None) -> str:
    return MANIFEST if shard is None else f"manifest.{shard.tag}.jsonl"


def run_name(shard: Shard | None) -> str:
    return RUN_JSON if shard is None else f"run.{shard.tag}.json"


def lock_name(shard: Shard | None) -> str:
    return LOCK_NAME if shard is None else f"{LOCK_NAME}.{shard.tag}"


@dataclass
class Merged:
    """What ``merge`` wrote: the shard count, the inputs in the manifest, and the run's exit code."""

    shards: int
    inputs: int
    failed: int
    exit_code: int


def merge(out: Path, *, partial_ok: bool = False) -> Merged | None:
    """Write ``out``'s merged manifest.jsonl and run.json from its shards' parts.

    Args:
        out: The output folder the shards share.
        partial_ok: Return None (write nothing) when a shard has not finished, instead of raising.

    Raises:
        UsageError: No parts, parts of different shard counts, or (unless ``partial_ok``) a
            shard that has not finished or was stopped.
    """
    if not out.is_dir():
        raise UsageError(f"{out} is not a folder", "give the {opt:out} folder the shards wrote into")
    with atomic.open_dir(out, create=False) as dfd:
        fcntl.flock(dfd, fcntl.LOCK_EX)  # two shards finishing at once merge one after the other
        return _merge(out, partial_ok)


def _merge(out: Path, partial_ok: bool) -> Merged | None:
    parts = _run_parts(out)
    if not parts:
        raise UsageError(f"no shard parts (run.K-of-N.json) in {out}", "run xai explain with {opt:shard} K/N into it first")
    counts = {n for _, n in parts}
    if len(counts) > 1:
        raise UsageError(f"{out} holds parts of runs split {sorted(counts)} ways",
                         "remove the parts (run.K-of-N.json, manifest.K-of-N.jsonl) of the split you do not want")
    n = counts.pop()
    docs = {k: atomic.read_json(out / f"run.{k}-of-{n}.json", out) for k, _ in parts}
    unfinished = [k for k in range(n) if not isinstance(docs.get(k), dict) or docs[k].get("stopped")]
    if unfinished:
        if partial_ok:
            return None
        raise UsageError(f"shards {', '.join(map(str, unfinished))} of {n} have not finished in {out}",
                         "run (or rerun: it resumes) those shards, then merge")
    if len({docs[k].get("config_key") for k in range(n)}) > 1:
        raise UsageError(f"the shards in {out} ran with different settings (config_key differs)",
                         "rerun the odd shards with the same settings")
    lines = []
    for k in range(n):
        for text in (out / f"manifest.{k}-of-{n}.jsonl").read_text(encoding="utf-8").splitlines():
            line = json.loads(text)
            lines.append((line.pop("index"), len(lines), line))
    lines.sort(key=lambda t: t[:2])  # input order; lines that are no input (index -1) first, as one run writes
    body = "".join(json.dumps(line, ensure_ascii=False) + "\n" for _, _, line in lines)
    atomic.write_bytes(out / MANIFEST, body.encode("utf-8"), out)
    doc = _merged_run(docs[k] for k in range(n))
    atomic.write_json(out / RUN_JSON, doc, out)
    atomic.remove_stale_temps(out)  # every shard is done: a leftover temporary file is a killed run's
    return Merged(n, sum(1 for i, _, _ in lines if i >= 0), doc["counts"]["failed"], doc["exit_code"])


def _run_parts(out: Path) -> list[tuple[int, int]]:
    try:
        names = [p.name for p in out.iterdir()]
    except OSError as e:
        raise UsageError(f"cannot read {out}: {e.strerror or e}") from None
    return sorted((int(m.group(1)), int(m.group(2))) for m in map(_RUN_PART.fullmatch, names) if m)


def _merged_run(docs) -> dict:
    docs = list(docs)
    first = docs[0]
    counts = {k: sum(d["counts"][k] for d in docs) for k in ("total", "ok", "skipped", "failed", "not_done")}
    counts["not_walked"] = max(d["counts"].get("not_walked", 0) for d in docs)  # each shard walked the same tree
    config = {**first["config"], "shard": None}
    warnings = list(dict.fromkeys(w for d in docs for w in d.get("warnings", [])))
    return {
        "schema_version": first["schema_version"],
        "started": min(d["started"] for d in docs),
        "finished": max(d["finished"] for d in docs),
        "config": config,
        "config_key": first["config_key"],
        "model": first["model"],
        "versions": first["versions"],
        "device": first["device"],
        "counts": counts,
        "stopped": None,
        "oom_batch_splits": sum(d.get("oom_batch_splits", 0) for d in docs),
        "timings": {"total_seconds": max(d["timings"].get("total_seconds", 0.0) for d in docs),
                    "shard_seconds": round(sum(d["timings"].get("total_seconds", 0.0) for d in docs), 3)},
        "warnings": warnings,
        "exit_code": max(int(d["exit_code"]) for d in docs),
        "shards": [{"shard": d["shard"], "host": d.get("host"), "started": d["started"], "finished": d["finished"],
                    "device": d["device"], "counts": d["counts"], "timings": d["timings"], "exit_code": d["exit_code"]}
                   for d in docs],
    }
