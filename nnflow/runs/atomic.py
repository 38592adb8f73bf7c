"""Every file nnflow writes that a user keeps, written atomically.

A file is written beside its final name, flushed, and renamed over it, so a run killed
at any moment leaves each file either complete or absent (never half-written).
"""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from ..errors import OutputError
from ..fileio import os_reason


def _file_mode() -> int:
    """What `open()` would give a new file under the current umask (mkstemp gives 0600)."""
    from ..fileio import current_umask

    return 0o666 & ~current_umask()


FILE_MODE = _file_mode()


def write_text_atomic(path: str | Path, text: str, *, durable: bool = True) -> Path:
    """Write `text` beside `path`, fsync, then rename over it: never a half-written file."""
    return write_bytes_atomic(path, text.encode("utf-8"), durable=durable)


def write_bytes_atomic(path: str | Path, data: bytes, *, durable: bool = True) -> Path:
    """Atomic against a killed process; with `durable` (fsync) against a power cut too.

    An OS error on the way (a full disk, an I/O error) is an `OutputError` (exit 7) naming
    the file; the temporary file is removed and whatever stood under `path` is untouched.
    """
    path = Path(path)
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(handle, FILE_MODE)
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            if durable:
                os.fsync(stream.fileno())
        os.replace(temporary, path)
    except OSError as error:
        if temporary is not None:
            remove_file(temporary)
        raise output_error(path, error) from None
    except BaseException:
        if temporary is not None:
            remove_file(temporary)
        raise
    return path


def output_error(path: str | Path, error: OSError) -> OutputError:
    """`cannot write PATH: no space left on the device (the disk is full).` (exit 7)"""
    failure = OutputError(f"cannot write {path}: {os_reason(error)}.")
    failure.errno = error.errno  # type: ignore[attr-defined]  # what to advise: free space, or something else
    return failure


# What a write that fails part-way says: exit 7, not a bug (exit 1).
DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS}


def disk_error(error: OSError) -> OutputError | None:
    """An OSError from a write that the disk refused (full, quota, I/O), as an OutputError; else None.

    For writes nnflow does not make itself: a callback's CSV log, Keras's own files.
    """
    if error.errno not in DISK_ERRNOS:
        return None
    return output_error(error.filename or "a file", error)


def append_text(path: str | Path, text: str) -> None:
    """Append to a log-like file that other steps also write to (GitHub's step summary)."""
    with open(path, "a", encoding="utf-8") as stream:
        stream.write(text)


def write_json(path: Path, data: Any, *, durable: bool = True) -> Path:
    return write_text_atomic(path, json.dumps(finite(data), indent=2) + "\n", durable=durable)


def finite(value: Any) -> Any:
    """JSON has no NaN or Infinity: they are written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def remove_file(path: str | Path) -> None:
    """Remove `path` if it is there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def history_csv(rows: list[dict]) -> str:
    """Epoch rows as CSV, `epoch` first; columns in the order they first appear."""
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n", restval="")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _format(value) for key, value in row.items()})
    return out.getvalue()


def _format(value: Any) -> Any:
    return repr(value) if isinstance(value, float) else value


def save_model(model, path: Path) -> Path:
    """`model.save` to a temporary `.keras` file beside `path`, then rename it into place."""
    try:
        handle, temporary = tempfile.mkstemp(prefix=".model.", suffix=".keras", dir=path.parent)
    except OSError as error:
        raise output_error(path, error) from None
    os.close(handle)
    try:
        model.save(temporary)
        os.chmod(temporary, FILE_MODE)
        with open(temporary, "rb") as stream:
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except OSError as error:
        remove_file(temporary)
        raise output_error(path, error) from None
    except BaseException:
        remove_file(temporary)
        raise
    return path
