"""One process trains a run at a time: an OS lock on the run folder."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from ..errors import ConfigError, Problem
from ..fileio import file_kind, os_reason
from ..run_layout import LOCK_FILE
from .atomic import FILE_MODE, remove_file


class RunLock:
    """An exclusive OS lock (flock) on a run folder's `.nnflow.lock`, which holds the owner's pid.

    The OS releases it when the process ends, however it ends, so a killed run never stays
    locked. Taken by `lock_run`; `release(remove=True)` also deletes the file, for a run that
    has ended for good (completed, pruned or failed: nothing will train it again).
    """

    def __init__(self, path: Path, descriptor: int):
        self.path = path
        self.descriptor: int | None = descriptor

    def release(self, *, remove: bool = False) -> None:
        if self.descriptor is None:
            return
        if remove:
            remove_file(self.path)  # while still holding it: a racing locker re-checks the file it locked
        os.close(self.descriptor)
        self.descriptor = None


def lock_run(run_dir: str | Path, *, where: str) -> RunLock:
    """Lock `run_dir` for this process, or raise a ConfigError naming the process that holds it."""
    import fcntl

    path = Path(run_dir) / LOCK_FILE
    while True:
        descriptor = _open_lock(path, os.O_RDWR | os.O_CREAT, where)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            who = _who(_lock_pid(descriptor))
            os.close(descriptor)
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ConfigError(
                    Problem(
                        f"cannot lock {run_dir} for training: {os_reason(error)} (a file system without locks?).",
                        where=where,
                    )
                ) from None
            raise ConfigError(
                Problem(
                    f"{run_dir} is being trained by {who} right now; wait for it to finish or stop it first.",
                    where=where,
                )
            ) from None
        try:
            same = os.fstat(descriptor).st_ino == os.stat(path).st_ino
        except FileNotFoundError:  # the owner finished and removed it between our open and our lock
            same = False
        if not same:
            os.close(descriptor)
            continue
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        return RunLock(path, descriptor)


def _open_lock(path: Path, flags: int, where: str) -> int:
    """The lock file, opened without following a link or blocking on a FIFO: only a regular file will do."""
    flags |= os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags, FILE_MODE)
    except OSError as error:
        reason = "it is a symbolic link" if error.errno == errno.ELOOP else os_reason(error)
        raise ConfigError(
            Problem(f"cannot lock {path.parent} for training: {path}: {reason}; remove it.", where=where)
        ) from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        raise ConfigError(
            Problem(
                f"cannot lock {path.parent} for training: {path} is {file_kind(mode)}, not a regular file; remove it.",
                where=where,
            )
        )
    return descriptor


def lock_holder(run_dir: str | Path) -> str | None:
    """Who trains `run_dir` now (`process 1234`), or None when nobody holds its lock."""
    import fcntl

    try:
        descriptor = _open_lock(Path(run_dir) / LOCK_FILE, os.O_RDONLY, "--out")
    except ConfigError:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return _who(_lock_pid(descriptor))
    else:
        return None
    finally:
        os.close(descriptor)


def _who(pid: int | None) -> str:
    return f"process {pid}" if pid else "another process"


def _lock_pid(descriptor: int) -> int | None:
    try:
        text = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def is_live_nnflow_process(pid) -> bool:
    """Whether `pid` is a live nnflow process other than this one (a reused pid running something else is not).

    For a run.json that says `running`: is its process still training it?
    """
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            if b"nnflow" not in cmdline.read():
                return False
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): fall back to the signal probe
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process can linger as a zombie until its parent reaps it
        with open(f"/proc/{pid}/stat") as stat_file:
            return stat_file.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
