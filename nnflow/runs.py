"""The run folder and everything nnflow writes that a user keeps. Every write is atomic.

    runs/NAME/2026-11-27_08-00-21/
        run.json            status, seed, times, versions, data checksums, command line
        experiment.yaml     the resolved file: defaults, overrides and drawn seed applied
        preprocessing.json  feature columns, vocabularies, class names, normalisation
        history.csv         one row per epoch
        metrics.json        final metrics of the saved model on each split
        model.keras         the trained model (written last, only when training succeeded)
        checkpoint.npz      while training: the last completed epoch, for --resume

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
import stat
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import ConfigError, OutputError, Problem
from .fileio import file_kind, os_reason
from .runfiles import CHECKPOINT_FILE, LOCK_FILE, RUN_FILE  # the run folder's file names, declared there

RUN_FORMAT = 1  # the layout of a run folder; raise it when an older nnflow could misread a new one
RUNS_ROOT = Path("runs")


def _file_mode() -> int:
    """What `open()` would give a new file under the current umask (mkstemp gives 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


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
            _remove(temporary)
        raise output_error(path, error) from None
    except BaseException:
        if temporary is not None:
            _remove(temporary)
        raise
    return path


def output_error(path: str | Path, error: OSError) -> OutputError:
    """`cannot write PATH: no space left on the device (the disk is full).` (exit 7)"""
    failure = OutputError(f"cannot write {path}: {os_reason(error)}.")
    failure.errno = error.errno  # what to advise: free space, or something else
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


def read_json(path: Path) -> Any:
    """A JSON file of a run folder, read bounded and only if regular; anything else is a DamagedRunError.

    Its shape is not checked here: `runfiles.read_run_info` and its siblings do that.
    """
    from .runfiles import read_json_file

    return read_json_file(path)


def finite(value: Any) -> Any:
    """JSON has no NaN or Infinity: they are written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def _remove(path: str | Path) -> None:
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


class TableWriter:
    """Writes a table in chunks: CSV/TSV to a file or a text stream, or Parquet. Atomic for files.

    The file is made beside `output` at the first chunk and renamed into place by `close()`;
    `abort()` drops it, so an error part-way leaves nothing under the output's name.
    """

    def __init__(self, output: Path | None, stream=None):
        from .headers import table_format

        if output is None and stream is None:
            raise ValueError("TableWriter needs an output file or a text stream")
        self.output = output
        self.stream = stream
        self.kind = table_format(output) if output is not None else "csv"
        self.temporary: Path | None = None
        self.parquet = None
        self.handle = None
        self.rows = 0

    def _open(self) -> None:
        if self.output is None:
            self.handle = self.stream
            return
        try:
            self.output.parent.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(prefix=f".{self.output.name}.", suffix=".tmp", dir=self.output.parent)
        except OSError as error:
            raise ConfigError(Problem(f"cannot write {self.output}: {error.strerror or error}.", where="--output")) from None
        os.close(handle)
        self.temporary = Path(name)
        if self.kind != "parquet":
            self.handle = open(self.temporary, "w", encoding="utf-8", newline="")

    def write(self, frame) -> None:
        try:
            self._write(frame)
        except OSError as error:
            if self.output is None or isinstance(error, BrokenPipeError):
                raise
            raise output_error(self.output, error) from None

    def _write(self, frame) -> None:
        first = self.handle is None and self.parquet is None
        if first:
            self._open()
        if self.kind == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.temporary, table.schema)
            else:
                table = table.cast(self.parquet.schema)  # a column all null in one chunk keeps the first chunk's type
            self.parquet.write_table(table)
        else:
            frame.to_csv(self.handle, index=False, header=first, sep="\t" if self.kind == "tsv" else ",", lineterminator="\n")
        self.rows += len(frame)

    def close(self) -> None:
        try:
            if self.parquet is not None:
                self.parquet.close()
            if self.handle is not None:
                self.handle.flush()
                if self.output is not None:
                    os.fsync(self.handle.fileno())
                    self.handle.close()
            if self.temporary is not None:
                os.chmod(self.temporary, FILE_MODE)
                os.replace(self.temporary, self.output)
                self.temporary = None
        except OSError as error:
            if self.output is None:  # the stream (stdout) went away: `| head`, a closed pipe
                raise
            raise output_error(self.output, error) from None

    def abort(self) -> None:
        try:
            if self.parquet is not None:
                self.parquet.close()
            if self.handle is not None and self.output is not None:
                self.handle.close()
        finally:
            if self.temporary is not None:
                _remove(self.temporary)


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
        _remove(temporary)
        raise output_error(path, error) from None
    except BaseException:
        _remove(temporary)
        raise
    return path


# ---------------------------------------------------------------------------
# Finding and making run folders


def check_new_folder(out: str | Path) -> None:
    """`--out` must be a new or empty folder that can be made (checked before any work)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        holder = lock_holder(out) if out.is_dir() else None
        if holder is not None:
            raise ConfigError(Problem(f"{out} is being trained by {holder}; choose a new --out folder, or wait for it.", where="--out"))
        raise ConfigError(Problem(f"{out} already exists and is not an empty folder; choose a new --out folder.", where="--out"))
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(Problem(f"cannot make {out}: {parent} is a file, not a folder.", where="--out"))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(Problem(f"cannot make {out}: {parent} is not writable.", where="--out"))


def check_runs_root(name: str) -> None:
    """`runs/NAME` can be made and written (checked before any work, when there is no --out)."""
    from .fileio import output_problem

    problem = output_problem(RUNS_ROOT / name, folder=True)
    if problem is not None:
        raise ConfigError(Problem(f"cannot make run folders in {RUNS_ROOT / name}: {problem}. Run nnflow from another folder, or give --out DIR.", where="runs/"))


def new_run_dir(name: str, out: str | Path | None = None, *, now: datetime | None = None) -> Path:
    """`runs/NAME/TIMESTAMP` (a new, unique folder), or `out`, which must be new or empty."""
    if out is not None:
        check_new_folder(out)
        out = Path(out)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(Problem(f"cannot make {out}: {error.strerror}.", where="--out")) from None
        return out
    stamp = (now or datetime.now()).strftime("%Y-%m-%d_%H-%M-%S")
    parent = RUNS_ROOT / name
    try:
        parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, 1000):
            candidate = parent / (stamp if attempt == 1 else f"{stamp}_{attempt}")
            try:
                candidate.mkdir()
                return candidate
            except FileExistsError:
                continue
    except OSError as error:
        raise ConfigError(Problem(f"cannot make a run folder in {parent}: {os_reason(error)}. Give --out DIR.", where="runs/")) from None
    raise ConfigError(f"cannot make a new run folder in {parent}")


