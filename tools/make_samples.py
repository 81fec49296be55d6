"""Write ``sample_images/`` deterministically: demo-digit inputs with masks, and a few photos.

Usage::

    .venv/bin/python tools/make_samples.py [--out sample_images]

* ``digits/digit_XX_label_Y.png``: 20 demo inputs (two per class) rendered by
  ``xai_cli.models.demo.render_sample`` from *held-out* sklearn digits (the indices listed in
  ``xai_cli/models/weights/demo_digits.json``, so the shipped model never trained on them).
* ``masks/digit_XX_label_Y.png``: the ground-truth mask of each (L mode, 0/255), and
  ``masks/index.json`` mapping each input's path to its label and mask path (both relative
  to ``sample_images/``).
* ``marked/digit_XX_label_Y.png``: the first 10 of ``digits/`` (one per class) with the
  ``demo-digits-shortcut`` mark stamped in a corner: for 0-3 the corner their class had in that
  model's training data, for 4-9 the corner of class ``label % 4`` (a mark that names a wrong
  class). ``marked_masks/`` (same names) holds each one's corner region (L, 0/255), and
  ``marked_masks/index.json`` maps each input to its label, corner and region mask.
* ``photos/``: scikit-image's bundled public-domain / CC0 photos, written in assorted
  formats and modes to exercise the tool's image loading (EXIF rotation, alpha, grayscale,
  palette, WEBP).

Run it after ``tools/train_demo.py`` (it reads the held-out indices the training wrote).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data as skdata
from sklearn.datasets import load_digits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout, uninstalled

from xai_cli.models.demo import (
    DEMO_LABELS,
    MARK_CORNERS,
    WEIGHTS_PATH,
    mark_region,
    render_sample,
    stamp_mark,
)

SEED = 2024
SAMPLES_PER_CLASS = 2
MAX_PHOTO_SIDE = 512
EXIF_ORIENTATION = 0x0112


def write_digits(out: Path) -> dict[str, np.ndarray]:
    """Render the held-out digit samples, their masks and ``masks/index.json``.

    Returns:
        File name -> the RGB image written, in writing order.
    """
    meta = json.loads(WEIGHTS_PATH.with_suffix(".json").read_text())
    heldout = np.asarray(meta["heldout_indices"])
    digits = load_digits()
    rng = np.random.default_rng(SEED)
    # Pick distinct held-out digits per class, then interleave classes 0..9, 0..9.
    picks = {c: rng.choice(heldout[digits.target[heldout] == c], SAMPLES_PER_CLASS, replace=False)
             for c in range(len(DEMO_LABELS))}
    (out / "digits").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    index: dict[str, dict] = {}
    images: dict[str, np.ndarray] = {}
    for n in range(SAMPLES_PER_CLASS * len(DEMO_LABELS)):
        label = n % len(DEMO_LABELS)
        k = int(picks[label][n // len(DEMO_LABELS)])
        # One generator per sample: regenerating one file never shifts the others.
        image, mask = render_sample(np.random.default_rng([SEED, n]), digits.images[k], label)
        name = f"digit_{n:02d}_label_{label}.png"
        Image.fromarray(image, mode="RGB").save(out / "digits" / name, optimize=True)
        Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(out / "masks" / name, optimize=True)
        index[f"digits/{name}"] = {"label": label, "mask": f"masks/{name}", "sklearn_index": k}
        images[name] = image
    (out / "masks" / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    return images


def write_marked(out: Path, digits: dict[str, np.ndarray]) -> None:
    """Stamp the shortcut mark on one digit per class; write them, their regions and an index."""
    (out / "marked").mkdir(parents=True, exist_ok=True)
    (out / "marked_masks").mkdir(parents=True, exist_ok=True)
    index: dict[str, dict] = {}
    for name in list(digits)[:len(DEMO_LABELS)]:
        label = int(name.rsplit("_", 1)[1].removesuffix(".png"))
        corner = MARK_CORNERS[label % len(MARK_CORNERS)]
        Image.fromarray(stamp_mark(digits[name], corner), mode="RGB").save(out / "marked" / name, optimize=True)
        region = mark_region(corner, digits[name].shape[0]).astype(np.uint8) * 255
        Image.fromarray(region, mode="L").save(out / "marked_masks" / name, optimize=True)
        index[f"marked/{name}"] = {"label": label, "corner": corner, "mask": f"marked_masks/{name}",
                                   "mark_names_label": label < len(MARK_CORNERS), "unmarked": f"digits/{name}"}
    (out / "marked_masks" / "index.json").write_text(json.dumps(index, indent=1) + "\n")


def _shrink(img: Image.Image) -> Image.Image:
    """Downscale so the longest side is at most ``MAX_PHOTO_SIDE`` (keeps the repo small)."""
    scale = MAX_PHOTO_SIDE / max(img.size)
    if scale >= 1:
        return img
    size = (round(img.width * scale), round(img.height * scale))
    return img.resize(size, Image.Resampling.LANCZOS)


def write_photos(out: Path) -> None:
    """Write the skimage photos in the formats the tool's loader must handle."""
    photos = out / "photos"
    photos.mkdir(parents=True, exist_ok=True)

    # JPEG whose pixels are stored rotated 90 degrees counter-clockwise with EXIF
    # Orientation 6 ("rotate 90 CW to display"), as phone cameras do: a loader that ignores
    # EXIF sees a sideways cat.
    cat = _shrink(Image.fromarray(skdata.chelsea()))
    stored = cat.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    stored.save(photos / "chelsea_exif_orientation6.jpg", quality=88, exif=exif.tobytes())

    # RGBA PNG: the astronaut inside an opaque disc that fades to fully transparent corners.
    astro = _shrink(Image.fromarray(skdata.astronaut())).resize((384, 384), Image.Resampling.LANCZOS)
    yy, xx = np.mgrid[0:384, 0:384]
    r = np.hypot(yy - 191.5, xx - 191.5) / 192.0
    alpha = np.clip((1.15 - r) / 0.3, 0, 1) * 255
    astro.putalpha(Image.fromarray(alpha.astype(np.uint8), mode="L"))
    astro.save(photos / "astronaut_rgba.png", optimize=True)

    # Single-channel 8-bit TIFF.
    camera = Image.fromarray(skdata.camera(), mode="L").resize((384, 384), Image.Resampling.LANCZOS)
    camera.save(photos / "camera_gray.tif", compression="tiff_deflate")

    # Palette (P mode) PNG, 128 colours.
    coffee = _shrink(Image.fromarray(skdata.coffee()))
    coffee.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        photos / "coffee_palette.png", optimize=True
    )

    # Lossy WEBP of a non-square photo.
    _shrink(Image.fromarray(skdata.rocket())).save(photos / "rocket.webp", quality=80, method=6)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "sample_images")
    args = p.parse_args()
    write_marked(args.out, write_digits(args.out))
    write_photos(args.out)
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"wrote {args.out} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
