"""The audit sink: scores the result stream and writes the audit's files under the output folder.

Per input, in input order, one line of ``audit.jsonl`` (its metric values and curves per
method); for the run, ``audit.json`` (aggregates, mean curves, the sample's values, the gate's
checks), ``junit.xml`` and ``summary.md``. Every file is written atomically (``audit.jsonl``
streams into a temporary file renamed at the end). With an inner files sink (``--write-maps``)
each result is passed on after scoring, its rank-1 maps carrying their scores in
``details["audit"]``, so explain's records hold them too.

Ok results are scored ``inputs_per_score`` at a time; randomisation and stability run at the
end on a sample of inputs chosen by seed from the run's input list when the run opens (images
and texts alike); a metric that cannot apply to a method has n = 0 and a ``reason`` beside its
aggregate in audit.json (e.g. max-sensitivity of text LIME), which a gate check reports as skipped.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from xai_cli import __version__
from xai_cli.audit.gate import Check, CheckResult, evaluate_gate, gate_failed
from xai_cli.audit.junit import junit_xml
from xai_cli.audit.scoring import Context, first_maps, model_input, score_batch, score_sample
from xai_cli.audit.summary import summary_markdown
from xai_cli.core.engine import item_seed
from xai_cli.core.results import ItemResult, RunInfo, RunSummary
from xai_cli.errors import ExitCode
from xai_cli.metrics.aggregate import aggregate
from xai_cli.metrics.randomisation import sample_indices
from xai_cli.sinks.base import Sink
from xai_cli.sinks.files import atomic

AUDIT_SCHEMA_VERSION = "1.0"


@dataclass
class AuditReport:
    """What an audit found: the aggregates, the gate's checks, the run's summary, audit.json's content."""

    out: Path
    metrics: dict[str, dict[str, dict]]
    checks: list[CheckResult]
    summary: RunSummary
    document: dict = field(default_factory=dict)

    @property
    def gate_failed(self) -> bool:
        return gate_failed(self.checks)

    @property
    def exit_code(self) -> ExitCode:
        """130 interrupted > 4 a ``fail`` check failed > 1 some inputs failed > 0."""
        if self.summary.stopped in ("SIGINT", "SIGTERM"):
            return ExitCode.INTERRUPTED
        if self.gate_failed:
            return ExitCode.GATE_FAILED
        return self.summary.exit_code

    def to_dict(self) -> dict:
        return self.document


