"""`train`: fit an experiment into a run folder, or resume one; the gates."""

from __future__ import annotations

import errno
import json
import os
import secrets
import shlex
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

from ..errors import ConfigError, NnflowError, Problem, TrainingError
from ..spec import COMPILE_KEYS, DATA_KEYS, FIT_KEYS, Spec, load_spec


@dataclass(frozen=True)
class GateResult:
    metric: str
    condition: str
    value: float | None
    passed: bool

    def __str__(self) -> str:
        shown = "not reported" if self.value is None else f"{self.value:.4g}"
        return f"{self.metric} = {shown}, expected {self.condition}"

    def to_json(self) -> dict:
        return {"metric": self.metric, "condition": self.condition, "value": self.value, "passed": self.passed}


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path | None  # None on a multi-worker run's other workers: only the chief writes one
    spec: Spec
    metrics: dict
    gates: tuple[GateResult, ...]
    epochs_completed: int
    stopped_early: bool
    resumed_at: int | None  # the epoch a resumed run continued after
    seconds: float
    timing: dict
    notes: tuple[str, ...]
    distribution: dict | None = None  # fit.distribute as it ran: mode, replicas, workers, task, chief

    @property
    def failed_gates(self) -> list[GateResult]:
        return [gate for gate in self.gates if not gate.passed]

    def to_json(self) -> dict:
        return {
            "ok": not self.failed_gates,
            "run": str(self.run_dir) if self.run_dir is not None else None,
            "name": self.spec.name,
            "epochs": {"configured": self.spec.fit.epochs, "completed": self.epochs_completed},
            "stopped_early": self.stopped_early,
            "resumed_after": self.resumed_at,
            "seconds": round(self.seconds, 3),
            "metrics": self.metrics,
            "gates": [gate.to_json() for gate in self.gates],
            "timing": self.timing,
            "distribute": self.distribution,
            "notes": list(self.notes),
        }


@dataclass
class Progress:
    """How training reports as it goes; `cli.py` supplies the printing."""

    verbose: int = 0  # 1: Keras's own progress bar
    on_epoch: Callable[[dict, int], None] | None = None  # (history row, configured epochs)
    on_note: Callable[[str], None] | None = None


def check_gates(spec: Spec, metrics: dict) -> tuple[GateResult, ...]:
    """Each `expect:` gate against the final metrics; a metric not reported fails its gate."""
    results = []
    for gate in spec.expect:
        value = metrics.get(gate.metric)
        results.append(GateResult(gate.metric, gate.condition, value, gate.holds(value)))
    return tuple(results)


def train(
    config: str | Path | None = None,
    overrides: Iterable[str] = (),
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    progress: Progress | None = None,
    command: list[str] | None = None,
) -> TrainResult:
    """Train the experiment of `config` into a new run folder, or continue the run `resume`.

    Data problems raise before any folder is made. Once the run folder exists, its
    `run.json` always tells the truth: running, completed, failed or interrupted.
    """
    from .. import distribute, runs
    from ..builder import callback_paths
    from ..data import sha256
    from ..preprocessing import prepare

    progress = progress or Progress()
    command = list(sys.argv if command is None else command)
    checkpoint = info = run_dir = None
    if resume is not None:
        run_dir = runs.find_run(resume)
        from ..runfiles import read_spec

        spec = read_spec(run_dir)  # a damaged experiment.yaml is exit 6, like every run file
    else:
        spec = load_spec(config, overrides)
        if spec.data is None:
            raise ConfigError(Problem("`nnflow train` needs a `data:` section: the table to train on (`train:`) and its `target:`.", where=str(spec.source)))
    # multi_worker: before any other TensorFlow work. From here on, a worker whose checks fail
    # tells the others at the next agreement, so that none of them waits for it for ever.
    distribution = distribute.start(spec.fit.distribute, on_note=progress.on_note, join_timeout=spec.fit.join_timeout)

    lock = None  # the chief's hold on the run folder, handed to its RunRecord
    try:
        failure = None
        try:
            if resume is not None:
                from ..runfiles import read_run_info

                _check_resumable(run_dir, read_run_info(run_dir), writer=distribution.chief)  # a finished run is not locked
                if distribution.chief:  # every worker resumes the same folder: one lock, the chief's
                    lock = runs.lock_run(run_dir, where="--resume")
                info = read_run_info(run_dir)  # again, under the lock: another process may have moved it on
                _check_resumable(run_dir, info, writer=distribution.chief)
                _check_same_files(run_dir, info)
                checkpoint = runs.load_checkpoint(run_dir)  # validated: damage is exit 6, the status unchanged
                callback_paths(spec, run_dir, protected=_protected_files(spec))  # links planted in the folder since
            elif distribution.chief and out is not None:
                runs.check_new_folder(out)
            elif distribution.chief:
                runs.check_runs_root(spec.name)
        except Exception as error:
            failure = error
        seed = spec.seed if spec.seed is not None else secrets.randbelow(2**31)
        seed = distribute.agree_seed(distribution, seed, failure)  # the chief's, when each worker drew its own

        failure = prepared = steps = hashes = None
        try:
            prepared = prepare(spec, seed)
            for note in prepared.notes:
                if progress.on_note:
                    progress.on_note(note)
            if info is not None:
                _check_same_preprocessing(run_dir, prepared)
            steps = _steps_per_execution(spec, prepared.train.rows, distribution, progress)
            if info is not None:  # checked against the files already
                hashes = {role: entry["sha256"] for role, entry in info.get("data", {}).items()}
            else:
                hashes = {role: sha256(path) for role, path in prepared.files.items()}
            fingerprint = _fingerprint(spec, seed, hashes, prepared.preprocessing)
        except Exception as error:
            failure, fingerprint = error, ""
        distribute.check_same_experiment(distribution, fingerprint, failure)

        resumed = Resumed(run_dir, info, checkpoint) if info else None
        handed, lock = lock, None
        return _run_training(spec, seed, prepared, steps, hashes, progress, command, distribution, out=out, resumed=resumed, lock=handed)
    finally:
        if lock is not None:
            lock.release()


