"""Output names never collide with each other or with the run's own files, and stay the same
on a rerun (which resumes every input)."""

from __future__ import annotations

import json

from tests.reliability.cli import explain_cmd, images, manifest, run

NAMES = ["run.png", "a.jpg", "a.png", "a.jpg.png", "manifest.png", "b.png", "run.json/c.png"]


def test_every_input_gets_its_own_outputs_and_reruns_resume_them_all(tmp_path):
    src = images(tmp_path / "in", NAMES)
    out = tmp_path / "out"
    first = run(explain_cmd(src, out))
    assert first.returncode == 0, first.stderr
    lines = manifest(out)
    assert sorted(m["input"] for m in lines) == sorted(NAMES)
    records = [m["record"] for m in lines]
    assert len(set(records)) == len(NAMES) and "run.json" not in records
    outputs = [o for m in lines for o in m["outputs"]]
    assert len(set(outputs)) == len(outputs) == len(NAMES)
    for m in lines:  # each record on disk is its own input's
        assert json.loads((out / m["record"]).read_text())["input"]["rel"] == m["input"]
    assert json.loads((out / "run.json").read_text())["counts"]["total"] == len(NAMES)  # not overwritten by a record
    again = run(explain_cmd(src, out))
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["skipped"] == len(NAMES)  # same names: nothing redone
    assert [m["record"] for m in manifest(out)] == records
