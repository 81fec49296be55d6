"""One run per output folder at a time: an advisory lock held for the whole run."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from xai_cli.errors import UsageError

LOCK_NAME = ".xai.lock"


class OutputLock:
    """``with OutputLock(out):`` — raises ``UsageError`` at once if another run holds ``out``.

    flock locks vanish with their process, so a killed run never leaves a stale lock.
    """

    def __init__(self, root: Path) -> None:
        self.path = root / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> OutputLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise UsageError(f"another xai run (pid {holder}) is writing to {self.path.parent}",
                             "wait for it to finish, or choose another {opt:out}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
