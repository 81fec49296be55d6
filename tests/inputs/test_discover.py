"""Input discovery: recursive, sorted, extension-filtered, symlink-safe, collision-free outputs."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest

from xai_cli.errors import UsageError
from xai_cli.inputs.discover import discover, discover_all
from xai_cli.inputs.read import read_input
from xai_cli.sinks.files.layout import Layout


def touch(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")
    return p


def test_walks_recursively_in_sorted_order_and_filters_extensions(tmp_path):
    for name in ["b.png", "a.JPG", "sub/z.webp", "sub/a.tiff", "notes.txt", "sub/deeper/c.bmp"]:
        touch(tmp_path / name)
    rels = [str(f.rel) for f in discover([tmp_path])]
    assert rels == ["a.JPG", "b.png", "sub/a.tiff", "sub/deeper/c.bmp", "sub/z.webp"]


def test_symlinks_are_followed_loops_end_and_nothing_is_dropped(tmp_path):
    root, outside = tmp_path / "in", tmp_path / "outside"
    touch(root / "a.png")
    touch(outside / "secret.png")
    os.symlink(outside, root / "escape")
    os.symlink(outside / "secret.png", root / "secret.png")
    os.symlink(root, root / "loop")
    os.symlink(root / "a.png", root / "alias.png")
    os.symlink(root / "gone.png", root / "dangling.png")
    found = discover_all([root])
    rels = [str(f.rel) for f in found.files]
    assert rels == ["a.png", "alias.png", "dangling.png", "escape/secret.png", "secret.png"]
    assert [(str(s.rel), "already walked" in s.reason) for s in found.skipped] == [("loop", True)]
    assert "dangling symbolic link" in read_input(found.files[2])[1]


def test_output_folders_are_never_walked(tmp_path):
    root = tmp_path / "in"
    touch(root / "a.png")
    touch(root / "xai-out" / "a.gradcam.png")
    touch(root / "old-run" / "b.gradcam.png")
    (root / "old-run" / ".xai.lock").write_text("")
    found = discover_all([root], exclude=root / "xai-out")
    assert [str(f.rel) for f in found.files] == ["a.png"]
    assert [str(s.rel) for s in found.skipped] == ["old-run"]  # the run's own --out: not noted
    with pytest.raises(UsageError, match="is the output folder"):
        discover_all([root], exclude=root)


def test_several_roots_are_prefixed_and_missing_paths_are_usage_errors(tmp_path):
    touch(tmp_path / "x" / "a.png")
    touch(tmp_path / "y" / "a.png")
    rels = [str(f.rel) for f in discover([tmp_path / "x", tmp_path / "y"])]
    assert rels == ["x/a.png", "y/a.png"]
    with pytest.raises(UsageError):
        discover([tmp_path / "nope"])


def test_same_stem_keeps_extension_and_odd_names_are_sanitised(tmp_path):
    layout = Layout(tmp_path, [PurePosixPath("a.jpg"), PurePosixPath("a.png"), PurePosixPath("b.png"),
                               PurePosixPath("new\nline.png")])
    assert str(layout.record(PurePosixPath("a.jpg"))) == "a.jpg.json"
    assert str(layout.record(PurePosixPath("a.png"))) == "a.png.json"
    assert str(layout.picture(PurePosixPath("b.png"), "gradcam", None)) == "b.gradcam.png"
    assert "\n" not in str(layout.record(PurePosixPath("new\nline.png")))


def test_output_names_never_clash_with_each_other_or_the_run_files(tmp_path):
    names = ["run.png", "a.jpg", "a.png", "a.jpg.png", "new\nline.png", "new_line.png", "run.json/x.png",
             ".xai-tmp-1.png", "b.png", "b.gradcam.png/c.png", "sub/run.png"]
    rels = [PurePosixPath(n) for n in names]
    layout = Layout(tmp_path, rels)
    records = {n: str(layout.record(r)) for n, r in zip(names, rels)}
    assert records["run.png"] == "run.png.json" and records["sub/run.png"] == "sub/run.json"
    assert (records["a.jpg"], records["a.png"], records["a.jpg.png"]) == ("a.jpg.json", "a.png.json", "a.jpg.png.json")
    assert records["new_line.png"] == "new_line.png.json" and records["new\nline.png"] == "new_line.png~2.json"
    assert records["run.json/x.png"] == "run.json~2/x.json"
    assert records["b.png"] == "b.png.json"  # b.gradcam.png would be the folder's name
    assert not records[".xai-tmp-1.png"].startswith(".xai-tmp-")
    every = [str(p) for r in rels for p in (layout.record(r), layout.picture(r, "gradcam", None), layout.raw(r, "ig", None))]
    assert len(every) == len(set(every))
    folders = {str(p) for r in rels for p in layout.record(r).parents}
    assert not folders & set(every) and not {"run.json", "manifest.jsonl", ".xai.lock"} & set(every)
    shuffled = Layout(tmp_path, list(reversed(rels)))  # the same names whatever the order given
    assert all(shuffled.record(r) == layout.record(r) for r in rels)
