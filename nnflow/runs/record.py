"""The run folder as training writes it: `run.json`, the checkpoint, history, results.

`RunRecord.new` and `RunRecord.resumed` are the chief's (the only process that writes a
run folder); a multi-worker run's other workers hold a `WorkerRecord`, which writes
nothing: what their callbacks write goes to a scratch folder that `close` removes.
"""

from __future__ import annotations

import shlex
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from ..errors import OutputError
from ..run_layout import LOCK_FILE, RUN_FILE, RUNS_ROOT
from .atomic import history_csv, save_model, write_json, write_text_atomic
from .checkpoint import Checkpointer, remove_checkpoint
from .folders import new_run_dir, remove_partial_files
from .lock import RunLock, lock_run

# A run that trained to its end, its folder complete (metrics.json, model.keras): `completed`, or
# `pruned` (a sweep's pruner stopped it after an epoch). Neither is resumed; their checkpoint goes.
FINISHED_STATUSES = ("completed", "pruned")


def now() -> str:
    """The local time with its offset, as run files write it: `2026-11-27T08:00:21+01:00`."""
    return datetime.now(UTC).astimezone().isoformat(timespec="seconds")


class RunRecord:
    """A run folder this process writes: a new run's (made by `create_folder`) or a resumed one's.

    Once `save_info` has marked the run running, `run.json` always says how it ended.
    """

    writes = True

    def __init__(
        self,
        run_dir: Path | None,
        info: dict,
        started_clock: float,
        *,
        lock: RunLock | None = None,
        new_run: tuple[str, str | Path | None] | None = None,
    ):
        self.run_dir = run_dir
        self.info = info
        self.started_clock = started_clock
        self.lock = lock  # this process alone trains the folder
        self.new_run = new_run  # (name, --out) of a run whose folder is still to be made
        self.checkpointer: Checkpointer | None = None
        self.created: list[Path] = []  # folders this process made for a new run, deepest first
        self.running = False  # run.json says running: from here on it always says how the run ended
        self.finished = False  # run.json says how the run ended

    @classmethod
    def new(cls, name: str, out: str | Path | None, info: dict, started_clock: float) -> RunRecord:
        """A new run: its folder is made, and locked, by `create_folder`."""
        return cls(None, info, started_clock, new_run=(name, out))

    @classmethod
    def resumed(
        cls, run_dir: Path, info: dict, started_clock: float, *, lock: RunLock | None, command: list[str]
    ) -> RunRecord:
        """A run continued in its folder (locked by `lock`): the resume is noted, and the
        temporary files a killed process left are cleared."""
        info["resumes"] = [*info.get("resumes", []), {"at": now(), "command": shlex.join(command)}]
        record = cls(run_dir, info, started_clock, lock=lock)
        remove_partial_files(run_dir)
        return record

    def create_folder(self, resolved_yaml: str, preprocessing) -> None:
        """A new run's folder, locked before anything is written into it, with its experiment and encodings."""
        if self.new_run is None:  # a resumed run has its folder
            return
        name, out = self.new_run
        target = Path(out) if out is not None else RUNS_ROOT / name
        missing = [folder for folder in (target, *target.parents) if not folder.exists()]  # deepest first
        run_dir = new_run_dir(name, out)
        self.created = ([run_dir] if out is None else []) + missing
        self.lock = lock_run(run_dir, where="--out" if out is not None else "runs/")
        self.run_dir = run_dir
        self.new_run = None
        write_text_atomic(run_dir / "experiment.yaml", resolved_yaml)
        write_json(run_dir / "preprocessing.json", preprocessing.to_json())

    def discard(self) -> None:
        """Undo a new run that never started: what it wrote in its folder, and the folders it made.

        The folder was new or empty when this process locked it, so all it holds is this run's.
        """
        if self.running or self.run_dir is None or self.info.get("resumes"):
            return
        if self.lock is None:  # another process's folder (it holds the lock): not ours to touch
            return
        for child in self.run_dir.iterdir():
            if child.name == LOCK_FILE:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        self.lock.release(remove=True)
        self.lock = None
        for folder in self.created:
            try:
                folder.rmdir()  # only if empty
            except OSError:
                break
        self.run_dir = None

    @property
    def callbacks_dir(self) -> Path | None:
        """Where relative callback file arguments (CSVLogger's log, ...) land: the run folder (None until it is made)."""
        return self.run_dir

    @property
    def folder(self) -> Path:
        """The run folder, once it is made (a resumed run's from the start)."""
        if self.run_dir is None:
            raise RuntimeError("the run folder is not made yet: call create_folder first")
        return self.run_dir

    def save_info(self) -> None:
        write_json(self.folder / RUN_FILE, self.info)
        self.running = True

    def save_epoch(self, model, state: dict, arrays: dict, history: list[dict], gradients: list[dict] | None) -> None:
        """The checkpoint of the epoch just completed, then history.csv (and gradients.csv)."""
        if self.checkpointer is None:
            self.checkpointer = Checkpointer(self.folder, model)
        self.checkpointer.save(state, arrays)
        write_text_atomic(self.folder / "history.csv", history_csv(history), durable=False)
        if gradients is not None:
            write_text_atomic(self.folder / "gradients.csv", history_csv(gradients), durable=False)

    def save_history(self, history: list[dict]) -> None:
        write_text_atomic(self.folder / "history.csv", history_csv(history))

    def save_results(self, history: list[dict], gradients: list[dict] | None, metrics: dict, model) -> None:
        """history, gradients, metrics.json and, last, model.keras (its presence means a finished run)."""
        self.save_history(history)
        if gradients is not None:
            write_text_atomic(self.folder / "gradients.csv", history_csv(gradients))
        write_json(self.folder / "metrics.json", metrics)
        save_model(model, self.folder / "model.keras")

    def finish(
        self, status: str, *, error: str | None = None, checkpointed: bool = False, best_effort: bool = False
    ) -> None:
        """`run.json` says how the run ended; `checkpointed`: the epochs a --resume continues after.

        Only a run this process marked running is marked again: a run whose resume stopped
        before it started (a damaged checkpoint, a locked folder) keeps its status. With
        `best_effort` (the disk is full), a run.json that cannot be written stays `running`,
        which `nnflow runs` shows as killed and `--resume` continues all the same.
        """
        if self.run_dir is None or not self.running:  # not ours to mark
            return
        info = self.info
        if checkpointed and self.checkpointer is not None and self.checkpointer.epochs_saved is not None:
            info["epochs"]["completed"] = self.checkpointer.epochs_saved
        elapsed = time.perf_counter() - self.started_clock
        info.update(status=status, ended=now(), duration_seconds=round(info.get("duration_seconds", 0) + elapsed, 3))
        if error:
            info["error"] = error
        try:
            write_json(self.run_dir / RUN_FILE, info)
        except OutputError:
            if not best_effort:
                raise
            return
        self.finished = True
        if status in FINISHED_STATUSES:
            remove_checkpoint(self.run_dir)

    def save_tracking(self) -> None:
        """run.json again, once a tracker has added where the ended run is logged (best effort: a full
        disk leaves the run.json that says how the run ended)."""
        if self.run_dir is None or not self.finished:
            return
        try:
            write_json(self.run_dir / RUN_FILE, self.info)
        except OutputError:
            pass

    def close(self) -> None:
        """Release the run folder: its lock file goes once nothing will train the run again."""
        if self.lock is not None:
            self.lock.release(remove=self.finished and self.info.get("status") in (*FINISHED_STATUSES, "failed"))
            self.lock = None


class WorkerRecord:
    """A multi-worker run's other workers: the record of a run they train but never write.

    `run_dir` is the chief's folder when it is known (a resumed run). What the workers'
    callbacks write lands in a scratch folder that `close` removes.
    """

    writes = False
    running = False
    finished = False

    def __init__(self, run_dir: Path | None, info: dict):
        self.run_dir = run_dir
        self.info = info
        self.scratch = Path(tempfile.mkdtemp(prefix="nnflow-worker-"))

    @property
    def callbacks_dir(self) -> Path:
        return self.scratch

    def create_folder(self, resolved_yaml: str, preprocessing) -> None:
        pass

    def discard(self) -> None:
        pass

    def save_info(self) -> None:
        pass

    def save_epoch(self, model, state: dict, arrays: dict, history: list[dict], gradients: list[dict] | None) -> None:
        pass

    def save_history(self, history: list[dict]) -> None:
        pass

    def save_results(self, history: list[dict], gradients: list[dict] | None, metrics: dict, model) -> None:
        pass

    def finish(
        self, status: str, *, error: str | None = None, checkpointed: bool = False, best_effort: bool = False
    ) -> None:
        pass

    def save_tracking(self) -> None:
        pass

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)
