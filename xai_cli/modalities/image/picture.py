"""One image map as a labelled picture over the input (see ``xai_cli.render.heatmap``)."""

from __future__ import annotations

import threading

import numpy as np
from PIL import Image

from xai_cli.core.results import ItemResult, MapResult, RunInfo, Target
from xai_cli.modalities.header import header
from xai_cli.render.heatmap import Display, Style, fixed_scale, panel_pixels, prepare


def _counterfactual(result: ItemResult, m: MapResult, run: RunInfo) -> Image.Image:
    from xai_cli.methods.ig import BLUR_SIGMA_PER_224
    from xai_cli.render.counterfactual import render_counterfactual

    it, d, top = result.item, m.details, result.prediction.top
    sigma = m.params.get("blur_sigma") or BLUR_SIGMA_PER_224 * m.scores.shape[-1] / 224
    removed = len(d["removed_segments"])
    new = Target(0, d["new_class"], run_label(run, d["new_class"]), d["new_probability"]).name
    after = (f"{removed} superpixel{'s' if removed != 1 else ''} blurred: {new} ({d['new_probability']:.1%})"
             if d.get("found") else f"no flip within {removed} superpixels: {new} ({d['new_probability']:.1%})")
    return render_counterfactual(it.original, m.scores > 0, tuple(it.box.to_list()), sigma_input_px=sigma,
                                 before=f"model: {top.name} ({top.probability:.1%})", after=after,
                                 title=f"counterfactual · {run.model_name}",
                                 max_side=run.config.render_max_side)


def _montage(result: ItemResult, m: MapResult, run: RunInfo) -> Image.Image:
    from xai_cli.render.montage import render_montage

    d = m.details
    return render_montage(result.item.original, m.scores, d["montage_grid"][0], d["channels"],
                          title=f"activations · layer {d['layer']} · {run.model_name}",
                          subtitle=f"the {len(d['channels'])} most responsive channels, each scaled to its own "
                                   "maximum · not an attribution, not class-specific")


def run_label(run: RunInfo, index: int) -> str | None:
    labels = run.labels
    return labels[index] if labels and 0 <= index < len(labels) else None


_last = threading.local()  # per writer thread: (the input drawn last, its style, its Display)


def input_display(it, style: Style) -> Display:
    """``it``'s input as its pictures show it, made once for all of its maps: the files sink
    draws an input's maps one after another in one writer thread, so the last input's Display
    is kept per thread (enlarging a 224² photo and its grey copy: 0.4 ms; an input has a picture per method)."""
    last = getattr(_last, "held", None)
    if last is None or last[0] is not it or last[1] != style:
        last = (it, style, prepare(it.original, tuple(it.box.to_list()), style))
        _last.held = last
    return last[2]


def forget() -> None:
    """Drop this thread's kept Display (the next picture prepares its input afresh)."""
    _last.held = None


def picture(result: ItemResult, m: MapResult, run: RunInfo) -> Image.Image | np.ndarray:
    """The map over the original input, with the header above and the colour bar beside it
    ((H, W, 3) uint8 for a heatmap: the PNG encoder takes it as it is)."""
    from xai_cli.methods.registry import all_methods

    it, cfg = result.item, run.config
    if "removed_segments" in m.details:  # a counterfactual: the input it changes, not a heatmap
        return _counterfactual(result, m, run)
    if m.details.get("montage_grid"):  # layer activations as tiles: they do not line up with the input
        return _montage(result, m, run)
    cls = all_methods("image").get(m.method)
    legend = "red: for · blue: against · white: 0" if m.signed else f"{cfg.cmap}: low → high"
    title, lines, warnings = header(result, m, run, legend)
    style = Style(overlay=cfg.overlay, cmap=cfg.cmap, max_side=cfg.render_max_side)
    scale = fixed_scale(m.scores, m.signed, *m.colour_range, cfg.cmap) if m.colour_range else None
    regions = bool(cls and cls.regions)
    return panel_pixels(it.original, m.scores, tuple(it.box.to_list()), signed=m.signed, title=title,
                        lines=tuple(lines), warnings=tuple(warnings), style=style, scale=scale,
                        peak_xy=None if regions else tuple(m.stats["peak_xy"]), flat=bool(m.stats.get("degenerate")),
                        display=input_display(it, style))
