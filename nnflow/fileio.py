"""Files nnflow reads and writes, at the OS level: regular files only, bounded reads, plain reasons.

Standard library only (used on the path of `nnflow check`).

- `open_regular` opens a file for reading only if it is a regular file: a FIFO, a device
  (`/dev/zero`) or a socket is refused at once instead of blocking or reading for ever.
- `read_bounded` reads at most a limit, whatever `stat()` claims the size is.
- `os_reason` says what an `OSError` means in words (`a loop of symbolic links`, not
  "no such file"); `output_problem` says why an output path cannot be used, before any work.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO


class NotReadable(Exception):
    """`path` cannot be read as a regular file; `reason` says why in words."""

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class TooLarge(NotReadable):
    """The file holds more than the reader's limit."""

    def __init__(self, path: str | Path, limit: int):
        self.limit = limit
        super().__init__(path, f"larger than {limit:,} bytes")


_REASONS = {
    errno.ELOOP: "a loop of symbolic links (a link that points, through others, back at itself)",
    errno.ENOENT: "no such file",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOSPC: "no space left on the device (the disk is full)",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EISDIR: "is a folder",
    errno.ENAMETOOLONG: "the file name is too long",
    errno.EIO: "an input/output error (a failing disk or network file system?)",
    errno.EFBIG: "the file is too large for the file system",
}


def os_reason(error: OSError) -> str:
    """The reason of an OSError in words; ELOOP is not "no such file"."""
    if error.errno in _REASONS:
        return _REASONS[error.errno]
    return (error.strerror or str(error) or type(error).__name__).rstrip(".")


def file_kind(mode: int) -> str:
    """`a named pipe (FIFO)`, `a character device`, ... for what `stat` says a path is."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular(path: str | Path) -> BinaryIO:
    """Open `path` for reading in binary, only if it is a regular file (symbolic links followed).

    The file is opened without blocking, then checked with `fstat`: a FIFO with no writer
    would otherwise block the open for ever, and a device would never end. Raises
    `NotReadable` with the reason.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        raise NotReadable(path, os_reason(error)) from None
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise NotReadable(path, f"is {file_kind(mode)}, not a regular file")
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def is_regular(path: str | Path) -> bool:
    """Whether `path` is a regular file (links followed), without opening it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def read_bounded(path: str | Path, limit: int) -> bytes:
    """The whole of a regular file of at most `limit` bytes; `TooLarge` past it, however it grew."""
    with open_regular(path) as stream:
        try:
            data = stream.read(limit + 1)
        except OSError as error:
            raise NotReadable(path, os_reason(error)) from None
    if len(data) > limit:
        raise TooLarge(path, limit)
    return data


def output_problem(path: str | Path, *, folder: bool = False) -> str | None:
    """Why `path` cannot be written (None when it can): checked before any work is done.

    A path under a regular file, in a folder that cannot be written, or naming a folder
    where a file is wanted (or a file where a folder is wanted, with `folder`).
    """
    path = Path(path)
    if path.exists():
        if folder and not path.is_dir():
            return f"{path} is a file, not a folder"
        if not folder and path.is_dir():
            return f"{path} is a folder; give a file name"
        if not folder and not os.access(path.parent if str(path.parent) else ".", os.W_OK | os.X_OK):
            return f"its folder {path.parent} is not writable"
        return None
    parent = path.parent
    while True:
        try:
            mode = os.stat(parent).st_mode
        except FileNotFoundError:
            if parent == parent.parent:
                return f"no part of {path} exists"
            parent = parent.parent
            continue
        except OSError as error:
            return f"{parent}: {os_reason(error)}"
        if not stat.S_ISDIR(mode):
            return f"{parent} is a file, not a folder"
        if not os.access(parent, os.W_OK | os.X_OK):
            return f"the folder {parent} is not writable"
        return None


def current_umask() -> int:
    """The process's umask, read without changing it where the OS tells it (Linux's /proc).

    Elsewhere the only way is to set it and put it back at once (`os.umask` returns the old
    one): for that instant a file another thread creates gets the temporary mask, 0o077,
    which errs on the private side.
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o077)
    os.umask(umask)
    return umask
