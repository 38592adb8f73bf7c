"""`sweep`: an Optuna study of the experiment, trained by warm workers, ranked on a leaderboard.

The study lives in a storage: by default a journal file in the sweep folder, or a database that
several machines share. Every `nnflow sweep` of the same study (the same command again, on this
machine or another) adds workers to it; together they stop when `trials` trials have finished. Each
trial is a complete run folder under the sweep folder, exactly as `nnflow train` makes one. A study
that is finished trains nothing: the command prints its leaderboard. One that was stopped goes on
(an interrupted trial continues its run folder).
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ..errors import ConfigError, Problem, Terminated
from ..studies import Storage, counts, fail_lost, open_storage, open_study, requeue_interrupted, set_texts, wanted
from .sweep_grid import parse_grid
from .sweep_members import Member, SweepResult, exit_code, member_of, ranked, write_leaderboard
from .sweep_plan import MARKER, SweepOptions, SweepPlan, make_plan
from .sweep_pool import Pool
from .sweep_rank import higher_is_better
from .tracking_sweep import SweepTracking

WAIT_SECONDS = 2.0  # how often a sweep looks at trials that other processes are still training

__all__ = ["Member", "SweepOptions", "SweepResult", "higher_is_better", "parse_grid", "sweep"]


def sweep(
    config: str | Path,
    grids: Iterable[str] = (),
    overrides: Iterable[str] = (),
    *,
    jobs: int = 1,
    trials: int | None = None,
    sampler: str | None = None,
    pruner: str | None = None,
    metric: str | None = None,
    storage: str | None = None,
    study: str | None = None,
    out: str | Path | None = None,
    mlflow: bool = False,
    mlflow_models: str = "best",
    on_event: Callable[[str, Member], None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> SweepResult:
    """Search the experiment's `sweep:` space (or the `--grid` values) and rank the trials by the metric.

    With `mlflow`, the sweep is a parent MLflow run and each trial a run nested under it; the best
    trial logs its model at the end (every trial, with `mlflow_models="all"`)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    options = SweepOptions(
        str(config),
        tuple(grids),
        tuple(overrides),
        trials,
        sampler,
        pruner,
        metric,
        storage,
        study,
        None if out is None else str(out),
        jobs,
        mlflow,
        mlflow_models,
    )
    plan = make_plan(options)
    _prepare_folder(plan)
    store = open_storage(options.storage, plan.folder / "study.journal")
    try:
        the_study = open_study(store, plan.study, plan.sampler_for(0), plan.pruner_object())
        _write_marker(plan, store)
        with store.lock():
            fail_lost(the_study, store)
            requeue_interrupted(the_study)
        return _run(plan, store, the_study, on_event, on_note)
    finally:
        store.close()


def _run(plan: SweepPlan, store: Storage, study, on_event, on_note) -> SweepResult:
    """The study searched (MLflow told, with --mlflow), then ranked; the leaderboard written, even on Ctrl-C."""
    tracking = SweepTracking.start(plan, store, study, on_note) if plan.options.mlflow else None
    if tracking is not None:  # the workers nest their trials under this parent (None: MLflow cannot be reached)
        plan = dataclasses.replace(plan, options=dataclasses.replace(plan.options, mlflow_parent=tracking.parent))
    if on_event:
        for point, error in plan.invalid:
            on_event("finished", _refused(plan, point, error))
    try:
        with _signals_stop():
            _search(plan, store, study, plan.options.jobs, on_event, on_note)
    except KeyboardInterrupt as interrupt:
        partial = interrupt.sweep = _result(plan, store, study)  # type: ignore[attr-defined]  # for the CLI
        if tracking is not None:
            tracking.describe(partial)
        write_leaderboard(partial)
        if tracking is not None:
            tracking.end(partial, interrupted=True)
        raise
    result = _result(plan, store, study)
    if tracking is not None:
        tracking.describe(result)
    write_leaderboard(result)
    if tracking is not None:
        with _signals_stop():  # SIGTERM while the best model is logged: the sweep's own clean exit
            tracking.end(result)
    return result


