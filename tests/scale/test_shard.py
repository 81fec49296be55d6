"""Shards: the split, the scheduler variables, and N shards + merge == one run (also after a kill)."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import time
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
from PIL import Image

from tests.reliability import cli
from tests.scale.conftest import DIGITS, assert_same_run, config, manifest, records
from xai_cli import api
from xai_cli.core.shard import parse_shard, shard_of
from xai_cli.errors import UsageError
from xai_cli.sinks.files.merge import merge


def test_the_split_is_a_partition_that_adding_files_does_not_move():
    rels = [PurePosixPath(f"d{i % 7}/img{i}.png") for i in range(500)]
    parts = [[r for r in rels if parse_shard(f"{k}/3", {}).owns(r)] for k in range(3)]
    assert sorted(sum(parts, [])) == sorted(rels)  # every input in exactly one shard
    assert all(120 < len(p) < 215 for p in parts)  # and spread evenly (sha256: ~167 each)
    before = {r: shard_of(r, 3) for r in rels}
    more = rels + [PurePosixPath(f"new/img{i}.png") for i in range(100)]
    assert {r: shard_of(r, 3) for r in more if r in before} == before
    for name in ("a/b.png", "ü/ß.jpg", "x.txt/doc-7"):  # the documented hash, never Python's salted hash()
        assert shard_of(PurePosixPath(name), 7) == int(hashlib.sha256(name.encode()).hexdigest()[:16], 16) % 7


@pytest.mark.parametrize(("env", "want"), [
    ({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}, (3, 4, "slurm")),
    ({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "8"}, (4, 8, "slurm")),
    ({"JOB_COMPLETION_INDEX": "2", "XAI_SHARD_COUNT": "5"}, (2, 5, "kubernetes")),
    ({"RANK": "6", "WORLD_SIZE": "8", "LOCAL_RANK": "2"}, (6, 8, "torchrun")),
])
def test_auto_reads_the_schedulers_variables(env, want):
    shard = parse_shard("auto", env)
    assert (shard.index, shard.count, shard.source) == want
    assert shard.to_dict()["variables"] == env
    assert shard.local_rank == (2 if "LOCAL_RANK" in env else None)


@pytest.mark.parametrize(("spec", "env", "says"), [
    ("2/2", {}, "out of range"), ("1-2", {}, "bad"), ("auto", {}, "no SLURM_ARRAY_TASK_ID"),
    ("auto", {"JOB_COMPLETION_INDEX": "0"}, "XAI_SHARD_COUNT"),
    ("auto", {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4"}, "out of range"),
])
def test_bad_shards_are_usage_errors(spec, env, says):
    with pytest.raises(UsageError, match=says):
        parse_shard(spec, env)


def test_two_shards_and_merge_equal_one_run(reference, tmp_path):
    out = tmp_path / "out"
    first = api.run(config(out, shard="0/2"))
    assert not (out / "manifest.jsonl").exists()  # shard 1 has not run: nothing merged yet
    with pytest.raises(UsageError, match="shards 1 of 2 have not finished"):
        merge(out)
    second = api.run(config(out, shard="1/2"))  # the last to finish merges
    assert first.total + second.total == 20 and min(first.total, second.total) > 0
    assert_same_run(out, reference)
    run = json.loads((out / "run.json").read_text())
    assert run["counts"]["ok"] == 20 and run["exit_code"] == 0 and run["config"]["shard"] is None
    assert [s["shard"] for s in run["shards"]] == [{"index": k, "count": 2, "source": "option"} for k in range(2)]
    part = json.loads((out / "run.1-of-2.json").read_text())
    assert part["counts"]["total"] == second.total and part["shard"]["index"] == 1
    assert {p.name for p in out.iterdir() if p.name.startswith(".xai.lock")} == {".xai.lock.0-of-2", ".xai.lock.1-of-2"}


def test_shards_from_the_environment_say_so_in_run_json(tmp_path, monkeypatch):
    out = tmp_path / "out"
    for k in range(2):
        monkeypatch.setenv("SLURM_ARRAY_TASK_ID", str(k + 1))
        monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "1")
        monkeypatch.setenv("SLURM_ARRAY_TASK_MAX", "2")
        api.run(config(out, shard="auto", methods=("saliency",), save_raw=False))
    run = json.loads((out / "run.json").read_text())
    assert [(s["shard"]["index"], s["shard"]["source"]) for s in run["shards"]] == [(0, "slurm"), (1, "slurm")]
    assert run["shards"][1]["shard"]["variables"]["SLURM_ARRAY_TASK_ID"] == "2"
    assert [x["status"] for x in manifest(out)] == ["ok"] * 20


def _digits(root: Path, n: int) -> Path:
    """``n`` digit-like pictures: enough inputs that a shard is still running when it is killed."""
    rng = np.random.default_rng(0)
    src = sorted(DIGITS.glob("*.png"))
    root.mkdir()
    for i in range(n):
        a = np.asarray(Image.open(src[i % len(src)]).convert("RGB")).astype(np.int16)
        a = np.clip(a + rng.integers(-20, 20, a.shape), 0, 255).astype(np.uint8)
        Image.fromarray(a).save(root / f"x{i:03d}.png")
    return root


@pytest.mark.slow
def test_a_killed_shard_rerun_completes_the_run(tmp_path):
    imgs, out, ref = _digits(tmp_path / "imgs", 40), tmp_path / "out", tmp_path / "ref"
    base = ["explain", "--model", "demo-digits", "--method", "saliency", "--workers", "0", "--batch-size", "1", imgs,
            "--out"]
    assert cli.run(cli.xai_cmd(*base, ref, "--quiet"), timeout=120).returncode == 0
    assert cli.run(cli.xai_cmd(*base, out, "--shard", "0/2", "--quiet"), timeout=120).returncode == 0
    p = subprocess.Popen(cli.xai_cmd(*base, out, "--shard", "1/2", "--quiet"), env=cli.env(),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    part = out / "manifest.1-of-2.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (part.exists() and part.read_text().count("\n") >= 2):
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    done = part.read_text().count("\n")
    assert 2 <= done < sum(shard_of(PurePosixPath(f"x{i:03d}.png"), 2) for i in range(40)), "killed part-way"
    assert not (out / "run.1-of-2.json").exists() and not (out / "run.json").exists()
    rerun = cli.run(cli.xai_cmd(*base, out, "--shard", "1/2", "--format", "json"), timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["skipped"] >= 2  # resumed, not redone
    assert records(out) == records(ref)
    assert [(x["input"], x["status"]) for x in manifest(out)] == [(x["input"], x["status"]) for x in manifest(ref)]
    run = json.loads((out / "run.json").read_text())
    assert run["counts"]["ok"] == 40 and run["counts"]["not_done"] == 0


def test_merge_command_exit_codes(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = cli.run(cli.xai_cmd("merge", empty))
    assert r.returncode == 2 and "no shard parts" in r.stderr and "--shard" in r.stderr
