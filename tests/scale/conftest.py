"""The reference the scaled runs must agree with: one single-process run of the demo digits."""

from __future__ import annotations

import json
import signal
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from xai_cli import api
from xai_cli.config import build_config

REPO = Path(__file__).parents[2]
DIGITS = REPO / "sample_images" / "digits"


def config(out: Path, **kw) -> api.RunConfig:
    """Batches of one by default: a shard or a Ray block puts other inputs together in a batch,
    and a batch's arithmetic differs from another's in the last bits (--batch-size promises
    agreement to 1e-4, tests/test_runner.py); alone, an input's results are bit for bit the same."""
    return build_config(None, {"model": "demo-digits", "methods": ("gradcam", "saliency"), "inputs": (DIGITS,),
                               "out": out, "workers": 0, "batch_size": 1, "save_raw": True, **kw})


def _timeless(obj):
    """A record without its timings (the only thing that may differ between runs)."""
    if isinstance(obj, dict):
        return {k: _timeless(v) for k, v in obj.items() if k != "seconds"}
    if isinstance(obj, list):
        return [_timeless(v) for v in obj]
    return obj


def records(out: Path) -> dict[str, dict]:
    """Every per-input record under ``out`` (not the run's own files), timings removed."""
    top = {"run.json"}
    return {str(p.relative_to(out)): _timeless(json.loads(p.read_text(encoding="utf-8")))
            for p in sorted(out.rglob("*.json")) if p.name not in top and not p.name.startswith("run.")}


def raw_maps(out: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(out)): np.load(p) for p in sorted(out.rglob("*.npy"))}


def manifest(out: Path, name: str = "manifest.jsonl") -> list[dict]:
    return [json.loads(x) for x in (out / name).read_text(encoding="utf-8").splitlines()]


def assert_same_run(out: Path, ref: Path) -> None:
    """Records equal but for timings, raw maps equal, and the same manifest, line for line."""
    got, want = records(out), records(ref)
    assert sorted(got) == sorted(want) and len(want) == 20
    for name in want:
        assert got[name] == want[name], name
    a, b = raw_maps(out), raw_maps(ref)
    assert sorted(a) == sorted(b) and len(b) == 40
    for name in b:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert manifest(out) == manifest(ref)


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "out"
    summary = api.run(config(out))
    assert summary.ok == 20 and summary.failed == 0
    return out


@contextmanager
def time_limit(seconds: int):
    """Fail (TimeoutError) instead of hanging: a deadlocked pool must not stall the suite."""

    def expired(_signum, _frame):
        raise TimeoutError(f"took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
