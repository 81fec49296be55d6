"""One image map as a labelled picture over the input (see ``xai_cli.render.heatmap``)."""

from __future__ import annotations

from PIL import Image

from xai_cli.core.results import ItemResult, MapResult, RunInfo
from xai_cli.modalities.header import header
from xai_cli.render.heatmap import Style, fixed_scale, render_panel


def picture(result: ItemResult, m: MapResult, run: RunInfo) -> Image.Image:
    """The map over the original input, with the header above and the colour bar beside it."""
    from xai_cli.methods.registry import all_methods

    it, cfg = result.item, run.config
    cls = all_methods("image").get(m.method)
    legend = "red: for · blue: against · white: 0" if m.signed else f"{cfg.cmap}: low → high"
    title, lines, warnings = header(result, m, run, legend)
    style = Style(overlay=cfg.overlay, cmap=cfg.cmap, max_side=cfg.render_max_side)
    scale = fixed_scale(m.scores, m.signed, *m.colour_range, cfg.cmap) if m.colour_range else None
    regions = bool(cls and cls.regions)
    return render_panel(it.original, m.scores, tuple(it.box.to_list()), signed=m.signed, title=title,
                        lines=tuple(lines), warnings=tuple(warnings), style=style, scale=scale,
                        peak_xy=None if regions else tuple(m.stats["peak_xy"]), flat=bool(m.stats.get("degenerate")))
