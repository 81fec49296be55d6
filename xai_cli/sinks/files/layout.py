"""Where each input's outputs go: the input tree mirrored under ``--out``.

``photos/cat.jpg`` -> ``photos/cat.json``, ``photos/cat.gradcam.png`` (and ``.gradcam.npy``
with ``--save-raw``). Two inputs in one folder with the same stem (``a.jpg``, ``a.png``) keep
their extension in the stem (``a.jpg.json``), so neither overwrites the other.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path, PurePosixPath

_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


def _safe(part: str) -> str:
    # Newlines and control characters are legal in POSIX names but break logs and manifests.
    return _UNSAFE.sub("_", part)


class Layout:
    """Output paths for a list of input relative paths."""

    def __init__(self, root: Path, rels: list[PurePosixPath]) -> None:
        self.root = root
        counts = Counter((r.parent, r.stem) for r in rels)
        self._stems = {r: r.parent / (r.name if counts[(r.parent, r.stem)] > 1 else r.stem) for r in rels}

    def stem(self, rel: PurePosixPath) -> PurePosixPath:
        return PurePosixPath(*[_safe(p) for p in self._stems[rel].parts])

    def record(self, rel: PurePosixPath) -> PurePosixPath:
        return self.stem(rel).with_name(self.stem(rel).name + ".json")

    def picture(self, rel: PurePosixPath, method: str, target_tag: str | None) -> PurePosixPath:
        tag = f".{target_tag}" if target_tag else ""
        return self.stem(rel).with_name(f"{self.stem(rel).name}.{method}{tag}.png")

    def raw(self, rel: PurePosixPath, method: str, target_tag: str | None) -> PurePosixPath:
        return self.picture(rel, method, target_tag).with_suffix(".npy")

    def abs(self, rel_out: PurePosixPath) -> Path:
        return self.root / Path(rel_out)


def target_tag(rank: int, index: int, label: str | None, several: bool) -> str | None:
    """File-name tag of one target when several are explained per input: ``top2-tabby``."""
    if not several:
        return None
    name = re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-")[:32] if label else str(index)
    return f"top{rank}-{name or index}"
