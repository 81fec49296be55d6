"""The counterfactual picture changes the input exactly where the removed set is, and nowhere else."""

from __future__ import annotations

import numpy as np

from xai_cli.render.counterfactual import counterfactual_image, removed_mask, render_counterfactual


def test_only_the_removed_pixels_change_and_they_are_blurred():
    rng = np.random.default_rng(0)
    original = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)  # noise: blurring changes every pixel
    removed = np.zeros((40, 40), dtype=bool)
    removed[10:20, 5:25] = True
    box = (20.0, 10.0, 40.0, 40.0)  # the model saw a 40x40 square at (20, 10), one image px per input px
    cf = counterfactual_image(original, removed, box, sigma_input_px=2.0)
    changed = (cf != original).any(-1)
    inside = removed_mask(removed, box, (60, 80))
    assert inside[20:30, 25:45].all() and inside.sum() == 200  # the mask lands where the box says
    assert not changed[~inside].any()
    assert changed[inside].mean() > 0.9
    assert cf[inside].std() < original[inside].std()  # smoothed


def test_the_picture_is_two_panels_of_the_enlarged_input():
    original = np.full((24, 24, 3), 200, dtype=np.uint8)
    removed = np.zeros((24, 24), dtype=bool)
    removed[4:12, 4:12] = True
    img = render_counterfactual(original, removed, (0.0, 0.0, 24.0, 24.0), sigma_input_px=1.0, before="model: 3 (80%)",
                                after="without 1 superpixel: 7 (40%)", title="counterfactual")
    assert img.width >= 2 * 192 and img.height > 192  # tiny inputs are enlarged
    yellow = (np.asarray(img) == (255, 255, 0)).all(-1)
    assert yellow[:, img.width // 2:].any() and not yellow[:, : img.width // 2].any()  # outline on the right only


def test_a_run_draws_counterfactuals_and_montages_not_heatmaps(tmp_path):
    from pathlib import Path

    from PIL import Image

    from xai_cli import api

    digit = Path(__file__).parents[2] / "sample_images" / "digits" / "digit_07_label_7.png"
    api.run(api.RunConfig(model="demo-digits", methods=("counterfactual", "activations"), inputs=(digit,), workers=0,
                          out=tmp_path))
    cf = np.asarray(Image.open(tmp_path / "digit_07_label_7.counterfactual.png").convert("RGB"))
    assert (cf == (255, 255, 0)).all(-1).any()  # the removed set is outlined on the counterfactual
    montage = Image.open(tmp_path / "digit_07_label_7.activations.png")
    assert montage.width > 2 * 320  # the input and the tiles side by side
