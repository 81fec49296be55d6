"""The audit gate: a TOML file of checks on an audit's aggregates, evaluated to typed results.

One table per method and metric::

    [gradcam.deletion_gain]
    min = 0.02               # absolute limits
    max = 1.0
    max_decrease = 0.02      # against the baseline audit's mean (higher-is-better metrics)
    max_increase = 0.02      # (lower-is-better metrics)
    severity = "fail"        # or "warn"
    compare = "bound"        # or "mean": "bound" uses the 95 % interval's conservative end

The conservative end is the one that makes the check harder to pass: the interval's low end
against ``min``/``max_decrease``, its high end against ``max``/``max_increase``. A metric the
audit did not compute (no masks given, say) gives a skipped check, not a failure.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from xai_cli.errors import ConfigError, did_you_mean
from xai_cli.metrics.aggregate import METRICS

Severity = Literal["fail", "warn"]
LIMITS = ("min", "max", "max_increase", "max_decrease")
_KEYS = set(LIMITS) | {"severity", "compare"}


@dataclass(frozen=True)
class Check:
    """One limit on one method's metric, as the gate file states it."""

    method: str
    metric: str
    kind: str  # one of LIMITS
    limit: float
    severity: Severity = "fail"
    compare: Literal["mean", "bound"] = "mean"

    @property
    def name(self) -> str:
        return f"{self.method}.{self.metric}.{self.kind}" if self.method else f"{self.metric}.{self.kind}"


@dataclass(frozen=True)
class CheckResult:
    """The outcome of a check.

    Attributes:
        passed: True, False, or None when it could not be evaluated (metric or baseline missing).
        value: The number compared (mean, interval bound, or change against the baseline).
    """

    name: str
    method: str
    metric: str
    value: float | None
    limit: float
    passed: bool | None
    severity: Severity
    message: str


def parse_gate(data: Mapping, methods: Iterable[str] | None = None, metrics: Iterable[str] | None = None) -> list[Check]:
    """Checks from a parsed gate table.

    Args:
        data: ``{method: {metric: {limit: value, ...}}}``.
        methods: Known method names (default: every registered method).
        metrics: Known metric names (default: ``aggregate.METRICS``).

    Raises:
        ConfigError: An unknown method, metric or key, or a value of the wrong type; names
            the near matches.
    """
    if methods is None:
        from xai_cli.methods.registry import _all_names

        methods = _all_names()
    methods, metrics = sorted(methods), sorted(metrics if metrics is not None else METRICS)
    checks = []
    for method, table in data.items():
        if method not in methods:
            raise ConfigError(f"gate: unknown method {method!r}", did_you_mean(method, methods) or f"known: {', '.join(methods)}")
        if not isinstance(table, Mapping):
            raise ConfigError(f"gate: [{method}] must be a table of metrics", f"write [{method}.deletion_gain]")
        for metric, spec in table.items():
            where = f"{method}.{metric}"
            if metric not in metrics:
                raise ConfigError(f"gate: unknown metric {metric!r} in [{method}]",
                                  did_you_mean(metric, metrics) or f"known: {', '.join(metrics)}")
            if not isinstance(spec, Mapping):
                raise ConfigError(f"gate: [{where}] must be a table", "e.g. min = 0.5")
            checks += _checks(method, metric, spec, where)
    return checks


def _checks(method: str, metric: str, spec: Mapping, where: str) -> list[Check]:
    for key in spec:
        if key not in _KEYS:
            raise ConfigError(f"gate: unknown key {key!r} in [{where}]", did_you_mean(key, sorted(_KEYS)) or f"use {', '.join(sorted(_KEYS))}")
    severity, compare = spec.get("severity", "fail"), spec.get("compare", "mean")
    if severity not in ("fail", "warn"):
        raise ConfigError(f"gate: [{where}] severity must be 'fail' or 'warn', got {severity!r}")
    if compare not in ("mean", "bound"):
        raise ConfigError(f"gate: [{where}] compare must be 'mean' or 'bound', got {compare!r}")
    out = []
    for kind in LIMITS:
        if kind in spec:
            value = spec[kind]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"gate: [{where}] {kind} must be a number, got {value!r}")
            out.append(Check(method, metric, kind, float(value), severity, compare))
    if not out:
        raise ConfigError(f"gate: [{where}] sets no limit", f"use one of {', '.join(LIMITS)}")
    return out