def _search(plan: SweepPlan, store: Storage, study, jobs: int, on_event, on_note) -> None:
    """Workers while the study wants trials; then wait for trials that other processes still train."""

    def needed() -> bool:
        return wanted(counts(study), trials=plan.trials, max_failures=plan.max_failures, grid=plan.grid)

    waited = False
    while True:
        now = counts(study)
        if needed():
            left = (now.waiting if plan.grid else plan.trials - now.finished - now.running) or 1
            Pool(plan, study, min(jobs, left), on_event).run(needed)
            continue
        if not now.running:
            return
        if on_note and not waited:
            on_note(f"waiting for {now.running} trial(s) that other processes are training")
        waited = True
        time.sleep(WAIT_SECONDS)
        with store.lock():
            fail_lost(study, store)


@contextlib.contextmanager
def _signals_stop() -> Iterator[None]:
    """SIGTERM and SIGHUP (a cancelled CI job, a closed terminal) stop the sweep like Ctrl-C."""

    def stop(signum, frame):
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    previous = {number: signal.signal(number, stop) for number in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _result(plan: SweepPlan, store: Storage, study) -> SweepResult:
    trials = study.get_trials(deepcopy=False)
    members = [member_of(trial, _texts(plan, trial.params)) for trial in trials]
    continued = {t.user_attrs["retry_of"]: t.number for t in trials if isinstance(t.user_attrs.get("retry_of"), int)}
    for member in members:
        if member.status == "interrupted" and member.trial in continued:
            member.error = f"continued as trial {continued[member.trial] + 1:02d}"
    ranking = ranked(members, plan.metric, plan.higher_is_better)
    best = ranking[0] if ranking and ranking[0].status == "completed" else None
    result = SweepResult(
        folder=plan.folder,
        metric=plan.metric,
        higher_is_better=plan.higher_is_better,
        members=ranking,
        study=plan.study.name,
        storage=store.display,
        trials=plan.trials,
        sampler=plan.sampler,
        pruner=plan.pruner,
        best=best,
    )
    result.exit_code = exit_code(result, plan.max_failures)
    return result


def _texts(plan: SweepPlan, params: dict) -> dict[str, str]:
    if all(key in params for key in plan.space):
        return {text.split("=", 1)[0]: text.split("=", 1)[1] for text in set_texts(plan.space, params)}
    return {key: str(params.get(key, "")) for key in plan.space}  # a trial being claimed right now


def _refused(plan: SweepPlan, point: dict, error: ConfigError) -> Member:
    return Member(index=0, grid=dict(point), folder=None, status="failed", exit_code=error.exit_code, error=str(error))


def _prepare_folder(plan: SweepPlan) -> None:
    """A new folder, or the sweep folder of this same study (the command run again)."""
    from .. import runs
    from ..errors import DamagedRunError

    folder, marker = plan.folder, plan.folder / MARKER
    if folder.is_dir() and any(folder.iterdir()):
        if not marker.is_file():
            raise ConfigError(
                Problem(f"{folder} already exists and is not a sweep folder; choose another --out.", where="--out")
            )
        try:
            info = runs.read_json_file(marker)
        except DamagedRunError as error:
            raise ConfigError(Problem(f"{marker} is damaged ({error}); choose another --out.", where="--out")) from None
        if not isinstance(info, dict) or info.get("study") != plan.study.name:
            study = info.get("study") if isinstance(info, dict) else None
            raise ConfigError(
                Problem(
                    f"{folder} is the sweep folder of the study {study!r}, not {plan.study.name!r}; "
                    "choose another --out, or run that study.",
                    where="--out",
                )
            )
    else:
        runs.check_new_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "logs").mkdir(exist_ok=True)


def _write_marker(plan: SweepPlan, store: Storage) -> None:
    from .. import runs

    runs.write_json(
        plan.folder / MARKER,
        {
            "format": 1,
            "study": plan.study.name,
            "storage": str(Path(store.url).resolve()) if store.kind == "journal" else store.display,
            "experiment": plan.study.fingerprint,
            "config": str(plan.options.config),
            "metric": plan.metric,
        },
    )
