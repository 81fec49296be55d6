"""What a map's picture says above it, for every modality.

What a reader needs to trust a picture: the method and the class it explains, the model's
own top prediction when that is another class, the model (and whether its weights are
random), what the colours mean, IG's completeness error, attention's lack of a class, and
(in the warning lines) a flat map or a prediction where classes tie.
"""

from __future__ import annotations

from xai_cli.core.results import ItemResult, MapResult, RunInfo
from xai_cli.modalities.base import DEGENERATE_TEXT

UNIFORM = 0.25  # a positive map whose values span less than this share of its maximum is "nearly uniform"


def header(result: ItemResult, m: MapResult, run: RunInfo, legend: str) -> tuple[str, list[str], list[str]]:
    """(title, grey lines, warning lines) of a map's picture; shared by every modality."""
    t, top = m.target, result.prediction.top
    title = f"{m.method} · explains {t.name} ({t.probability:.1%})"
    lines = ["the model's top prediction" if t.index == top.index
             else f"top prediction: {top.name} ({top.probability:.1%}) · explained: "
             + ("the class asked for" if run.config.target is not None else f"rank {t.rank}")]
    lines.append(run.model_name + (" (RANDOM WEIGHTS)" if run.model.get("random_init") else "")
                 + (f" · layer {m.layer}" if m.layer else ""))
    notes = [legend] if legend and not m.stats.get("degenerate") else []
    if m.details.get("class_specific") is False:
        notes.append("not class-specific: the same map for every class")
    if "completeness_error" in m.details:
        notes.append(f"completeness error {m.details['completeness_error']:.2%}")
    if m.colour_range is not None:
        notes.append("colours on the run's scale")
    lines.append(" · ".join(notes))
    warnings = []
    if m.stats.get("degenerate"):
        warnings.append(f"flat map: {DEGENERATE_TEXT[m.stats['degenerate']]}, nothing to show")
    lo, hi = m.stats.get("min", 0.0), m.stats.get("max", 0.0)
    if not m.stats.get("degenerate") and lo > 0 and (hi - lo) < UNIFORM * hi:  # e.g. random-weight attention
        warnings.append(f"nearly uniform: every value is between {lo:.3g} and {hi:.3g}")
    if result.prediction.tied > 1:
        warnings.append(f"{result.prediction.tied} classes tie at {top.probability:.2%}: the model prefers none of them")
    return title, [line for line in lines if line], warnings
