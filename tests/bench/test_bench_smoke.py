"""The benchmark runs end to end at its small size on the CPU and reports sane numbers.

No timing thresholds: CI machines are shared and noisy; this checks that every row is measured.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
METHODS = ["gradcam", "ig", "attention"]  # a CNN gradient method, a slow (many-pass) one, the ViT path


def _positive(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v) and v > 0


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("bench")
    # --threads 1: on a busy 2-core box two OpenMP threads can be ten times slower than one.
    cmd = [sys.executable, str(ROOT / "bench" / "bench.py"), "--size", "small", "--device", "cpu",
           "--methods", ",".join(METHODS), "--threads", "1", "--out", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (json_file,) = out.glob("cpu-small-*.json")
    (md_file,) = out.glob("cpu-small-*.md")
    return json.loads(json_file.read_text()), md_file.read_text()


def test_a_row_per_method_with_finite_positive_figures(report):
    data, _ = report
    assert [r["case"] for r in data["rows"]] == ["gradcam", "gradcam", "ig", "attention"]  # gradcam: two peers
    for row in data["rows"]:
        assert _positive(row["xai_compute_img_s"]), row
        assert _positive(row["xai_e2e_img_s"]), row
        if row["peer"] is not None:
            assert _positive(row["peer_img_s"]) or any(row["peer"] in n and "not installed" in n for n in data["notes"]), row
        assert all(v is None for v in row["peak_mib"].values())  # CPU: no GPU memory figures
    assert all(_positive(v) for v in data["ceiling"].values())
    assert data["device"]["type"] == "cpu"


def test_markdown_table_lists_every_row(report):
    data, text = report
    table = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| method")]
    assert len(table) == len(data["rows"])
    assert "Ceiling" in text and data["versions"]["torch"] in text


def test_rounds_and_two_precisions_report_the_median_round(tmp_path):
    """``--precision fp32,bf16 --rounds 3``: a row per precision and peer, the peer's figure
    shared by both precisions, each figure the median of its interleaved rounds."""
    cmd = [sys.executable, str(ROOT / "bench" / "bench.py"), "--size", "small", "--device", "cpu", "--methods", "saliency",
           "--threads", "1", "--out", str(tmp_path), "--precision", "fp32,bf16", "--rounds", "3", "--name", "r"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (json_file,) = tmp_path.glob("r-*.json")
    data = json.loads(json_file.read_text())
    assert [r["precision"] for r in data["rows"]] == ["fp32", "bf16"]
    assert data["rows"][0]["peer_img_s"] == data["rows"][1]["peer_img_s"]
    for row in data["rows"]:
        rounds = row["rounds"]
        assert rounds["n"] == 3 and len(rounds["load_average_1min"]) == 3
        for key in ("peer_img_s", "xai_compute_img_s", "xai_e2e_img_s"):
            assert len(rounds[key]) == 3 and row[key] == sorted(rounds[key])[1], key
    assert "Median of 3 interleaved rounds" in (tmp_path / json_file.name.replace(".json", ".md")).read_text()
