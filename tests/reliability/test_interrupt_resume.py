"""kill -TERM in the middle of a run, then the same command again: it resumes and completes with
the outputs a clean run gives; a changed input or setting is redone; --force redoes all."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

N = 24


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("in")
    rng = np.random.default_rng(5)
    for i in range(N):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(root / f"im{i:02d}.png")
    return root


def cmd(inputs, out, *extra):
    return [sys.executable, "-m", "xai_cli", "explain", "--model", "resnet18", "--weights", "none", "--workers", "1",
            "--batch-size", "2", "--save-raw", "--format", "json", str(inputs), "--out", str(out), *extra]


def manifest(out):
    path = out / "manifest.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def strip_timing(record: dict) -> dict:
    for entries in record.get("methods", {}).values():
        for e in entries:
            e.pop("seconds", None)
    return record


def test_sigterm_then_resume_matches_a_clean_run(inputs, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(cmd(inputs, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while len(manifest(out)) < 4 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    first = json.loads(stdout)
    assert first["stopped"] == "SIGTERM" and 0 < first["ok"] < N
    assert len(manifest(out)) == first["ok"]  # flushed, one line per finished input
    assert json.loads((out / "run.json").read_text())["stopped"] == "SIGTERM"
    assert not list(out.rglob(".xai-tmp-*"))
    for line in manifest(out):  # everything written so far parses
        json.loads((out / line["record"]).read_text())

    again = subprocess.run(cmd(inputs, out), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert (second["ok"], second["skipped"], second["failed"]) == (N, first["ok"], 0)

    clean = tmp_path / "clean"
    assert subprocess.run(cmd(inputs, clean), capture_output=True, timeout=600).returncode == 0
    for i in range(N):
        a = strip_timing(json.loads((out / f"im{i:02d}.json").read_text()))
        b = strip_timing(json.loads((clean / f"im{i:02d}.json").read_text()))
        assert [p["index"] for p in a["prediction"]] == [p["index"] for p in b["prediction"]]
        assert [p["probability"] for p in a["prediction"]] == pytest.approx([p["probability"] for p in b["prediction"]], rel=1e-4)
        assert a["methods"]["gradcam"][0]["stats"]["peak_input_px"] == b["methods"]["gradcam"][0]["stats"]["peak_input_px"]
        np.testing.assert_allclose(np.load(out / f"im{i:02d}.gradcam.npy"), np.load(clean / f"im{i:02d}.gradcam.npy"), atol=1e-5)


def test_changed_input_or_setting_is_redone_and_force_redoes_all(inputs, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        (src / f"im{i}.png").write_bytes((inputs / f"im{i:02d}.png").read_bytes())
    out = tmp_path / "out"
    assert subprocess.run(cmd(src, out), capture_output=True, timeout=300).returncode == 0
    Image.new("RGB", (30, 30), "red").save(src / "im1.png")  # changed content
    r = json.loads(subprocess.run(cmd(src, out), capture_output=True, text=True, timeout=300).stdout)
    assert (r["ok"], r["skipped"]) == (3, 2)
    r = json.loads(subprocess.run(cmd(src, out, "--top-k", "2"), capture_output=True, text=True, timeout=300).stdout)
    assert r["skipped"] == 0  # a setting that changes outputs: everything redone
    r = json.loads(subprocess.run(cmd(src, out, "--top-k", "2", "--force"), capture_output=True, text=True, timeout=300).stdout)
    assert (r["ok"], r["skipped"]) == (3, 0)
