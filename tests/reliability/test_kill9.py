"""kill -9 in the middle of a run: no worker outlives it, the next run takes the folder and
resumes, and the union equals a clean run. A lock whose holder is gone is taken over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.reliability.cli import env, explain_cmd, images, manifest, run
from xai_cli.sinks.files.lock import OutputLock

N = 24


def children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return kids


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def strip(record: dict) -> dict:
    for entries in record.get("methods", {}).values():
        for e in entries:
            e.pop("seconds", None)
    return record


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill9_mid_run_then_rerun_resumes_and_matches_a_clean_run(tmp_path):
    src = images(tmp_path / "in", [f"im{i:02d}.png" for i in range(N)], seed=5, size=64)
    out = tmp_path / "out"
    cmd = explain_cmd(src, out, "--save-raw")
    cmd[cmd.index("--workers") + 1], cmd[cmd.index("--batch-size") + 1] = "2", "2"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 300
        while len(manifest(out)) < 4 and time.monotonic() < deadline and proc.poll() is None:
            workers = children(proc.pid) or workers
            time.sleep(0.05)
        workers = children(proc.pid) or workers
        assert proc.poll() is None and workers, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 5
        while any(alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(w) for w in workers), "decode workers outlived their killed parent"
        again = run(cmd, timeout=600)
    finally:
        for w in workers:  # only this test's own processes
            if alive(w):
                os.kill(w, signal.SIGKILL)
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert second["ok"] == N and second["failed"] == 0 and second["skipped"] >= 1
    assert sorted(m["input"] for m in manifest(out)) == [f"im{i:02d}.png" for i in range(N)]
    assert not list(out.rglob(".xai-tmp-*"))

    clean = tmp_path / "clean"
    assert run(explain_cmd(src, clean, "--save-raw"), timeout=600).returncode == 0
    for i in range(N):
        a = strip(json.loads((out / f"im{i:02d}.json").read_text()))
        b = strip(json.loads((clean / f"im{i:02d}.json").read_text()))
        assert [p["index"] for p in a["prediction"]] == [p["index"] for p in b["prediction"]]
        assert a["methods"]["gradcam"][0]["stats"]["peak_input_px"] == b["methods"]["gradcam"][0]["stats"]["peak_input_px"]
        np.testing.assert_allclose(np.load(out / f"im{i:02d}.gradcam.npy"), np.load(clean / f"im{i:02d}.gradcam.npy"), atol=1e-5)


HOLDER = """
import fcntl, json, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.ftruncate(fd, 0)
os.pwrite(fd, sys.argv[2].encode(), 0)
print("locked", flush=True)
time.sleep(300)
"""


def hold(lock_path, content: str) -> subprocess.Popen:
    """Another process holding the lock (as an orphaned worker did), the file naming ``content``'s holder."""
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_path), content], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "locked"
    return p


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_lock_whose_holder_is_gone_is_taken_over(tmp_path):
    src = images(tmp_path / "in", ["a.png"])
    out = tmp_path / "out"
    out.mkdir()
    holder = hold(out / ".xai.lock", str(dead_pid()))  # the 0.1 format: the bare pid of a dead run
    try:
        r = run(explain_cmd(src, out))
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["ok"] == 1
        with OutputLock(out) as lock:  # the takeover is reported as data, for the caller to log
            assert lock.took_over is None
        holder2 = hold(out / ".xai.lock", json.dumps({"pid": dead_pid(), "host": os.uname().nodename}))
        try:
            with OutputLock(out) as lock:
                assert lock.took_over and "is not running" in lock.took_over
        finally:
            holder2.kill()
            holder2.wait()
    finally:
        holder.kill()
        holder.wait()


def test_a_live_run_keeps_its_lock(tmp_path):
    src = images(tmp_path / "in", ["a.png"])
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.replace("sys.argv[2].encode()", "json.dumps(owner).encode()")
                               .replace("import fcntl", "from xai_cli.sinks.files.lock import owner_info; owner = owner_info()\nimport fcntl"),
                               str(out / ".xai.lock"), ""], stdout=subprocess.PIPE, text=True, env=env())
    try:
        assert holder.stdout.readline().strip() == "locked"
        r = run(explain_cmd(src, out))
        assert r.returncode == 2 and "another xai run" in r.stderr, r.stderr
    finally:
        holder.kill()
        holder.wait()
