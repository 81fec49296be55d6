"""``xai compare`` through the CLI: exit codes, files, and measures checked against scipy / by hand.

The shortcut demo runs as a subprocess (a CI job's view); the rest through Typer's runner in
this process (one torch import: seconds each on a 2-core CPU with the embedded models).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import spearmanr

from tests.reliability.cli import env

ROOT = Path(__file__).resolve().parents[2]
MARKED = ROOT / "sample_images" / "marked"
MASKS = ROOT / "sample_images" / "marked_masks"
GATE = ROOT / "configs" / "gate-compare-demo.toml"


def xai(*args, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    e = env()
    e.update(extra_env or {})
    return subprocess.run([sys.executable, "-m", "xai_cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=e, cwd=ROOT)


class _Result:
    def __init__(self, r) -> None:
        self.returncode, self.stderr = r.exit_code, r.stderr


def cli(*args) -> _Result:
    """``xai ARGS`` in this process (Typer's runner): exit code and stderr."""
    from typer.testing import CliRunner

    from xai_cli.cli import app

    return _Result(CliRunner().invoke(app, [str(a) for a in args]))


def doc(out: Path) -> dict:
    return json.loads((out / "compare.json").read_text())


def manifest(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]


def test_identical_models_agree_and_pass_the_gate(tmp_path):
    out = tmp_path / "same"
    r = cli("compare", "--model", "demo-digits", "--model-b", "demo-digits", "--method", "gradcam", MARKED,
            "--region", MASKS, "--gate", GATE, "--out", out, "--workers", "0")
    assert r.returncode == 0, r.stderr
    d = doc(out)
    assert len(d["inputs"]) == 10 and all(x["status"] == "ok" for x in d["inputs"])
    for x in d["inputs"]:
        assert x["spearman"] == pytest.approx(1.0) and x["iou"] == pytest.approx(1.0)
        assert x["region_share_a"] == pytest.approx(x["region_share_b"]) and not x["flipped"]
        assert x["a"] == x["b"]
        assert (out / x["picture"]).is_file()
    assert d["aggregates"]["spearman"]["mean"] == pytest.approx(1.0)
    assert d["aggregates"]["flip_rate"]["mean"] == 0.0
    assert d["gate"]["passed"] is True and all(c["passed"] for c in d["checks"])
    assert [c["name"] for c in d["checks"]] == ["region_share_increase.max", "spearman.min", "flip_rate.max", "iou.min"]
    suite = ET.parse(out / "junit.xml").getroot()
    assert suite.get("tests") == "4" and suite.get("failures") == "0"
    lines = manifest(out)
    assert [x["input"] for x in lines] == [x["input"] for x in d["inputs"]]
    assert all(x["status"] == "ok" and x["outputs"] == [x_["picture"] for x_ in d["inputs"] if x_["input"] == x["input"]]
               for x in lines)


def _gradcam(model_name: str, images: np.ndarray):
    from xai_cli.methods.registry import get_method
    from xai_cli.models.demo import DEMO_MEAN, DEMO_STD
    from xai_cli.models.registry import ModelRequest, load_model

    model = load_model(ModelRequest(model_name), torch.device("cpu"))
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    x = (x - torch.tensor(DEMO_MEAN).view(1, 3, 1, 1)) / torch.tensor(DEMO_STD).view(1, 3, 1, 1)
    method = get_method("gradcam")(model.module)
    out = method.explain_predicted(x, lambda p: p.argmax(1, keepdim=True))
    return out.explanations[0].maps.numpy().astype(np.float64), out.targets[:, 0].numpy()


def _top(m: np.ndarray) -> np.ndarray:
    """Hand-written top 10 %: the k = ceil(0.1 P) largest |values| and their ties, none of value 0."""
    mag = np.abs(m).ravel()
    k = int(np.ceil(0.1 * mag.size))
    cut = np.sort(mag)[::-1][k - 1]
    return (mag >= cut) & (mag > 0)


def test_shortcut_model_moves_into_the_corner_flips_and_fails_the_gate(tmp_path):
    out, step = tmp_path / "shortcut", tmp_path / "step-summary.md"
    step.write_text("earlier step\n")
    r = xai("compare", "--model", "demo-digits", "--model-b", "demo-digits-shortcut", "--method", "gradcam", MARKED,
            "--region", MASKS, "--gate", GATE, "--out", out, "--batch-size", "4", extra_env={"GITHUB_STEP_SUMMARY": str(step)})
    assert r.returncode == 4, r.stderr
    d = doc(out)
    rows = {x["input"]: x for x in d["inputs"]}
    assert len(rows) == 10
    # B's attribution moves into the mark's corner on (nearly) every input, A's stays out of it.
    assert sum(x["region_share_b"] > x["region_share_a"] + 0.2 for x in rows.values()) >= 9
    assert d["aggregates"]["region_share_increase"]["mean"] > 0.3
    assert d["aggregates"]["region_share_a"]["mean"] < 0.05
    # The shortcut model follows the mark on the digits where it names another class (4-9 -> label % 4).
    flipped = {name for name, x in rows.items() if x["flipped"]}
    for name in flipped:
        label = int(name.split("_label_")[1][0])
        assert rows[name]["b"]["index"] == label % 4 and rows[name]["a"]["index"] == label
    assert len(flipped) >= 5
    assert d["aggregates"]["flip_rate"]["mean"] == pytest.approx(len(flipped) / 10)
    assert d["aggregates"]["flip_rate"]["n"] == 10
    checks = {c["name"]: c for c in d["checks"]}
    assert checks["region_share_increase.max"]["passed"] is False and checks["region_share_increase.max"]["severity"] == "fail"
    assert checks["region_share_increase.max"]["value"] == pytest.approx(d["aggregates"]["region_share_increase"]["ci"][1])
    assert checks["iou.min"]["severity"] == "warn"
    assert d["gate"]["passed"] is False
    assert d["worst"]["region_share_increase"][0]["value"] == max(x["region_share_b"] - x["region_share_a"] for x in rows.values())
    suite = ET.parse(out / "junit.xml").getroot()
    assert int(suite.get("failures")) >= 1
    summary = (out / "summary.md").read_text()
    assert "Gate: FAILED" in summary and "demo-digits-shortcut" in summary
    assert step.read_text() == "earlier step\n" + summary + "\n"  # appended, not overwritten

    # Every measure against scipy / a hand computation on maps computed here, outside the pipeline.
    names = sorted(rows)
    images = np.stack([np.asarray(Image.open(MARKED / n).convert("RGB")) for n in names])
    regions = np.stack([np.asarray(Image.open(MASKS / n)) > 0 for n in names])
    maps_a, pred_a = _gradcam("demo-digits", images)
    maps_b, pred_b = _gradcam("demo-digits-shortcut", images)
    for i, name in enumerate(names):
        x = rows[name]
        assert x["spearman"] == pytest.approx(spearmanr(np.abs(maps_a[i]).ravel(), np.abs(maps_b[i]).ravel())[0], abs=2e-3)
        ta, tb = _top(maps_a[i]), _top(maps_b[i])
        assert x["iou"] == pytest.approx((ta & tb).sum() / (ta | tb).sum(), abs=0.02)
        for m, key in ((maps_a[i], "region_share_a"), (maps_b[i], "region_share_b")):
            pos = np.clip(m, 0, None)
            assert x[key] == pytest.approx(pos[regions[i]].sum() / pos.sum(), abs=1e-4)
        assert x["flipped"] == bool(pred_a[i] != pred_b[i])
    means = {k: np.mean([rows[n][k] for n in names]) for k in ("spearman", "iou")}
    assert d["aggregates"]["spearman"]["mean"] == pytest.approx(means["spearman"])
    assert d["aggregates"]["iou"]["mean"] == pytest.approx(means["iou"])

    # The report browses the comparison.
    rep = cli("report", out, "--workers", "0")
    assert rep.returncode == 0, rep.stderr
    assert (out / "report" / "index.html").is_file()


def _noisy_demo_text(folder: Path, scale: float) -> Path:
    """demo-text's save_pretrained folder with Gaussian noise (``scale`` x each tensor's std) on its weights."""
    from safetensors.torch import load_file, save_file

    from xai_cli.models.huggingface import DEMO_TEXT_DIR

    shutil.copytree(DEMO_TEXT_DIR, folder)
    g = torch.Generator().manual_seed(0)
    state = load_file(folder / "model.safetensors")
    noisy = {k: (v + scale * v.float().std() * torch.randn(v.shape, generator=g)).to(v.dtype).contiguous()
             if v.is_floating_point() and v.numel() > 1 else v for k, v in state.items()}
    save_file(noisy, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


def test_text_models_compared_token_by_token(tmp_path):
    texts = tmp_path / "texts"
    texts.mkdir()
    for name in ("hotel.txt", "camera.txt", "kettle.txt"):
        shutil.copy(ROOT / "sample_texts" / name, texts / name)
    noisy = _noisy_demo_text(tmp_path / "demo_text_noisy", 0.3)
    out = tmp_path / "cmp"
    r = cli("compare", "--model", "demo-text", "--model-b", noisy, "--method", "saliency", texts, "--out", out,
            "--workers", "0")
    assert r.returncode == 0, r.stderr
    d = doc(out)
    assert d["b"]["model"] == "demo_text_noisy" and d["a"]["weights"] != d["b"]["weights"]
    rows = {x["input"]: x for x in d["inputs"]}
    assert set(rows) == {"hotel.txt", "camera.txt", "kettle.txt"}
    assert all(x["unit"] == "token" and x["region_share_a"] is None for x in rows.values())
    assert any(x["spearman"] < 0.999 for x in rows.values())  # the noise changed the maps
    assert all((out / x["picture"]).is_file() for x in rows.values())
    assert d["aggregates"]["region_share_increase"]["n"] == 0

    # Against the token scores `xai explain` writes for each model, with scipy and by hand.
    for model, tag in (("demo-text", "a"), (str(noisy), "b")):
        e = cli("explain", "--model", model, "--method", "saliency", texts, "--out", tmp_path / tag, "--workers", "0")
        assert e.returncode == 0, e.stderr
    for name, x in rows.items():
        stem = Path(name).stem
        rec = {t: json.loads((tmp_path / t / f"{stem}.json").read_text()) for t in ("a", "b")}
        sa, sb = (np.asarray(rec[t]["methods"]["saliency"][0]["token_scores"]) for t in ("a", "b"))
        assert x["spearman"] == pytest.approx(spearmanr(np.abs(sa), np.abs(sb))[0], abs=1e-6)
        ta, tb = _top(sa), _top(sb)
        assert x["iou"] == pytest.approx((ta & tb).sum() / (ta | tb).sum())
        assert x["a"]["index"] == rec["a"]["prediction"][0]["index"]
        assert x["b"]["index"] == rec["b"]["prediction"][0]["index"]
        assert x["flipped"] == (x["a"]["index"] != x["b"]["index"])


def test_exit_codes_for_usage_model_load_and_failed_inputs(tmp_path):
    base = ("compare", "--model", "demo-digits", "--workers", "0")
    r = cli(*base, "--model-b", "demo-digits-shortcut", "--method", "gradcam,ig", MARKED, "--out", tmp_path / "o1")
    assert r.returncode == 2 and "--method" in r.stderr
    r = cli(*base, MARKED, "--out", tmp_path / "o2")
    assert r.returncode == 2 and "--model-b" in r.stderr  # nothing to compare with
    bad_gate = tmp_path / "gate.toml"
    bad_gate.write_text("[spearmann]\nmin = 0.5\n")
    r = cli(*base, "--model-b", "demo-digits-shortcut", MARKED, "--gate", bad_gate, "--out", tmp_path / "o3")
    assert r.returncode == 2 and "spearman" in r.stderr and not (tmp_path / "o3").exists()
    corrupt = tmp_path / "broken.safetensors"
    corrupt.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    r = cli(*base, "--model-b", "demo-digits-shortcut", "--weights-b", corrupt, MARKED, "--out", tmp_path / "o4")
    assert r.returncode == 3, r.stderr
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    shutil.copy(MARKED / "digit_00_label_0.png", inputs / "good.png")
    (inputs / "bad.png").write_bytes(b"not a png")
    out = tmp_path / "o5"
    r = cli(*base, "--model-b", "demo-digits-shortcut", inputs, "--out", out)
    assert r.returncode == 1, r.stderr
    lines = {x["input"]: x for x in manifest(out)}
    assert lines["bad.png"]["status"] == "error" and lines["bad.png"]["reason"]
    assert lines["good.png"]["status"] == "ok"
    assert doc(out)["counts"] == {"total": 2, "ok": 1, "failed": 1}
