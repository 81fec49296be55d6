"""Where each input's outputs go: the input tree mirrored under ``--out``.

``photos/cat.jpg`` -> ``photos/cat.json``, ``photos/cat.gradcam.png`` (and ``.gradcam.npy``
with ``--save-raw``): the input's *stem* plus ``.json``, ``.<method>[.<target>].png`` or
``.npy``. Every input gets its own names, never another input's nor the run's own files,
whatever the names. The stem of an input is, in this order of preference:

1. its name without its extension (``cat.jpg`` -> ``cat``);
2. its full name (``a.jpg`` -> ``a.jpg.json``), when several inputs in one folder share a
   stem (``a.jpg`` and ``a.png``), or the stem is taken: by another input's full name
   (``a.jpg.png``'s stem ``a.jpg`` is ``a.jpg``'s), by the run's files at the top of
   ``--out`` (an input ``run.png`` would write ``run.json``: it becomes ``run.png.json``),
   or by a folder that would hold the same name;
3. its full name plus ``~2``, ``~3``, ... when even that clashes (two names that differ only
   in control characters, which are written as ``_``), numbered in sorted input order.

Folder names are made safe the same way (``_`` for control characters, then ``~2``...), and
a name starting with ``.xai-tmp-`` (the prefix of temporary files, deleted at start) gets a
``_`` in front. The mapping depends only on the names of the inputs that share an output
folder, so it is the same on every rerun with the same inputs (resume finds its records);
adding an input changes a sibling's names only if the new one clashes with it.
Methods have no dots and target tags (``top2-tabby``) none either, so pictures of different
stems never clash, and ``.png``/``.npy`` never clash with ``.json`` records.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path, PurePosixPath

_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
TMP_PREFIX = ".xai-tmp-"  # atomic.TMP_PREFIX (not imported: layout stays free of I/O)
RESERVED_STEMS = frozenset({"run"})  # its record would be run.json, the run's summary
RESERVED_NAMES = frozenset({"run.json", "manifest.jsonl", ".xai.lock"})
# A shard's files at the top of --out (sinks/files/merge.py): run part, manifest part, lock.
_SHARD_PART = re.compile(r"run\.\d+-of-\d+\.json|manifest\.\d+-of-\d+\.jsonl|\.xai\.lock\.\d+-of-\d+")
_SHARD_STEM = re.compile(r"run\.\d+-of-\d+")  # its record would be a shard's run part
_OUTPUT_SUFFIXES = (".json", ".png", ".npy")


def _safe(part: str) -> str:
    # Newlines and control characters are legal in POSIX names but break logs and manifests.
    part = _UNSAFE.sub("_", part)
    return "_" + part if part.startswith(TMP_PREFIX) else part


def _stem(name: str) -> str:
    return PurePosixPath(name).stem if PurePosixPath(name).suffix else name


def _numbered(base: str, taken: set[str], blocked) -> str:
    k = 2
    while f"{base}~{k}" in taken or blocked(f"{base}~{k}"):
        k += 1
    return f"{base}~{k}"


def assign_names(names: list[str], blocked=lambda name: False, *, originals: list[str] | None = None,
                 strip: bool = True) -> dict[int, str]:
    """Distinct output names for ``names`` (one folder's entries), by the rules above.

    Args:
        names: The entries' names (already made safe: may repeat).
        blocked: Tells a name that must not be used (reserved, or taken by a folder).
        originals: The names before they were made safe: on a tie, an unchanged name keeps
            the plain form and the changed ones are numbered.
        strip: Prefer the name without its extension (files); folders keep theirs.

    Returns:
        ``{position in names: output name}``.
    """
    originals = originals or names
    order = sorted(range(len(names)), key=lambda i: (names[i], names[i] != originals[i], originals[i], i))
    stem = _stem if strip else (lambda n: n)
    stems = Counter(stem(n) for n in names)
    want = {i: stem(names[i]) if stems[stem(names[i])] == 1 else names[i] for i in order}
    while True:  # fall back to the full name on any clash; each pass only lengthens names
        counts = Counter(want.values())
        moved = False
        for i in order:
            if (counts[want[i]] > 1 or blocked(want[i])) and want[i] != names[i]:
                want[i], moved = names[i], True
        if not moved:
            break
    result: dict[int, str] = {}
    taken: set[str] = set()
    counts = Counter(want.values())
    for i in order:  # what still clashes (equal safe names, blocked full names): number, in sorted order
        name = want[i]
        if name in taken or blocked(name):
            name = _numbered(name, taken | set(want.values()), blocked)
        taken.add(name)
        result[i] = name
    return result


class Layout:
    """Output paths for a list of input relative paths."""

    def __init__(self, root: Path, rels: list[PurePosixPath]) -> None:
        self.root = root
        folders = self._folders(rels)
        by_folder: dict[PurePosixPath, list[PurePosixPath]] = defaultdict(list)
        for r in dict.fromkeys(rels):
            by_folder[folders[r.parent]].append(r)
        subfolders: dict[PurePosixPath, set[str]] = defaultdict(set)
        for out in folders.values():
            for parent, child in zip([out, *out.parents][1:], [out, *out.parents]):
                if child != PurePosixPath("."):
                    subfolders[parent].add(child.name)
        self._stems: dict[PurePosixPath, PurePosixPath] = {}
        for out, members in by_folder.items():
            names = assign_names([_safe(r.name) for r in members], _blocker(subfolders[out], top=out == PurePosixPath(".")),
                                 originals=[r.name for r in members])
            for i, r in enumerate(members):
                self._stems[r] = out / names[i]

    @staticmethod
    def _folders(rels: list[PurePosixPath]) -> dict[PurePosixPath, PurePosixPath]:
        """Input folder -> output folder, each level made safe and distinct among its siblings."""
        out: dict[PurePosixPath, PurePosixPath] = {PurePosixPath("."): PurePosixPath(".")}
        pending = sorted({p for r in rels for p in r.parents} - {PurePosixPath(".")}, key=lambda p: (len(p.parts), str(p)))
        children: dict[PurePosixPath, list[PurePosixPath]] = defaultdict(list)
        for p in pending:
            children[p.parent].append(p)
        for parent in [PurePosixPath("."), *pending]:
            kids = children.get(parent, [])
            if not kids:
                continue
            top = parent == PurePosixPath(".")
            names = assign_names([_safe(k.name) for k in kids], lambda n, top=top: top and _reserved(n),
                                 originals=[k.name for k in kids], strip=False)
            for i, k in enumerate(kids):
                out[k] = out[parent] / names[i]
        return out

    def stem(self, rel: PurePosixPath) -> PurePosixPath:
        return self._stems[rel]

    def record(self, rel: PurePosixPath) -> PurePosixPath:
        return self.stem(rel).with_name(self.stem(rel).name + ".json")

    def picture(self, rel: PurePosixPath, method: str, target_tag: str | None) -> PurePosixPath:
        tag = f".{target_tag}" if target_tag else ""
        return self.stem(rel).with_name(f"{self.stem(rel).name}.{method}{tag}.png")

    def raw(self, rel: PurePosixPath, method: str, target_tag: str | None) -> PurePosixPath:
        return self.picture(rel, method, target_tag).with_suffix(".npy")

    def abs(self, rel_out: PurePosixPath) -> Path:
        return self.root / Path(rel_out)


def _reserved(name: str) -> bool:
    return name in RESERVED_NAMES or bool(_SHARD_PART.fullmatch(name))


def _blocker(folder_names: set[str], top: bool):
    """A stem is blocked when one of its output names would be a folder's name or a run file."""

    def blocked(stem: str) -> bool:
        if top and (stem in RESERVED_STEMS or _SHARD_STEM.fullmatch(stem)):
            return True
        prefix = stem + "."
        return any(f.startswith(prefix) and f.endswith(_OUTPUT_SUFFIXES) for f in folder_names)

    return blocked


def target_tag(rank: int, index: int, label: str | None, ranks: int) -> str | None:
    """File-name tag of one target when ``ranks`` > 1 are explained per input: ``top2-tabby``,
    the rank zero-padded to the width of the largest (``top02`` of 10), so names sort by rank."""
    if ranks <= 1:
        return None
    name = re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-")[:32] if label else str(index)
    return f"top{rank:0{len(str(ranks))}d}-{name or index}"
