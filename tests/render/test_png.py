"""Our PNG encoder against Pillow's: the decoded pixels are exactly the picture's, with isal and
with the zlib fallback, for every mode a picture can have."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from xai_cli.render import png


def _picture(mode: str, size=(97, 61)) -> Image.Image:
    rng = np.random.default_rng(3)
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    w, h = size
    # a smooth part (where the "Up" filter pays), noise, and the extremes (wrap-around of uint8)
    a = np.linspace(0, 255, w * h * channels).reshape(h, w, channels)
    a[: h // 3] = rng.integers(0, 256, (h // 3, w, channels))
    a[-2:, ::2] = 255
    a[-1, 1::2] = 0
    return Image.fromarray(a.astype(np.uint8).squeeze(-1) if channels == 1 else a.astype(np.uint8), mode)


def _decoded(data: bytes, mode: str) -> np.ndarray:
    img = Image.open(io.BytesIO(data))
    img.load()
    assert img.mode == mode and img.format == "PNG"
    return np.asarray(img)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
@pytest.mark.parametrize("deflate", ["isal", "zlib"])
def test_pixels_survive_exactly(mode, deflate, monkeypatch):
    if deflate == "zlib":
        monkeypatch.setattr(png, "_isal", None)
    elif png._isal is None:
        pytest.fail("isal is a dependency (pyproject.toml): install it")
    img = _picture(mode)
    data = png.encode_png(img)
    np.testing.assert_array_equal(_decoded(data, mode), np.asarray(img))
    # the stream is valid to zlib itself (checksums included), whichever deflate wrote it
    idat = data[data.index(b"IDAT") + 4: data.index(b"IEND") - 8]
    assert len(zlib.decompress(idat)) == img.height * (img.width * len(img.getbands()) + 1)


def test_other_modes_go_through_pillow():
    img = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8), "L").convert("P")
    data = png.encode_png(img)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), np.asarray(img))


def test_one_row_and_one_pixel_pictures():
    for size in [(1, 1), (5, 1), (1, 5)]:
        img = _picture("RGB", size)
        np.testing.assert_array_equal(_decoded(png.encode_png(img), "RGB"), np.asarray(img))


def test_size_close_to_pillows_on_a_rendered_panel():
    from xai_cli.render.heatmap import render_panel

    yy, xx = np.mgrid[0:224, 0:224] / 224
    photo = (np.stack([np.sin(6 * xx + 3 * yy), np.cos(5 * yy), np.sin(4 * (xx + yy))], -1) * 100 + 128).astype(np.uint8)
    panel = render_panel(photo, (xx * yy).astype(np.float32), (0, 0, 224, 224), signed=False, title="gradcam")
    ours = png.encode_png(panel)
    buf = io.BytesIO()
    panel.save(buf, format="PNG", compress_level=1)
    assert len(ours) < 1.25 * len(buf.getvalue())
    np.testing.assert_array_equal(_decoded(ours, "RGB"), np.asarray(panel))
