"""The output folder as a cron job meets it (issue 10, items 5 and 7): an unusable --out is one
line and exit 2 before the model loads; a rerun with other settings never orphans a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reliability.cli import env, images, manifest, run, xai_cmd

DEMO = ["--model", "demo-digits", "--workers", "0", "--format", "json"]


@pytest.mark.parametrize("kind", ["file", "proc", "sys"])
def test_an_unusable_out_is_one_line_and_exit_2_before_the_model_loads(tmp_path, kind):
    src = images(tmp_path / "in", ["a.png"])
    if kind == "file":
        out = tmp_path / "out"
        out.write_text("I am a file")
    else:  # places nobody can create a folder in, root included (a read-only folder does not stop root)
        out = Path(f"/{kind}/xai-out")
    r = run(xai_cmd("explain", *DEMO, "--model", "resnet18", "--weights", "none", str(src), "--out", str(out)))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if "error: " in line]  # after the log timestamp
    assert len(errors) == 1 and ("--out" in errors[0] or "output folder" in errors[0]), r.stderr
    assert "random weights" not in r.stderr  # refused before the (slow) model load


def test_a_rerun_with_other_methods_leaves_no_orphan_file(tmp_path):
    src = images(tmp_path / "in", ["a.png", "b.png"])
    out = tmp_path / "out"
    first = run(xai_cmd("explain", *DEMO, "--method", "gradcam,saliency", "--save-raw", str(src), "--out", str(out)))
    assert first.returncode == 0, first.stderr
    assert (out / "a.saliency.png").exists() and (out / "a.gradcam.npy").exists()
    second = run(xai_cmd("explain", *DEMO, "--method", "ig", "--param", "ig.steps=8", str(src), "--out", str(out)))
    assert second.returncode == 0, second.stderr
    listed = {o for m in manifest(out) for o in m["outputs"]}
    for rec in ("a.json", "b.json"):
        record = json.loads((out / rec).read_text())
        assert list(record["methods"]) == ["ig"]
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.suffix in (".png", ".npy")}
    assert on_disk == listed == {"a.ig.png", "b.ig.png"}  # the earlier run's files are gone, none orphaned
    removed = {r for m in manifest(out) for r in m.get("removed", [])}
    assert removed == {"a.gradcam.png", "a.saliency.png", "a.gradcam.npy", "a.saliency.npy",
                       "b.gradcam.png", "b.saliency.png", "b.gradcam.npy", "b.saliency.npy"}
