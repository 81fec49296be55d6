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


def _affine_grid(amap, box, size):
    """The map on the image grid by PIL's affine bilinear transform (the former way)."""
    from PIL import Image

    h, w = size
    left, top, bw, bh = box
    sx, sy = amap.shape[1] / bw, amap.shape[0] / bh
    return np.asarray(Image.fromarray(amap.astype(np.float32), "F").transform(
        (w, h), Image.Transform.AFFINE, (sx, 0, -left * sx, 0, sy, -top * sy), resample=Image.Resampling.BILINEAR))


BOXES = [(16.0, 16.0, 224.0, 224.0), (0.0, 20.5, 256.0, 210.0)]


@pytest.mark.parametrize("box", BOXES)
def test_map_resampling_equals_the_affine_transform_inside_the_box(box):
    from xai_cli.render.heatmap import box_mask, to_image_grid

    amap = np.random.default_rng(7).normal(size=(56, 56)).astype(np.float32)
    inside = box_mask(box, (256, 256))
    ours, ref = to_image_grid(amap, box, (256, 256)), _affine_grid(amap, box, (256, 256))
    np.testing.assert_allclose(ours[inside], ref[inside], atol=1e-4)
    assert (ours[~inside] == 0).all()


def test_integer_grey_is_the_float_formula_to_one_level():
    from xai_cli.render.heatmap import grey

    original = np.random.default_rng(7).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    lum = original.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    assert np.abs(grey(original).astype(int) - (lum * 0.75 + 255 * 0.2).round()).max() <= 1


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("box", BOXES)
def test_integer_overlay_is_the_float_formula_to_one_level(signed, box):
    """overlay blends on uint16 planes for speed; against the float32 formula on the same grey
    base and map values, no pixel is off by more than 1 of 255 (ties: numpy rounds half to
    even, the integers half up; the signed alpha is kept in 1/256ths)."""
    from xai_cli.render.heatmap import box_mask, to_image_grid

    rng = np.random.default_rng(7)
    base = rng.integers(0, 256, (256, 256), dtype=np.uint8)
    amap = rng.normal(size=(56, 56)).astype(np.float32)
    amap = amap if signed else np.abs(amap)
    scale = choose_scale(amap, signed=signed)
    values = to_image_grid(amap, box, (256, 256))
    colours = colormap.apply((values - scale.vmin) / (scale.vmax - scale.vmin), scale.cmap).astype(np.float32)
    if signed:
        a = (np.abs(values) / max(abs(scale.vmax), abs(scale.vmin))).clip(0, 1)[..., None] * 0.85
    else:
        a = 0.5
    b = base.astype(np.float32)[..., None]
    inside = box_mask(box, (256, 256))[..., None]
    ref = np.where(inside, b * (1 - a) + colours * a, b * 0.35 + 255 * 0.15).round()
    assert np.abs(overlay(base, amap, box, scale).astype(int) - ref).max() <= 1
