"""`train`: fit an experiment into a run folder, or resume one.

Here, every check that comes before training: the experiment, the run folder (a resumed run's
status, lock, data and checkpoint), the data, and on a multi-worker run the workers' agreement.
Then `train_steps.run_training` trains.
"""

from __future__ import annotations

import json
import secrets
import socket
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, DataError, Problem
from ..spec import Spec, load_spec
from .train_outcome import TrainResult
from .train_steps import Progress, Resumed, RunData, protected_files, run_training

if TYPE_CHECKING:
    from ..model_cache import ModelCache
    from ..runs import RunLock
    from .tracking_live import MlflowTracker

__all__ = ["RunData", "Progress", "Resumed", "TrainResult", "train"]


def train(
    config: str | Path | None = None,
    overrides: Iterable[str] = (),
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    progress: Progress | None = None,
    command: list[str] | None = None,
    models: ModelCache | None = None,
    tracker: MlflowTracker | None = None,
) -> TrainResult:
    """Train the experiment of `config` into a new run folder, or continue the run `resume`.

    Data problems raise before any folder is made. Once the run folder exists, its `run.json`
    always tells the truth: running, completed, pruned (by `progress.should_prune`), failed or interrupted.

    To train run after run in one process (a sweep's worker), call `training.fresh_session()`
    before each: the next run then starts as it would in a fresh process. `models`, a
    `ModelCache` kept across those runs, lets a run reuse the traced functions of an earlier
    run's model of the same shape (its numbers unchanged). A `tracker` logs the run to MLflow.
    """
    from .. import distribute, runs, training

    progress = progress or Progress()
    command = list(sys.argv if command is None else command)
    run_dir = runs.find_run(resume) if resume is not None else None
    spec = _experiment(config, overrides, run_dir)
    # multi_worker: before any other TensorFlow work. From here on, a worker whose checks fail
    # tells the others at the next agreement, so that none of them waits for it for ever.
    distribution = distribute.start(spec.fit.distribute, on_note=progress.on_note, join_timeout=spec.fit.join_timeout)
    found = _FolderChecks()  # holds the chief's lock on the run folder until its RunRecord takes it
    try:
        failure = None
        try:
            _check_folder(found, spec, run_dir, out, distribution)
        except Exception as error:
            failure = error
        seed = spec.seed if spec.seed is not None else secrets.randbelow(2**31)
        seed = distribute.agree_seed(distribution, seed, failure)  # the chief's, when each worker drew its own
        data, fingerprint, failure = _prepare_data(spec, seed, found.resumed, distribution, progress)
        distribute.check_same_experiment(distribution, fingerprint, failure)  # raises any worker's failure
        assert data is not None
        with training.seeded(seed):  # the seeds and op determinism are put back afterwards
            lock, found.lock = found.lock, None
            return run_training(
                spec,
                seed,
                data,
                progress,
                command,
                distribution,
                out=out,
                resumed=found.resumed,
                lock=lock,
                models=models,
                tracker=tracker,
            )
    finally:
        if found.lock is not None:
            found.lock.release()


@dataclass
class _FolderChecks:
    """What the checks of the run folder found. The lock is kept here as soon as it is taken, so
    that it is released whichever later check fails."""

    resumed: Resumed | None = None  # the run to continue, checked (its run.json read under the lock)
    lock: RunLock | None = None


def _experiment(config, overrides: Iterable[str], run_dir: Path | None) -> Spec:
    """The experiment file with `overrides`, or the resumed run's own experiment.yaml."""
    from ..runs import read_spec

    if run_dir is not None:
        return read_spec(run_dir)  # a damaged experiment.yaml is exit 6, like every run file
    spec = load_spec(config, overrides)
    if spec.data is None:
        raise ConfigError(
            Problem(
                "`nnflow train` needs a `data:` section: the table to train on (`train:`) and its `target:`.",
                where=str(spec.source),
            )
        )
    return spec


def _check_folder(found: _FolderChecks, spec: Spec, run_dir: Path | None, out, distribution) -> None:
    """Before any work: the run to resume can be continued (and the chief locks it), or the new run's folder can be made."""
    from .. import runs
    from ..builder import callback_paths

    if run_dir is not None:
        check_resumable(run_dir, runs.read_run_info(run_dir), writer=distribution.chief)  # a finished run is not locked
        if distribution.chief:  # every worker resumes the same folder: one lock, the chief's
            found.lock = runs.lock_run(run_dir, where="--resume")
        info = runs.read_run_info(run_dir)  # again, under the lock: another process may have moved it on
        check_resumable(run_dir, info, writer=distribution.chief)
        _check_same_files(run_dir, info)
        checkpoint = runs.load_checkpoint(run_dir)  # validated: damage is exit 6, the status unchanged
        callback_paths(spec, run_dir, protected=protected_files(spec))  # links planted in the folder since
        found.resumed = Resumed(run_dir, info, checkpoint)
    elif distribution.chief and out is not None:
        runs.check_new_folder(out)
    elif distribution.chief:
        runs.check_runs_root(spec.name)


