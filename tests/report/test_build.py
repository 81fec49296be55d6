"""build_report without a browser: the files written, the data they hold, reuse, the readers, the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from xai_cli.cli import app
from xai_cli.errors import UsageError
from xai_cli.report import build_report
from xai_cli.report._read import flatten_numbers, gate_of, metric_table, worst_lists


def read_js(path: Path, opening: str):
    text = path.read_text(encoding="utf-8")
    assert text.startswith(opening + "JSON.parse(") and text.rstrip().endswith("));")
    return json.loads(json.loads(text[len(opening + "JSON.parse("):text.rstrip().rindex("))")]))


def test_writes_the_page_and_its_data(image_run):
    index = build_report(image_run, workers=0)
    assert index == image_run / "report" / "index.html"
    html = index.read_text()
    assert "assets/report.js" in html and "data/index.js" in html
    assert "http://" not in html and "https://" not in html  # nothing from outside
    data = read_js(image_run / "report" / "data" / "index.js", "XAI.index(")
    lines = [json.loads(x) for x in (image_run / "manifest.jsonl").read_text().splitlines()]
    assert data["total"] == len(lines) and data["name"] == [e["input"] for e in lines]
    assert data["counts"] == {"ok": 6, "error": 2}
    assert data["methods"] == ["gradcam", "saliency"]
    chunk = read_js(image_run / "report" / "data" / "detail" / "00000.js", "XAI.chunk(0,")
    assert len(chunk) == len(lines)
    first_ok = next(d for d in chunk if d["status"] == "ok")
    assert [m["name"] for m in first_ok["methods"]] == ["gradcam", "saliency"]
    assert next(d for d in chunk if d["status"] == "error")["reason"]
    assert {f.name for f in (image_run / "report" / "assets").iterdir()} == {"report.js", "report.css"}


def big_run(root: Path) -> Path:
    """One input whose pictures are larger than a card: thumbnails get made."""
    run = root / "run"
    run.mkdir()
    Image.new("RGB", (800, 600), (10, 120, 200)).save(root / "photo.jpg")
    Image.new("RGB", (820, 640), (200, 20, 20)).save(run / "photo.gradcam.png")
    record = {"schema_version": "1.0", "status": "ok", "input": {"path": str(root / "photo.jpg"), "rel": "photo.jpg"},
              "model": {"name": "m"}, "prediction": [{"rank": 1, "index": 3, "label": "cat", "probability": 0.9}],
              "methods": {"gradcam": [{"target": {"index": 3, "label": "cat", "probability": 0.9}, "png": "photo.gradcam.png",
                                       "stats": {"min": 0, "max": float("nan"), "mean": 0.1, "top10_mass": 0.5, "finite": False}}]}}
    (run / "photo.json").write_text(json.dumps(record))
    (run / "manifest.jsonl").write_text(json.dumps({"input": "photo.jpg", "status": "ok", "record": "photo.json"}) + "\n")
    return run


def test_thumbnails_are_made_once_and_reused(tmp_path):
    run = big_run(tmp_path)
    build_report(run, workers=0)
    made = [run / "report" / "thumbs" / "photo.gradcam.png.jpg", run / "report" / "inputs" / "photo.jpg",
            run / "report" / "inputs" / "photo.thumb.jpg"]
    assert all(p.is_file() for p in made)
    assert max(Image.open(made[0]).size) <= 144 and max(Image.open(made[1]).size) <= 512
    before = [p.stat().st_mtime_ns for p in made]
    build_report(run, workers=0)
    assert [p.stat().st_mtime_ns for p in made] == before  # reused
    older = (run / "photo.gradcam.png").stat().st_mtime_ns - 10**9
    os.utime(made[0], ns=(older, older))  # as if the heatmap had been rewritten after its thumbnail
    build_report(run, workers=0)
    assert made[0].stat().st_mtime_ns > older  # remade


def test_a_missing_record_is_shown_as_a_failure_not_raised(tmp_path):
    run = big_run(tmp_path)
    (run / "photo.json").unlink()
    build_report(run, workers=0)
    data = read_js(run / "report" / "data" / "index.js", "XAI.index(")
    assert data["status"] == [1] and "missing" in data["reason"]["0"]


def test_workers_give_the_same_report(image_run, tmp_path):
    a = build_report(image_run, out=tmp_path / "a", workers=0).parent
    b = build_report(image_run, out=tmp_path / "b", workers=2).parent
    for rel in ("data/index.js", "data/detail/00000.js"):
        assert (a / rel).read_text().replace("/a/", "/b/") == (b / rel).read_text().replace("/a/", "/b/")
    assert read_js(a / "data" / "index.js", "XAI.index(")["run_rel"] == os.path.relpath(image_run, a)


def test_not_a_run_folder(tmp_path):
    with pytest.raises(UsageError):
        build_report(tmp_path)
    with pytest.raises(UsageError):
        build_report(tmp_path / "nope")


def test_cli_prints_the_page_and_exits_0(image_run, tmp_path):
    r = CliRunner().invoke(app, ["report", str(image_run), "--out", str(tmp_path / "rep"), "-q", "--workers", "0"])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(tmp_path / "rep" / "index.html")
    r = CliRunner().invoke(app, ["report", str(tmp_path / "nothing-here")])
    assert r.exit_code == 2
    assert "manifest" in r.output or "not a folder" in r.output


# ---- the tolerant readers of audit.json and compare.json ---------------------------------------

def test_gate_verdicts():
    assert gate_of({"checks": [{"passed": True}]})["verdict"] == "passed"
    g = gate_of({"checks": [{"passed": True}, {"passed": False, "severity": "fail", "message": "x"}]})
    assert g["verdict"] == "failed" and g["failed"] == 1 and g["checks"][0]["message"] == "x"  # failures first
    assert gate_of({"gate": {"checks": [{"passed": False, "severity": "warn"}]}})["verdict"] == "warnings"
    assert gate_of({"gate": {"passed": False, "checks": []}})["verdict"] == "failed"
    assert gate_of({"methods": {}}) is None  # no gate given
    assert gate_of([1, 2]) is None and gate_of(None) is None


def test_metric_table_and_worst_lists():
    rows = metric_table({"methods": {"gradcam": {"deletion_auc": {"mean": 0.2, "median": 0.1, "p10": 0.05, "ci": [0.1, 0.3], "n": 20}}}})
    assert rows == [{"method": "gradcam", "metric": "deletion_auc", "mean": 0.2, "median": 0.1, "p10": 0.05, "ci": [0.1, 0.3], "n": 20.0}]
    rows = metric_table({"aggregates": {"spearman": {"mean": 0.9}, "flip_rate": 0.1}})
    assert [(r["metric"], r["mean"]) for r in rows] == [("spearman", 0.9), ("flip_rate", 0.1)]
    assert metric_table("garbage") == [] and metric_table({"methods": [1]}) == []
    assert worst_lists({"worst": {"spearman": [{"input": "a.png", "value": 0.1}, "b.png", 3]}}) == {
        "spearman": [{"input": "a.png", "value": 0.1}, {"input": "b.png", "value": None}]}


def test_flatten_numbers_keeps_scalars_only():
    flat = flatten_numbers({"input": "a.png", "spearman": 0.5, "flipped": True, "n": 3, "curve": [1, 2],
                            "gradcam": {"iou": 0.25, "auc": {"value": 0.7, "curve": [0.1]}}, "note": "x", "bad": float("nan")})
    assert flat == {"spearman": 0.5, "flipped": 1.0, "gradcam.iou": 0.25, "gradcam.auc": 0.7}
    assert flatten_numbers({"input": "a", "methods": {"ig": {"metrics": {"deletion_auc": 0.2}}}}) == {"ig.deletion_auc": 0.2}


def test_explain_report_flag_writes_the_page(tmp_path):
    from typer.testing import CliRunner

    from xai_cli.cli import app

    digits = Path(__file__).parents[2] / "sample_images" / "digits"
    r = CliRunner().invoke(app, ["explain", "--model", "demo-digits", "--workers", "0", "--report", str(digits),
                                 "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    page = (tmp_path / "o" / "report" / "index.html").read_text()
    assert "<html" in page.lower() and "report/index.html" in r.stderr


def test_an_audit_folder_without_maps_is_browsable_by_its_scores(tmp_path):
    """``xai audit`` without --write-maps leaves audit.json + audit.jsonl only: each input is a row,
    sortable by its per-input scores, and the interval's ends (ci_low/ci_high) fill the table."""
    from xai_cli.report import build_report

    run = tmp_path / "audit"
    run.mkdir()
    (run / "audit.json").write_text(json.dumps({
        "metrics": {"gradcam": {"deletion_auc": {"mean": 0.1, "median": 0.1, "p10": 0.05, "ci_low": 0.08,
                                                 "ci_high": 0.14, "n": 2}}},
        "gate": {"checks": [{"name": "gradcam.deletion_auc.max", "passed": None, "severity": "fail",
                             "message": "not measured"}]}}))
    lines = [{"index": i, "input": f"d{i}.png", "status": "ok", "target": {"rank": 1, "probability": 0.9},
              "methods": {"gradcam": {"metrics": {"deletion_auc": 0.1 * (i + 1)}, "curves": {"deletion": {"curve": [1, 0]}}}}}
             for i in range(2)]
    (run / "audit.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    page = build_report(run, thumbnails=False)
    data = (page.parent / "data" / "index.js").read_text()
    assert "audit:gradcam.deletion_auc" in data and "d0.png" in data and "d1.png" in data
    assert "audit:target" not in data and "curve" not in data
    html = page.read_text()
    assert "0.08" in html and "0.14" in html  # the interval column
    assert "–</td>" in html  # a skipped check is shown as skipped, not as passed