@dataclass(frozen=True)
class Resumed:
    """A run being continued: its folder, its run.json and its last checkpoint (None: no epoch completed)."""

    run_dir: Path
    info: dict
    checkpoint: tuple[dict, dict] | None


def _protected_files(spec: Spec) -> list[Path]:
    """What a run reads and a callback must never write over: the experiment file and the data."""
    files = [spec.source] if spec.source else []
    if spec.data is not None:
        files += [value for value in (spec.data.train, spec.data.validation, spec.data.test) if isinstance(value, Path)]
    return files


def _check_resumable(run_dir: Path, info: dict, *, writer: bool = True) -> None:
    """Whether `run_dir` can be continued; `writer` is False for a multi-worker run's other workers,
    which read the run folder (shared with the chief) but never write it."""
    status = info.get("status")
    if status == "completed":
        raise ConfigError(Problem(f"{run_dir} finished training already; there is nothing to resume. Start a new run with `nnflow train CONFIG`.", where="--resume"))
    if status == "failed":
        raise ConfigError(Problem(f"{run_dir} failed ({info.get('error', 'see run.json')}); resuming would repeat it. Start a new run.", where="--resume"))
    if writer and status == "running" and info.get("host") == socket.gethostname() and _alive(info.get("pid")):
        raise ConfigError(Problem(f"{run_dir} is still being trained by process {info['pid']}; wait for it or stop it first.", where="--resume"))


def _alive(pid) -> bool:
    """Whether `pid` is a live nnflow process (a reused pid running something else is not)."""
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
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _check_same_files(run_dir: Path, info: dict) -> None:
    """The data files the run started with, unchanged (checked before reading them)."""
    from ..data import sha256
    from ..errors import DataError

    for role, entry in info.get("data", {}).items():
        path = Path(entry["path"])
        if not path.exists():
            raise DataError(f"{path}: the {role} data of {run_dir} is gone; it cannot be resumed. Start a new run.")
        if sha256(path) != entry["sha256"]:
            raise DataError(f"{path}: the {role} data changed since {run_dir} started (its sha256 differs); resuming would mix two datasets. Start a new run.")


def _check_same_preprocessing(run_dir: Path, prepared) -> None:
    from ..errors import DataError
    from ..runfiles import read_preprocessing

    saved = json.loads(json.dumps(read_preprocessing(run_dir).to_json()))
    if saved != json.loads(json.dumps(prepared.preprocessing.to_json())):
        raise DataError(f"{run_dir}: the data no longer prepares as it did when the run started (another nnflow version?); start a new run.")


def _versions() -> dict:
    import platform

    import keras
    import numpy
    import pandas
    import tensorflow

    from .. import __version__

    return {
        "nnflow": __version__,
        "keras": keras.__version__,
        "tensorflow": tensorflow.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "python": platform.python_version(),
    }


