"""Rendering: the colour tables match matplotlib's, and the picture is placed where the model looked."""

from __future__ import annotations

import numpy as np
import pytest

from xai_cli.render import colormap
from xai_cli.render.heatmap import choose_scale, overlay, render_panel


@pytest.mark.parametrize("ours,theirs", [("turbo", "turbo"), ("rdbu_r", "RdBu_r")])
def test_luts_match_matplotlib(ours, theirs):
    from matplotlib import colormaps

    ref = (colormaps[theirs](np.linspace(0, 1, 256))[:, :3] * 255).round()
    assert np.abs(colormap.LUTS[ours].astype(float) - ref).max() <= 12  # 17 anchors, linear in between


def test_overlay_only_colours_the_crop_box_and_keeps_the_size():
    original = np.full((100, 200, 3), 128, np.uint8)
    amap = np.zeros((10, 10), np.float32)
    amap[0, 0] = 1.0  # hot corner: top-left of the crop
    out = overlay(original, amap, (50.0, 0.0, 100.0, 100.0), choose_scale(amap, signed=False))
    assert out.shape == original.shape
    assert (out[:, :40] < 100).all()  # outside the box: dimmed
    hot, cold = out[2, 52].astype(int), out[95, 145].astype(int)
    assert hot[0] > cold[0] and hot[2] < cold[2]  # red-ish at the peak, blue-ish far from it


def test_signed_scale_is_symmetric_and_panel_has_room_for_the_bar():
    amap = np.linspace(-2, 1, 100, dtype=np.float32).reshape(10, 10)
    s = choose_scale(amap, signed=True)
    assert s.vmin == -s.vmax and s.cmap == "rdbu_r"
    panel = render_panel(np.zeros((64, 64, 3), np.uint8), amap, (0, 0, 64, 64), signed=True, title="ig · 'cat' (90.0%)")
    assert panel.width > 64 and panel.height > 64
