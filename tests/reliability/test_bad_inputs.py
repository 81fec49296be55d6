"""Bad inputs never stop the run: each gets a manifest line and a reason; good ones get outputs."""

from __future__ import annotations

import json
import subprocess
import sys

from PIL import Image

from tests.reliability.corpus import BAD, GOOD, make_corpus


def test_corpus_through_the_cli(tmp_path):
    expect = make_corpus(tmp_path / "in")
    out = tmp_path / "out"
    p = subprocess.run(
        [sys.executable, "-m", "xai_cli", "explain", "--model", "resnet18", "--weights", "none", "--workers", "2",
         "--batch-size", "4", "--max-pixels", "4000000", "--format", "json", str(tmp_path / "in"), "--out", str(out)],
        capture_output=True, text=True, timeout=600)
    assert p.returncode == 1, p.stderr  # some inputs failed
    summary = json.loads(p.stdout)
    assert summary["failed"] == sum(v == BAD for v in expect.values())
    assert summary["ok"] == sum(v == GOOD for v in expect.values())
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    lines = [m for m in lines if m["status"] != "skipped"]  # folders not walked (sub/loop): test_links_in_inputs
    assert sorted(m["input"] for m in lines) == sorted(expect)  # one line per input, nothing else
    for m in lines:
        record = json.loads((out / m["record"]).read_text(encoding="utf-8"))
        assert record["status"] == ("ok" if expect[m["input"]] == GOOD else "error"), m
        if expect[m["input"]] == BAD:
            assert "\n" not in m["reason"] and len(m["reason"]) < 300 and m["reason"] == record["reason"]
        else:
            for o in m["outputs"]:
                with Image.open(out / o) as im:
                    im.verify()
    by_input = {m["input"]: json.loads((out / m["record"]).read_text()) for m in lines}
    assert by_input["exif_rotated.jpg"]["input"]["size"] == [40, 80]  # upright: w, h swapped
    assert any("first frame" in n for n in by_input["animated.gif"]["input"]["notes"])
    assert any("16" in n for n in by_input["sixteen.png"]["input"]["notes"])
    assert "max-pixels" in by_input["huge.png"]["reason"]
    assert "dangling symbolic link" in by_input["dangling.png"]["reason"]
    assert not list(out.rglob(".xai-tmp-*"))
    assert all(out.resolve() in f.resolve().parents for f in out.rglob("*"))
