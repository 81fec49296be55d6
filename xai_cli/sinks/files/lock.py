"""One run per output folder at a time: an advisory lock held for the whole run.

The lock is ``flock`` on ``--out/.xai.lock``, which the kernel drops when its holder dies.
Two things used to keep it held after ``kill -9``: decode workers (forked children share the
locked file) and workers outliving their parent. Forked children now close their copy of the
lock at once (``os.register_at_fork``), and workers die with their parent (inputs/loader.py).

The file names its holder: ``pid``, ``host``, ``boot`` (the kernel's boot id), ``start``
(the process start time, which tells a reused pid apart), ``argv``. When the lock is held but
its holder is gone — its pid is dead, or now belongs to another process (another start time
or command line) on this host, or the holder is on another host and has not refreshed the
file for ``STALE_AFTER_S`` — the lock is taken over: a fresh lock file is renamed into place
(the old holder, if anything, keeps a lock on a file nobody looks at). The takeover is
returned as data (``OutputLock.took_over``, a one-line message) for the caller to log.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import socket
import sys
import threading
import time
from pathlib import Path

from xai_cli.errors import UsageError
from xai_cli.sinks.files import atomic

LOCK_NAME = ".xai.lock"
STALE_AFTER_S = 600.0  # another host's lock not refreshed for this long is taken over
HEARTBEAT_S = 60.0  # how often a holder refreshes the lock file's mtime

_held_fds: set[int] = set()


def _close_in_child() -> None:
    # A forked child (a DataLoader worker) must not keep the parent's lock alive after it dies.
    for fd in list(_held_fds):
        try:
            os.close(fd)
        except OSError:
            pass
    _held_fds.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_in_child)


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _cmdline(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return None


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def owner_info() -> dict:
    """What this process writes into the lock."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "boot": _boot_id(), "start": _start_time(os.getpid()),
            "argv": sys.argv[:4], "since": round(time.time())}


def parse_owner(text: str) -> dict:
    """The holder named in a lock file (the 0.1 format was the bare pid)."""
    text = text.strip()
    try:
        owner = json.loads(text)
    except ValueError:
        owner = None
    if isinstance(owner, dict):
        return owner
    if isinstance(owner, int):
        return {"pid": owner}
    return {}


def stale_reason(owner: dict, mtime: float, now: float | None = None) -> str | None:
    """Why the holder named in a held lock is gone, or None if it may still be running."""
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return "names no process"
    host = owner.get("host")
    same_boot = owner.get("boot") is None or owner.get("boot") == _boot_id()
    if host is not None and (host != socket.gethostname() or not same_boot):
        idle = (time.time() if now is None else now) - mtime
        if host != socket.gethostname() and idle < STALE_AFTER_S:
            return None  # another machine's run that refreshed its lock recently
        return f"its host {host} has not refreshed it for {idle:.0f} s" if host != socket.gethostname() \
            else "this machine has rebooted since"
    if pid == os.getpid():
        return None  # another lock in this very process
    if not _alive(pid):
        return f"pid {pid} is not running"
    start = owner.get("start")
    now_start = _start_time(pid)
    if start is not None and now_start is not None:
        return None if start == now_start else f"pid {pid} is now another process"
    cmd = _cmdline(pid)
    if cmd is None:
        return None  # cannot tell: assume it is the holder
    argv = owner.get("argv")
    if argv:
        return None if cmd[: len(argv)] == argv else f"pid {pid} is now another program"
    return None if any("xai" in a for a in cmd) else f"pid {pid} is not an xai process"


class OutputLock:
    """``with OutputLock(out) as lock:`` — raises ``UsageError`` at once if another live run holds ``out``.

    ``name`` is the lock file's name: a shard locks ``.xai.lock.K-of-N``, so the N shards of one
    run share ``out`` while each shard runs at most once at a time.

    Attributes:
        took_over: A one-line message when a stale lock was taken over (for the caller to
            log as a warning), else None.
    """

    def __init__(self, root: Path, name: str = LOCK_NAME) -> None:
        self.root = root
        self.name = name
        self.path = root / name
        self.took_over: str | None = None
        self._fd: int | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def __enter__(self) -> OutputLock:
        atomic.preflight(self.root)  # before the first write: never stop halfway on a planted link
        self.root.mkdir(parents=True, exist_ok=True)
        with atomic.open_dir(self.root) as dfd:
            serial = _flock_dir(dfd)  # takeovers by two runs at once are serialised by the folder's lock
            try:
                fd = self._acquire(dfd)
            finally:
                if serial:
                    fcntl.flock(dfd, fcntl.LOCK_UN)
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(owner_info()) + "\n").encode(), 0)
        self._fd = fd
        _held_fds.add(fd)
        self._beat = threading.Thread(target=self._heartbeat, name="xai-lock-heartbeat", daemon=True)
        self._beat.start()
        return self

    def _acquire(self, dfd: int) -> int:
        for _ in range(3):
            fd = _open_lock(dfd, self.path, self.name)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                text = os.pread(fd, 4096, 0).decode(errors="replace")
                mtime = os.fstat(fd).st_mtime
                os.close(fd)
                owner = parse_owner(text)
                reason = stale_reason(owner, mtime)
                if reason is None:
                    who = f"pid {owner.get('pid', '?')}" + (f" on {owner['host']}" if owner.get("host") else "")
                    raise UsageError(f"another xai run ({who}) is writing to {self.root}",
                                     "wait for it to finish, or choose another {opt:out}") from None
                fd = self._take_over(dfd)
                self.took_over = f"took over the lock on {self.root} from a run that is gone ({reason})"
                return fd
            if _same_file(fd, dfd, self.name):
                return fd
            os.close(fd)  # replaced while we waited: lock the new one
        raise UsageError(f"could not lock {self.path}: it keeps being replaced", "is another run starting?")

    def _take_over(self, dfd: int) -> int:
        tmp = atomic.TMP_PREFIX + "lock-" + secrets.token_hex(6)
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, atomic.FILE_MODE,
                     dir_fd=dfd)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else holds it
        os.replace(tmp, self.name, src_dir_fd=dfd, dst_dir_fd=dfd)
        return fd

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            fd = self._fd
            if fd is None:
                return
            try:
                os.utime(fd)
            except OSError:
                return

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._fd is not None:
            fd, self._fd = self._fd, None
            _held_fds.discard(fd)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _open_lock(dfd: int, path: Path, name: str) -> int:
    try:
        return os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, atomic.FILE_MODE, dir_fd=dfd)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UsageError(f"refusing to lock {path}: it is a link", atomic._LINK_HINT) from None
        raise


def _same_file(fd: int, dfd: int, name: str) -> bool:
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    here = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (here.st_dev, here.st_ino)


def _flock_dir(dfd: int) -> bool:
    try:
        fcntl.flock(dfd, fcntl.LOCK_EX)
        return True
    except OSError:
        return False  # some network filesystems cannot lock folders: go on without
