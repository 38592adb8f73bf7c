"""A sweep in MLflow: one parent run, each trial's run nested under it.

The parent is found by the sweep's uuid (made from its study and experiment, the same on every
machine), and its id is kept in the study: every machine working on a study shared in a database
nests its trials under the same parent. When the sweep ends, the parent gets the best trial's metric
and run, and the best trial its model (the others log none unless asked).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..tracking import Target, mirror
from ..tracking.connect import short_error, shown_uri
from ..tracking.content import MAX_PARAM_VALUE

PARENT_ATTR = "nnflow_mlflow_parent"  # the study's user attribute: {run_id, tracking_uri}
_SWEEPS = uuid.UUID("0b7e3c1a-4a5f-4e0e-9f53-5d8e1c7a2b90")


def sweep_uuid(study: str, fingerprint: str) -> str:
    return str(uuid.uuid5(_SWEEPS, f"{study}|{fingerprint}"))


def sweep_parent(
    client: Any, target: Target, folder: Path, experiment: str, *, study: Any = None, store: Any = None
) -> str:
    """The MLflow run id of the sweep in `folder` (its sweep.json names the study): the one the study
    keeps (`study`, read and written under the storage's lock), else the one tagged with the sweep's
    uuid, else a new one, in the MLflow experiment of its trials (`experiment`, unless MLFLOW_EXPERIMENT_NAME)."""
    from ..runs import read_json_file
    from .sweep_plan import MARKER

    marker = read_json_file(folder / MARKER)
    if study is None:
        return _find_or_create(client, target, folder, marker, experiment)
    where = shown_uri(target.resolved_uri())  # the study may be shared: never a password in it
    with store.lock():
        kept = study.user_attrs.get(PARENT_ATTR)
        if isinstance(kept, dict) and kept.get("tracking_uri") == where and _exists(client, kept):
            return str(kept["run_id"])
        run_id = _find_or_create(client, target, folder, marker, experiment)
        if not isinstance(kept, dict) or kept.get("tracking_uri") == where:  # not over another store's parent
            study.set_user_attr(PARENT_ATTR, {"run_id": run_id, "tracking_uri": where})
        return run_id


def _exists(client: Any, kept: dict) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(str(kept.get("run_id"))).info.lifecycle_stage == "active"
    except MlflowException:
        return False


def _find_or_create(client: Any, target: Target, folder: Path, marker: dict, experiment: str) -> str:
    from mlflow.entities import Param

    sweep_id = sweep_uuid(str(marker.get("study")), str(marker.get("experiment")))
    experiment_id = target.experiment_id(client, experiment)
    found = mirror.find_by_uuid(client, experiment_id, sweep_id)
    if found is not None:
        return found
    tags = {
        "nnflow.run_uuid": sweep_id,
        "nnflow.kind": "sweep",
        "nnflow.sweep.study": str(marker.get("study")),
        "nnflow.sweep.folder": str(folder.resolve()),
        "nnflow.sweep.metric": str(marker.get("metric")),
        "nnflow.sweep.storage": str(marker.get("storage")),
    }
    run = client.create_run(experiment_id, tags=tags, run_name=f"{marker.get('study')} (sweep)")
    params = [Param("config", str(marker.get("config"))[:MAX_PARAM_VALUE]), Param("metric", str(marker.get("metric")))]
    client.log_batch(run.info.run_id, params=params)
    return str(run.info.run_id)


def _board(folder: Path) -> dict:
    """The sweep's leaderboard.json ({} when there is none, or it is damaged)."""
    from ..errors import NnflowError
    from ..runs import read_json_file

    try:
        board = read_json_file(folder / "leaderboard.json")
    except NnflowError:
        return {}
    return board if isinstance(board, dict) else {}


def _best_member(board: dict) -> dict | None:
    for member in board.get("members", []):
        if isinstance(member, dict) and member.get("member") == board.get("best") and member.get("run"):
            return member
    return None


def best_trial_folder(folder: Path) -> Path | None:
    """The best trial's run folder in the sweep folder, from its leaderboard.json (None: no best).
    The leaderboard's paths are as the sweep was run (relative to its folder then): the name decides."""
    member = _best_member(_board(folder))
    return folder / Path(member["run"]).name if member else None


def end_parent_from_board(client: Any, run_id: str, folder: Path) -> None:
    """`nnflow log SWEEP`: the parent run ended as `sweep --mlflow` ends it, from the leaderboard."""
    board = _board(folder)
    member = _best_member(board) or {}
    value = member.get("metric") if isinstance(member.get("metric"), (int, float)) else None
    trials = board.get("trials")
    finished = trials.get("finished") if isinstance(trials, dict) else None
    _close_parent(client, run_id, finished, str(board.get("metric")), value, member.get("run"), "FINISHED")


def end_parent(client: Any, run_id: str, result: Any, *, interrupted: bool = False) -> None:
    """The parent run at the end of a sweep: its best trial's metric and run, its trial counts, its status."""
    best = result.best
    value = best.metric_value(result.metric) if best is not None else None
    best_run = best.folder if best is not None else None
    status = "KILLED" if interrupted else "FINISHED"
    _close_parent(client, run_id, result.finished, result.metric, value, best_run, status)


def _close_parent(
    client: Any, run_id: str, finished: Any, metric: str, value: float | None, best_run: Any, status: str
) -> None:
    from mlflow.entities import Metric, RunTag

    tags = [RunTag("nnflow.sweep.trials_finished", str(finished))]
    if best_run is not None:
        tags.append(RunTag("nnflow.sweep.best_run", str(best_run)))
    metrics = [] if value is None else [Metric(f"best_{metric}", float(value), int(time.time() * 1000), 0)]
    client.log_batch(run_id, metrics=metrics, tags=tags)
    client.set_terminated(run_id, status=status)


@dataclass
class SweepTracking:
    """A sweep's MLflow parent run, as the command that runs the sweep keeps it (None: MLflow cannot be reached)."""

    plan: Any
    target: Target
    client: Any = None
    parent: str | None = None
    on_note: Callable[[str], None] | None = None

    @classmethod
    def start(cls, plan: Any, store: Any, study: Any, on_note: Callable[[str], None] | None) -> SweepTracking:
        """The parent run found or made (its id kept in the study); a warning, and no tracking, when MLflow fails."""
        from ..tracking import import_mlflow

        import_mlflow()
        tracking = cls(plan, Target.from_environment(), on_note=on_note)
        try:
            tracking.client = tracking.target.client()
            tracking.parent = sweep_parent(
                tracking.client, tracking.target, plan.folder, plan.spec.name, study=study, store=store
            )
        except Exception as error:  # noqa: BLE001 - tracking never stops a sweep
            tracking.note(
                f"MLflow cannot be used ({short_error(error)}); the sweep goes on without tracking. "
                f"Log it later: nnflow log {plan.folder} --mlflow"
            )
            return tracking
        tracking.note(f"MLflow: the sweep is run {tracking.parent} in {shown_uri(tracking.target.resolved_uri())}")
        return tracking

    def note(self, text: str) -> None:
        if self.on_note:
            self.on_note(text)

    def describe(self, result: Any) -> None:
        """The sweep's result says where its parent run is (its leaderboard.json too)."""
        if self.parent is not None:
            result.mlflow = {"run_id": self.parent, "tracking_uri": shown_uri(self.target.resolved_uri())}

    def end(self, result: Any, *, interrupted: bool = False) -> None:
        """The best trial's model (unless every trial logged its own, or the sweep was interrupted), then
        the parent's summary and status, whatever became of the model."""
        from .._tf import quiet_tensorflow
        from .tracking_log import LogOptions, sync_folder

        if self.parent is None:
            return
        try:
            best = result.best
            if (
                best is not None
                and best.folder is not None
                and self.plan.options.mlflow_models == "best"
                and not interrupted
            ):
                options = LogOptions(model=True, pictures=True, parent_run_id=self.parent, on_note=self.on_note)
                with quiet_tensorflow():  # the model is loaded once, to check that it predicts
                    sync_folder(self.client, self.target, Path(best.folder), options)
        except Exception as error:  # noqa: BLE001
            self.note(
                f"MLflow: the best trial's model could not be logged ({short_error(error)}); "
                f"complete it with: nnflow log {self.plan.folder} --mlflow"
            )
        try:
            end_parent(self.client, self.parent, result, interrupted=interrupted)
        except Exception as error:  # noqa: BLE001
            self.note(
                f"MLflow: the sweep's run could not be ended ({short_error(error)}); "
                f"complete it with: nnflow log {self.plan.folder} --mlflow"
            )


def trial_tracker(options: Any, trial_number: int, study_name: str) -> Any:
    """A trial's tracker in a sweep's worker, nested under the parent its command made or found
    (`options.mlflow_parent`); None without --mlflow, or when MLflow could not be reached."""
    from .tracking_live import MlflowTracker

    if not options.mlflow or not options.mlflow_parent:
        return None
    every = options.mlflow_models == "all"
    tags = {"nnflow.trial": str(trial_number + 1), "nnflow.sweep.study": study_name}
    return MlflowTracker(parent_run_id=options.mlflow_parent, log_model=every, pictures=every, tags=tags)
