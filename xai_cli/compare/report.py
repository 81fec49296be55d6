"""What a comparison returns and writes: per-input rows, aggregates, worst inputs, gate checks.

``compare.json``'s shape (``CompareReport.to_dict``)::

    {"a": {model, weights, method}, "b": {...}, "counts": {total, ok, failed},
     "inputs": [{input, status, a: {index, label, probability}, b: {...}, flipped, spearman,
                 iou, region_share_a, region_share_b, unit, picture}, ...],
     "aggregates": {measure: {mean, median, p10, ci: [low, high], n}, ..., "flip_rate": {...}},
     "worst": {measure: [{input, value}, ...]}, "checks": [...], "gate": {passed, checks} (with a gate)}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from xai_cli.audit.gate import Check, CheckResult, evaluate_gate, gate_failed
from xai_cli.errors import ExitCode
from xai_cli.metrics.aggregate import MetricInfo, summarise

SCHEMA_VERSION = "1.0"
MEASURES: dict[str, MetricInfo] = {
    "spearman": MetricInfo(True, "Spearman rank correlation of |A| and |B| (1: same ranking)"),
    "iou": MetricInfo(True, "overlap (IoU) of A's and B's top 10 % pixels (tokens) by |value|"),
    "flip_rate": MetricInfo(False, "share of inputs whose top-1 class differs between A and B"),
    "region_share_a": MetricInfo(False, "share of A's positive attribution inside the region"),
    "region_share_b": MetricInfo(False, "share of B's positive attribution inside the region"),
    "region_share_increase": MetricInfo(False, "region_share_b - region_share_a"),
}
GATE_KINDS = ("min", "max")  # no baseline in a comparison: B is measured against A
WORST_N = 5


@dataclass
class CompareReport:
    """A finished comparison. ``inputs`` holds one row per input (``compare.json``'s entries)."""

    a: dict
    b: dict
    inputs: list[dict] = field(default_factory=list)
    aggregates: dict[str, dict] = field(default_factory=dict)
    worst: dict[str, list[dict]] = field(default_factory=dict)
    checks: list[CheckResult] = field(default_factory=list)
    gate: str | None = None  # the gate file, when one was given
    out: str | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    stopped: str | None = None

    @property
    def total(self) -> int:
        return len(self.inputs)

    @property
    def failed(self) -> int:
        return sum(r["status"] == "error" for r in self.inputs)

    @property
    def gate_failed(self) -> bool:
        return gate_failed(self.checks)

    @property
    def exit_code(self) -> ExitCode:
        """4 when a ``fail`` check failed, else 1 when an input failed, else 0."""
        if self.gate_failed:
            return ExitCode.GATE_FAILED
        return ExitCode.INPUTS_FAILED if self.failed else ExitCode.OK

    def finish(self, checks: list[Check], seed: int = 0) -> None:
        """Aggregate the rows, pick the worst inputs, evaluate the gate's ``checks``."""
        self.aggregates = aggregate(self.inputs, seed)
        self.worst = worst(self.inputs)
        self.checks = evaluate(checks, self.aggregates)

    def to_dict(self) -> dict:
        checks = [check_dict(r) for r in self.checks]
        doc = {"schema_version": SCHEMA_VERSION, "a": self.a, "b": self.b,
               "counts": {"total": self.total, "ok": self.total - self.failed, "failed": self.failed},
               "inputs": self.inputs, "aggregates": self.aggregates, "worst": self.worst, "checks": checks,
               "seconds": round(self.seconds, 3), "timings": self.timings, "warnings": self.warnings,
               "stopped": self.stopped, "exit_code": int(self.exit_code)}
        if self.gate is not None:
            doc["gate"] = {"file": self.gate, "passed": not self.gate_failed, "checks": checks}
        return doc


def per_input_values(rows: list[dict]) -> dict[str, list[float]]:
    """The measured inputs' values of each measure (NaN where not measured)."""
    ok = [r for r in rows if r["status"] == "ok"]

    def v(x) -> float:
        return math.nan if x is None else float(x)

    increase = [v(r["region_share_b"]) - v(r["region_share_a"]) for r in ok]
    return {"spearman": [v(r["spearman"]) for r in ok], "iou": [v(r["iou"]) for r in ok],
            "region_share_a": [v(r["region_share_a"]) for r in ok], "region_share_b": [v(r["region_share_b"]) for r in ok],
            "region_share_increase": increase, "flip_rate": [float(r["flipped"]) for r in ok]}


def aggregate(rows: list[dict], seed: int = 0) -> dict[str, dict]:
    """``{measure: {mean, median, p10, ci: [low, high], n}}``; ``flip_rate`` is the mean of the flips."""
    out = {}
    for measure, values in per_input_values(rows).items():
        s = summarise(values, seed=seed).to_dict()
        out[measure] = {"mean": s["mean"], "median": s["median"], "p10": s["p10"], "ci": [s["ci_low"], s["ci_high"]],
                        "n": s["n"]}
    return out


def worst(rows: list[dict], n: int = WORST_N) -> dict[str, list[dict]]:
    """The ``n`` inputs that drifted most by each measure (lowest agreement, largest move into the region),
    and the flipped inputs (value: B's probability of its class)."""
    ok = [r for r in rows if r["status"] == "ok"]
    out: dict[str, list[dict]] = {}
    for measure, key, sign in (("spearman", lambda r: r["spearman"], 1), ("iou", lambda r: r["iou"], 1),
                               ("region_share_increase", _increase, -1)):
        scored = [(key(r), r["input"]) for r in ok if key(r) is not None]
        if scored:
            scored.sort(key=lambda t: (sign * t[0], t[1]))
            out[measure] = [{"input": name, "value": value} for value, name in scored[:n]]
    flips = [{"input": r["input"], "value": r["b"]["probability"]} for r in ok if r["flipped"]]
    if flips:
        out["flipped"] = flips[:n]
    return out


def _increase(r: dict) -> float | None:
    if r["region_share_a"] is None or r["region_share_b"] is None:
        return None
    return r["region_share_b"] - r["region_share_a"]


def evaluate(checks: list[Check], aggregates: Mapping[str, Mapping]) -> list[CheckResult]:
    """The gate's checks on the aggregates (``compare = "bound"`` reads the interval's conservative end)."""
    table = {m: {"mean": s["mean"], "ci_low": s["ci"][0], "ci_high": s["ci"][1], "n": s["n"]} for m, s in aggregates.items()}
    out = []
    for c, r in zip(checks, evaluate_gate(checks, {"": table}), strict=True):
        if r.passed is None:  # the audit's wording names a method and an audit; say it for a comparison
            why = "no input has a region of interest" if c.metric.startswith("region_share") else "no input was measured"
            r = CheckResult(r.name, r.method, r.metric, None, r.limit, None, r.severity, f"{c.metric}: not measured: {why}")
        out.append(r)
    return out


def check_dict(r: CheckResult) -> dict:
    return {"name": r.name, "measure": r.metric, "value": r.value, "limit": r.limit, "passed": r.passed,
            "severity": r.severity, "message": r.message}