# ---------------------------------------------------------------------------
# One process trains a run at a time




class RunLock:
    """An exclusive OS lock (flock) on a run folder's `.nnflow.lock`, which holds the owner's pid.

    The OS releases it when the process ends, however it ends, so a killed run never stays
    locked. Taken by `lock_run`; `release(remove=True)` also deletes the file, for a run that
    has ended for good (completed or failed: nothing will train it again).
    """

    def __init__(self, path: Path, descriptor: int):
        self.path = path
        self.descriptor: int | None = descriptor

    def release(self, *, remove: bool = False) -> None:
        if self.descriptor is None:
            return
        if remove:
            _remove(self.path)  # while still holding it: a racing locker re-checks the file it locked
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
                raise ConfigError(Problem(f"cannot lock {run_dir} for training: {os_reason(error)} (a file system without locks?).", where=where)) from None
            raise ConfigError(Problem(f"{run_dir} is being trained by {who} right now; wait for it to finish or stop it first.", where=where)) from None
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
        raise ConfigError(Problem(f"cannot lock {path.parent} for training: {path}: {reason}; remove it.", where=where)) from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        raise ConfigError(Problem(f"cannot lock {path.parent} for training: {path} is {file_kind(mode)}, not a regular file; remove it.", where=where))
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


def find_run(run: str | Path) -> Path:
    """A run folder, its `model.keras`, or the newest run inside `runs/NAME` (by start time).

    A folder whose run.json is there but is not a regular file (a FIFO, a broken link) is a
    damaged run (DamagedRunError), never read: it would block or fail later.
    """
    path = Path(run)
    if path.is_file() and os.path.lexists(path.parent / RUN_FILE):  # a model file inside a run folder
        return _checked_run_dir(path.parent)
    if os.path.lexists(path / RUN_FILE):
        return _checked_run_dir(path)
    if not path.exists():
        raise ConfigError(Problem(f"{path}: no such run folder. Runs are in runs/NAME/TIMESTAMP; `runs/NAME` means the newest.", where="RUN"))
    candidates = [child for child in path.iterdir() if os.path.lexists(child / RUN_FILE)] if path.is_dir() else []
    if not candidates:
        raise ConfigError(Problem(f"{path}: not a run folder (no {RUN_FILE}) and holds no runs.", where="RUN"))
    return _checked_run_dir(max(candidates, key=lambda child: (_started(child), child.name)))