def _now() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def _run_training(spec: Spec, seed: int, prepared, steps: int, hashes: dict, progress: Progress, command, distribution, *, out, resumed: Resumed | None, lock) -> TrainResult:
    from .. import distribute, runs, training
    from ..builder import build_callbacks, build_model, normalization_layer
    from ..errors import DamagedRunError, OutputError

    started_clock = time.perf_counter()
    preprocessing = prepared.preprocessing
    train_split, validation = prepared.train, prepared.validation
    batch_size, epochs = spec.fit.batch_size, spec.fit.epochs

    try:
        training.seed_everything(seed)
        with distribution.scope():  # variables (model, optimizer, metrics) are the strategy's
            normalizer = None
            if preprocessing.normalize:
                normalizer = normalization_layer(preprocessing.mean, preprocessing.variance, preprocessing.input_shape)
            model = build_model(spec, input_shape=tuple(preprocessing.input_shape), normalizer=normalizer, steps_per_execution=steps)
            training.check_output(model, preprocessing, spec)
            distribute.prepare_model(distribution, model, train_split.x, train_split.y)
    except BaseException:
        if lock is not None:  # no record holds it yet
            lock.release()
        raise

    checkpoint = None
    if resumed:
        run_dir, info, checkpoint = resumed.run_dir, resumed.info, resumed.checkpoint
        info["resumes"] = [*info.get("resumes", []), {"at": _now(), "command": shlex.join(command)}]
        record = RunRecord(run_dir, info, started_clock, writes=distribution.chief, lock=lock)
        record.clean()
    elif distribution.chief:
        info = {
            "format": runs.RUN_FORMAT,
            "name": spec.name,
            "config": str(spec.source) if spec.source else None,
            "command": shlex.join(command),
            "seed": seed,
            "started": _now(),
            "data": {role: {"path": str(path.resolve()), "sha256": hashes[role]} for role, path in prepared.files.items()},
            "rows": {role: split.rows for role, split in prepared.splits.items()},
            "versions": _versions(),
        }
        record = RunRecord(None, info, started_clock)
    else:
        record = RunRecord(None, {}, started_clock, writes=False)
    info = record.info
    info.update(status="running", pid=os.getpid(), host=socket.gethostname(), steps_per_execution=steps)
    info.update(epochs={"configured": epochs, "completed": info.get("epochs", {}).get("completed", 0)})
    if distribution.mode != "none":
        info["distribute"] = {"mode": distribution.mode, "replicas": distribution.replicas, "workers": distribution.workers}
    info.pop("error", None)

    try:
        failure = None
        history: list[dict] = []
        initial_epoch = 0
        stopped = False
        try:
            if record.writes and record.run_dir is None:  # a new run: its folder (locked), experiment and encodings
                record.create(spec.name, out)
                record.write_experiment(_resolved_yaml(spec, seed), preprocessing)
            # Placed and checked once the run folder is known, before anything trains.
            user_callbacks = build_callbacks(spec, base_dir=record.callbacks_dir, every_path=not record.writes, protected=_protected_files(spec))
            callbacks = list(user_callbacks)
            if checkpoint is not None:  # checked whole before the run is marked running: damage changes nothing
                state, arrays = checkpoint
                with distribution.scope():
                    runs.restore_weights(model, arrays, path=record.run_dir / runs.CHECKPOINT_FILE)
                history = state["history"]
                initial_epoch = state["epochs_completed"]
                stopped = state.get("stopped", False)
                callbacks.append(training.restore_callbacks(
                    user_callbacks, state["callbacks"], arrays, initial_epoch, model=model, path=str(record.run_dir / runs.CHECKPOINT_FILE),
                ))
        except Exception as error:
            failure = error
        distribute.exchange(distribution, [], failure)  # every worker's checks held: now the run starts
        failure = None
        try:
            record.save_info()
        except Exception as error:
            failure = error
        distribute.exchange(distribution, [], failure)  # the other workers train once the chief has marked it running

        stream = training.TrainingStream(
            train_split.x,
            train_split.y,
            batch_size,
            shuffle=spec.fit.shuffle,
            seed=seed,
            epochs=epochs,
            initial_epoch=initial_epoch,
            steps_per_execution=steps,
        )
        validation_data = training.evaluation_dataset(validation.x, validation.y, batch_size) if validation else None

        gradients: list[dict] | None = None
        if spec.fit.gradient_norms:  # measured after the file's callbacks, before the epoch is recorded
            gradients = list(checkpoint[0].get("gradients", [])) if checkpoint is not None else []
            callbacks.append(training.gradient_norms(train_split.x, train_split.y, gradients))

        def on_epoch(row: dict) -> None:
            # Checkpoint first, then report: every epoch a user has seen reported can be resumed.
            if record.writes:
                states, arrays = training.callback_state(user_callbacks)
                state = {"epochs_completed": row["epoch"], "stopped": bool(model.stop_training), "history": history, "callbacks": states}
                if gradients is not None:
                    state["gradients"] = gradients
                record.save_epoch(model, state, arrays, history, gradients)
            if progress.on_epoch:
                progress.on_epoch(row, epochs)

        outcome = training.fit(
            model,
            stream,
            validation_data,
            epochs=initial_epoch if stopped else epochs,  # a callback had stopped it: only finish (restore best weights)
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            history=history,
            on_epoch=on_epoch,
            verbose=progress.verbose,
        )
        completed = len(history) if outcome.nan_epoch is None else outcome.nan_epoch - 1
        info["epochs"]["completed"] = completed
        info["timing"] = {
            "fit_seconds": round(outcome.fit_seconds, 4),
            "train_rows": train_split.rows,
            "epochs": outcome.epochs_run,
            "rows_per_second": round(train_split.rows * outcome.epochs_run / outcome.fit_seconds, 1) if outcome.fit_seconds else None,
        }
        if outcome.nan_epoch is not None:
            record.save_history(history)
            error = training.nan_error(outcome.nan_epoch, history, spec)
            record.finish("failed", error=str(error))
            raise type(error)(f"{error} The run {record.run_dir} is marked failed." if record.writes else str(error))

        metrics: dict[str, float] = {}
        for role, prefix in (("train", ""), ("validation", "val_"), ("test", "test_")):
            split = prepared.splits.get(role)
            if split is not None:  # every worker evaluates its share: the metrics combine all of them
                scores = training.evaluate(model, training.evaluation_dataset(split.x, split.y, batch_size))
                metrics.update({prefix + key: value for key, value in scores.items()})
        gates = check_gates(spec, metrics)
        info["gates"] = [gate.to_json() for gate in gates]
        failure = None
        try:
            record.save_results(history, gradients, metrics, model)
            record.finish("completed")
        except Exception as error:
            failure = error
        distribute.exchange(distribution, [], failure)  # the other workers end as the chief's writing did
    except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM (errors.Terminated)
        record.finish("interrupted", checkpointed=True, best_effort=True)
        if record.writes and record.running:
            interrupt.run_dir = record.run_dir  # for the message that says how to resume
        raise
    except (OutputError, OSError) as error:
        full = error if isinstance(error, OutputError) else runs.disk_error(error)
        if full is None:  # not a write that failed: a bug
            record.finish("failed", error=f"{type(error).__name__}: {error}")
            raise
        # A full disk (nnflow's writes, or a callback's own file): every file nnflow wrote is whole,
        # the last checkpoint too, so the run is resumable once there is space.
        record.finish("interrupted", error=str(full), checkpointed=True, best_effort=True)
        if record.running:
            cause = getattr(full, "errno", None)
            fix = "Free some space" if cause in (None, errno.ENOSPC, errno.EDQUOT) else "Fix that"
            raise OutputError(
                f"{full} Training stopped; the run is kept as interrupted. {fix}, then continue it "
                f"with `nnflow train --resume {record.run_dir}`."
            ) from None
        raise full from None
    except DamagedRunError:
        raise  # a run file is damaged: the run's status stays as it was
    except NnflowError as error:
        if not record.finished:  # a NaN loss has marked the run already
            record.finish("failed", error=str(error))
        raise
    except BaseException as error:
        lost = distribute.lost_worker(distribution, error)
        if lost is None:
            record.finish("failed", error=f"{type(error).__name__}: {error}")
            raise
        # Not this run's fault: keep it resumable, from the last epoch every worker finished.
        record.finish("interrupted", error=lost, checkpointed=True)
        run_dir = record.run_dir
        how = f"`nnflow train --resume {run_dir}`" if run_dir is not None else "`nnflow train --resume` and the chief's run folder"
        raise TrainingError(
            f"{lost}; training stopped. The run is kept as interrupted: start every worker again "
            f"with {how} (each with its TF_CONFIG) to continue it."
        ) from None
    finally:
        record.discard()  # a new run stopped before it started: no half-made folder (a no-op otherwise)
        record.close()
    return TrainResult(
        run_dir=record.run_dir if record.writes else None,  # a resumed run's other workers know it, but do not write it
        spec=spec,
        metrics=metrics,
        gates=gates,
        epochs_completed=completed,
        stopped_early=completed < epochs,
        resumed_at=initial_epoch if resumed else None,
        seconds=time.perf_counter() - started_clock,
        timing=info["timing"],
        notes=tuple(prepared.notes),
        distribution=distribution.to_json() if distribution.mode != "none" else None,
    )


