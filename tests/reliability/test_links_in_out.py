"""No write lands outside --out: links planted inside it (the manifest, the lock, a subfolder)
are refused before anything is written, and the files they point to are untouched."""

from __future__ import annotations

import os

import pytest

from tests.reliability.cli import explain_cmd, images, run
from xai_cli.errors import UsageError
from xai_cli.sinks.files import atomic


@pytest.mark.parametrize("name", ["manifest.jsonl", ".xai.lock", "run.json"])
def test_a_linked_run_file_is_refused_and_its_target_untouched(tmp_path, name):
    src = images(tmp_path / "in", ["a.png", "b.png"])
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me\n")
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(victim, out / name)
    r = run(explain_cmd(src, out))
    assert r.returncode == 2 and "link" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert victim.read_text() == "keep me\n"
    assert sorted(p.name for p in out.iterdir()) == [name]  # nothing written


def test_a_linked_subfolder_is_refused_before_anything_is_written(tmp_path):
    src = images(tmp_path / "in", ["a.png", "b.png", "sub/c.png", "z.png"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(elsewhere, out / "sub")
    r = run(explain_cmd(src, out))
    assert r.returncode == 2 and "link" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert list(elsewhere.iterdir()) == []
    assert sorted(p.name for p in out.iterdir()) == ["sub"]  # not halfway: no record, no manifest, no lock


def test_writes_never_follow_a_link_made_after_the_check(tmp_path):
    out = tmp_path / "out"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out.mkdir()
    os.symlink(elsewhere, out / "sub")  # as if planted mid-run
    with pytest.raises(UsageError, match="link"):
        atomic.write_bytes(out / "sub" / "x.json", b"{}", out)
    os.symlink(tmp_path / "victim", out / "manifest.jsonl")
    with pytest.raises(UsageError, match="link"):
        atomic.open_manifest(out)
    assert list(elsewhere.iterdir()) == [] and not (tmp_path / "victim").exists()
    (tmp_path / "target.json").write_text("old")
    os.symlink(tmp_path / "target.json", out / "r.json")
    atomic.write_bytes(out / "r.json", b"new", out)  # the rename replaces the link, never its target
    assert (tmp_path / "target.json").read_text() == "old" and not (out / "r.json").is_symlink()
    with pytest.raises(UsageError):
        atomic.write_bytes(out / ".." / "escape.json", b"{}", out)