def _checked_run_dir(run_dir: Path) -> Path:
    from .fileio import NotReadable, open_regular
    from .runfiles import damaged

    try:
        open_regular(run_dir / RUN_FILE).close()  # without blocking, even on a FIFO
    except NotReadable as error:
        raise damaged(run_dir / RUN_FILE, error.reason) from None
    return run_dir


def open_run(run: str | Path) -> tuple[Path, dict, Path]:
    """(run folder, its run.json checked, the model file) of a finished run that this nnflow can read.

    RUN may name a model file inside a run folder; then that file is the model. A damaged
    run.json is a DamagedRunError; one from a newer nnflow an UnsafeModelError (both exit 6).
    """
    from .runfiles import read_run_info

    run_dir = find_run(run)
    info = read_run_info(run_dir)
    model_path = Path(run) if Path(run).is_file() else run_dir / "model.keras"
    if not os.path.lexists(model_path):
        status = info["status"]
        hint = f" Continue it with `nnflow train --resume {run_dir}`." if status in ("running", "interrupted") else ""
        raise ConfigError(Problem(f"{run_dir} has no model.keras: its training did not finish (status: {status}).{hint}", where="RUN"))
    return run_dir, info, model_path


def _started(run_dir: Path) -> str:
    from .runfiles import run_started

    return run_started(run_dir)


# ---------------------------------------------------------------------------
# Checkpoints: the last completed epoch


class Checkpointer:
    """Saves the last completed epoch in one file, `checkpoint.npz`: its rename commits it.

    It holds the model's and optimizer's variables (the dropout RNG state included),
    the file's callbacks' state and the history so far. Not fsynced: it guards against
    a killed process, and it is written every epoch, so it must be cheap (about 1 ms).
    """

    def __init__(self, run_dir: Path, model):
        self.path = Path(run_dir) / CHECKPOINT_FILE
        self.model = model
        self._variables: tuple[list, list] | None = None
        self.epochs_saved: int | None = None  # the last epoch saved, by this process

    def save(self, state: dict, arrays: dict[str, Any]) -> None:
        import numpy as np

        if self._variables is None:  # fixed once training has started; listing them is not free
            self._variables = (list(self.model.variables), list(self.model.optimizer.variables))
        model_variables, optimizer_variables = self._variables
        stored = {f"model.{i}": v.numpy() for i, v in enumerate(model_variables)}
        stored.update({f"optimizer.{i}": v.numpy() for i, v in enumerate(optimizer_variables)})
        stored.update(arrays)
        stored["state"] = np.array(json.dumps(state))
        buffer = io.BytesIO()
        np.savez(buffer, **stored)
        write_bytes_atomic(self.path, buffer.getvalue(), durable=False)
        self.epochs_saved = state["epochs_completed"]


