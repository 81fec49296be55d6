"""The picture of one compared input: A | B | B - A, labelled with both predictions.

Images use :func:`xai_cli.render.compare.render_compare` (one colour scale shared by A and B).
Texts stack three word-coloured panels: A, B and B - A (per word; each panel on its own scale,
stated on its colour bar).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from xai_cli.core.results import ItemResult


def picture(ra: ItemResult, rb: ItemResult, names: tuple[str, str], methods: tuple[str, str],
            max_side: int = 1024) -> Image.Image:
    """A | B | B - A of one input; ``names`` label the two sides, ``methods`` their methods."""
    method = methods[0] if methods[0] == methods[1] else f"{methods[0]} vs {methods[1]}"
    ma, mb = ra.maps[0], rb.maps[0]
    if ra.modality == "image":
        from xai_cli.render.compare import Side, render_compare

        sides = [Side(name, _label(r), r.prediction.top.probability, m.scores,
                      (r.item.box.left, r.item.box.top, r.item.box.width, r.item.box.height))
                 for name, r, m in ((names[0], ra, ma), (names[1], rb, mb))]
        return render_compare(ra.item.original, *sides, method=method, signed=ma.signed or mb.signed,
                              title=str(ra.rel), max_side=max_side)
    return _text_picture(ra, rb, names, method)


def _label(r: ItemResult) -> str:
    top = r.prediction.top
    return top.label if top.label is not None else f"class {top.index}"


def _text_picture(ra: ItemResult, rb: ItemResult, names: tuple[str, str], method: str) -> Image.Image:
    from xai_cli.render.tokens import render_text_panel

    it = ra.item
    wa, wb = ra.maps[0].extra["word_scores"], rb.maps[0].extra["word_scores"]
    rows = [(f"A: {names[0]} predicts {_label(ra)} ({ra.prediction.top.probability:.1%})", wa, ra.maps[0].signed),
            (f"B: {names[1]} predicts {_label(rb)} ({rb.prediction.top.probability:.1%})", wb, rb.maps[0].signed)]
    if len(wa) == len(wb):
        rows.append(("B - A (red: B higher, blue: A higher)", np.nan_to_num(wb) - np.nan_to_num(wa), True))
    panels = [render_text_panel(it.text, it.word_spans(), scores, signed=signed, title=title,
                                subtitle=f"{ra.rel} · {method}", end=it.covered_chars())
              for title, scores, signed in rows]
    canvas = Image.new("RGB", (max(p.width for p in panels), sum(p.height for p in panels)), "white")
    y = 0
    for p in panels:
        canvas.paste(p, (0, y))
        y += p.height
    return canvas
