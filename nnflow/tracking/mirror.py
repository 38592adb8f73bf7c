"""A run folder copied into MLflow, idempotently: what the MLflow run already holds is not logged again.

The MLflow run of an nnflow run is the one tagged with its `nnflow.run_uuid`. Logging the same
folder twice, or after a run logged part of itself live and then lost its server, leaves one
MLflow run holding each param once, each epoch's metric once, and one model.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .content import RunContent

BATCH = 100  # MLflow takes at most 100 params (and 100 tags) per log_batch
METRICS_BATCH = 1000  # ... and at most 1000 metrics
MODEL_TAG = "nnflow.model"  # set once the model is logged: `runs:/<id>/model`


@dataclass(frozen=True)
class MlflowRun:
    """Where a run is in MLflow."""

    run_id: str
    experiment_id: str
    created: bool  # made now (not found by its uuid)


def find_or_create(
    client: Any,
    experiment_id: str,
    content: RunContent,
    *,
    run_id: str | None = None,
    parent_run_id: str | None = None,
) -> MlflowRun:
    """The MLflow run holding this nnflow run (by `run_id` when it is still there, else by its uuid tag), or a new one."""
    from mlflow.exceptions import MlflowException

    if run_id:
        try:
            run = client.get_run(run_id)
            if run.info.lifecycle_stage == "active" and run.data.tags.get("nnflow.run_uuid") == content.uuid:
                return MlflowRun(run_id, run.info.experiment_id, False)
        except MlflowException:  # another store, or deleted: look it up by its uuid
            pass
    found = find_by_uuid(client, experiment_id, content.uuid)
    if found is not None:
        return MlflowRun(found, experiment_id, False)
    tags = {"nnflow.run_uuid": content.uuid}
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    started = _millis(content.info.get("started"))
    run = client.create_run(experiment_id, start_time=started, tags=tags, run_name=content.name)
    return MlflowRun(run.info.run_id, experiment_id, True)


def find_by_uuid(client: Any, experiment_id: str, uuid: str) -> str | None:
    """The id of the MLflow run tagged `nnflow.run_uuid` = `uuid` in the experiment (None: there is none)."""
    found = client.search_runs([experiment_id], filter_string=f"tags.`nnflow.run_uuid` = '{uuid}'", max_results=1)
    return str(found[0].info.run_id) if found else None


def log_params_and_tags(client: Any, run_id: str, content: RunContent) -> None:
    """The params the run does not hold yet (a param's value cannot change in MLflow), and every tag."""
    from mlflow.entities import Param, RunTag

    held = client.get_run(run_id).data.params
    params = [Param(key, value) for key, value in content.params.items() if key not in held]
    tags = [RunTag(key, value) for key, value in content.tags.items()]
    for start in range(0, max(len(params), len(tags)), BATCH):
        client.log_batch(run_id, params=params[start : start + BATCH], tags=tags[start : start + BATCH])


def log_points(client: Any, run_id: str, points: Sequence[tuple[str, float, int]]) -> None:
    """(key, value, step) points, as they are: the caller knows they are new."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [Metric(key, value, now, step) for key, value, step in points]
    for start in range(0, len(metrics), METRICS_BATCH):
        client.log_batch(run_id, metrics=metrics[start : start + METRICS_BATCH])


def log_history(client: Any, run_id: str, content: RunContent) -> int:
    """The epochs' metrics MLflow does not hold yet; how many points were logged."""
    points = content.epoch_metrics()
    held: dict[str, set[int]] = {}
    for key in {key for key, _, _ in points}:
        held[key] = {metric.step for metric in client.get_metric_history(run_id, key)}
    new = [(key, value, step) for key, value, step in points if step not in held[key]]
    log_points(client, run_id, new)
    return len(new)


def log_final_metrics(client: Any, run_id: str, content: RunContent) -> None:
    """metrics.json under its own names (`val_loss`, `test_accuracy`: the names `expect:` uses), at the
    last epoch's step, after its history: MLflow shows them as the run's values."""
    latest = client.get_run(run_id).data.metrics
    points = [(key, value, content.last_step) for key, value in content.metrics.items() if latest.get(key) != value]
    log_points(client, run_id, points)


def log_files(client: Any, run_id: str, files: Sequence[Path]) -> None:
    for path in files:
        client.log_artifact(run_id, str(path))


def has_model(client: Any, run_id: str) -> bool:
    """Whether the run holds its model already (MLflow 3 keeps logged models beside their run)."""
    run = client.get_run(run_id)
    found = client.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"name = 'model' AND source_run_id = '{run_id}'",
        max_results=1,
    )
    return bool(found)


def end(client: Any, run_id: str, content: RunContent) -> None:
    """The MLflow run's status and end time, as the run folder says (still RUNNING: left running)."""
    if content.status == "RUNNING":
        return
    client.set_terminated(run_id, status=content.status, end_time=_millis(content.info.get("ended")))


def metrics_of(client: Any, run_id: str) -> dict[str, float]:
    """An MLflow run's latest metric values (for a logged nnflow run: metrics.json's)."""
    return dict(client.get_run(run_id).data.metrics)


def _millis(stamp: Any) -> int | None:
    """run.json's ISO time (`2026-11-27T08:00:21+01:00`) in milliseconds since the epoch."""
    from datetime import datetime

    if not isinstance(stamp, str):
        return None
    try:
        return int(datetime.fromisoformat(stamp).timestamp() * 1000)
    except ValueError:
        return None
