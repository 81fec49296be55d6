"""Writes that never leave a half-written file, and never land outside the output folder."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from xai_cli.errors import UsageError

TMP_PREFIX = ".xai-tmp-"


def inside(root: Path, path: Path) -> Path:
    """``path`` resolved, after checking it lies inside ``root`` (guards odd input names)."""
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise UsageError(f"refusing to write outside the output folder: {path}")
    return resolved


def write_bytes(path: Path, data: bytes, root: Path) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``.

    The rename is atomic on POSIX: a reader, or a run killed at any moment, sees either the
    old file, the new file, or nothing — never a prefix. No fsync per file: it cost 6-15 ms
    per input (bench/ profile), more than the whole PNG encode. After a power loss a renamed
    file may come back empty; resume treats an unparsable record or an empty output as
    not done, so the next run redoes that input.
    """
    target = inside(root, path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_json(path: Path, obj: object, root: Path) -> None:
    write_bytes(path, (json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode(), root)


def remove_stale_temps(root: Path) -> int:
    """Delete temporary files a killed run left behind; returns how many."""
    n = 0
    if root.is_dir():
        for p in root.rglob(TMP_PREFIX + "*"):
            p.unlink(missing_ok=True)
            n += 1
    return n
