"""The A | B | B - A compare picture."""

from __future__ import annotations

import numpy as np

from xai_cli.render.compare import MIN_PANEL_SIDE, Side, compare_scales, render_compare


def _blob(size: int, cy: float, cx: float, peak: float = 1.0) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    return peak * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (size / 8) ** 2)).astype(np.float32)


def _original(size: int = 96) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (size, size, 3), dtype=np.uint8)


def test_a_and_b_share_one_scale_and_the_difference_is_diverging():
    a, b = _blob(96, 20, 20, 0.5), _blob(96, 70, 70, 2.0)
    shared, diff = compare_scales(a, b, b - a, signed=False)
    assert (shared.vmin, shared.cmap) == (0.0, "turbo")
    assert shared.vmax == np.float32(2.0)  # B's peak: A is drawn on B's scale, so it looks fainter
    assert diff.cmap == "rdbu_r" and diff.vmin == -diff.vmax


def test_small_inputs_are_enlarged_and_three_panels_drawn():
    a = Side("demo-digits", "3", 0.9712, _blob(96, 48, 48), (0, 0, 96, 96))
    b = Side("demo-digits-shortcut", "0", 0.8765, _blob(96, 8, 8), (0, 0, 96, 96))
    img = render_compare(_original(), a, b, method="gradcam", title="x.png")
    assert img.mode == "RGB"
    assert img.width >= 3 * MIN_PANEL_SIDE and img.height >= MIN_PANEL_SIDE


def test_identical_maps_leave_the_difference_panel_transparent():
    amap = _blob(96, 40, 50)
    side = Side("m", "1", 0.5, amap, (0, 0, 96, 96))
    original = _original()
    img = np.asarray(render_compare(original, side, side, method="gradcam"))
    enlarged = original.repeat(2, axis=0).repeat(2, axis=1)  # 96 -> 192 by whole pixels
    # The difference panel (B - A = 0 everywhere) is the enlarged original, untouched.
    hits = np.argwhere(np.all(img == enlarged[0, 0], axis=2))
    assert any(np.array_equal(img[r:r + 192, c:c + 192], enlarged) for r, c in hits)
    # ...while the A and B panels are coloured.
    assert sum(np.array_equal(img[r:r + 192, c:c + 192], enlarged) for r, c in hits) == 1


def test_different_input_boxes_are_compared_on_the_image_grid():
    original = _original(200)
    a = Side("a", "1", 0.5, _blob(96, 48, 48), (0, 0, 200, 200))
    b = Side("b", "1", 0.5, _blob(64, 32, 32), (20, 20, 160, 160))
    img = render_compare(original, a, b, method="ig", signed=True)
    assert img.width >= 3 * 200