class AuditSink(Sink):
    """Scores every ok result; see the module docstring for what it writes.

    Args:
        out: The output folder.
        ctx: The model, methods and settings to score with.
        checks: The gate's checks (empty: no gate).
        baseline: A previous audit.json's ``metrics``, for ``max_increase``/``max_decrease``.
        sources: Paths to name in audit.json (``gate``, ``baseline``).
        inner: A sink that gets every result after scoring (the files sink for ``--write-maps``).
    """

    def __init__(self, out: Path, ctx: Context, *, checks: list[Check] | None = None, baseline: dict | None = None,
                 sources: dict | None = None, inner: Sink | None = None) -> None:
        self.out = Path(out)
        self.ctx = ctx
        self.checks = list(checks or [])
        self.baseline = baseline
        self.sources = sources or {}
        self.inner = inner
        self.report: AuditReport | None = None
        self._pending: list[ItemResult] = []
        self._values: dict[str, dict[str, list[float]]] = {m.name: {} for m in ctx.methods}
        self._curves: dict[str, dict[str, dict[str, np.ndarray]]] = {m.name: {} for m in ctx.methods}
        self._curve_n: dict[str, dict[str, int]] = {m.name: {} for m in ctx.methods}
        self._sample: set[int] = set()
        self._sampled: list[tuple[int, str, object, int, int]] = []  # index, rel, model input, target, seed
        self._reasons: dict[str, dict[str, str]] = {}  # method -> metric -> why it has no value
        self._scored = 0
        self._seconds = {"score_seconds": 0.0, "sample_seconds": 0.0}
        self._run: RunInfo | None = None
        self._lines = None
        self._tmp: str | None = None

    # -- the stream -------------------------------------------------------------------------

    def open(self, run: RunInfo) -> None:
        self._run = run
        atomic.remove_stale_temps(self.out)
        s = self.ctx.settings
        if s.sample and (s.wants("randomisation") or s.wants("stability")):
            self._sample = set(sample_indices(len(run.files), s.sample, run.config.seed).tolist())
        if self.inner is not None:
            self.inner.open(run)  # first: it clears stale temporary files, which would take ours too
        self.out.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(prefix=atomic.TMP_PREFIX, dir=self.out)
        self._lines = os.fdopen(fd, "w", encoding="utf-8")

    def consume(self, result: ItemResult) -> None:
        self._pending.append(result)
        if sum(_scorable(r) for r in self._pending) >= self.ctx.settings.inputs_per_score:
            self._flush()

    def close(self, summary: RunSummary) -> None:
        try:
            self._flush()
            sample = self._score_sample()
            self._lines.close()
            os.replace(self._tmp, atomic.inside(self.out, self.out / "audit.jsonl"))
            self.report = self._write(summary, sample)
        finally:
            if self.inner is not None:
                self.inner.close(summary)

    # -- scoring ------------------------------------------------------------------------------

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        ok = [r for r in pending if _scorable(r)]
        t0 = time.perf_counter()
        scores = dict(zip((r.index for r in ok), score_batch(ok, self.ctx)))
        self._seconds["score_seconds"] += time.perf_counter() - t0
        for r in pending:
            line = {"index": r.index, "input": str(r.rel), "status": r.status}
            if r.reason:
                line["reason"] = r.reason
            s = scores.get(r.index)
            if s is not None:
                self._scored += 1
                self._keep(r, s)
                maps = first_maps(r)
                line["target"] = next(iter(maps.values())).target.to_dict()
                line["methods"] = {name: {"metrics": {k: _json(v) for k, v in e["metrics"].items()}, "curves": e["curves"]}
                                   for name, e in s.items()}
                if self.inner is not None:
                    for name, m in maps.items():
                        m.details = {**m.details, "audit": line["methods"][name]}
                if r.index in self._sample:
                    self._sampled.append((r.index, str(r.rel), model_input(r.item, self.ctx.modality), next(iter(maps.values())).target.index,
                                          item_seed(self._run.config.seed, r.sha256)))
            self._lines.write(json.dumps(line, ensure_ascii=False, allow_nan=False) + "\n")
            if self.inner is not None:
                self.inner.consume(r)
        self._lines.flush()

    def _keep(self, r: ItemResult, scores: dict) -> None:
        for name, e in scores.items():
            for metric, v in e["metrics"].items():
                self._values[name].setdefault(metric, []).append(np.nan if v is None else v)
            for kind, c in e["curves"].items():
                sums = self._curves[name].setdefault(kind, {})
                for key, arr in c.items():
                    sums[key] = sums.get(key, 0.0) + np.asarray(arr, dtype=np.float64)
                self._curve_n[name][kind] = self._curve_n[name].get(kind, 0) + 1

    def _score_sample(self) -> dict:
        if not self._sampled:
            return {}
        targets = torch.tensor([s[3] for s in self._sampled])
        t0 = time.perf_counter()
        values, blocks, self._reasons = score_sample([s[2] for s in self._sampled], targets,
                                                     [s[4] for s in self._sampled], self.ctx)
        self._seconds["sample_seconds"] += time.perf_counter() - t0
        for name, metrics in values.items():
            for metric, v in metrics.items():
                self._values[name].setdefault(metric, []).extend(float(x) for x in v)
        return {"indices": [s[0] for s in self._sampled], "inputs": [s[1] for s in self._sampled],
                "randomisation_blocks": blocks, "not_measured": self._reasons or None,
                "values": {name: {m: [_json(x) for x in v] for m, v in metrics.items()} for name, metrics in values.items()}}

    # -- the run's files ---------------------------------------------------------------------

    def _write(self, summary: RunSummary, sample: dict) -> AuditReport:
        run = self._run
        metrics = aggregate({m: v for m, v in self._values.items()}, seed=run.config.seed)
        for method, reasons in self._reasons.items():
            for metric, reason in reasons.items():
                metrics[method][metric]["reason"] = reason
        results = evaluate_gate(self.checks, metrics, self.baseline) if self.checks else []
        report = AuditReport(self.out, metrics, results, summary)
        settings = self.ctx.settings
        doc = {
            "schema_version": AUDIT_SCHEMA_VERSION,
            "xai_version": __version__,
            "started": run.started.isoformat(timespec="seconds"),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "model": run.model,
            "modality": run.modality,
            "methods": run.methods,
            "config": run.config.to_dict(),
            "settings": settings.to_dict(),
            "precision": self.ctx.precision,
            "ground_truth": {"kind": self.ctx.truth.kind or ("rationale" if run.modality == "text" else None),
                             "source": self.ctx.truth.label()},
            "counts": {"total": summary.total, "ok": summary.ok, "failed": summary.failed, "scored": self._scored,
                       "not_done": summary.not_done},
            "stopped": summary.stopped,
            "metrics": metrics,
            "curves": self._mean_curves(),
            "sample": sample or None,
            "gate": None if not self.checks else {
                "file": self.sources.get("gate"), "baseline": self.sources.get("baseline"),
                "failed": report.gate_failed,
                "passed": sum(r.passed is True for r in results), "failures": sum(r.passed is False and r.severity == "fail" for r in results),
                "warnings": sum(r.passed is False and r.severity == "warn" for r in results),
                "skipped": sum(r.passed is None for r in results),
                "checks": [_check_dict(r) for r in results]},
            "failures": summary.failures,
            "timings": {**{k: round(v, 3) for k, v in summary.timings.items()},
                        **{k: round(v, 3) for k, v in self._seconds.items()},
                        "audit_total_seconds": round((datetime.now(timezone.utc) - run.started).total_seconds(), 3)},
            "files": {"per_input": "audit.jsonl", "junit": "junit.xml", "summary": "summary.md"},
            "exit_code": int(report.exit_code),
        }
        report.document = doc
        atomic.write_json(self.out / "audit.json", _clean(doc), self.out)
        atomic.write_bytes(self.out / "junit.xml", junit_xml(results).encode(), self.out)
        title = f"xai audit: {run.model_name}, {', '.join(run.methods)}"
        atomic.write_bytes(self.out / "summary.md", summary_markdown(metrics, results, title).encode(), self.out)
        return report

    def _mean_curves(self) -> dict:
        fractions = {"deletion": None, "insertion": None}
        s = self.ctx.settings
        out: dict = {}
        for name, kinds in self._curves.items():
            for kind, sums in kinds.items():
                n = self._curve_n[name][kind]
                entry = {key: round(float(arr) / n, 6) if np.ndim(arr) == 0 else [round(float(v) / n, 6) for v in arr]
                         for key, arr in sums.items()}
                if kind in fractions:
                    entry["fractions"] = [round(i / s.steps, 6) for i in range(s.steps + 1)]
                else:
                    entry["fractions"] = list(s.fraction_list)
                entry["n"] = n
                out.setdefault(name, {})[kind] = entry
        return out


def _scorable(r: ItemResult) -> bool:
    return r.status == "ok" and r.item is not None and bool(r.maps)


def _json(v):
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else v


def _check_dict(r: CheckResult) -> dict:
    return {"name": r.name, "method": r.method, "metric": r.metric, "kind": r.name.rsplit(".", 1)[-1],
            "value": r.value, "limit": r.limit, "passed": r.passed, "severity": r.severity, "message": r.message}


def _clean(obj):
    """NaN -> None everywhere (audit.json is strict JSON)."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj
