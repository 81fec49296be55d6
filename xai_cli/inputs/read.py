"""Reading one input's bytes, and what a loader yields besides decoded items.

Every modality's decoder returns its own item type, or a ``Failure``; resume yields ``Skipped``.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from xai_cli.inputs.discover import InputFile


@dataclass
class Failure:
    """An input that could not be decoded, and why (one line, with advice)."""

    index: int
    reason: str
    sha256: str | None = None


@dataclass
class Skipped:
    """An input whose outputs from an earlier run are complete and current (resume)."""

    index: int
    sha256: str
    outputs: list[str]


def read_input(file: InputFile) -> tuple[bytes | None, str | None]:
    """The input's bytes (its span, for a part of a file), or (None, one-line reason)."""
    try:
        if file.span is not None:
            with open(file.path, "rb") as f:
                f.seek(file.span[0])
                return f.read(file.span[1] - file.span[0]), None
        return file.path.read_bytes(), None
    except IsADirectoryError:
        return None, "is a folder, not a file"
    except OSError as e:
        return None, _link_problem(file.path) or f"cannot read file: {e.strerror or e}"


def _link_problem(path) -> str | None:
    """A one-line reason when ``path`` is a dangling link or a loop of links."""
    if not path.is_symlink():
        return None
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    try:
        path.resolve(strict=True)
    except RuntimeError:
        return f"symbolic link loop (-> {target}): fix or remove the link"
    except OSError as e:
        if e.errno == errno.ELOOP:
            return f"symbolic link loop (-> {target}): fix or remove the link"
        return f"dangling symbolic link (-> {target}, which does not exist): fix or remove the link"
    return None
