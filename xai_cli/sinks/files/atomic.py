"""Writes that never leave a half-written file, and never land outside the output folder.

Every file a run writes is opened relative to a descriptor of the output folder, walking
each folder below it with ``O_NOFOLLOW``: a symbolic link planted anywhere inside ``--out``
(a folder, the manifest, the lock) makes the write fail instead of following it. Records and
pictures are written to a temporary file and renamed over their name; a rename replaces a
link itself, never its target. ``preflight`` refuses a folder holding any link before the
run writes anything, so in practice the run stops before its first write, not halfway.

Files are created with mode ``0o666`` and the process umask applies, as for any Unix tool
(umask 022 gives 0644), so a web server or an artifact upload can read the pictures.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO

from xai_cli.errors import UsageError

TMP_PREFIX = ".xai-tmp-"
FILE_MODE = 0o666  # before the umask, like open(2) in any Unix tool
_DIR_MODE = 0o777
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_LINK_HINT = "remove the link, or choose another {opt:out}: xai never writes through links inside it"


def inside(root: Path, path: Path) -> Path:
    """``path`` resolved, after checking it lies inside ``root`` (guards odd input names)."""
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise UsageError(f"refusing to write outside the output folder: {path}")
    return resolved


def _parts(root: Path, path: Path) -> list[str]:
    """``path``'s components below ``root``, refusing anything that could climb out of it."""
    try:
        rel = PurePosixPath(os.path.relpath(os.path.abspath(path), os.path.abspath(root)))
    except ValueError:
        raise UsageError(f"refusing to write outside the output folder: {path}") from None
    parts = list(rel.parts)
    if not parts or parts == ["."] or any(p in ("", ".", "..") or "/" in p for p in parts):
        raise UsageError(f"refusing to write outside the output folder: {path}")
    return parts


@contextmanager
def open_dir(root: Path, parts: list[str] | tuple[str, ...] = (), *, create: bool = True):
    """A descriptor of ``root/parts...``, each component opened without following links.

    ``root`` itself is the user's ``--out`` and may be reached through links; nothing below it is.

    Raises:
        UsageError: A component is a link (or not a folder).
    """
    try:  # (the folder is there but for a run's first write: mkdir's failed try and stat cost 8 µs a file)
        fd = os.open(root, os.O_RDONLY | _DIRECTORY)
    except FileNotFoundError:
        if not create:
            raise
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root, os.O_RDONLY | _DIRECTORY)
    try:
        for i, name in enumerate(parts):
            if create:
                try:
                    os.mkdir(name, _DIR_MODE, dir_fd=fd)
                except FileExistsError:
                    pass
            try:
                sub = os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    where = root / Path(*parts[: i + 1])
                    raise UsageError(f"refusing to write through {where}: it is a link or not a folder",
                                     _LINK_HINT) from None
                raise
            os.close(fd)
            fd = sub
        yield fd
    finally:
        os.close(fd)


def write_bytes(path: Path, data: bytes, root: Path) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``.

    The rename is atomic on POSIX: a reader, or a run killed at any moment, sees either the
    old file, the new file, or nothing — never a prefix. No fsync per file: it cost 6-15 ms
    per input (bench/ profile), more than the whole PNG encode. After a power loss a renamed
    file may come back empty; resume treats an unparsable record or an empty output as
    not done, so the next run redoes that input.

    Raises:
        UsageError: ``path`` is outside ``root``, or a folder on the way is a link.
    """
    parts = _parts(root, path)
    with open_dir(root, parts[:-1]) as dfd:
        tmp = TMP_PREFIX + secrets.token_hex(8)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | os.O_CLOEXEC, FILE_MODE, dir_fd=dfd)
        try:
            _write_all(fd, data)
            os.replace(tmp, parts[-1], src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dfd)
            except FileNotFoundError:
                pass
            raise


def _write_all(fd: int, data) -> None:
    """Write ``data`` to ``fd`` and close it (a bare descriptor: a Python file object's fstat,
    ioctl and lseek were 3 of a small file's 12 system calls)."""
    try:
        view = memoryview(data).cast("B")
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def write_json(path: Path, obj: object, root: Path) -> None:
    write_bytes(path, (json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode(), root)


def remove(path: Path, root: Path) -> bool:
    """Delete the file ``path`` inside ``root`` without following a link on the way; False if absent."""
    parts = _parts(root, path)
    try:
        with open_dir(root, parts[:-1], create=False) as dfd:
            os.unlink(parts[-1], dir_fd=dfd)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return True


def read_json(path: Path, root: Path) -> object | None:
    """The JSON document at ``path`` inside ``root`` (links not followed), or None if absent or unreadable."""
    parts = _parts(root, path)
    try:
        with open_dir(root, parts[:-1], create=False) as dfd:
            fd = os.open(parts[-1], os.O_RDONLY | _NOFOLLOW, dir_fd=dfd)
        with os.fdopen(fd, "rb") as f:
            return json.loads(f.read())
    except (OSError, ValueError, UsageError):
        return None


def open_in(root: Path, name: str, flags: int, mode: int = FILE_MODE) -> int:
    """``os.open`` of the file ``root/name`` (one component), never through a link.

    Raises:
        UsageError: ``name`` is a link.
    """
    with open_dir(root, _parts(root, root / name)[:-1]) as dfd:
        try:
            return os.open(Path(name).name, flags | _NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dfd)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise UsageError(f"refusing to write through {root / name}: it is a link", _LINK_HINT) from None
            raise


def open_manifest(root: Path, name: str = "manifest.jsonl") -> IO[str]:
    """The run's manifest, opened for writing (truncated) without following a link.

    The run loop should open the manifest with this instead of ``open(root / name, "w")``.
    """
    fd = open_in(root, name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    return os.fdopen(fd, "w", encoding="utf-8")


RUN_FILES = ("manifest.jsonl", "run.json", ".xai.lock")  # written in place or renamed at the top of --out


def find_unsafe_link(root: Path) -> Path | None:
    """The first link inside ``root`` a write could follow out of it, without following any.

    That is any link except one to a regular file (a rename replaces such a link, never its
    target), and any link at the name of one of the run's own files.
    """
    if not root.is_dir():
        return None
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.is_symlink():
                top_level = folder == root and entry.name in RUN_FILES
                if top_level or not os.path.isfile(entry.path):  # a folder, dangling or looping
                    return Path(entry.path)
            elif entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
    return None


def preflight(root: Path) -> None:
    """Check, before anything is written, that the run can write ``root`` and only inside it.

    ``OutputLock`` calls it before it creates the lock; the run loop may call it earlier
    (before the model loads) to fail fast.

    Raises:
        UsageError: ``root`` is a file, or holds a link a write could follow (the run would
            otherwise refuse to write through it later, halfway).
    """
    if root.exists() and not root.is_dir():
        raise UsageError(f"{{opt:out}} {root} is a file, not a folder", "choose a folder (it is created if missing)")
    link = find_unsafe_link(root)
    if link is not None:
        raise UsageError(f"the output folder holds a link, {link}, which a write could follow out of {root}",
                         _LINK_HINT)
    _check_writable(root)


def _check_writable(root: Path) -> None:
    """Create ``root`` (and its parents) and write one temporary file in it, or raise UsageError.

    A read-only folder, a path under /proc, a full disk: said in one line before the model loads,
    not as a traceback halfway through the run.
    """
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / (TMP_PREFIX + secrets.token_hex(8))
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
        os.unlink(tmp)
    except OSError as e:
        raise UsageError(f"cannot write to the output folder {root}: {e.strerror or e}",
                         "choose a folder you can write to with {opt:out}") from None


def remove_stale_temps(root: Path) -> int:
    """Delete temporary files a killed run left behind; returns how many. Links are not followed."""
    n = 0
    if not root.is_dir():
        return n
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith(TMP_PREFIX) and not entry.is_dir(follow_symlinks=False):
                Path(entry.path).unlink(missing_ok=True)  # unlinking a link removes the link only
                n += 1
            elif entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
    return n
