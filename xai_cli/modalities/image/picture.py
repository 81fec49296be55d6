"""One image map as a labelled picture over the input (see ``xai_cli.render.heatmap``)."""

from __future__ import annotations

from PIL import Image

from xai_cli.core.results import ItemResult, MapResult, RunInfo
from xai_cli.render.heatmap import render_panel


def picture(result: ItemResult, m: MapResult, run: RunInfo) -> Image.Image:
    """The map over the original input, titled with method, class and probability."""
    it = result.item
    title = f"{m.method} · {m.target.name} ({m.target.probability:.1%})"
    subtitle = (run.model_name + (" (RANDOM WEIGHTS)" if run.model["random_init"] else "")
                + f" · rank {m.target.rank}" + (f" · layer {m.layer}" if m.layer else ""))
    return render_panel(it.original, m.scores, tuple(it.box.to_list()), signed=m.signed, title=title,
                        subtitle=subtitle, peak_xy=tuple(m.stats["peak_xy"]), max_side=run.render_max_side)