class RunRecord:
    """The run folder as training writes it: `run.json`, the checkpoint, history, results.

    Only the chief writes one. A multi-worker run's other workers hold a record that writes
    nothing (`writes` is False); what their callbacks write goes to a scratch folder that
    `close` removes.
    """

    def __init__(self, run_dir: Path | None, info: dict, started_clock: float, *, writes: bool = True, lock=None):
        self.run_dir = run_dir
        self.info = info
        self.started_clock = started_clock
        self.writes = writes
        self.lock = lock  # runs.RunLock: this process alone trains the folder (the chief's)
        self.scratch = None if writes else Path(tempfile.mkdtemp(prefix="nnflow-worker-"))
        self.checkpointer = None
        self.created: list[Path] = []  # folders this process made for a new run, deepest first
        self.running = False  # run.json says running: from here on it always says how the run ended
        self.finished = False  # run.json says how the run ended

    def create(self, name: str, out) -> None:
        """A new run's folder, locked before anything is written into it."""
        from .. import runs

        target = Path(out) if out is not None else runs.RUNS_ROOT / name
        missing = [folder for folder in (target, *target.parents) if not folder.exists()]  # deepest first
        run_dir = runs.new_run_dir(name, out)
        self.created = ([run_dir] if out is None else []) + missing
        self.lock = runs.lock_run(run_dir, where="--out" if out is not None else "runs/")
        self.run_dir = run_dir

    def discard(self) -> None:
        """Undo a new run that never started: what it wrote in its folder, and the folders it made.

        The folder was new or empty when this process locked it, so all it holds is this run's.
        """
        if not self.writes or self.running or self.run_dir is None or self.info.get("resumes"):
            return
        if self.lock is None:  # another process's folder (it holds the lock): not ours to touch
            return
        from .. import runs

        for child in self.run_dir.iterdir():
            if child.name == runs.LOCK_FILE:
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
    def callbacks_dir(self) -> Path:
        """Where relative callback file arguments (CSVLogger's log, ...) land."""
        return self.run_dir if self.writes else self.scratch

    def clean(self) -> None:
        """Temporary files a killed process left beside their final names."""
        from .. import runs

        if self.writes:
            runs.remove_partial_files(self.run_dir)

    def write_experiment(self, resolved_yaml: str, preprocessing) -> None:
        from .. import runs

        if not self.writes:
            return
        runs.write_text_atomic(self.run_dir / "experiment.yaml", resolved_yaml)
        runs.write_json(self.run_dir / "preprocessing.json", preprocessing.to_json())

    def save_info(self) -> None:
        from .. import runs

        if self.writes:
            runs.write_json(self.run_dir / runs.RUN_FILE, self.info)
            self.running = True

    def save_epoch(self, model, state: dict, arrays: dict, history: list[dict], gradients: list[dict] | None) -> None:
        """The checkpoint of the epoch just completed, then history.csv (and gradients.csv)."""
        from .. import runs

        if not self.writes:
            return
        if self.checkpointer is None:
            self.checkpointer = runs.Checkpointer(self.run_dir, model)
        self.checkpointer.save(state, arrays)
        runs.write_text_atomic(self.run_dir / "history.csv", runs.history_csv(history), durable=False)
        if gradients is not None:
            runs.write_text_atomic(self.run_dir / "gradients.csv", runs.history_csv(gradients), durable=False)

    def save_history(self, history: list[dict]) -> None:
        from .. import runs

        if self.writes:
            runs.write_text_atomic(self.run_dir / "history.csv", runs.history_csv(history))

    def save_results(self, history: list[dict], gradients: list[dict] | None, metrics: dict, model) -> None:
        """history, gradients, metrics.json and, last, model.keras (its presence means a finished run)."""
        from .. import runs

        if not self.writes:
            return
        self.save_history(history)
        if gradients is not None:
            runs.write_text_atomic(self.run_dir / "gradients.csv", runs.history_csv(gradients))
        runs.write_json(self.run_dir / "metrics.json", metrics)
        runs.save_model(model, self.run_dir / "model.keras")

    def finish(self, status: str, *, error: str | None = None, checkpointed: bool = False, best_effort: bool = False) -> None:
        """`run.json` says how the run ended; `checkpointed`: the epochs a --resume continues after.

        Only a run this process marked running is marked again: a run whose resume stopped
        before it started (a damaged checkpoint, a locked folder) keeps its status. With
        `best_effort` (the disk is full), a run.json that cannot be written stays `running`,
        which `nnflow runs` shows as killed and `--resume` continues all the same.
        """
        from .. import runs
        from ..errors import OutputError

        if not self.writes or self.run_dir is None or not self.running:  # not ours to mark
            return
        info = self.info
        if checkpointed and self.checkpointer is not None and self.checkpointer.epochs_saved is not None:
            info["epochs"]["completed"] = self.checkpointer.epochs_saved
        elapsed = time.perf_counter() - self.started_clock
        info.update(status=status, ended=_now(), duration_seconds=round(info.get("duration_seconds", 0) + elapsed, 3))
        if error:
            info["error"] = error
        try:
            runs.write_json(self.run_dir / runs.RUN_FILE, info)
        except OutputError:
            if not best_effort:
                raise
            return
        self.finished = True
        if status == "completed":
            runs.remove_checkpoint(self.run_dir)

    def close(self) -> None:
        """Release the run folder (its lock file goes once nothing will train the run again) and the scratch folder."""
        if self.lock is not None:
            self.lock.release(remove=self.finished and self.info.get("status") in ("completed", "failed"))
            self.lock = None
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


