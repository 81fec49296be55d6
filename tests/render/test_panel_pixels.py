"""The writer's fast paths draw what PIL draws: cached text lines, the numpy colour bar and
peak marker, one prepared input shared by its maps, and the table blend of the map's colours
(exact for non-negative maps, within a level for signed ones)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from xai_cli.render import fonts, heatmap
from xai_cli.render.heatmap import Scale, Style, choose_scale, panel_pixels, prepare
from xai_cli.render.png import encode_png

LINES = ["gradcam · explains 'tabby cat' (93.1%)", "the model's top prediction", "≥−8.88e−88", "0", "AVATAR · Wo Te",
         "red: for · blue: against · white: 0 · completeness error 1.23%"]


def _photo(side: int = 256, seed: int = 0) -> np.ndarray:
    """Smooth colour plus grain, like a photo."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)).resize((side, side), Image.BICUBIC)
    return np.clip(np.asarray(coarse, np.int16) + rng.integers(-12, 13, (side, side, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("size,bold,ink", [(19, True, (0, 0, 0)), (13, False, (90, 90, 90)), (16, False, (176, 60, 0))])
@pytest.mark.parametrize("background", ["white", "photo"])
def test_a_drawn_line_is_what_imagedraw_draws(size, bold, ink, background):
    """On white (the table path) and over a picture (Pillow's blend), clipped at every edge."""
    base = np.full((60, 300, 3), 255, np.uint8) if background == "white" else _photo(300)[:60]
    ref, ours = Image.fromarray(base), base.copy()
    draw = ImageDraw.Draw(ref)
    for text, xy in zip(LINES, [(4, 3), (-7, 20), (250, 40), (100, -5), (200, 52), (10, 33)]):
        draw.text(xy, text, fill=ink, font=fonts.font(size, bold))
        fonts.draw_line(ours, xy, text, size, bold, ink)
    np.testing.assert_array_equal(ours, np.asarray(ref))


def test_a_cached_line_is_the_freshly_drawn_one():
    fonts.clear_caches()
    fresh = [fonts.line_mask(t, 15, False) for t in LINES]
    assert fonts.line_mask.cache_info().misses == len(LINES)
    cached = [fonts.line_mask(t, 15, False) for t in LINES]
    assert fonts.line_mask.cache_info().hits == len(LINES)
    fonts.clear_caches()
    for (a, dx, dy), (b, ex, ey), (c, fx, fy) in zip(fresh, cached, (fonts.line_mask(t, 15, False) for t in LINES)):
        assert (dx, dy) == (ex, ey) == (fx, fy)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert not fresh[0][0].flags.writeable  # shared between threads: nobody may draw into it


def _lines_ending_in_numbers() -> list[str]:
    """Titles over ImageNet's class names, colour-bar labels, every pair of a number's
    characters, random numbers' tails and IG's completeness line."""
    import random

    import torchvision

    rng, tail = random.Random(0), sorted(fonts._TAIL)
    classes = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]  # (in the wheel, no download)
    lines = [f"gradcam · explains '{c}' ({rng.random():.1%})" for c in classes[::4]]
    lines += [heatmap._fmt(v) for v in np.random.default_rng(0).normal(0, 10.0 ** np.arange(-9, 9).repeat(8))]
    lines += ["≥" + heatmap._fmt(v) for v in (0.5, 123.4, -2e-7)] + ["≤−0.25", "0", "7' (100.0%)"]
    lines += [a + b for a in tail for b in tail if (a + b).strip() and any(c.isdigit() for c in a + b)]
    lines += ["x" + "".join(rng.choice(tail) for _ in range(rng.randint(1, 9))) + "7" for _ in range(100)]
    lines += [f"completeness error {rng.random():.2%}" for _ in range(10)]
    return lines


@pytest.mark.parametrize("size,bold", [(12, False), (16, False), (19, False), (14, True), (17, True), (22, True)])
def test_a_line_ending_in_a_number_is_composed_as_pillow_draws_it(size, bold):
    """The stem's mask and each digit's glyph, placed at Pillow's rounded pen: every pixel Pillow's."""
    fonts.clear_caches()
    lines = _lines_ending_in_numbers()
    composed = [t for t in lines if fonts._composed(t, size, bold) is not None]
    assert len(composed) == len(lines)  # DejaVu kerns no pair of these characters: every line takes the fast path
    ref = Image.new("RGB", (1100, 40 * 40), "white")
    ours = np.full((ref.height, ref.width, 3), 255, np.uint8)
    draw = ImageDraw.Draw(ref)
    for start in range(0, len(lines), 80):  # 80 lines per canvas, two columns
        ref.paste("white", (0, 0, *ref.size))
        ours[:] = 255
        for i, text in enumerate(lines[start:start + 80]):
            xy = (3 + 550 * (i % 2), 2 + 40 * (i // 2))
            draw.text(xy, text, fill=(0, 0, 0), font=fonts.font(size, bold))
            fonts.draw_line(ours, xy, text, size, bold, (0, 0, 0))
        np.testing.assert_array_equal(ours, np.asarray(ref), err_msg=f"lines {start}..{start + 80}")


def test_a_line_that_cannot_be_composed_exactly_goes_to_freetype(monkeypatch):
    """Right-to-left stems, letters after the number, no number, or a kerned pair: drawn by Pillow."""
    fonts.clear_caches()
    for text in ["שלום 12.5%", "قطة (93.1%)", "rank 2 of 5", "the model's top prediction"]:
        assert fonts._composed(text, 15, False) is None
        ref = Image.new("RGB", (300, 30), "white")
        ImageDraw.Draw(ref).text((5, 5), text, fill=(0, 0, 0), font=fonts.font(15))
        ours = np.full((30, 300, 3), 255, np.uint8)
        fonts.draw_line(ours, (5, 5), text, 15, False, (0, 0, 0))
        np.testing.assert_array_equal(ours, np.asarray(ref))
    assert fonts._composed("explains 'cat' (12.5%)", 15, False) is not None
    kerned = fonts._advance64.__wrapped__
    monkeypatch.setattr(fonts, "_advance64", lambda t, size, bold: kerned(t, size, bold) + (t == "(1"))
    assert fonts._composed("explains 'cat' (12.5%)", 15, False) is None


@pytest.mark.parametrize("scale", [Scale(0.0, 2.0, "turbo", False), Scale(-1.5, 1.5, "rdbu_r", True),
                                   Scale(-3e-5, 3e-5, "rdbu_r", False)])
def test_the_numpy_colour_bar_is_the_pil_one(scale):
    canvas = Image.new("RGB", (140, 300), "white")
    heatmap.colour_bar(canvas, ImageDraw.Draw(canvas), (20, 30), 260, scale, fonts.font(13))
    ours = np.full((300, 140, 3), 255, np.uint8)
    heatmap._bar_pixels(ours, (20, 30), 260, scale, 13)
    np.testing.assert_array_equal(ours, np.asarray(canvas))


@pytest.mark.parametrize("xy", [(100.3, 120.7), (12.0, 12.0), (11.99, 40.5), (2.5, 3.5), (-4.0, 50.0),
                                (318.6, 319.5), (400.0, 10.0), (160.0, 0.2)])
@pytest.mark.parametrize("r", [5, 10])
def test_the_peak_marker_is_the_pil_one(xy, r):
    """Moved stencil in the middle, PIL on a crop near the top and left edges, clipped at all four."""
    panel = _photo(320)
    ref = Image.fromarray(panel)
    heatmap._mark(ref, xy, r)
    ours = panel.copy()
    heatmap._mark_pixels(ours, xy, r)
    np.testing.assert_array_equal(ours, np.asarray(ref))


def _maps(seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    cam = np.asarray(Image.fromarray(rng.random((7, 7)).astype(np.float32), "F").resize((224, 224), Image.BILINEAR))
    return {"gradcam": cam, "ig": rng.normal(size=(224, 224)).astype(np.float32)}


@pytest.mark.parametrize("side,box", [(256, (16.0, 16.0, 224.0, 224.0)), (1024, (0.0, 0.0, 1024.0, 1024.0)),
                                      (96, (0.0, 0.0, 96.0, 96.0)), (300, (30.5, 10.25, 200.0, 180.0))])
def test_one_prepared_input_draws_every_map_as_drawn_alone(side, box):
    """The files sink prepares an input once (enlarged or shrunk, grey) for all of its maps."""
    photo, style = _photo(side), Style()
    shared = prepare(photo, box, style)
    for name, amap in _maps().items():
        kw = dict(signed=name == "ig", title=f"{name} · explains 'cat' (3.4%)", lines=("resnet18",), peak_xy=(40.2, 50.7))
        np.testing.assert_array_equal(panel_pixels(photo, amap, box, display=shared, **kw),
                                      panel_pixels(photo, amap, box, **kw))
    assert not shared.photo.flags.writeable and not shared.grey.flags.writeable


@pytest.mark.parametrize("h,w", [(224, 224), (256, 200), (161, 100), (1, 200), (200, 3), (170, 319)])
@pytest.mark.parametrize("content", ["photo", "noise"])
def test_the_enlarged_input_is_pils_bicubic_within_a_level_or_two(h, w, content):
    """Torch's uint8 bicubic stands in for PIL's (4x faster): the same size, and its pixels PIL's
    but for rounding: under 1.5 % of values differ, by at most 2."""
    rng = np.random.default_rng(h * w)
    pixels = (_photo(max(h, w))[:h, :w] if content == "photo"
              else rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    f, resample = heatmap.display_factor(h, w, Style())
    assert resample == Image.Resampling.BICUBIC
    size = (max(1, round(w * f)), max(1, round(h * f)))
    ours = prepare(pixels, (0.0, 0.0, float(w), float(h))).photo
    pil = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BICUBIC))
    assert ours.shape == pil.shape and ours.dtype == np.uint8
    diff = np.abs(ours.astype(np.int16) - pil)
    assert diff.max() <= 2
    assert (diff > 0).mean() < 0.015


@pytest.mark.parametrize("box", [(16.0, 16.0, 224.0, 224.0), (30.5, 10.25, 200.0, 180.0), (-10.0, -5.0, 300.0, 120.0),
                                 (300.0, 300.0, 10.0, 10.0)])
@pytest.mark.parametrize("signed,flat", [(False, False), (True, False), (False, True)])
def test_the_map_panel_is_overlays_picture(box, signed, flat):
    """The panel drawn in place (dimmed frame, then the box) is ``overlay`` of the grey input."""
    photo, style = _photo(256), Style(overlay="blend")
    amap = _maps()["ig" if signed else "gradcam"]
    canvas = panel_pixels(photo, amap, box, signed=signed, title="t", flat=flat, style=style)
    d = prepare(photo, box, style)
    h, w = d.grey.shape
    fs = int(np.clip(round(w / 22), 14, 22))
    pad, top = max(8, fs // 2), canvas.shape[0] - max(h, 5 * fs) - max(8, fs // 2)
    scale = None if flat else choose_scale(amap, signed, style.cmap)
    want = heatmap.overlay(d.grey, None if flat else amap, d.box, scale)
    np.testing.assert_array_equal(canvas[top:top + h, pad:pad + w], want)


def test_the_image_modality_keeps_one_input_for_its_maps(monkeypatch):
    from tests.render.test_picture_header import _case
    from xai_cli.modalities.image import picture as image_picture

    calls = []
    monkeypatch.setattr(image_picture, "prepare", lambda *a: calls.append(a) or prepare(*a))
    result, m, run = _case(method="gradcam", signed=False)
    result.item.original = _photo(256)
    m.scores = _maps()["gradcam"]
    image_picture.forget()
    first, second = image_picture.picture(result, m, run), image_picture.picture(result, m, run)
    assert len(calls) == 1  # the second map of the same input reused the first one's display
    image_picture.forget()
    np.testing.assert_array_equal(first, image_picture.picture(result, m, run))
    np.testing.assert_array_equal(first, second)
    assert len(calls) == 2


@pytest.mark.parametrize("cmap", ["turbo", "viridis", "gray"])
def test_the_table_blend_is_the_per_pixel_blend_for_non_negative_maps(cmap):
    rng = np.random.default_rng(3)
    grey, amap = rng.integers(0, 256, (200, 200), dtype=np.uint8), rng.random((50, 50)).astype(np.float32)
    rows, cols, box = slice(10, 190), slice(5, 200), (5.0, 10.0, 195.0, 180.0)
    scale = choose_scale(amap, signed=False, cmap=cmap)
    table = heatmap._coloured_grey(grey[rows, cols], amap, box, rows, cols, scale, 0.5)
    per_pixel = heatmap._coloured(grey[rows, cols][..., None], amap, box, rows, cols, scale, 0.5)
    np.testing.assert_array_equal(table, per_pixel)


def test_the_table_blend_moves_a_signed_maps_pixels_by_a_level_at_most():
    """A signed map's opacity comes from its colour's row, not its own value: on a photo's grey
    some pixels move by one level (tests/render/test_render.py: still within one of the float
    formula on any grey). An asymmetric diverging scale keeps the per-pixel blend."""
    grey = heatmap.grey(_photo(200, seed=5))
    amap = np.random.default_rng(4).normal(size=(50, 50)).astype(np.float32)
    rows, cols, box = slice(0, 200), slice(0, 200), (0.0, 0.0, 200.0, 200.0)
    scale = choose_scale(amap, signed=True)
    table = heatmap._coloured_grey(grey, amap, box, rows, cols, scale, 0.5).astype(int)
    per_pixel = heatmap._coloured(grey[..., None], amap, box, rows, cols, scale, 0.5).astype(int)
    assert np.abs(table - per_pixel).max() == 1
    assert (table != per_pixel).any(axis=2).mean() < 0.5
    lopsided = Scale(-1.0, 2.0, "rdbu_r", False)
    np.testing.assert_array_equal(heatmap._coloured_grey(grey, amap, box, rows, cols, lopsided, 0.5),
                                  heatmap._coloured(grey[..., None], amap, box, rows, cols, lopsided, 0.5))


def test_a_flat_maps_picture_says_so_as_pil_draws_it():
    photo = _photo(320)
    pixels = panel_pixels(photo, np.zeros((10, 10), np.float32), (0, 0, 320, 320), signed=False, title="gradcam",
                          flat=True, style=Style(overlay="blend"))
    x, header = 8 + 320 + 8, pixels.shape[0] - 8 - 320
    ref = Image.new("RGB", (pixels.shape[1] - x, pixels.shape[0] - header), "white")
    ImageDraw.Draw(ref).text((0, 0), "no colour\nscale:\nflat map", fill=heatmap.WARN, font=fonts.font(12))
    np.testing.assert_array_equal(pixels[header:, x:], np.asarray(ref))


def test_png_of_the_pixels_is_png_of_the_image():
    pixels = panel_pixels(_photo(256), _maps()["ig"], (16.0, 16.0, 224.0, 224.0), signed=True, title="ig")
    decoded = np.asarray(Image.open(io.BytesIO(encode_png(pixels))))
    np.testing.assert_array_equal(decoded, pixels)
    assert encode_png(pixels) == encode_png(Image.fromarray(pixels))
    with pytest.raises(ValueError):
        encode_png(pixels.astype(np.float32))
