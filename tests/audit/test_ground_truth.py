"""Masks in original pixels -> model-input pixels through the crop box."""

from __future__ import annotations

import numpy as np

from xai_cli.audit.ground_truth import to_input_pixels
from xai_cli.models.preprocess import Preprocess, crop_box


def test_identity_when_the_input_is_the_original():
    mask = np.random.default_rng(0).random((96, 96)) > 0.5
    assert (to_input_pixels(mask, crop_box(96, 96, Preprocess(96, 96, mode="squash")), 96) == mask).all()


def test_resize_and_centre_crop():
    # 200 x 100 original, shorter side -> 50, crop 50: the input covers columns 50..150 at half scale.
    mask = np.zeros((100, 200), dtype=bool)
    mask[:, 100:] = True  # the right half of the original
    box = crop_box(200, 100, Preprocess(50, 50))
    out = to_input_pixels(mask, box, 50)
    assert box.left == 50 and box.width == 100
    assert not out[:, :25].any() and out[:, 25:].all()
