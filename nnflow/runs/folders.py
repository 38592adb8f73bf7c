"""Finding and making run folders: `runs/NAME/TIMESTAMP`, `--out`, the newest run of a name."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from ..errors import ConfigError, Problem
from ..fileio import NotReadable, open_regular, os_reason, output_problem
from ..run_layout import RUN_FILE, RUNS_ROOT
from .atomic import remove_file
from .documents import read_run_info, run_started
from .lock import lock_holder
from .reading import damaged


def check_new_folder(out: str | Path) -> None:
    """`--out` must be a new or empty folder that can be made (checked before any work)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        holder = lock_holder(out) if out.is_dir() else None
        if holder is not None:
            raise ConfigError(
                Problem(
                    f"{out} is being trained by {holder}; choose a new --out folder, or wait for it.", where="--out"
                )
            )
        raise ConfigError(
            Problem(f"{out} already exists and is not an empty folder; choose a new --out folder.", where="--out")
        )
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(Problem(f"cannot make {out}: {parent} is a file, not a folder.", where="--out"))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(Problem(f"cannot make {out}: {parent} is not writable.", where="--out"))


def check_runs_root(name: str) -> None:
    """`runs/NAME` can be made and written (checked before any work, when there is no --out)."""
    problem = output_problem(RUNS_ROOT / name, folder=True)
    if problem is not None:
        raise ConfigError(
            Problem(
                f"cannot make run folders in {RUNS_ROOT / name}: {problem}. Run nnflow from another folder, or give --out DIR.",
                where="runs/",
            )
        )


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
        raise ConfigError(
            Problem(f"cannot make a run folder in {parent}: {os_reason(error)}. Give --out DIR.", where="runs/")
        ) from None
    raise ConfigError(f"cannot make a new run folder in {parent}")


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
        raise ConfigError(
            Problem(
                f"{path}: no such run folder. Runs are in runs/NAME/TIMESTAMP; `runs/NAME` means the newest.",
                where="RUN",
            )
        )
    candidates = [child for child in path.iterdir() if os.path.lexists(child / RUN_FILE)] if path.is_dir() else []
    if not candidates:
        raise ConfigError(Problem(f"{path}: not a run folder (no {RUN_FILE}) and holds no runs.", where="RUN"))
    return _checked_run_dir(max(candidates, key=lambda child: (run_started(child), child.name)))


def _checked_run_dir(run_dir: Path) -> Path:
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
    run_dir = find_run(run)
    info = read_run_info(run_dir)
    model_path = Path(run) if Path(run).is_file() else run_dir / "model.keras"
    if not os.path.lexists(model_path):
        status = info["status"]
        hint = f" Continue it with `nnflow train --resume {run_dir}`." if status in ("running", "interrupted") else ""
        raise ConfigError(
            Problem(f"{run_dir} has no model.keras: its training did not finish (status: {status}).{hint}", where="RUN")
        )
    return run_dir, info, model_path


def remove_partial_files(run_dir: Path) -> list[Path]:
    """Temporary files a killed process left beside their final names (never read as results)."""
    partial = [*Path(run_dir).glob(".*.tmp"), *Path(run_dir).glob(".model.*.keras")]
    for path in partial:
        remove_file(path)
    return partial
