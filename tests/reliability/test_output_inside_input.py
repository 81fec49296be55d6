"""An output folder inside the input folder is never read back as input."""

from __future__ import annotations

import json
import os

from tests.reliability.cli import explain_cmd, images, manifest, run


def test_three_runs_into_a_nested_out_explain_the_same_inputs(tmp_path):
    nest = images(tmp_path / "nest", ["a.png", "b.png"])
    for _ in range(3):
        r = run(explain_cmd(nest, nest / "xai-out"))
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["total"] == 2
    assert sorted(m["input"] for m in manifest(nest / "xai-out")) == ["a.png", "b.png"]
    assert not (nest / "xai-out" / "xai-out").exists()


def test_the_default_out_in_the_current_folder(tmp_path):
    images(tmp_path, ["a.png", "b.png"])
    cmd = explain_cmd(".", "xai-out")
    cmd = cmd[: cmd.index("--out")]  # the default --out ./xai-out
    for _ in range(2):
        r = run(cmd, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["total"] == 2
    assert not (tmp_path / "xai-out" / "xai-out").exists()


def test_another_runs_output_folder_is_not_read_either(tmp_path):
    src = images(tmp_path / "in", ["a.png"])
    assert run(explain_cmd(src, src / "old")).returncode == 0
    os.rename(src / "old", src / "renamed")  # no longer this run's --out, still an xai run
    r = run(explain_cmd(src, tmp_path / "out"))
    assert r.returncode == 0 and json.loads(r.stdout)["total"] == 1, r.stderr
