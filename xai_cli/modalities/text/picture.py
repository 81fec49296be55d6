"""One text map as a picture: the text with each word's background coloured by its score
(see ``xai_cli.render.tokens``)."""

from __future__ import annotations

from PIL import Image

from xai_cli.core.results import ItemResult, MapResult, RunInfo
from xai_cli.render.tokens import render_text_panel


def picture(result: ItemResult, m: MapResult, run: RunInfo) -> Image.Image:
    it, t = result.item, m.target
    title = f"{m.method} · {t.name} ({t.probability:.1%})"
    bits = [run.model_name, f"rank {t.rank}"]
    if m.details.get("class_specific") is False:
        bits.append("not class-specific")
    if "completeness_error" in m.details:
        bits.append(f"completeness error {m.details['completeness_error']:.2%}")
    of = f"{it.total_tokens}" if it.total_exact else f"more than {it.total_tokens}"
    note = f"truncated: explained the first {len(it.input_ids)} of {of} tokens" if it.truncated else ""
    return render_text_panel(it.text, it.word_spans(), m.extra["word_scores"], signed=m.signed, title=title,
                             subtitle=" · ".join(bits), note=note, end=it.covered_chars())