def parse_measure_gate(data: Mapping, measures: Iterable[str], kinds: Iterable[str] = LIMITS) -> list[Check]:
    """Checks from a gate table without methods, ``{measure: {limit: value, ...}}`` (``xai compare``'s).

    The checks have ``method == ""``: they are named ``measure.kind`` and evaluated with
    ``evaluate_gate(checks, {"": aggregates})``.

    Raises:
        ConfigError: An unknown measure or key, a limit kind outside ``kinds``, or a bad value.
    """
    measures, kinds = sorted(measures), tuple(kinds)
    checks = []
    for measure, spec in data.items():
        if measure not in measures:
            raise ConfigError(f"gate: unknown measure {measure!r}", did_you_mean(measure, measures) or f"known: {', '.join(measures)}")
        if not isinstance(spec, Mapping):
            raise ConfigError(f"gate: [{measure}] must be a table", "e.g. min = 0.5")
        for kind in set(LIMITS) - set(kinds):
            if kind in spec:
                raise ConfigError(f"gate: [{measure}] {kind} does not apply here", f"use {', '.join(kinds)}")
        checks += _checks("", measure, spec, measure)
    return checks


def _read_gate(path: Path) -> dict:
    try:
        return tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"gate file {path}: {exc}", "check the path and the TOML syntax") from exc


def load_gate(path: Path, methods: Iterable[str] | None = None, metrics: Iterable[str] | None = None) -> list[Check]:
    """Read and check a gate file (see the module docstring).

    Raises:
        ConfigError: Unreadable TOML, or see :func:`parse_gate`.
    """
    return parse_gate(_read_gate(path), methods, metrics)


def load_measure_gate(path: Path, measures: Iterable[str], kinds: Iterable[str] = LIMITS) -> list[Check]:
    """Read and check a gate file of :func:`parse_measure_gate`'s shape.

    Raises:
        ConfigError: Unreadable TOML, or see :func:`parse_measure_gate`.
    """
    return parse_measure_gate(_read_gate(path), measures, kinds)


def evaluate_gate(checks: Iterable[Check], audit: Mapping, baseline: Mapping | None = None) -> list[CheckResult]:
    """Evaluate checks on an audit's aggregates.

    Args:
        checks: From :func:`load_gate`.
        audit: ``{method: {metric: {"mean", "ci_low", "ci_high", "n", ...}}}`` (``aggregate()``'s shape).
        baseline: The same for a previous audit, for ``max_increase``/``max_decrease``.

    Returns:
        One :class:`CheckResult` per check, in the gate's order.
    """
    return [_evaluate(c, audit, baseline) for c in checks]


def _evaluate(c: Check, audit: Mapping, baseline: Mapping | None) -> CheckResult:
    def result(value, passed, message):
        return CheckResult(c.name, c.method, c.metric, value, c.limit, passed, c.severity, message)

    summary = audit.get(c.method, {}).get(c.metric)
    if not summary or not summary.get("n") or _missing(summary.get("mean")):
        return result(None, None, f"{c.method} {c.metric}: {(summary or {}).get('reason') or 'not measured in this audit'}")
    upper = c.kind in ("max", "max_increase")  # the check bounds the value from above
    key = "mean" if c.compare == "mean" else ("ci_high" if upper else "ci_low")
    value = summary.get(key)
    if _missing(value):
        return result(None, None, f"{c.method} {c.metric}: no {key} in the audit")
    label = "mean" if key == "mean" else f"95% interval's {'upper' if upper else 'lower'} end"
    if c.kind in ("min", "max"):
        passed = value <= c.limit if upper else value >= c.limit
        op = "<=" if upper else ">="
        return result(value, passed, f"{c.metric} {label} {value:.4g} {'' if passed else 'not '}{op} {c.limit:.4g}")
    before = (baseline or {}).get(c.method, {}).get(c.metric, {}).get("mean")
    if _missing(before):
        return result(None, None, f"{c.method} {c.metric}: no baseline value to compare with")
    change = value - before if upper else before - value
    passed = change <= c.limit
    what = "increase" if upper else "decrease"
    return result(change, passed, f"{c.metric} {what} {change:.4g} ({label} {value:.4g} vs baseline mean {before:.4g}) "
                                  f"{'within' if passed else 'over'} {c.limit:.4g}")


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def gate_failed(results: Iterable[CheckResult]) -> bool:
    """True when a ``fail`` check failed (the audit's exit status 4)."""
    return any(r.passed is False and r.severity == "fail" for r in results)
