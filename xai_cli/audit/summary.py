"""summary.md: the audit's aggregates and gate results as markdown tables, for people
(and for ``$GITHUB_STEP_SUMMARY``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from xai_cli.audit.gate import CheckResult
from xai_cli.metrics.aggregate import METRICS

_MARK = {True: "pass", False: "FAIL", None: "skipped"}


def summary_markdown(audit: Mapping[str, Mapping[str, Mapping]], results: Iterable[CheckResult] = (),
                     title: str = "xai audit") -> str:
    """Markdown: a table of metrics per method (mean, median, p10, 95 % interval, n), then the checks.

    Args:
        audit: ``{method: {metric: summary dict}}`` (``aggregate()``'s shape).
        results: Gate results, if a gate was given.
        title: The heading.
    """
    lines = [f"## {title}", "", "| method | metric | | mean | median | p10 | 95% interval | n |",
             "|---|---|---|---:|---:|---:|---|---:|"]
    for method, metrics in audit.items():
        for metric, s in metrics.items():
            info = METRICS.get(metric)
            arrow = "" if info is None else ("↑" if info.higher_is_better else "↓")
            lines.append(f"| {method} | {metric} | {arrow} | {_f(s.get('mean'))} | {_f(s.get('median'))} | "
                         f"{_f(s.get('p10'))} | [{_f(s.get('ci_low'))}, {_f(s.get('ci_high'))}] | {s.get('n', 0)} |")
    why = [f"- {method} {metric}: not measured ({s['reason']})" for method, metrics in audit.items()
           for metric, s in metrics.items() if s.get("reason")]
    if why:
        lines += [""] + why
    results = list(results)
    if results:
        failed = [r for r in results if r.passed is False and r.severity == "fail"]
        lines += ["", f"**Gate: {'FAILED' if failed else 'passed'}** — {sum(r.passed is True for r in results)} passed, "
                      f"{len(failed)} failed, {sum(r.passed is False and r.severity == 'warn' for r in results)} warnings, "
                      f"{sum(r.passed is None for r in results)} skipped", "",
                  "| check | result | severity | value | limit | detail |", "|---|---|---|---:|---:|---|"]
        for r in results:
            mark = "warning" if r.passed is False and r.severity == "warn" else _MARK[r.passed]
            lines.append(f"| {r.name} | {mark} | {r.severity} | {_f(r.value)} | {_f(r.limit)} | {r.message.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def _f(v) -> str:
    return "–" if v is None or v != v else f"{v:.3f}"
