"""Out-of-memory halving, the output-folder lock, failure limits, non-finite maps, flat memory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from xai_cli import api
from xai_cli.cli import app
from xai_cli.config import build_config
from xai_cli.core.engine import Engine
from xai_cli.sinks.files.lock import OutputLock


@pytest.fixture(scope="module")
def imgs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(2)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(root / f"im{i}.png")
    return root


def cfg(imgs, out, **kw):
    return build_config(None, {"model": "resnet18", "weights": "none", "inputs": (imgs,), "out": out, "workers": 0, **kw})


def test_oom_halves_the_batch_down_to_one_then_records_the_input(imgs, tmp_path, monkeypatch):
    real = Engine._explain

    def picky(self, items):
        if len(items) > 1 or items[0].index == 3:  # only single inputs fit, and input 3 never does
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(self, items)

    monkeypatch.setattr(Engine, "_explain", picky)
    summary = api.run(cfg(imgs, tmp_path, batch_size=4))
    assert (summary.ok, summary.failed) == (5, 1)
    assert "out of GPU memory" in summary.failures[0]["reason"] and summary.failures[0]["input"] == "im3.png"
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["oom_batch_splits"] >= 3  # 4 -> 2+2 -> 1+1 twice, then 2 -> 1+1


def test_a_second_run_on_the_same_folder_is_refused(imgs, tmp_path):
    with OutputLock(tmp_path):
        r = CliRunner().invoke(app, ["explain", "--model", "resnet18", "--weights", "none", str(imgs), "--out", str(tmp_path)])
    assert r.exit_code == 2 and "another xai run" in r.stderr
    r = CliRunner().invoke(app, ["explain", "--model", "resnet18", "--weights", "none", "--workers", "0", "-q",
                                 str(imgs / "im0.png"), "--out", str(tmp_path)])
    assert r.exit_code == 0  # released with the first holder


def test_max_failures_stops_early(imgs, tmp_path):
    bad = tmp_path / "in"
    bad.mkdir()
    for i in range(6):
        (bad / f"bad{i}.png").write_bytes(b"nope")
    summary = api.run(build_config(None, {"model": "resnet18", "weights": "none", "inputs": (bad,),
                                               "out": tmp_path / "out", "workers": 0, "batch_size": 1, "max_failures": 1}))
    assert summary.stopped == "max-failures" and summary.failed == 2 and summary.not_done == 4
    assert int(summary.exit_code) == 1


def test_non_finite_maps_are_recorded_not_drawn(imgs, tmp_path, monkeypatch):
    from xai_cli.methods import gradcam

    real = gradcam.GradCAM.channel_weights

    def nan_first(self, acts, grads, inputs, targets):
        weights = real(self, acts, grads, inputs, targets).clone()  # (N, K, 1, 1)
        weights[0] = float("nan")  # the first input's map becomes NaN
        return weights

    monkeypatch.setattr(gradcam.GradCAM, "channel_weights", nan_first)
    summary = api.run(cfg(imgs, tmp_path, batch_size=6))
    assert summary.failed == 1 and "NaN" in summary.failures[0]["reason"]
    assert not (tmp_path / "im0.gradcam.png").exists()
    assert (tmp_path / "im1.gradcam.png").exists()


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def test_memory_and_hooks_stay_flat_over_many_batches(one_conv):
    from xai_cli.methods.gradcam import GradCAM

    method = GradCAM(one_conv)
    x, t = torch.randn(8, 3, 32, 32), torch.zeros(8, dtype=torch.long)
    for _ in range(50):  # warm up allocator caches
        method.explain(x, t)
    before = _rss_mb()
    for _ in range(1500):  # 12,000 inputs' worth
        method.explain(x, t)
    assert _rss_mb() - before < 30
    assert not any(m._forward_hooks for m in one_conv.modules())
