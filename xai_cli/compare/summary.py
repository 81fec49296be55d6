"""summary.md of a comparison: which models, the aggregates, the gate, the worst inputs.

The tables are the audit's (``xai_cli.audit.summary``) so both read alike in a CI summary.
"""

from __future__ import annotations

from xai_cli.audit.summary import summary_markdown as _tables
from xai_cli.compare.report import MEASURES, CompareReport


def _side(tag: str, s: dict) -> str:
    return f"**{tag}**: `{s.get('model')}` ({s.get('weights')}), method `{s.get('method')}`"


def summary_markdown(report: CompareReport) -> str:
    """Markdown for people (and ``$GITHUB_STEP_SUMMARY``)."""
    measures = {m: s for m, s in report.aggregates.items() if s.get("n")}
    table = {"A vs B": {m: {**s, "ci_low": s["ci"][0], "ci_high": s["ci"][1]} for m, s in measures.items()}}
    text = _tables(table, report.checks, title="xai compare")
    head, _, rest = text.partition("\n\n")
    flips = [r["input"] for r in report.inputs if r["status"] == "ok" and r["flipped"]]
    lines = [head, "", _side("A", report.a) + "  ", _side("B", report.b), "",
             f"{report.total - report.failed}/{report.total} inputs compared, {report.failed} failed; "
             f"top-1 prediction flipped on {len(flips)}.", ""]
    lines.append(rest.rstrip("\n"))
    arrows = "".join(f"\n- `{m}`: {i.description}" for m, i in MEASURES.items() if m in measures)
    if arrows:
        lines += ["", "Measures:" + arrows]
    for measure, items in report.worst.items():
        shown = ", ".join(f"`{w['input']}` ({w['value']:.3f})" if w["value"] is not None else f"`{w['input']}`"
                          for w in items)
        lines += ["", f"Worst by {measure}: {shown}"]
    return "\n".join(lines) + "\n"
