"""The steps of a training run once every check has passed: build the model, open the run's
record, fit, then end it (`train_outcome`: the final metrics, the outcome). However it stops,
the run's `run.json` says how."""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..spec import Spec, check_gates
from .new_run import new_run_info, resolved_yaml
from .train_failures import mark_stopped
from .train_outcome import Fitted, TrainResult, complete, final_metrics, outcome

if TYPE_CHECKING:
    from ..model_cache import ModelCache
    from ..preprocessing import PreparedData
    from ..runs import Checkpoint, RunLock, RunRecord, WorkerRecord
    from .tracking_live import MlflowTracker


@dataclass
class Progress:
    """How training reports as it goes; `cli.py` supplies the printing.

    `should_prune(row)` is asked after each epoch (its checkpoint written, `on_epoch` called) with
    the epoch's history row (`epoch`, `loss`, `val_loss`, ...): True stops training after that
    epoch, and the run ends as a completed one does (final metrics, model, gates) but marked
    `pruned`, with `pruned_at_epoch`. An error it raises stops the run like any other in training.
    Under `multi_worker` every worker asks it: each must give the same answer.

    `checkpoint_seconds` spaces the checkpoints: 0 (the default) writes one after every epoch, so
    that every epoch reported can be resumed; a sweep's worker, whose epochs nobody watches, writes
    one when that many seconds have passed since the last, and after the last epoch (a resumed run
    then repeats at most those seconds of training).
    """

    verbose: int = 0  # 1: Keras's own progress bar
    on_epoch: Callable[[dict, int], None] | None = None  # (history row, configured epochs)
    on_note: Callable[[str], None] | None = None
    should_prune: Callable[[dict], bool] | None = None  # (history row) -> stop after this epoch
    checkpoint_seconds: float = 0.0


@dataclass(frozen=True)
class Resumed:
    """A run being continued: its folder, its run.json and its last checkpoint (None: no epoch completed)."""

    run_dir: Path
    info: dict
    checkpoint: Checkpoint | None


@dataclass(frozen=True)
class RunData:
    """The run's data, prepared, with what the run records of it."""

    prepared: PreparedData  # the splits, the files, the encodings
    steps_per_execution: int
    hashes: dict[str, str]  # role -> the sha256 of its data file


@dataclass
class _Fitting:
    """Where fitting starts: the file's callbacks (and nnflow's), the history so far."""

    user_callbacks: list
    callbacks: list
    history: list[dict] = field(default_factory=list)
    initial_epoch: int = 0
    stopped: bool = False  # a callback had stopped the resumed run: only finish it
    gradients: list[dict] | None = None  # fit.gradient_norms: the norms so far
    pruned_at: int | None = None  # the epoch after which `Progress.should_prune` stopped training
    tracker: MlflowTracker | None = None  # hears of each epoch once it is checkpointed


def run_training(
    spec: Spec,
    seed: int,
    data: RunData,
    progress: Progress,
    command: list[str],
    distribution,
    *,
    out,
    resumed: Resumed | None,
    lock: RunLock | None,
    models: ModelCache | None = None,
    tracker: MlflowTracker | None = None,
) -> TrainResult:
    """Train; the run folder is made (a new run) or taken over (`lock`, a resumed run) here.
    A `tracker` (the chief's) hears of the run's start, each epoch and its end."""
    started_clock = time.perf_counter()
    model = _build(spec, seed, data, distribution, lock, models)
    record = _open_record(
        spec, seed, data, command, distribution, out=out, resumed=resumed, lock=lock, started_clock=started_clock
    )
    try:
        fitting = _lockstep(distribution, lambda: _start_fit(spec, seed, model, record, data, resumed, distribution))
        _lockstep(distribution, record.save_info)  # the other workers train once the chief has marked it running
        tracker = tracker if record.writes else None
        if tracker is not None:  # once run.json says running: whatever happens next, `finish` hears of it
            tracker.start(record.folder, record.info, progress.on_note)
            fitting.tracker = tracker
        fitted = _fit(spec, seed, model, record, data, fitting, progress)
        metrics = final_metrics(model, data.prepared, spec.fit.batch_size)
        gates = check_gates(spec, metrics)
        record.info["gates"] = [gate.to_json() for gate in gates]
        # Every worker ends as the chief's writing did.
        _lockstep(distribution, lambda: complete(record, fitted, metrics, model))
    except BaseException as error:
        mark_stopped(error, record, distribution)
    finally:
        record.discard()  # a new run stopped before it started: no half-made folder (a no-op otherwise)
        try:
            _end_tracking(record, tracker)
        finally:
            record.close()
    return outcome(
        spec,
        record,
        fitted,
        metrics,
        gates,
        distribution,
        notes=data.prepared.notes,
        resumed=resumed is not None,
        started_clock=started_clock,
    )


