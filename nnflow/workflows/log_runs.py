"""`nnflow log RUN... --mlflow`: finished run folders, and sweep folders, mirrored into MLflow
(`tracking_log.sync_folder` for each run; a sweep's trials nested under its parent run)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ConfigError, NnflowError, Problem
from ..tracking import Target
from ..tracking.connect import short_error
from .tracking_log import Logged, LogOptions, record_tracking, sync_folder


def log_runs(
    runs: list[str | Path], *, target: Target | None = None, on_note: Callable[[str], None] | None = None
) -> list[Logged]:
    """`nnflow log RUN... --mlflow`: each run folder (a sweep folder: its trials, nested under one parent
    run) mirrored into MLflow. A run that fails to log is reported, and the others go on."""
    from .. import runs as run_files
    from ..tracking import import_mlflow

    target = target or Target.from_environment()
    folders = _expand(runs)
    import_mlflow()
    client = _client(target)
    results = []
    for folder, parent in folders:
        if parent is not None:
            results.extend(_log_sweep(client, target, folder, parent, on_note))
            continue
        if run_files.read_run_info(folder)["status"] == "running":
            if on_note:
                on_note(f"{folder} is still training: log it once it has ended (or train it with --mlflow).")
            continue
        try:
            logged = sync_folder(client, target, folder, LogOptions(on_note=on_note))
            info = run_files.read_run_info(folder)
            record_tracking(info, target, logged.run_id, None)
            run_files.write_json(folder / run_files.RUN_FILE, info)
        except NnflowError:
            raise
        except Exception as error:
            logged = Logged(folder, None, error=short_error(error))
        results.append(logged)
    return results


def _client(target: Target) -> Any:
    """The MLflow client of `target`; a tracking URI MLflow does not take is exit 2."""
    from mlflow.exceptions import MlflowException

    try:
        return target.client()
    except MlflowException as error:
        raise ConfigError(
            Problem(
                f"MLflow cannot use the tracking URI {target.uri!r}: {short_error(error)}", where="MLFLOW_TRACKING_URI"
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
    """A sweep folder: its parent run (found or made), then each trial nested under it."""
    from .. import runs as run_files
    from .tracking_sweep import best_trial_folder, sweep_parent

    experiment = run_files.read_run_info(trials[0])["name"] if trials else folder.name
    parent = sweep_parent(client, target, folder, experiment)
    results = [Logged(folder, parent, parent=True)]
    best = best_trial_folder(folder)
    for trial in trials:
        options = LogOptions(model=trial == best, parent_run_id=parent, on_note=on_note, pictures=trial == best)
        try:
            logged = sync_folder(client, target, trial, options)
            info = run_files.read_run_info(trial)
            record_tracking(info, target, logged.run_id, None)
            run_files.write_json(trial / run_files.RUN_FILE, info)
        except Exception as error:
            if isinstance(error, NnflowError) and not isinstance(error, ConfigError):
                raise
            logged = Logged(trial, None, error=short_error(error))
        results.append(logged)
    return results
