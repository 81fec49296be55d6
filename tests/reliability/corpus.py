"""A generated corpus of awkward image files: every case the reliability issue lists."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

GOOD = "good"  # explained, status ok
BAD = "bad"  # recorded as an error with a reason


def _rgb(rng, h=48, w=64) -> Image.Image:
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def make_corpus(root: Path) -> dict[str, str]:
    """Write the corpus under ``root``; returns {relative path: GOOD | BAD} for what must be discovered."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    expect: dict[str, str] = {}

    def save(name: str, img: Image.Image, kind: str, **kw) -> None:
        img.save(root / name, **kw)
        expect[name] = kind

    save("plain.png", _rgb(rng), GOOD)
    (root / "zero.png").write_bytes(b"")
    expect["zero.png"] = BAD
    buf = io.BytesIO()
    _rgb(rng, 120, 160).save(buf, format="JPEG", quality=90)
    (root / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    expect["truncated.jpg"] = BAD
    (root / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(rng.integers(0, 255, 300, dtype=np.uint8)))
    expect["corrupt.png"] = BAD
    (root / "text.jpg").write_text("this is not an image\n")
    expect["text.jpg"] = BAD
    save("cmyk.jpg", _rgb(rng).convert("CMYK"), GOOD)
    save("sixteen.png", Image.fromarray((rng.integers(0, 65535, (40, 40))).astype(np.uint16)), GOOD)
    pal = _rgb(rng).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    save("palette_transparent.png", pal, GOOD, transparency=0)
    frames = [_rgb(rng, 32, 32) for _ in range(3)]
    frames[0].save(root / "animated.gif", save_all=True, append_images=frames[1:], duration=50)
    expect["animated.gif"] = GOOD
    frames[0].save(root / "animated.webp", save_all=True, append_images=frames[1:], duration=50)
    expect["animated.webp"] = GOOD
    rotated = _rgb(rng, 40, 80)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    save("exif_rotated.jpg", rotated, GOOD, exif=exif)
    save("huge.png", Image.new("L", (3000, 3000)), BAD)  # over the --max-pixels the test sets
    save("tiny.png", _rgb(rng, 1, 1), GOOD)
    save("with space é ü.png", _rgb(rng), GOOD)
    save("new\nline.png", _rgb(rng), GOOD)
    (root / "sub").mkdir()
    save("sub/nested.bmp", _rgb(rng), GOOD)
    outside = root.parent / f"{root.name}-outside"
    outside.mkdir(exist_ok=True)
    _rgb(rng).save(outside / "secret.png")
    os.symlink(outside / "secret.png", root / "link_out.png")  # followed: reading is not the risk
    expect["link_out.png"] = GOOD
    os.symlink(root, root / "sub" / "loop")  # a loop: survived, noted as a skipped folder
    os.symlink(root / "missing.png", root / "dangling.png")  # dangling: recorded as failed, with the reason
    expect["dangling.png"] = BAD
    return expect
