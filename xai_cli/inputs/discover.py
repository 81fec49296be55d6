"""Finding inputs: folders walked recursively in sorted order, files given directly.

Symbolic links are followed wherever they point (a folder of links into a dataset is a common
layout; reading is not the risk, writing is, and writes never follow links: sinks/files/atomic.py).
Each folder is visited once, so link loops end. Nothing the walk finds is dropped silently:
an input-like name that is a dangling link or a loop of links stays an input (reading it
fails with that reason, so it is recorded as failed), and a folder that is not walked (a
link back to a folder already walked, an unreadable folder, an xai output folder) is
returned as a ``SkippedPath`` for the manifest.

The output folder, and any folder that holds an xai run (``.xai.lock``, or ``manifest.jsonl``
with ``run.json``), is never walked as input: outputs must not be explained as inputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from xai_cli.errors import UsageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"})
TEXT_EXTENSIONS = frozenset({".txt", ".jsonl"})
RUN_MARKERS = (".xai.lock",)  # any one marks an xai output folder
RUN_MARKER_PAIRS = (("manifest.jsonl", "run.json"),)  # or both of these (a run from before the lock)


@dataclass(frozen=True)
class SkippedPath:
    """Something the walk found and did not take as input, with the reason (one line).

    Attributes:
        rel: Its path relative to the input root, like ``InputFile.rel``.
        path: Where it is.
        reason: Why it was not walked or read.
    """

    rel: PurePosixPath
    path: Path
    reason: str

    def manifest_line(self) -> dict:
        """Its line in manifest.jsonl: status ``skipped``, counted neither ok nor failed."""
        return {"input": str(self.rel), "status": "skipped", "reason": self.reason, "record": None, "outputs": []}


@dataclass
class Discovery:
    """What the walk found: the inputs, in order, and what it did not take (``SkippedPath``)."""

    files: list
    skipped: list[SkippedPath]


@dataclass(frozen=True)
class InputFile:
    """One input file.

    Attributes:
        path: Where to read it.
        rel: Its path relative to the input root, POSIX style; outputs mirror it under --out.
        span: For one document of a multi-document file, its byte range.
        key: For one document of a multi-document file, its id.
    """

    path: Path
    rel: PurePosixPath
    span: tuple[int, int] | None = None  # byte range of one input inside the file (a JSONL line)
    key: str | None = None  # that input's id within the file


def discover(paths: list[Path], extensions: frozenset[str] = IMAGE_EXTENSIONS,
             exclude: Path | None = None) -> list[InputFile]:
    """All input files under ``paths``, in a deterministic order (``discover_all(...).files``)."""
    return discover_all(paths, extensions, exclude).files


def discover_all(paths: list[Path], extensions: frozenset[str] = IMAGE_EXTENSIONS,
                 exclude: Path | None = None) -> Discovery:
    """All input files under ``paths``, in a deterministic order, and what the walk skipped.

    One folder: relative paths are relative to it. Several arguments: each one's files are
    placed under its own name, so outputs from different roots cannot collide.

    Args:
        paths: Files and folders given on the command line.
        extensions: Suffixes (lower case) of input files.
        exclude: The run's output folder (``--out``): never walked, even when it lies
            inside an input folder or is reached through a link.

    Raises:
        UsageError: A path does not exist, a folder given is the output folder, or two
            inputs would map to the same output.
    """
    check_paths(paths)
    found: list[InputFile] = []
    skipped: list[SkippedPath] = []
    prefix = len(paths) > 1
    excluded = _identity(exclude) if exclude is not None else None
    for p in paths:
        if p.is_dir():
            if excluded is not None and _identity(p) == excluded:
                raise UsageError(f"input folder {p} is the output folder", "choose an {opt:out} outside the inputs")
            root_name = PurePosixPath(p.resolve().name) if prefix else PurePosixPath()
            for item in _walk(p, extensions, excluded):
                if isinstance(item, SkippedPath):
                    skipped.append(SkippedPath(root_name / item.rel, item.path, item.reason))
                else:
                    found.append(InputFile(item[0], root_name / item[1]))
        else:
            found.append(InputFile(p, PurePosixPath(p.name)))
    seen: dict[PurePosixPath, Path] = {}
    for f in found:
        if f.rel in seen:
            raise UsageError(f"two inputs map to the same output name {f.rel}: {seen[f.rel]} and {f.path}",
                             "pass their folders instead of the files, or rename one")
        seen[f.rel] = f.path
    return Discovery(found, skipped)


def check_paths(paths: list[Path]) -> None:
    """Raise ``UsageError`` unless every input path exists (cheap: no walking)."""
    if not paths:
        raise UsageError("no inputs given", "give a folder or files to explain")
    for p in paths:
        if not p.exists():
            raise UsageError(f"input not found: {p}", "check the path (folders are walked recursively)")


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None  # not there yet: nothing to exclude
    return st.st_dev, st.st_ino


def holds_run(folder: Path) -> bool:
    """Whether ``folder`` holds an xai run's output (its lock, or its manifest and run.json)."""
    if any(os.path.lexists(folder / m) for m in RUN_MARKERS):
        return True
    return any(all(os.path.lexists(folder / m) for m in pair) for pair in RUN_MARKER_PAIRS)


def _walk(root: Path, extensions: frozenset[str], excluded: tuple[int, int] | None):
    """Yield ``(path, rel)`` for each input file and ``SkippedPath`` for what is not walked."""
    visited: dict[tuple[int, int], PurePosixPath] = {}

    def visit(directory: Path, rel: PurePosixPath):
        try:
            st = directory.stat()
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as e:
            yield SkippedPath(rel, directory, f"folder not read: {e.strerror or e}")
            return
        key = (st.st_dev, st.st_ino)
        if key in visited:
            first = str(visited[key]) if str(visited[key]) != "." else "the input folder itself"
            yield SkippedPath(rel, directory, f"link to a folder already walked ({first}): not walked twice")
            return
        if key == excluded:
            return  # this run's own output folder: by design, not an input (and not noted each run)
        if rel != PurePosixPath() and holds_run(directory):
            yield SkippedPath(rel, directory, "an xai output folder: outputs are never read as inputs")
            return
        visited[key] = rel
        for entry in entries:
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir()  # follows links
                is_file = not is_dir and entry.is_file()
            except OSError:
                is_dir = is_file = False
            if is_dir:
                yield from visit(path, rel / entry.name)
            elif path.suffix.lower() in extensions and (is_file or entry.is_symlink()):
                # A dangling or looping link stays an input: reading it fails with the reason.
                yield path, rel / entry.name

    yield from visit(root, PurePosixPath())
