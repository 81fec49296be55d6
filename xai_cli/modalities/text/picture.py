"""One text map as a picture: the text with each word's background coloured by its score
(see ``xai_cli.render.tokens``), under the header every modality shares."""

from __future__ import annotations

from PIL import Image

from xai_cli.core.results import ItemResult, MapResult, RunInfo
from xai_cli.modalities.header import header
from xai_cli.render.tokens import render_text_panel


def picture(result: ItemResult, m: MapResult, run: RunInfo) -> Image.Image:
    it = result.item
    title, lines, warnings = header(result, m, run, "")  # the colour bar's caption says what the colours mean
    of = f"{it.total_tokens}" if it.total_exact else f"more than {it.total_tokens}"
    note = f"truncated: explained the first {len(it.input_ids)} of {of} tokens" if it.truncated else ""
    top = max(abs(v) for v in m.colour_range) if m.colour_range else None
    return render_text_panel(it.text, it.word_spans(), m.extra["word_scores"], signed=m.signed, title=title,
                             lines=tuple(lines), warnings=tuple(warnings), note=note, end=it.covered_chars(), top=top)
