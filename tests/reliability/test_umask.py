"""Files honour the umask, like any Unix tool (they were 0600 whatever it was)."""

from __future__ import annotations

import stat

import pytest

from tests.reliability.cli import explain_cmd, images, run


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_every_file_of_a_run_honours_the_umask(tmp_path, umask, mode):
    src = images(tmp_path / "in", ["a.png", "sub/b.png"])
    out = tmp_path / "out"
    r = run(explain_cmd(src, out, "--save-raw"), umask=umask)
    assert r.returncode == 0, r.stderr
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"a.json", "a.gradcam.png", "a.gradcam.npy", "run.json", "manifest.jsonl", ".xai.lock"}
    assert {p.relative_to(out).as_posix(): oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == \
        {p.relative_to(out).as_posix(): oct(mode) for p in files}
    assert stat.S_IMODE((out / "sub").stat().st_mode) == 0o777 & ~umask
