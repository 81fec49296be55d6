"""Input discovery: recursive, sorted, extension-filtered, symlink-safe, collision-free outputs."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest

from xai_cli.errors import UsageError
from xai_cli.inputs.discover import discover
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


def test_symlinks_never_lead_outside_and_loops_end(tmp_path):
    root, outside = tmp_path / "in", tmp_path / "outside"
    touch(root / "a.png")
    touch(outside / "secret.png")
    os.symlink(outside, root / "escape")
    os.symlink(outside / "secret.png", root / "secret.png")
    os.symlink(root, root / "loop")
    os.symlink(root / "a.png", root / "alias.png")  # inside: followed
    rels = sorted(str(f.rel) for f in discover([root]))
    assert "escape/secret.png" not in rels and "secret.png" not in rels
    assert "a.png" in rels and "alias.png" in rels
    assert len(rels) == len(set(rels)) and len(rels) <= 3


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
