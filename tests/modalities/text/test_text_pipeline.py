"""Text end to end through ``pipeline.run``: the shipped samples with demo-text, records whose
offsets slice the text back, pictures, failures counted, resume, batch-size invariance, CLI codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from xai_cli import api
from xai_cli.cli import app
from xai_cli.config import build_config
from xai_cli.errors import ExitCode

SAMPLES = Path(__file__).parents[3] / "sample_texts"
METHODS = ("ig", "shap", "lime", "attention", "saliency")
CHEAP = {"ig": {"steps": 16}, "shap": {"n_samples": 128}, "lime": {"n_samples": 300}}
RECORDS = ["camera", "concert_utf16", "hotel", "kettle", "long_review", "reviews/r1", "reviews/r2", "reviews/r3_odd_id",
           "reviews/line-4"]


def run(inputs, out: Path, **kw):
    cfg = build_config(None, {"model": "demo-text", "methods": METHODS, "inputs": tuple(inputs), "out": out,
                              "workers": 0, "params": CHEAP, **kw})
    return api.run(cfg)


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("text-out")
    return out, run([SAMPLES], out, batch_size=4)


def test_every_sample_gets_a_record_and_a_picture_per_method(done):
    out, summary = done
    assert (summary.total, summary.ok, summary.failed, summary.exit_code) == (9, 9, 0, ExitCode.OK)
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [m["record"] for m in manifest] == [f"{r}.json" for r in RECORDS]
    for rec in RECORDS:
        record = json.loads((out / f"{rec}.json").read_text())
        assert record["status"] == "ok" and record["modality"] == "text" and set(record["methods"]) == set(METHODS)
        for method, (entry,) in record["methods"].items():
            assert entry["png"] == f"{rec}.{method}.png" and entry["stats"]["finite"]
            with Image.open(out / entry["png"]) as im:
                assert im.width == 960 and im.height > 100
            assert len(entry["token_scores"]) == len(record["tokens"]) and len(entry["word_scores"]) == len(record["words"])


def test_offsets_slice_the_original_text_back(done):
    out, _ = done
    for rec in RECORDS:
        record = json.loads((out / f"{rec}.json").read_text())
        text = record["text"]
        for t in record["tokens"]:
            if t["special"]:
                assert t["start"] is None and t["word"] is None
                continue
            piece = text[t["start"]:t["end"]]
            assert t["token"] == "[UNK]" or piece.lower() == t["token"].removeprefix("##") or not piece.isascii()
        for w in record["words"]:
            assert text[w["start"]:w["end"]] == w["text"] and w["text"].strip() == w["text"]
            assert all(record["tokens"][i]["word"] == w["i"] for i in w["tokens"])
        ig = record["methods"]["ig"][0]  # word scores are sums of their tokens' scores
        for w in record["words"]:
            assert sum(ig["token_scores"][i] for i in w["tokens"]) == pytest.approx(ig["word_scores"][w["i"]], abs=1e-4)


def test_inputs_encodings_truncation_and_jsonl_lines_are_recorded(done):
    out, _ = done
    utf16 = json.loads((out / "concert_utf16.json").read_text())
    assert utf16["input"]["encoding"] == "utf-16-le" and utf16["text"].startswith("Overall the concert")
    long = json.loads((out / "long_review.json").read_text())
    assert long["tokenization"]["truncated"] and long["tokenization"]["tokens_kept"] == 64
    assert long["tokenization"]["tokens_total"] > 64 and long["input"]["notes"]
    odd = json.loads((out / "reviews/r3_odd_id.json").read_text())
    assert (odd["input"]["key"], odd["input"]["line"], odd["input"]["rel"]) == ("r3/odd id", 3, "reviews/r3_odd_id")
    hotel = json.loads((out / "hotel.json").read_text())
    assert hotel["prediction"][0]["label"] == "negative"
    top = {m: e[0]["stats"]["top_words"][0]["text"] for m, e in hotel["methods"].items()}
    assert set(top.values()) <= {"terrible", "noisy"}, top
    assert hotel["methods"]["attention"][0]["details"]["class_specific"] is False
    assert hotel["methods"]["ig"][0]["details"]["completeness_error"] < 0.05


def test_bad_inputs_fail_alone_and_are_counted(tmp_path):
    src = tmp_path / "in"
    shutil.copytree(SAMPLES, src)
    (src / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")
    (src / "blank.txt").write_text("   \n")
    with open(src / "reviews.jsonl", "a") as f:
        f.write("{broken\n")
    summary = run([src], tmp_path / "out", workers=1, methods=("attention",), params={})  # decoded in a worker
    assert (summary.total, summary.ok, summary.failed, summary.exit_code) == (12, 9, 3, ExitCode.INPUTS_FAILED)
    reasons = {f["input"]: f["reason"] for f in summary.failures}
    assert "binary file" in reasons["photo.txt"] and "empty text" in reasons["blank.txt"]
    assert reasons["reviews/line-5"].startswith("line 5: not valid JSON")
    record = json.loads((tmp_path / "out" / "photo.json").read_text())
    assert record["status"] == "error" and record["input"]["sha256"]


def test_resume_skips_finished_texts_and_batch_size_does_not_matter(done, tmp_path):
    out, _ = done
    again = run([SAMPLES], out, batch_size=4)
    assert (again.ok, again.skipped, again.failed) == (9, 9, 0)
    one = run([SAMPLES / "hotel.txt", SAMPLES / "reviews.jsonl"], tmp_path / "b1", batch_size=1)
    assert one.ok == 5
    for rec in ["hotel", "reviews/r1"]:
        a = json.loads((out / f"{rec}.json").read_text())["methods"]
        b = json.loads((tmp_path / "b1" / f"{rec}.json").read_text())["methods"]
        for m in METHODS:
            np.testing.assert_allclose(a[m][0]["word_scores"], b[m][0]["word_scores"], rtol=1e-3, atol=1e-5)


def test_cli_exit_codes_for_text():
    runner = CliRunner()
    res = runner.invoke(app, ["explain", "--model", "demo-text", "--method", "gradcam", "--workers", "0", str(SAMPLES)])
    assert res.exit_code == ExitCode.USAGE and "attention, counterfactual, ig, lime, saliency, shap" in res.output
    res = runner.invoke(app, ["explain", "--model", "hf:nobody/nothing", "--method", "ig", str(SAMPLES)])
    assert res.exit_code == ExitCode.MODEL_LOAD