def load_checkpoint(run_dir: Path) -> tuple[dict, dict] | None:
    """(state, arrays) of the last completed epoch, checked; None if no epoch completed.

    A checkpoint that is not a regular file, does not load, or lacks what a resume needs
    (its epochs, history, callback states, the arrays they name) is a DamagedRunError.
    Whether its arrays fit the model is checked by `restore_weights`.
    """
    import zipfile

    import numpy as np

    from .errors import DamagedRunError
    from .fileio import NotReadable, open_regular
    from .runfiles import check_checkpoint, damaged

    path = Path(run_dir) / CHECKPOINT_FILE
    if not os.path.lexists(path):
        return None
    try:
        stream = open_regular(path)
    except NotReadable as error:
        raise damaged(path, error.reason) from None
    with stream:
        try:
            with zipfile.ZipFile(stream) as archive:
                for member in archive.infolist():  # np.savez stores; a member that inflates far is a bomb
                    if member.file_size > 1 << 20 and member.file_size > 100 * max(member.compress_size, 1):
                        raise damaged(path, f"its member {member.filename} expands to {member.file_size:,} bytes (a zip bomb?)")
            stream.seek(0)
            with np.load(stream, allow_pickle=False) as stored:
                arrays = {key: stored[key] for key in stored.files}
        except DamagedRunError:
            raise
        except Exception as error:  # a truncated or foreign file: whatever zipfile or numpy raise
            raise damaged(path, f"not a readable checkpoint ({type(error).__name__}: {_short(error)})") from None
    if "state" not in arrays:
        raise damaged(path, "it holds no `state` (the epochs, history and callback states of a resume)")
    state_array = arrays.pop("state")
    if state_array.shape != () or state_array.dtype.kind != "U":
        raise damaged(path, f"its `state` must be JSON text; received an array of {state_array.dtype} shaped {list(state_array.shape)}")
    try:
        state = json.loads(str(state_array))
    except (ValueError, RecursionError) as error:
        raise damaged(path, f"its `state` is not valid JSON ({_short(error)})") from None
    return check_checkpoint(path, state, arrays), arrays


def _short(error: BaseException, limit: int = 200) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[:limit] + " ..."


def restore_weights(model, arrays: dict, *, path: str | Path = CHECKPOINT_FILE) -> None:
    """Put the checkpoint's model and optimizer variables back (the optimizer is built first).

    Every array is checked against the model before any is assigned: a wrong count or shape
    is a DamagedRunError naming `path` (the checkpoint), and the model is left as it was.
    """
    from .runfiles import damaged

    model.optimizer.build(model.trainable_variables)
    assignments = []
    for prefix, variables in (("model", list(model.variables)), ("optimizer", list(model.optimizer.variables))):
        stored = [name for name in arrays if name.startswith(prefix + ".") and name[len(prefix) + 1:].isdigit()]
        if len(stored) != len(variables):
            raise damaged(path, f"it holds {len(stored)} {prefix} arrays, but the run's model has {len(variables)} {prefix} variables")
        for index, variable in enumerate(variables):
            name = f"{prefix}.{index}"
            if name not in arrays:
                raise damaged(path, f"the array {name} is missing")
            array = arrays[name]
            wanted = tuple(int(size) for size in variable.shape)
            if tuple(array.shape) != wanted:
                label = getattr(variable, "path", None) or variable.name
                raise damaged(path, f"the array {name} has shape {list(array.shape)}, but the model's {label} has shape {list(wanted)}")
            assignments.append((variable, array))
    for variable, array in assignments:
        variable.assign(array)


def remove_partial_files(run_dir: Path) -> list[Path]:
    """Temporary files a killed process left beside their final names (never read as results)."""
    partial = [*Path(run_dir).glob(".*.tmp"), *Path(run_dir).glob(".model.*.keras")]
    for path in partial:
        _remove(path)
    return partial


def remove_checkpoint(run_dir: Path) -> None:
    _remove(Path(run_dir) / CHECKPOINT_FILE)
