"""Input links are followed wherever they point; a dangling link or a loop is recorded with its
reason, never dropped: every file the walk finds appears in the manifest."""

from __future__ import annotations

import json
import os

import pytest

from tests.reliability.cli import explain_cmd, images, manifest, run


@pytest.fixture
def linked(tmp_path):
    dataset = images(tmp_path / "dataset", ["a.png", "b.png", "deep/c.png"])
    links = tmp_path / "links"
    links.mkdir()
    os.symlink(dataset / "a.png", links / "a.png")
    os.symlink(dataset / "b.png", links / "b.png")
    os.symlink(dataset / "deep", links / "deep")
    os.symlink(tmp_path / "gone.png", links / "dangling.png")
    os.symlink(links / "loop2.png", links / "loop1.png")
    os.symlink(links / "loop1.png", links / "loop2.png")
    return links


def test_a_folder_of_links_into_a_dataset_is_explained_and_bad_links_recorded(linked, tmp_path):
    out = tmp_path / "out"
    r = run(explain_cmd(linked, out))
    assert r.returncode == 1, r.stderr  # the bad links failed, with their reasons
    summary = json.loads(r.stdout)
    assert (summary["ok"], summary["failed"]) == (3, 3)
    lines = {m["input"]: m for m in manifest(out)}
    assert sorted(lines) == ["a.png", "b.png", "dangling.png", "deep/c.png", "loop1.png", "loop2.png"]
    assert "dangling symbolic link" in lines["dangling.png"]["reason"]
    assert "loop" in lines["loop1.png"]["reason"] and "loop" in lines["loop2.png"]["reason"]


def test_a_folder_not_walked_is_recorded_in_the_manifest(linked, tmp_path):
    os.symlink(linked, linked / "again")  # a loop back to the input folder
    out = tmp_path / "out"
    run(explain_cmd(linked, out))
    lines = {m["input"]: m for m in manifest(out)}
    assert lines["again"]["status"] == "skipped" and "already walked" in lines["again"]["reason"]