def _steps_per_execution(spec: Spec, rows: int, distribution, progress: Progress) -> int:
    """The file's steps per execution; 1 with several replicas, where Keras 3.15's multi-step
    loop cannot run the replicas' collective ops (it fails on its first execution)."""
    from .. import training

    batch_size = spec.fit.batch_size
    if batch_size < distribution.replicas:
        raise ConfigError(Problem(
            f"fit.batch_size is {batch_size}, fewer rows than the {distribution.replicas} replicas training in sync; "
            f"the batch size is global (split over the replicas): give at least {distribution.replicas}.",
            where=spec.locations.get("fit.batch_size", str(spec.source)),
        ))
    steps = training.steps_per_execution(spec.compile.steps_per_execution, rows, batch_size)
    if distribution.replicas > 1 and steps > 1:
        if spec.compile.steps_per_execution != "auto" and progress.on_note:
            progress.on_note(f"compile.steps_per_execution is {steps}, but with {distribution.replicas} replicas Keras runs one step per execution.")
        steps = 1
    return steps


def _fingerprint(spec: Spec, seed: int, hashes: dict, preprocessing) -> str:
    """What every worker of a multi-worker run must share: the experiment, seed, data and encodings."""
    experiment = spec.to_dict()
    experiment["data"] = {key: value for key, value in experiment["data"].items() if key not in hashes}
    return json.dumps({"experiment": experiment, "seed": seed, "data": hashes, "preprocessing": preprocessing.to_json()}, sort_keys=True, default=str)


def _resolved_yaml(spec: Spec, seed: int) -> str:
    """The experiment as it ran: defaults, overrides and the seed filled in; data paths absolute."""
    from ..yamlio import dump_yaml

    resolved = spec.to_dict()
    resolved["seed"] = seed
    data = dict(resolved["data"])
    for key in ("train", "validation", "test"):
        value = getattr(spec.data, key)
        if isinstance(value, Path):
            data[key] = str(value.resolve())
    resolved["data"] = data
    # In the order SPEC.md writes them, not the order defaults were merged in.
    for section, keys in (("data", DATA_KEYS), ("compile", COMPILE_KEYS), ("fit", FIT_KEYS)):
        if isinstance(resolved.get(section), dict):
            resolved[section] = {key: resolved[section][key] for key in keys if key in resolved[section]}
    comment = "The resolved experiment of this run (defaults, overrides and seed applied).\nFrom: " + str(spec.source) + (
        f" with --set {' --set '.join(spec.overrides)}" if spec.overrides else ""
    )
    # Strings such as `1e3` quoted: nnflow's YAML 1.2 reader must read the file back as it was.
    return dump_yaml(resolved, comment=comment)
