"""Stopping a run as people and supervisors do (issue 10, item 8): Ctrl-C stops at the next chunk
of work, not after the whole batch; one message per signal; a SIGTERM to the whole process group
records no never-started input as failed; a second Ctrl-C still leaves every finished input in
the manifest; --fail-on-error acts at the first failure."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.reliability.cli import env, manifest, xai_cmd

DIGITS = Path(__file__).parents[2] / "sample_images" / "digits"
SLOW = ["--model", "demo-digits", "--method", "shap,lime", "--param", "lime.segmentation=slic",
        "--param", "shap.n_samples=2000", "--param", "lime.n_samples=2000", "--workers", "1"]


def start(out: Path, *extra: str, inputs: Path = DIGITS) -> subprocess.Popen:
    return subprocess.Popen(xai_cmd("explain", *SLOW, *extra, str(inputs), "--out", str(out)), env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for_line(proc: subprocess.Popen, needle: str, limit: float = 240) -> list[str]:
    seen, t0 = [], time.monotonic()
    while time.monotonic() - t0 < limit:
        line = proc.stderr.readline()
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError(f"never saw {needle!r}: {seen[-5:]}")


def test_ctrl_c_stops_within_a_chunk_not_after_the_batch(tmp_path):
    out = tmp_path / "out"
    proc = start(out, "--batch-size", "32")  # one batch: 0.1 waited for all of it (about 2 minutes)
    wait_for_line(proc, "xai ")  # the model is loaded and the run started
    time.sleep(3)
    t = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    stopped_after = time.monotonic() - t
    assert proc.returncode == 130, err
    assert stopped_after < 30, f"took {stopped_after:.0f} s to stop"  # a chunk, not the whole batch
    assert err.count("SIGINT: stopping") == 1  # one message per signal (not one per worker)
    lines = manifest(out)
    assert all(m["status"] != "error" for m in lines)  # the dropped batch is not done, not failed
    run = json.loads((out / "run.json").read_text())
    assert run["stopped"] == "SIGINT" and run["counts"]["failed"] == 0 and run["exit_code"] == 130


def test_sigterm_to_the_process_group_fails_nothing_and_resume_finishes(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name in sorted(os.listdir(DIGITS))[:8]:
        (src / name).write_bytes((DIGITS / name).read_bytes())
    out = tmp_path / "out"
    proc = start(out, "--batch-size", "2", "--param", "shap.n_samples=300", "--param", "lime.n_samples=300", inputs=src)
    wait_for_line(proc, "xai ")
    time.sleep(2)
    os.killpg(proc.pid, signal.SIGTERM)  # what systemd, docker and `timeout` do: the workers get it too
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert all(m["status"] == "ok" for m in manifest(out)), err
    done = subprocess.run(xai_cmd("explain", *SLOW, "--batch-size", "2", "--param", "shap.n_samples=300",
                                  "--param", "lime.n_samples=300", "--format", "json", str(src), "--out", str(out)),
                          env=env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] == 8


def test_a_second_ctrl_c_still_writes_every_finished_input(tmp_path):
    out = tmp_path / "out"
    proc = start(out, "--batch-size", "2", "--param", "shap.n_samples=200", "--param", "lime.n_samples=200")
    wait_for_line(proc, "xai ")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list(out.glob("*.lime.png"))) < 4:
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)  # the second at once: abandon the batch in flight
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    records = sorted(p.name for p in out.glob("digit_*.json"))
    lines = manifest(out)
    assert len(records) >= 4
    assert sorted(Path(m["record"]).name for m in lines if m["status"] == "ok") == records  # none lost


@pytest.mark.parametrize("batch", ["8"])
def test_fail_on_error_stops_at_the_first_failure(tmp_path, batch):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(6):
        (src / f"d{i}.png").write_bytes((DIGITS / sorted(os.listdir(DIGITS))[i]).read_bytes())
    (src / "d2.png").write_bytes(b"broken")
    done = subprocess.run(xai_cmd("explain", "--model", "demo-digits", "--workers", "0", "--batch-size", batch,
                                  "--fail-on-error", "--format", "json", str(src), "--out", str(tmp_path / "out")),
                          env=env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["ok"], summary["failed"], summary["not_done"]) == (2, 1, 3)  # d0, d1 ok; d2 failed; stop
    assert [m["input"] for m in manifest(tmp_path / "out")] == ["d0.png", "d1.png", "d2.png"]
