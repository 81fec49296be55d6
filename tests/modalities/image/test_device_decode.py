"""Decoding JPEGs on the run's device (``decode="device"``) against the CPU path: the same
files take the device path or fall back as documented, and give the same picture, crop box
and (within a few levels) the same model input; a run with it explains like a CPU-decoded run.
On CPU the device path is torchvision.io's libjpeg-turbo; on CUDA (``gpu`` tests) nvJPEG."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from xai_cli.inputs.discover import InputFile
from xai_cli.inputs.read import Failure
from xai_cli.modalities.image.decode import ImageItem, decode_image
from xai_cli.modalities.image.device_decode import PendingImage, decode_batch, read_for_device
from xai_cli.models.preprocess import Preprocess

ROOT = Path(__file__).resolve().parents[3]
P = Preprocess(resize_size=256, crop_size=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
STD = torch.tensor(P.std).view(3, 1, 1)


def _photo(w: int, h: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    base = np.stack([np.sin(7 * xx + 2 * yy), np.cos(5 * yy), np.sin(3 * (xx - yy))], -1) * 90 + 128
    return (base + rng.normal(0, 6, base.shape)).clip(0, 255).astype(np.uint8)


def _jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90, **kw)
    return buf.getvalue()


FILES = {
    "rgb.jpg": lambda: _jpeg(Image.fromarray(_photo(320, 240))),
    "tall.jpg": lambda: _jpeg(Image.fromarray(_photo(200, 500, 1))),
    "grey.jpg": lambda: _jpeg(Image.fromarray(_photo(300, 300, 2)[..., 0], "L")),
    "progressive.jpg": lambda: _jpeg(Image.fromarray(_photo(260, 260, 3)), progressive=True),
    "exif6.jpg": lambda: (ROOT / "sample_images/photos/chelsea_exif_orientation6.jpg").read_bytes(),
}


def _both(name: str, data: bytes, device: str = "cpu"):
    f = InputFile(Path(name), Path(name))
    pending = read_for_device(0, f, data, P)
    on_device = decode_batch([pending], P, torch.device(device))[0]
    return pending, on_device, decode_image(0, f, data, P)


@pytest.mark.parametrize("name", sorted(FILES))
def test_jpegs_decode_on_the_device_like_the_cpu_path(name):
    data = FILES[name]()
    pending, dev, cpu = _both(name, data)
    assert isinstance(pending, PendingImage) and isinstance(dev, ImageItem) and isinstance(cpu, ImageItem)
    assert dev.sha256 == cpu.sha256 and dev.mode == cpu.mode and dev.box == cpu.box
    assert dev.original.shape == cpu.original.shape  # EXIF orientation applied alike
    diff = np.abs(dev.original.astype(int) - cpu.original)
    assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 4  # another IDCT/upsampling: a few levels at most
    levels = ((dev.tensor - cpu.tensor) * STD * 255).abs()  # model input, back in 0-255 levels
    assert levels.mean() < 1.5 and levels.max() < 40


def test_other_files_and_broken_jpegs_take_the_cpu_path(tmp_path):
    png = io.BytesIO()
    Image.fromarray(_photo(64, 64)).save(png, format="PNG")
    cmyk = _jpeg(Image.fromarray(_photo(64, 64)).convert("CMYK"))
    for name, data in [("a.png", png.getvalue()), ("c.jpg", cmyk), ("e.jpg", b""), ("x.jpg", b"not an image")]:
        f = InputFile(Path(name), Path(name))
        got, want = read_for_device(0, f, data, P), decode_image(0, f, data, P)
        assert type(got) is type(want) and not isinstance(got, PendingImage)
        if isinstance(want, Failure):
            assert got.reason == want.reason
    # a JPEG whose header reads but whose data is cut: the device decoder refuses it, the CPU
    # path then decodes what it can or says in one line why it cannot, exactly as without it
    whole = FILES["rgb.jpg"]()
    data = whole[:len(whole) // 2]
    pending, dev, cpu = _both("cut.jpg", data)
    assert isinstance(pending, PendingImage)
    assert type(dev) is type(cpu)
    if isinstance(cpu, Failure):
        assert dev.reason == cpu.reason


def test_one_bad_file_does_not_fail_the_batch():
    good = [FILES[n]() for n in ("rgb.jpg", "tall.jpg")]
    bad = b"\xff\xd8\xff\xe0" + b"\x00" * 64  # JPEG magic, then nothing decodable
    files = [InputFile(Path(f"{i}.jpg"), Path(f"{i}.jpg")) for i in range(3)]
    items = [PendingImage(i, files[i], d, str(i), "RGB") for i, d in enumerate([good[0], bad, good[1]])]
    out = decode_batch(items, P, torch.device("cpu"))
    assert [type(o) for o in out] == [ImageItem, Failure, ImageItem]
    assert out[1].reason == decode_image(1, files[1], bad, P).reason


def test_a_run_decoding_on_the_device_explains_like_a_cpu_run(tmp_path):
    from xai_cli import api
    from xai_cli.config import RunConfig

    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("rgb.jpg", "tall.jpg", "grey.jpg"):
        (inputs / name).write_bytes(FILES[name]())
    Image.fromarray(_photo(90, 90)).save(inputs / "d.png")  # not a JPEG: the CPU path, same run
    runs = {}
    for decode in ("cpu", "device"):
        cfg = RunConfig(model="demo-digits", methods=("gradcam",), inputs=(inputs,), out=tmp_path / decode,
                        decode=decode, workers=0, batch_size=4)
        summary = api.run(cfg)
        assert summary.ok == 4 and summary.failed == 0
        runs[decode] = {p.name: json.loads(p.read_text()) for p in (tmp_path / decode).glob("*.json") if p.name != "run.json"}
        assert cfg.output_key() != RunConfig(model="demo-digits", methods=("gradcam",)).output_key() or decode == "cpu"
    assert runs["cpu"].keys() == runs["device"].keys() and len(runs["cpu"]) == 4
    for k, cpu in runs["cpu"].items():  # the same picture within a few levels: the same prediction
        dev = runs["device"][k]
        assert dev["prediction"][0]["index"] == cpu["prediction"][0]["index"], k
        assert abs(dev["prediction"][0]["probability"] - cpu["prediction"][0]["probability"]) < 0.05, k
        assert dev["input"]["size"] == cpu["input"]["size"] and dev["preprocess"] == cpu["preprocess"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", sorted(FILES))
def test_nvjpeg_decodes_like_the_cpu_path(name):
    pending, dev, cpu = _both(name, FILES[name](), "cuda")
    assert isinstance(dev, ImageItem) and dev.tensor.is_cuda and dev.box == cpu.box
    assert np.abs(dev.original.astype(int) - cpu.original).mean() < 1.5
    assert ((dev.tensor.cpu() - cpu.tensor) * STD * 255).abs().mean() < 2