def _prepare_data(
    spec: Spec, seed: int, resumed: Resumed | None, distribution, progress: Progress
) -> tuple[RunData | None, str, Exception | None]:
    """(the data prepared, the experiment's fingerprint, or the failure that every worker must hear of)."""
    from ..data import sha256
    from ..preprocessing import prepare

    try:
        prepared = prepare(spec, seed)
        for note in prepared.notes:
            if progress.on_note:
                progress.on_note(note)
        if resumed is not None:
            _check_same_preprocessing(resumed.run_dir, prepared)
        steps = _steps_per_execution(spec, prepared.train.rows, distribution, progress)
        if resumed is not None:  # checked against the files already
            hashes = {role: entry["sha256"] for role, entry in resumed.info.get("data", {}).items()}
        else:
            hashes = {role: sha256(path) for role, path in prepared.files.items()}
        return RunData(prepared, steps, hashes), _fingerprint(spec, seed, hashes, prepared.preprocessing), None
    except Exception as error:
        return None, "", error


def check_resumable(run_dir: Path, info: dict, *, writer: bool = True) -> None:
    """Whether `run_dir` can be continued; `writer` is False for a multi-worker run's other workers,
    which read the run folder (shared with the chief) but never write it."""
    from ..runs import is_live_nnflow_process

    status = info.get("status")
    if status == "completed":
        raise ConfigError(
            Problem(
                f"{run_dir} finished training already; there is nothing to resume. Start a new run with `nnflow train CONFIG`.",
                where="--resume",
            )
        )
    if status == "pruned":
        raise ConfigError(
            Problem(
                f"{run_dir} was pruned by a sweep after epoch {info.get('pruned_at_epoch', '?')}; it is finished, "
                "there is nothing to resume. Start a new run with `nnflow train CONFIG`.",
                where="--resume",
            )
        )
    if status == "failed":
        raise ConfigError(
            Problem(
                f"{run_dir} failed ({info.get('error', 'see run.json')}); resuming would repeat it. Start a new run.",
                where="--resume",
            )
        )
    if (
        writer
        and status == "running"
        and info.get("host") == socket.gethostname()
        and is_live_nnflow_process(info.get("pid"))
    ):
        raise ConfigError(
            Problem(
                f"{run_dir} is still being trained by process {info['pid']}; wait for it or stop it first.",
                where="--resume",
            )
        )


def _check_same_files(run_dir: Path, info: dict) -> None:
    """The data files the run started with, unchanged (checked before reading them)."""
    from ..runs import changed_data_file

    changed = changed_data_file(info)
    if changed is None:
        return
    if changed.gone:
        raise DataError(
            f"{changed.path}: the {changed.role} data of {run_dir} is gone; it cannot be resumed. Start a new run."
        )
    raise DataError(
        f"{changed.path}: the {changed.role} data changed since {run_dir} started (its sha256 differs); resuming would mix two datasets. Start a new run."
    )


def _check_same_preprocessing(run_dir: Path, prepared) -> None:
    from ..runs import read_preprocessing

    saved = json.loads(json.dumps(read_preprocessing(run_dir).to_json()))
    if saved != json.loads(json.dumps(prepared.preprocessing.to_json())):
        raise DataError(
            f"{run_dir}: the data no longer prepares as it did when the run started (another nnflow version?); start a new run."
        )


def _steps_per_execution(spec: Spec, rows: int, distribution, progress: Progress) -> int:
    """The file's steps per execution; 1 with several replicas, where Keras 3.15's multi-step
    loop cannot run the replicas' collective ops (it fails on its first execution)."""
    from .. import training

    batch_size = spec.fit.batch_size
    if batch_size < distribution.replicas:
        raise ConfigError(
            Problem(
                f"fit.batch_size is {batch_size}, fewer rows than the {distribution.replicas} replicas training in sync; "
                f"the batch size is global (split over the replicas): give at least {distribution.replicas}.",
                where=spec.locations.get("fit.batch_size", str(spec.source)),
            )
        )
    steps = training.steps_per_execution(spec.compile.steps_per_execution, rows, batch_size)
    if distribution.replicas > 1 and steps > 1:
        if spec.compile.steps_per_execution != "auto" and progress.on_note:
            progress.on_note(
                f"compile.steps_per_execution is {steps}, but with {distribution.replicas} replicas Keras runs one step per execution."
            )
        steps = 1
    return steps


def _fingerprint(spec: Spec, seed: int, hashes: dict, preprocessing) -> str:
    """What every worker of a multi-worker run must share: the experiment, seed, data and encodings."""
    experiment = spec.to_dict()
    experiment["data"] = {key: value for key, value in experiment["data"].items() if key not in hashes}
    return json.dumps(
        {"experiment": experiment, "seed": seed, "data": hashes, "preprocessing": preprocessing.to_json()},
        sort_keys=True,
        default=str,
    )
