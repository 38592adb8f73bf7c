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
import io
import json
import math
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import ConfigError, Problem

RUN_FILE = "run.json"
RUN_FORMAT = 1  # the layout of a run folder; raise it when an older nnflow could misread a new one
CHECKPOINT_FILE = "checkpoint.npz"
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
    """Atomic against a killed process; with `durable` (fsync) against a power cut too."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(handle, FILE_MODE)
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            if durable:
                os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        _remove(temporary)
        raise
    return path


def append_text(path: str | Path, text: str) -> None:
    """Append to a log-like file that other steps also write to (GitHub's step summary)."""
    with open(path, "a", encoding="utf-8") as stream:
        stream.write(text)


def write_json(path: Path, data: Any, *, durable: bool = True) -> Path:
    return write_text_atomic(path, json.dumps(finite(data), indent=2) + "\n", durable=durable)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


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
        from .data import table_format

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
    handle, temporary = tempfile.mkstemp(prefix=".model.", suffix=".keras", dir=path.parent)
    os.close(handle)
    try:
        model.save(temporary)
        os.chmod(temporary, FILE_MODE)
        with open(temporary, "rb") as stream:
            os.fsync(stream.fileno())
        os.replace(temporary, path)
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
        raise ConfigError(Problem(f"{out} already exists and is not an empty folder; choose a new --out folder.", where="--out"))
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(Problem(f"cannot make {out}: {parent} is a file, not a folder.", where="--out"))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(Problem(f"cannot make {out}: {parent} is not writable.", where="--out"))


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
    parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 1000):
        candidate = parent / (stamp if attempt == 1 else f"{stamp}_{attempt}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise ConfigError(f"cannot make a new run folder in {parent}")


def find_run(run: str | Path) -> Path:
    """A run folder, its `model.keras`, or the newest run inside `runs/NAME` (by start time)."""
    path = Path(run)
    if path.is_file() and (path.parent / RUN_FILE).is_file():  # a model file inside a run folder
        return path.parent
    if (path / RUN_FILE).is_file():
        return path
    if not path.exists():
        raise ConfigError(Problem(f"{path}: no such run folder. Runs are in runs/NAME/TIMESTAMP; `runs/NAME` means the newest.", where="RUN"))
    candidates = [child for child in path.iterdir() if (child / RUN_FILE).is_file()] if path.is_dir() else []
    if not candidates:
        raise ConfigError(Problem(f"{path}: not a run folder (no {RUN_FILE}) and holds no runs.", where="RUN"))
    return max(candidates, key=lambda child: (_started(child), child.name))


def open_run(run: str | Path) -> tuple[Path, dict, Path]:
    """(run folder, its run.json, the model file) of a finished run that this nnflow can read.

    RUN may name a model file inside a run folder; then that file is the model.
    """
    from . import __version__
    from .errors import UnsafeModelError

    run_dir = find_run(run)
    try:
        info = read_json(run_dir / RUN_FILE)
    except (OSError, ValueError) as error:
        raise UnsafeModelError(f"{run_dir / RUN_FILE}: unreadable ({error}); the run folder is damaged.") from None
    if not isinstance(info, dict):
        raise UnsafeModelError(f"{run_dir / RUN_FILE}: not an nnflow run record; the run folder is damaged.")
    run_format = info.get("format", 1)
    if not isinstance(run_format, int) or run_format > RUN_FORMAT:
        versions = info.get("versions")
        written_by = versions.get("nnflow", "?") if isinstance(versions, dict) else "?"
        raise UnsafeModelError(
            f"{run_dir} was written by nnflow {written_by} (run format {run_format}); "
            f"this nnflow ({__version__}) reads run format {RUN_FORMAT}. Use a newer nnflow, or train the run again."
        )
    model_path = Path(run) if Path(run).is_file() else run_dir / "model.keras"
    if not model_path.exists():
        status = info.get("status", "unknown")
        hint = f" Continue it with `nnflow train --resume {run_dir}`." if status in ("running", "interrupted") else ""
        raise ConfigError(Problem(f"{run_dir} has no model.keras: its training did not finish (status: {status}).{hint}", where="RUN"))
    return run_dir, info, model_path


def _started(run_dir: Path) -> str:
    try:
        return str(read_json(run_dir / RUN_FILE).get("started", ""))
    except (OSError, ValueError):
        return ""


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
    """(state, arrays) of the last completed epoch, or None if no epoch completed."""
    import numpy as np

    path = Path(run_dir) / CHECKPOINT_FILE
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    return json.loads(str(arrays.pop("state"))), arrays


def restore_weights(model, arrays: dict) -> None:
    """Put the checkpoint's model and optimizer variables back (the optimizer is built first)."""
    model.optimizer.build(model.trainable_variables)
    for prefix, variables in (("model", model.variables), ("optimizer", model.optimizer.variables)):
        for index, variable in enumerate(variables):
            variable.assign(arrays[f"{prefix}.{index}"])


def remove_partial_files(run_dir: Path) -> list[Path]:
    """Temporary files a killed process left beside their final names (never read as results)."""
    partial = [*Path(run_dir).glob(".*.tmp"), *Path(run_dir).glob(".model.*.keras")]
    for path in partial:
        _remove(path)
    return partial


def remove_checkpoint(run_dir: Path) -> None:
    _remove(Path(run_dir) / CHECKPOINT_FILE)
