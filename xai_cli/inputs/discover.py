"""Finding inputs: folders walked recursively in sorted order, files given directly.

Symbolic links are followed only when they point inside the folder being walked (so a link
cannot pull in, or make us write about, files outside it), and each directory is visited
once (link loops end).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from xai_cli.errors import UsageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"})
TEXT_EXTENSIONS = frozenset({".txt", ".jsonl"})


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


def discover(paths: list[Path], extensions: frozenset[str] = IMAGE_EXTENSIONS) -> list[InputFile]:
    """All input files under ``paths``, in a deterministic order.

    One folder: relative paths are relative to it. Several arguments: each one's files are
    placed under its own name, so outputs from different roots cannot collide.

    Raises:
        UsageError: A path does not exist, or two inputs would map to the same output.
    """
    check_paths(paths)
    found: list[InputFile] = []
    prefix = len(paths) > 1
    for p in paths:
        if p.is_dir():
            root_name = PurePosixPath(p.resolve().name) if prefix else PurePosixPath()
            found += [InputFile(f, root_name / r) for f, r in _walk(p, extensions)]
        else:
            found.append(InputFile(p, PurePosixPath(p.name)))
    seen: dict[PurePosixPath, Path] = {}
    for f in found:
        if f.rel in seen:
            raise UsageError(f"two inputs map to the same output name {f.rel}: {seen[f.rel]} and {f.path}",
                             "pass their folders instead of the files, or rename one")
        seen[f.rel] = f.path
    return found


def check_paths(paths: list[Path]) -> None:
    """Raise ``UsageError`` unless every input path exists (cheap: no walking)."""
    if not paths:
        raise UsageError("no inputs given", "give a folder or files to explain")
    for p in paths:
        if not p.exists():
            raise UsageError(f"input not found: {p}", "check the path (folders are walked recursively)")


def _walk(root: Path, extensions: frozenset[str]):
    real_root = root.resolve()
    visited: set[tuple[int, int]] = set()

    def visit(directory: Path, rel: PurePosixPath):
        try:
            st = directory.stat()
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            return
        if (st.st_dev, st.st_ino) in visited:
            return  # a link loop, or the same folder reached twice
        visited.add((st.st_dev, st.st_ino))
        for entry in entries:
            path = Path(entry.path)
            if entry.is_symlink():
                try:
                    target = path.resolve(strict=True)
                except (OSError, RuntimeError):
                    continue  # dangling or looping link
                if not target.is_relative_to(real_root):
                    continue  # never follow a link out of the input folder
            if entry.is_dir():
                yield from visit(path, rel / entry.name)
            elif entry.is_file() and path.suffix.lower() in extensions:
                yield path, rel / entry.name

    yield from visit(root, PurePosixPath())
