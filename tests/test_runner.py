"""The runner end to end in-process: batch-size invariance, released hooks, config precedence, timings, warnings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from xai_cli import api, runner
from xai_cli.config import build_config
from xai_cli.errors import ConfigError
from xai_cli.models import registry


@pytest.fixture(scope="module")
def imgs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(1)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (40 + 7 * i, 56, 3), dtype=np.uint8)).save(root / f"im{i}.png")
    return root


def run(imgs: Path, out: Path, **kw):
    cfg = build_config(None, {"model": "resnet18", "weights": "none", "inputs": (imgs,), "out": out, "workers": 0,
                              "save_raw": True, **kw})
    return api.run(cfg)


def test_results_do_not_depend_on_batch_size(imgs, tmp_path):
    run(imgs, tmp_path / "b1", batch_size=1)
    run(imgs, tmp_path / "b4", batch_size=4)
    for i in range(5):
        a = json.loads((tmp_path / "b1" / f"im{i}.json").read_text())
        b = json.loads((tmp_path / "b4" / f"im{i}.json").read_text())
        assert [p["index"] for p in a["prediction"]] == [p["index"] for p in b["prediction"]]
        sa, sb = a["methods"]["gradcam"][0]["stats"], b["methods"]["gradcam"][0]["stats"]
        assert sa["peak_input_px"] == sb["peak_input_px"]
        assert sa["max"] == pytest.approx(sb["max"], rel=1e-4)
        ra = np.load(tmp_path / "b1" / f"im{i}.gradcam.npy")
        rb = np.load(tmp_path / "b4" / f"im{i}.gradcam.npy")
        np.testing.assert_allclose(ra, rb, rtol=1e-4, atol=1e-6)


def test_hooks_released_after_a_run_and_after_an_error(imgs, tmp_path, monkeypatch):
    seen = []
    real = registry.load_model

    def spy(*a, **k):
        loaded = real(*a, **k)
        seen.append(loaded.module)
        return loaded

    monkeypatch.setattr(runner, "load_model", spy)
    run(imgs, tmp_path / "ok")
    model = seen[-1]
    assert not any(m._forward_hooks or m._backward_hooks for m in model.modules())

    def boom(self, *a, **k):
        raise RuntimeError("simulated failure mid-method")

    from xai_cli.methods import gradcam

    monkeypatch.setattr(gradcam.GradCAM, "layer_name", lambda self, x: "layer4")
    monkeypatch.setattr(torch.autograd, "grad", boom)
    summary = run(imgs, tmp_path / "err")
    assert summary.failed == 5 and "simulated failure" in summary.failures[0]["reason"]
    assert not any(m._forward_hooks or m._backward_hooks for m in seen[-1].modules())


def test_config_file_keys_and_cli_precedence(tmp_path):
    cfg_file = tmp_path / "run.toml"
    cfg_file.write_text('model = "resnet18"\nweights = "none"\nbatch_size = 8\nout = "res"\n[params.gradcam]\nlayer = "layer3"\n')
    cfg = build_config(cfg_file, {"batch_size": 2, "params": {"gradcam": {"layer": "layer2"}}, "device": None})
    assert (cfg.model, cfg.batch_size, cfg.out) == ("resnet18", 2, tmp_path / "res")
    assert cfg.params == {"gradcam": {"layer": "layer2"}}
    cfg_file.write_text('modle = "resnet18"\n')
    with pytest.raises(ConfigError) as err:
        build_config(cfg_file, {})
    assert "model" in str(err.value)


def test_shipped_configs_load():
    for path in (Path(__file__).parents[1] / "configs").glob("*.toml"):
        if path.name.startswith("gate-"):
            continue  # audit gates, not run configs (tests/audit runs them)
        cfg = build_config(path, {"inputs": (Path("x"),)})
        assert cfg.model and cfg.methods


def test_predict_seconds_are_measured_and_model_warnings_reported(imgs, tmp_path):
    """The prediction shared with Grad-CAM's forward is timed (was 0 for every image run), and the
    random-weights warning, returned by the model source as data, reaches stderr worded for the CLI
    and run.json."""
    from typer.testing import CliRunner

    from xai_cli.cli import app

    res = CliRunner().invoke(app, ["explain", "--model", "resnet18", "--weights", "none", "--workers", "0",
                                   "--method", "gradcam,saliency", str(imgs), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert "resnet18 has random weights" in res.stderr
    run = json.loads((tmp_path / "o" / "run.json").read_text())
    assert run["timings"]["predict_seconds"] > 0
    assert run["timings"]["gradcam_seconds"] > 0 and run["timings"]["saliency_seconds"] > 0
    assert any("random weights" in w for w in run["warnings"])
