"""`nnflow log RUN... --mlflow`: finished run folders, and sweep folders, mirrored into MLflow
(`tracking_log.sync_folder` for each run; a sweep's trials nested under its parent run)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ConfigError, NnflowError, Problem
from ..tracking import Target
from ..tracking.connect import short_error, shown_uri
from .tracking_log import Logged, LogOptions, record_tracking, sync_folder


def log_runs(
    runs: list[str | Path], *, target: Target | None = None, on_note: Callable[[str], None] | None = None
) -> list[Logged]:
    """`nnflow log RUN... --mlflow`: each run folder (a sweep folder: its trials, nested under one parent
    run) mirrored into MLflow. A run that fails to log (MLflow unreachable, a damaged run file) is
    reported with its reason, and the others go on."""
    from ..tracking import import_mlflow

    target = target or Target.from_environment()
    folders = _expand(runs)
    import_mlflow()
    client = _client(target)
    results: list[Logged] = []
    for folder, trials in folders:
        if trials is not None:
            results.extend(_log_sweep(client, target, folder, trials, on_note))
        else:
            logged = _log_one(client, target, folder, LogOptions(on_note=on_note))
            if logged is not None:
                results.append(logged)
    return results


def _log_one(client: Any, target: Target, folder: Path, options: LogOptions) -> Logged | None:
    """One run folder mirrored, and its run.json told where; None for a run still being trained."""
    from mlflow.exceptions import MlflowException

    from .. import runs as run_files

    try:
        info = run_files.read_run_info(folder)
        if info["status"] == "running" and _still_training(info):
            if options.on_note:
                options.on_note(
                    f"{folder} is still training: it is logged when it ends (with --mlflow), or log it then."
                )
            return None
        logged = sync_folder(client, target, folder, options)
        record_tracking(info, target, logged.run_id, None)
        run_files.write_json(folder / run_files.RUN_FILE, info)
        return logged
    except NnflowError as error:  # a damaged run file, a full disk: this run's problem, the others go on
        return Logged(folder, None, error=str(error), exit_code=error.exit_code)
    except (MlflowException, OSError) as error:  # MLflow's errors, and the network's under it
        return Logged(folder, None, error=short_error(error))


def _still_training(info: dict) -> bool:
    """A `running` run whose process is alive here, or that runs on another machine (it cannot be told)."""
    import socket

    from ..runs import is_live_nnflow_process

    return info.get("host") != socket.gethostname() or is_live_nnflow_process(info.get("pid"))


def _client(target: Target) -> Any:
    """The MLflow client of `target`; a tracking URI MLflow does not take is exit 2."""
    from mlflow.exceptions import MlflowException

    try:
        return target.client()
    except MlflowException as error:
        raise ConfigError(
            Problem(
                f"MLflow cannot use the tracking URI {shown_uri(target.uri or '')!r}: {short_error(error)}",
                where="MLFLOW_TRACKING_URI",
            )
        ) from None


def _expand(runs: list[str | Path]) -> list[tuple[Path, list[Path] | None]]:
    """Each RUN as (folder, None), or a sweep folder as (folder, its trials' folders)."""
    from ..runs import RUN_FILE, find_run
    from .sweep_plots import is_sweep_folder

    found: list[tuple[Path, list[Path] | None]] = []
    for run in runs:
        if is_sweep_folder(run):
            folder = Path(run)
            trials = sorted(child for child in folder.iterdir() if (child / RUN_FILE).is_file())
            found.append((folder, trials))
        else:
            found.append((find_run(run), None))
    if not found:
        raise ConfigError(Problem("give at least one run folder (or sweep folder) to log.", where="RUN"))
    return found


def _log_sweep(client: Any, target: Target, folder: Path, trials: list[Path], on_note) -> list[Logged]:
    """A sweep folder: its parent run (found or made), each trial nested under it (the best with its
    model), then the parent ended with the best trial's metric, as `sweep --mlflow` ends it."""
    from mlflow.exceptions import MlflowException

    from .. import runs as run_files
    from .tracking_sweep import best_trial_folder, end_parent_from_board, sweep_parent

    try:
        experiment = run_files.read_run_info(trials[0])["name"] if trials else folder.name
        parent = sweep_parent(client, target, folder, experiment)
    except NnflowError as error:
        return [Logged(folder, None, error=str(error), parent=True, exit_code=error.exit_code)]
    except (MlflowException, OSError) as error:
        return [Logged(folder, None, error=short_error(error), parent=True)]
    results = [Logged(folder, parent, parent=True)]
    best = best_trial_folder(folder)
    for trial in trials:
        is_best = best is not None and trial.resolve() == best.resolve()
        logged = _log_one(
            client, target, trial, LogOptions(model=is_best, pictures=is_best, parent_run_id=parent, on_note=on_note)
        )
        if logged is not None:
            results.append(logged)
    try:
        end_parent_from_board(client, parent, folder)
    except (NnflowError, MlflowException, OSError) as error:
        results[0] = Logged(
            folder, parent, error=f"the sweep's run could not be ended: {short_error(error)}", parent=True
        )
    return results
