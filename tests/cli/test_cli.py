"""The CLI's contract: exit codes, stdout JSON, records valid against their schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from xai_cli.cli import app

runner = CliRunner()
SCHEMA = json.loads((Path(__file__).parents[2] / "xai_cli" / "schemas" / "record.schema.json").read_text())


@pytest.fixture(scope="module")
def imgs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate([(80, 60), (64, 64), (50, 90)]):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / f"im{i}.png")
    (root / "sub").mkdir()
    Image.fromarray(rng.integers(0, 255, (70, 70), dtype=np.uint8), "L").save(root / "sub" / "gray.jpg")
    return root


def explain(*args: str):
    return runner.invoke(app, ["explain", "--model", "resnet18", "--weights", "none", "--workers", "0", *args])


def test_version_help_and_catalogues():
    assert runner.invoke(app, ["--version"]).output.startswith("xai ")
    help_text = runner.invoke(app, ["explain", "--help"]).output
    assert "Examples" in help_text and "Exit codes" in help_text
    methods = runner.invoke(app, ["methods", "--format", "json"])
    assert methods.exit_code == 0 and "gradcam" in {m["name"] for m in json.loads(methods.stdout)}
    models = runner.invoke(app, ["models", "res*"])
    assert models.exit_code == 0 and "resnet50" in models.stdout and "vgg16" not in models.stdout


def test_all_ok_is_exit_0_with_json_summary_and_valid_records(imgs, tmp_path):
    import jsonschema

    r = explain(str(imgs), "--out", str(tmp_path), "--format", "json", "--quiet")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary == {**summary, "total": 4, "ok": 4, "failed": 0, "exit_code": 0}
    manifest = [json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert [m["input"] for m in manifest] == ["im0.png", "im1.png", "im2.png", "sub/gray.jpg"]
    for m in manifest:
        record = json.loads((tmp_path / m["record"]).read_text())
        jsonschema.validate(record, SCHEMA)
        png = tmp_path / record["methods"]["gradcam"][0]["png"]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(png) as im:  # the picture holds the input at its own size
            assert im.width >= record["input"]["size"][0] and im.height >= record["input"]["size"][1]
        assert record["model"]["random_init"] is True
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["counts"] == {"total": 4, "ok": 4, "skipped": 0, "failed": 0, "not_done": 0, "not_walked": 0,
                             "degenerate_maps": 0, "tied_predictions": 0, "warnings": len(run["warnings"])}
    assert not list(tmp_path.rglob(".xai-tmp-*"))


def test_a_bad_input_is_exit_1_and_recorded(imgs, tmp_path):
    bad = tmp_path / "in"
    bad.mkdir()
    (bad / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    Image.open(imgs / "im0.png").save(bad / "good.png")
    r = explain(str(bad), "--out", str(tmp_path / "out"), "--format", "json", "-q")
    assert r.exit_code == 1
    summary = json.loads(r.stdout)
    assert (summary["ok"], summary["failed"]) == (1, 1)
    record = json.loads((tmp_path / "out" / "broken.json").read_text())
    assert record["status"] == "error" and record["reason"]


@pytest.mark.parametrize("args,code", [
    (["--method", "gradcamm"], 2),
    (["--param", "gradcam.layr=layer4"], 2),
    (["--layer", "layer9"], 2),
    (["--target", "7", "--top-k", "2"], 2),
    (["--device", "cuda:7"], 2),
])
def test_usage_errors_are_exit_2_with_one_line(imgs, tmp_path, args, code):
    r = explain(str(imgs), "--out", str(tmp_path), *args)
    assert r.exit_code == code, r.output
    assert r.stderr.count("error:") == 1


def test_model_load_error_is_exit_3(imgs, tmp_path):
    missing = tmp_path / "missing.safetensors"
    r = runner.invoke(app, ["explain", "--model", "resnet18", "--weights", str(missing), str(imgs), "--out", str(tmp_path)])
    assert r.exit_code == 3 and "not found" in r.stderr


def test_top_k_writes_one_picture_per_target(imgs, tmp_path):
    r = explain(str(imgs / "im0.png"), "--out", str(tmp_path), "--top-k", "2", "-q")
    assert r.exit_code == 0
    record = json.loads((tmp_path / "im0.json").read_text())
    entries = record["methods"]["gradcam"]
    assert [e["target"]["rank"] for e in entries] == [1, 2]
    assert [e["target"]["index"] for e in entries] == [p["index"] for p in record["prediction"][:2]]
    assert all((tmp_path / e["png"]).is_file() for e in entries)


def test_subprocess_entry_point_exit_code_and_stdout_is_only_json(imgs, tmp_path):
    p = subprocess.run([sys.executable, "-m", "xai_cli", "explain", "--model", "resnet18", "--weights", "none",
                        "--workers", "1", "--format", "json", str(imgs), "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["ok"] == 4
    assert "explaining" in p.stderr  # plain progress lines for logs, on stderr


def test_text_run_records_are_valid_and_gradcam_on_text_is_a_usage_error(tmp_path):
    import jsonschema

    texts = Path(__file__).parents[2] / "sample_texts"
    r = runner.invoke(app, ["explain", "--model", "demo-text", "--method", "ig,attention", "--workers", "0", "-q",
                            str(texts / "camera.txt"), str(texts / "reviews.jsonl"), "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    records = [p for p in tmp_path.rglob("*.json") if p.name != "run.json"]
    assert len(records) >= 2
    for p in records:
        record = json.loads(p.read_text())
        jsonschema.validate(record, SCHEMA)
        assert record["modality"] == "text"
    r = runner.invoke(app, ["explain", "--model", "demo-text", "--method", "gradcam", str(texts), "--out", str(tmp_path / "g")])
    assert r.exit_code == 2 and "ig" in r.stderr
