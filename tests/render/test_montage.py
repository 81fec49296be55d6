"""The activations montage shows the input untouched beside the tiles: nothing is laid over it."""

from __future__ import annotations

import numpy as np
from PIL import Image

from xai_cli.render import colormap
from xai_cli.render.montage import SIDE, render_montage


def test_the_input_is_shown_untouched_beside_the_tiles():
    original = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    amap = np.zeros((96, 96), dtype=np.float32)
    amap[:48, :48] = 1.0  # the first of 2x2 tiles fully on
    img = np.asarray(render_montage(original, amap, 2, [5, 7, 9, 11], title="activations", subtitle="not an attribution"))
    expected = np.asarray(Image.fromarray(original).resize((SIDE, SIDE), Image.NEAREST))
    head = img.shape[0] - SIDE - 8
    np.testing.assert_array_equal(img[head:head + SIDE, 8:8 + SIDE], expected)
    tiles = img[head:head + SIDE, 8 + SIDE + 12:8 + 2 * SIDE + 12]
    lut = colormap.LUTS["turbo"]
    assert (tiles[20:150, 20:150] == lut[255]).all()  # the active tile at the map's top colour
    assert (tiles[250:370, 250:370] == lut[0]).all()  # the others at its bottom