def _end_tracking(record, tracker: MlflowTracker | None) -> None:
    """After run.json says how the run ended: the tracker mirrors it and run.json says where. A run
    resumed without a tracker leaves its MLflow run behind: run.json says that copy is out of date."""
    if not record.running:  # not this process's run to report on
        return
    if tracker is None:
        from ..tracking.content import mlflow_entry

        entry = mlflow_entry(record.info)
        if entry.get("status") == "logged" and record.info.get("resumes"):
            entry.update(
                status="outdated", error="resumed without --mlflow; nnflow log RUN --mlflow brings it up to date"
            )
            record.save_tracking()
        return
    try:
        tracker.finish(record.run_dir, record.info)
    except KeyboardInterrupt as interrupt:  # a second Ctrl-C while logging: the run is as it was, resumable
        interrupt.run_dir = record.run_dir  # type: ignore[attr-defined]  # the CLI's "continue with" hint
        raise
    finally:
        record.save_tracking()


def _lockstep(distribution, step: Callable):
    """Run `step` on every worker in lock-step: each learns whether every other's step held before any
    goes on (a worker whose step failed raises, and makes the others stop), then its result."""
    from .. import distribute

    result, failure = None, None
    try:
        result = step()
    except Exception as error:
        failure = error
    distribute.exchange(distribution, [], failure)
    return result


def _build(spec: Spec, seed: int, data: RunData, distribution, lock: RunLock | None, models: ModelCache | None):
    """The model, compiled, its variables the strategy's; the lock is released if it cannot be built.
    With `models` (a sweep's worker), a kept model of the same shape, holding this one's variables."""
    from .. import distribute, training
    from ..builder import build_model, normalization_layer
    from ..model_cache import shape_key

    preprocessing = data.prepared.preprocessing
    try:
        with distribution.scope():  # variables (model, optimizer, metrics) are the strategy's
            normalizer = None
            if preprocessing.normalize:
                normalizer = normalization_layer(preprocessing.mean, preprocessing.variance, preprocessing.input_shape)
            model = build_model(
                spec,
                input_shape=tuple(preprocessing.input_shape),
                normalizer=normalizer,
                steps_per_execution=data.steps_per_execution,
            )
            training.check_output(model, preprocessing, spec)
            distribute.prepare_model(distribution, model, data.prepared.train.x, data.prepared.train.y)
            if models is not None and distribution.mode == "none":
                shape = tuple(preprocessing.input_shape)
                key = shape_key(spec.to_dict(), shape, data.steps_per_execution, preprocessing.normalize)
                model = models.reuse(key, model)
    except BaseException:
        if lock is not None:  # no record holds it yet
            lock.release()
        raise
    return model


def _open_record(
    spec: Spec,
    seed: int,
    data: RunData,
    command: list[str],
    distribution,
    *,
    out,
    resumed: Resumed | None,
    lock,
    started_clock: float,
):
    """The run's record, its run.json filled in as it will say `running`: the chief's writes, the other workers' does not."""
    from .. import runs

    record: RunRecord | WorkerRecord
    if resumed and distribution.chief:
        record = runs.RunRecord.resumed(resumed.run_dir, resumed.info, started_clock, lock=lock, command=command)
    elif resumed:
        record = runs.WorkerRecord(resumed.run_dir, resumed.info)
    elif distribution.chief:
        record = runs.RunRecord.new(spec.name, out, new_run_info(spec, seed, data, command), started_clock)
    else:
        record = runs.WorkerRecord(None, {})
    info = record.info
    info.update(
        status="running", pid=os.getpid(), host=socket.gethostname(), steps_per_execution=data.steps_per_execution
    )
    info.update(epochs={"configured": spec.fit.epochs, "completed": info.get("epochs", {}).get("completed", 0)})
    if distribution.mode != "none":
        info["distribute"] = {
            "mode": distribution.mode,
            "replicas": distribution.replicas,
            "workers": distribution.workers,
        }
    info.pop("error", None)
    return record


def _start_fit(spec: Spec, seed: int, model, record, data: RunData, resumed: Resumed | None, distribution) -> _Fitting:
    """A new run's folder (locked), experiment and encodings; the callbacks, placed and checked once the
    run folder is known; a resumed run's checkpoint restored. All before anything trains."""
    from .. import runs, training
    from ..builder import build_callbacks

    record.create_folder(resolved_yaml(spec, seed), data.prepared.preprocessing)
    user_callbacks = build_callbacks(
        spec, base_dir=record.callbacks_dir, every_path=not record.writes, protected=protected_files(spec)
    )
    fitting = _Fitting(user_callbacks, list(user_callbacks))
    checkpoint = resumed.checkpoint if resumed else None
    if checkpoint is not None:  # checked whole before the run is marked running: damage changes nothing
        path = record.run_dir / runs.CHECKPOINT_FILE
        with distribution.scope():
            runs.restore_weights(model, checkpoint.arrays, path=path)
        fitting.history = checkpoint.state["history"]
        fitting.initial_epoch = checkpoint.state["epochs_completed"]
        fitting.stopped = checkpoint.state.get("stopped", False)
        fitting.pruned_at = checkpoint.state.get("pruned_at_epoch")
        fitting.callbacks.append(
            training.restore_callbacks(
                user_callbacks,
                checkpoint.state["callbacks"],
                checkpoint.arrays,
                fitting.initial_epoch,
                model=model,
                path=str(path),
            )
        )
    if spec.fit.gradient_norms:  # measured after the file's callbacks, before the epoch is recorded
        fitting.gradients = list(checkpoint.state.get("gradients", [])) if checkpoint is not None else []
    return fitting


