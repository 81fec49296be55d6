"""Several devices: one engine process per device gives one process's records; a stop reaches every engine."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from tests.reliability import cli
from tests.scale.conftest import DIGITS, assert_same_run, config, manifest, time_limit
from xai_cli import api, runner
from xai_cli.errors import UsageError


def test_two_cpu_engine_processes_equal_one(reference, tmp_path):
    out = tmp_path / "out"
    with time_limit(240):
        summary = api.run(config(out, device="cpu,cpu"))
    assert summary.ok == 20 and summary.exit_code == 0
    assert_same_run(out, reference)
    run = json.loads((out / "run.json").read_text())
    per = run["devices"]
    assert [d["device"] for d in per] == ["cpu", "cpu"] and sum(d["inputs"] for d in per) == 20
    assert all(d["inputs"] > 0 for d in per)  # both engines worked
    assert run["device"]["spec"] == "cpu,cpu" and run["timings"]["saliency_seconds"] > 0


def test_device_lists(monkeypatch):
    assert runner.resolve_devices("cpu, cpu") == [runner.torch.device("cpu")] * 2
    monkeypatch.setattr(runner.torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match="CUDA is not available"):
        runner.resolve_devices("cuda:all")
    with pytest.raises(UsageError, match="bad"):
        runner.resolve_devices("cpu,tpu:7")


@pytest.mark.slow
def test_sigint_stops_every_engine_and_a_rerun_resumes(tmp_path):
    out = tmp_path / "out"
    cmd = cli.xai_cmd("explain", "--model", "demo-digits", "--method", "saliency",
                      "--workers", "0", "--batch-size", "1", "--device", "cpu,cpu", DIGITS, "--out", out, "--quiet")
    p = subprocess.Popen(cmd, env=cli.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(manifest(out) if (out / "manifest.jsonl").exists() else []) < 2:
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    lines = manifest(out)
    assert all(x["status"] == "ok" for x in lines) and 2 <= len(lines) < 20  # nothing in flight recorded as failed
    rerun = cli.run(cmd[:-1] + ["--format", "json"], timeout=240)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["skipped"] == len(lines)
    assert [x["status"] for x in manifest(out)] == ["ok"] * 20
