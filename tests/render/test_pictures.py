"""Pictures a person can trust: the shipped font, readable sizes, one width per input, flat maps
and ties said on the picture, region methods without a corner marker."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageFont

from xai_cli.modalities.base import degenerate
from xai_cli.modalities.image.stats import attribution_stats
from xai_cli.render import fonts
from xai_cli.render.heatmap import WIDEST_LABEL, Style, display_factor, render_panel, wrap


def test_the_shipped_font_draws_every_symbol_the_pictures_use():
    assert (fonts.FOLDER / "DejaVuSans.ttf").is_file() and "Bitstream" in (fonts.FOLDER / "LICENSE").read_text()
    symbols = "≥≤−·→é" + WIDEST_LABEL
    assert fonts.has_glyphs(symbols, fonts.font(20)) and fonts.has_glyphs(symbols, fonts.font(20, bold=True))
    assert not fonts.has_glyphs("≥", ImageFont.load_default(size=20))  # the check sees the missing-glyph box


@pytest.mark.parametrize("side,factor,resample", [
    (24, 14.0, Image.Resampling.NEAREST),  # tiny: whole pixels, crisp
    (96, 4.0, Image.Resampling.NEAREST),
    (200, 1.6, Image.Resampling.BICUBIC),
    (500, 1.0, Image.Resampling.NEAREST),
    (4096, 0.125, Image.Resampling.LANCZOS),  # bounded by max_side (512)
])
def test_inputs_are_shown_at_a_readable_bounded_size(side, factor, resample):
    f, r = display_factor(side, side // 2 or 1, Style())
    assert f == pytest.approx(factor) and r == resample


def test_a_tiny_input_is_enlarged_with_nearest_neighbours():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)
    panel = np.asarray(render_panel(img, np.ones((24, 24), np.float32), (0, 0, 24, 24), signed=False, title="t",
                                    style=Style(overlay="side-by-side")))
    k = 14  # the factor above: each input pixel is a 14 x 14 block of the left panel, bottom-aligned
    left = panel[-(8 + 24 * k):-8, 8:8 + 24 * k]
    assert left.shape[:2] == (24 * k, 24 * k)
    assert (left.reshape(24, k, 24, k, 3) == img[:, None, :, None, :]).all()


def test_one_inputs_pictures_have_one_width_whatever_their_text():
    img = np.zeros((96, 96, 3), np.uint8)
    amap = np.linspace(-1, 1, 96 * 96, dtype=np.float32).reshape(96, 96)
    long = "lime · explains 'a label that is very long indeed, " + "x" * 120 + "' (3.2%)"
    pictures = [render_panel(img, amap, (0, 0, 96, 96), signed=True, title="ig · '3' (81.1%)"),
                render_panel(img, amap, (0, 0, 96, 96), signed=False, title=long, lines=("a", "b " * 80)),
                render_panel(img, np.zeros((96, 96), np.float32), (0, 0, 96, 96), signed=False, title="gradcam",
                             warnings=("flat map",), flat=True)]
    assert len({p.width for p in pictures}) == 1
    assert pictures[1].height > pictures[0].height  # the long title wrapped instead of widening


def test_wrapped_lines_fit_and_keep_every_character():
    fnt = fonts.font(14)
    text = "top prediction: 'golden retriever' (93.1%) · explained: rank 2 · " + "y" * 300
    lines = wrap(text, fnt, 200)
    assert all(fnt.getlength(line) <= 200 for line in lines)
    bare = lambda t: t.replace(" ", "").replace("·", "")  # a separator ending a line is dropped, nothing else
    assert bare("".join(lines)) == bare(text) and len(lines) > 3


def test_a_flat_map_is_drawn_without_colours():
    img = np.random.default_rng(1).integers(0, 255, (320, 320, 3), dtype=np.uint8)
    panel = np.asarray(render_panel(img, np.zeros((10, 10), np.float32), (0, 0, 320, 320), signed=False,
                                    title="gradcam", flat=True, style=Style(overlay="blend")))
    body = panel[-8 - 320:-8, 8:8 + 320].astype(int)
    assert (body[..., 0] == body[..., 1]).all() and (body[..., 1] == body[..., 2]).all()  # grey: no colour scale
    coloured = np.asarray(render_panel(img, np.random.default_rng(2).random((10, 10)).astype(np.float32),
                                       (0, 0, 320, 320), signed=False, title="gradcam", style=Style(overlay="blend")))
    body = coloured[-8 - 320:-8, 8:8 + 320].astype(int)
    assert (body[..., 0] != body[..., 2]).mean() > 0.5


def test_side_by_side_shows_the_input_untouched_and_is_wider_than_blend():
    img = np.random.default_rng(3).integers(0, 255, (320, 320, 3), dtype=np.uint8)
    amap = np.random.default_rng(4).random((7, 7)).astype(np.float32)
    side = render_panel(img, amap, (0, 0, 320, 320), signed=False, title="t", style=Style(overlay="side-by-side"))
    blend = render_panel(img, amap, (0, 0, 320, 320), signed=False, title="t", style=Style(overlay="blend"))
    assert side.width == blend.width + 320 + 8
    assert (np.asarray(side)[-8 - 320:-8, 8:8 + 320] == img).all()


@pytest.mark.parametrize("lo,hi,kind", [(0.0, 0.0, "zero"), (-3e-16, 1e-15, "near_zero"), (0.5, 0.5, "constant"),
                                         (0.0, 1e-9, None), (-1.0, 2.0, None)])
def test_degenerate_maps_are_named(lo, hi, kind):
    assert degenerate(lo, hi) == kind


def test_image_stats_carry_the_degenerate_field():
    maps = torch.stack([torch.zeros(8, 8), torch.full((8, 8), 1e-15), torch.rand(8, 8, generator=torch.Generator().manual_seed(0))])
    assert [s["degenerate"] for s in attribution_stats(maps)] == ["zero", "near_zero", None]


def test_top10_mass_is_the_share_of_the_largest_tenth():
    """Against a plain sort in float64: the selection of the largest tenth, not their order."""
    g = torch.Generator().manual_seed(1)
    maps = torch.stack([torch.randn(56, 56, generator=g), torch.rand(56, 56, generator=g) ** 8,
                        torch.zeros(56, 56), torch.full((56, 56), 3.0)])
    maps[0, 3, 4] = float("nan")
    got = [s["top10_mass"] for s in attribution_stats(maps)]
    mag = torch.nan_to_num(maps.reshape(4, -1).double()).abs()
    k = math.ceil(0.1 * mag.shape[1])
    want = [(row.sort(descending=True).values[:k].sum() / row.sum()).item() if row.sum() > 0 else 0.0 for row in mag]
    assert got == pytest.approx(want, rel=1e-6, abs=1e-9)
    assert got[3] == pytest.approx(k / mag.shape[1])  # a flat map: its tenth holds a tenth (k rounded up)


def test_tied_predictions_are_counted():
    from xai_cli.core.results import TIE
    from xai_cli.core.targets import tied_with_top

    probs = torch.tensor([[0.25, 0.25, 0.25, 0.25], [0.7, 0.1, 0.1, 0.1], [0.4, 0.4 - 1e-6, 0.2, 0.0]])
    assert tied_with_top(probs, TIE).tolist() == [4, 1, 2]