def _fit(spec: Spec, seed: int, model, record, data: RunData, fitting: _Fitting, progress: Progress) -> Fitted:
    """`model.fit`, each epoch checkpointed (resumable) and then reported; a NaN loss marks the run failed."""
    from .. import training

    train_split, validation, batch_size = data.prepared.train, data.prepared.validation, spec.fit.batch_size
    stream = training.TrainingStream(
        train_split.x,
        train_split.y,
        batch_size,
        shuffle=spec.fit.shuffle,
        seed=seed,
        epochs=spec.fit.epochs,
        initial_epoch=fitting.initial_epoch,
        steps_per_execution=data.steps_per_execution,
    )
    validation_data = training.evaluation_dataset(validation.x, validation.y, batch_size) if validation else None
    if fitting.gradients is not None:
        fitting.callbacks.append(training.gradient_norms(train_split.x, train_split.y, fitting.gradients))
    outcome = training.fit(
        model,
        stream,
        validation_data,
        # a callback had stopped it: only finish (restore best weights)
        epochs=fitting.initial_epoch if fitting.stopped else spec.fit.epochs,
        initial_epoch=fitting.initial_epoch,
        callbacks=fitting.callbacks,
        history=fitting.history,
        on_epoch=_epoch_saver(model, record, fitting, progress, spec.fit.epochs),
        verbose=progress.verbose,
    )
    history = fitting.history
    completed = len(history) if outcome.nan_epoch is None else outcome.nan_epoch - 1
    record.info["epochs"]["completed"] = completed
    rows_per_second = (
        round(train_split.rows * outcome.epochs_run / outcome.fit_seconds, 1) if outcome.fit_seconds else None
    )
    record.info["timing"] = {
        "fit_seconds": round(outcome.fit_seconds, 4),
        "train_rows": train_split.rows,
        "epochs": outcome.epochs_run,
        "rows_per_second": rows_per_second,
    }
    if outcome.nan_epoch is not None:
        record.save_history(history)
        error = training.nan_error(outcome.nan_epoch, history, spec)
        record.finish("failed", error=str(error))
        raise type(error)(f"{error} The run {record.run_dir} is marked failed." if record.writes else str(error))
    return Fitted(history, fitting.gradients, completed, fitting.initial_epoch, fitting.pruned_at)


def _epoch_saver(model, record, fitting: _Fitting, progress: Progress, epochs: int) -> Callable[[dict], None]:
    """What runs after each epoch: checkpoint first, then report, so that every epoch a user has seen
    reported can be resumed; then `should_prune`, which may stop training after this epoch."""
    from .. import training

    history, gradients = fitting.history, fitting.gradients
    last_saved = [-math.inf]

    def checkpoint(row: dict, **extra) -> None:
        states, arrays = training.callback_state(fitting.user_callbacks)
        state = {
            "epochs_completed": row["epoch"],
            "stopped": bool(model.stop_training),
            "history": history,
            "callbacks": states,
            **extra,
        }
        if gradients is not None:
            state["gradients"] = gradients
        record.save_epoch(model, state, arrays, history, gradients)
        last_saved[0] = time.monotonic()

    def on_epoch(row: dict) -> None:
        due = time.monotonic() - last_saved[0] >= progress.checkpoint_seconds or row["epoch"] >= epochs
        if record.writes and due:  # the other workers' records keep nothing: no state to gather
            checkpoint(row)
        if fitting.tracker is not None:
            fitting.tracker.epoch(row)
        if progress.on_epoch:
            progress.on_epoch(row, epochs)
        if progress.should_prune is not None and progress.should_prune(row):
            fitting.pruned_at = row["epoch"]
            model.stop_training = True  # Keras ends `fit` after this epoch, as EarlyStopping does
            if record.writes:  # stopped before it is finished, a --resume only finishes it, pruned
                checkpoint(row, stopped=True, pruned_at_epoch=row["epoch"])

    return on_epoch


def protected_files(spec: Spec) -> list[Path]:
    """What a run reads and a callback must never write over: the experiment file and the data."""
    files = [spec.source] if spec.source else []
    if spec.data is not None:
        files += [value for value in (spec.data.train, spec.data.validation, spec.data.test) if isinstance(value, Path)]
    return files
