"""compare's parts: one decode per input for both models, frames for different crops, regions, the gate."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
from PIL import Image

from xai_cli.audit.gate import evaluate_gate, parse_measure_gate
from xai_cli.compare import MEASURES, compare
from xai_cli.compare._measures import region_in_frame
from xai_cli.compare.regions import Regions
from xai_cli.compare.report import GATE_KINDS, aggregate, evaluate
from xai_cli.config import RunConfig
from xai_cli.errors import ConfigError, UsageError
from xai_cli.inputs.discover import InputFile
from xai_cli.models.preprocess import CropBox

ROOT = Path(__file__).resolve().parents[2]


def test_each_input_read_and_decoded_once_when_preprocessing_differs(tmp_path, monkeypatch):
    """demo-digits (96 px, squash) vs resnet18 (224 px centre crop): one read and one image decode per
    input, B's tensor made from the decoded pixels; the maps are compared on the original picture."""
    import xai_cli.inputs.loader as loader
    import xai_cli.modalities.image.decode as decode

    reads, decodes = [], []
    real_read, real_decode = loader.read_input, decode.decode_image
    monkeypatch.setattr(loader, "read_input", lambda f: reads.append(f.rel) or real_read(f))
    monkeypatch.setattr(decode, "decode_image", lambda *a, **k: decodes.append(a[0]) or real_decode(*a, **k))
    for name, size in (("wide.png", (160, 96)), ("tall.png", (80, 128))):
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(tmp_path / name)
    cfg = RunConfig(model="demo-digits", methods=("gradcam",), inputs=(tmp_path,), out=tmp_path / "out", workers=0)
    report = compare(cfg, "resnet18", weights_b="none", write=False)
    assert sorted(map(str, reads)) == ["tall.png", "wide.png"] and sorted(decodes) == [0, 1]
    assert [r["status"] for r in report.inputs] == ["ok", "ok"]
    assert all(r["unit"] == "pixel" and -1 <= r["spearman"] <= 1 and 0 <= r["iou"] <= 1 for r in report.inputs)
    assert not (tmp_path / "out").exists()  # write=False writes nothing


def test_region_in_frame_crops_and_scales_by_hand():
    region = np.zeros((100, 200), bool)
    region[10:30, 120:160] = True  # rows 10-29, columns 120-159 of the original
    box = CropBox(left=100.0, top=0.0, width=100.0, height=100.0)  # the model saw columns 100-199
    frame = region_in_frame(region, box, (50, 50))  # at half resolution
    expected = np.zeros((50, 50), bool)
    expected[5:15, 10:30] = True
    assert np.array_equal(frame, expected)


def test_regions_from_boxes_and_from_a_mask_folder(tmp_path):
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"a/x.png": [[0, 0, 2, 1]], "y.png": {"boxes": [[1, 1, 3, 3], [0, 2, 1, 3]]}}))
    regions = Regions.open(boxes)
    mask, note = regions.load(InputFile(tmp_path / "x.png", PurePosixPath("a/x.png")), (3, 4))
    assert note is None and mask.tolist() == [[True, True, False, False], [False] * 4, [False] * 4]
    mask, _ = regions.load(InputFile(tmp_path / "y.png", PurePosixPath("y.png")), (3, 3))
    assert mask.sum() == 5  # a 2x2 box and a 1x1 box
    assert regions.load(InputFile(tmp_path / "z.png", PurePosixPath("z.png")), (3, 3))[0] is None
    folder = tmp_path / "masks"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(np.array([[0, 255], [0, 0]], np.uint8)).save(folder / "sub" / "cat.png")
    mask, note = Regions.open(folder).load(InputFile(tmp_path / "cat.jpg", PurePosixPath("sub/cat.jpg")), (4, 4))
    assert note is None and mask.shape == (4, 4) and mask[:2, 2:].all() and mask.sum() == 4  # resized nearest
    bad = tmp_path / "bad.json"
    bad.write_text('{"x.png": [[1, 2, 3]]}')
    with pytest.raises(UsageError):
        Regions.open(bad)


def test_measure_gate_names_limits_and_verdicts():
    checks = parse_measure_gate({"spearman": {"min": 0.5}, "region_share_increase": {"max": 0.1, "compare": "bound"},
                                 "flip_rate": {"max": 0.2, "severity": "warn"}}, MEASURES, GATE_KINDS)
    assert [c.name for c in checks] == ["spearman.min", "region_share_increase.max", "flip_rate.max"]
    rows = [{"status": "ok", "spearman": s, "iou": 1.0, "flipped": f, "region_share_a": 0.0, "region_share_b": b,
             "input": f"{k}.png", "a": {}, "b": {}} for k, (s, f, b) in enumerate([(0.9, False, 0.0), (0.7, True, 0.3)])]
    agg = aggregate(rows)
    assert agg["spearman"]["mean"] == pytest.approx(0.8) and agg["flip_rate"]["mean"] == 0.5
    assert agg["region_share_increase"]["ci"][1] == pytest.approx(0.3)  # bootstrap of {0, 0.3}: upper end 0.3
    results = evaluate(checks, agg)
    assert [r.passed for r in results] == [True, False, False]
    assert results[1].value == pytest.approx(0.3) and results[2].severity == "warn"
    skipped = evaluate(parse_measure_gate({"region_share_b": {"max": 0.5}}, MEASURES, GATE_KINDS),
                       aggregate([{**rows[0], "region_share_a": None, "region_share_b": None}]))
    assert skipped[0].passed is None and "not measured" in skipped[0].message
    for bad in ({"spearmann": {"min": 0.5}}, {"spearman": {"max_decrease": 0.1}}, {"spearman": {"min": "high"}}):
        with pytest.raises(ConfigError):
            parse_measure_gate(bad, MEASURES, GATE_KINDS)
    # the audit's gate is unchanged: methods still name its checks
    assert evaluate_gate([], {}) == []
