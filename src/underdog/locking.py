"""One writer at a time per project: stages that call models or write artifacts hold `underdog.lock`.

    with ProjectLock(root, "underdog generate"):
        ...

The lock is an advisory `fcntl.flock` on `underdog.lock`, and the file holds the holder's description (pid,
command, start time), so a second writer is told who holds it. The kernel drops the lock when its process ends
however it ends (kill -9 included): a lock left by a dead process is simply taken over; only the stale
description remains in the file, and it is overwritten. Processes the holder starts (a sweep's training runs)
inherit $UNDERDOG_LOCK_HELD and work under the holder's lock instead of waiting for it.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from types import TracebackType

from underdog.errors import UnderdogError, redact

LOCK_NAME = "underdog.lock"
HELD_ENV = "UNDERDOG_LOCK_HELD"  # set while held: processes the holder starts (sweep runs) work under its lock


class ProjectBusy(UnderdogError):
    """Another process is running a writing stage in this project."""


class ProjectLock:
    """Exclusive, non-blocking writer lock on `root/underdog.lock`; ProjectBusy names the holder."""

    def __init__(self, root: Path, command: str):
        self.path = root / LOCK_NAME
        self.command = redact(command)
        self._fd: int | None = None
        self._held_before: str | None = None

    def __enter__(self) -> ProjectLock:
        self._held_before = os.environ.get(HELD_ENV)
        if self._held_before == str(self.path):
            return self  # taken by this process or the one that started it
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read(fd)
            os.close(fd)
            raise ProjectBusy(f"{self.path.parent}: {describe(holder)} is writing to this project; wait for it "
                              "to finish (or stop it) and run this again") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": self.command, "started": time.time()}).encode(), 0)
        self._fd = fd
        os.environ[HELD_ENV] = str(self.path)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing releases the flock
        self._fd = None
        if self._held_before is None:
            os.environ.pop(HELD_ENV, None)
        else:
            os.environ[HELD_ENV] = self._held_before


def current_holder(root: Path) -> dict | None:
    """The description (pid, command, started) of the process writing to the project at `root`, or None. Read
    without touching the lock: a description left by a process that died (kill -9) does not count."""
    try:
        fd = os.open(root / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return None
    try:
        holder = _read(fd)
    finally:
        os.close(fd)
    return holder if holder.get("pid") and pid_alive(int(holder["pid"])) else None


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists (a zombie not yet reaped by its parent counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def _read(fd: int) -> dict:
    try:
        holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}


def describe(holder: dict) -> str:
    """`underdog generate (pid 123, since 07:31:02)`, or `another underdog command` when unknown."""
    if not holder.get("pid"):
        return "another underdog command"
    since = time.strftime("%H:%M:%S", time.localtime(holder["started"])) if holder.get("started") else "?"
    return f"`{holder.get('command') or 'underdog'}` (pid {holder['pid']}, since {since})"
