"""Run folders mirrored into MLflow: `nnflow log RUN... --mlflow`, the end of a run trained with
`--mlflow`, and `evaluate --mlflow`. The folder is the source of truth; its MLflow run is found by
the run's uuid and brought up to date, so that logging twice gives no duplicates."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import NnflowError
from ..tracking import Target, content, mirror
from ..tracking.connect import short_error, shown_uri


@dataclass(frozen=True)
class Logged:
    """One run folder's MLflow run, as `nnflow log` reports it."""

    folder: Path
    run_id: str | None
    created: bool = False
    points: int = 0  # per-epoch metric points logged now (0: MLflow held them all)
    model: bool = False  # the model was logged now
    error: str | None = None  # logging failed: why
    parent: bool = False  # a sweep's parent run
    exit_code: int = 7  # when it failed: 7 (MLflow did not take it), or the run file's own (6: damaged)

    def to_json(self) -> dict:
        return {
            "run": str(self.folder),
            "mlflow_run_id": self.run_id,
            "created": self.created,
            "points": self.points,
            "model_logged": self.model,
            "sweep": self.parent,
            **({"error": self.error} if self.error else {}),
        }


@dataclass
class LogOptions:
    """What a mirrored run gets beyond its files."""

    model: bool = True  # the pyfunc model, for a finished run
    pictures: bool = True  # curves.png and report.html, drawn now
    parent_run_id: str | None = None  # a sweep's trial: nested under its parent
    tags: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None  # the MLflow run a live tracker made
    on_note: Callable[[str], None] | None = None


def sync_folder(client: Any, target: Target, folder: Path, options: LogOptions) -> Logged:
    """Bring the MLflow run of `folder` up to date with it (made if there is none); the callers say so in its run.json."""
    from ..runs import FINISHED_STATUSES

    run = content.read_content(folder, extra_tags=options.tags)
    experiment_id = target.experiment_id(client, run.info["name"])
    known = options.run_id or content.mlflow_entry(run.info).get("run_id")
    where = mirror.find_or_create(client, experiment_id, run, run_id=known, parent_run_id=options.parent_run_id)
    mirror.log_params_and_tags(client, where.run_id, run)
    points = mirror.log_history(client, where.run_id, run)
    mirror.log_final_metrics(client, where.run_id, run)
    with tempfile.TemporaryDirectory(prefix="nnflow-log-") as scratch:
        pictures = _pictures(folder, Path(scratch), options.on_note) if options.pictures else []
        mirror.log_files(client, where.run_id, [*run.files(), *pictures])
    logged_model = False
    finished = run.info.get("status") in FINISHED_STATUSES and (folder / "model.keras").is_file()
    if options.model and finished and not mirror.has_model(client, where.run_id):
        from .tracking_model import log_run_model

        log_run_model(where.run_id, folder, target.resolved_uri())
        client.set_tag(where.run_id, mirror.MODEL_TAG, f"runs:/{where.run_id}/model")
        logged_model = True
    mirror.end(client, where.run_id, run)
    if run.truncated and options.on_note:
        options.on_note(
            f"{folder}: {len(run.truncated)} param(s) too long for MLflow were cut: {', '.join(run.truncated)}"
        )
    return Logged(folder, where.run_id, where.created, points, logged_model)


def record_tracking(info: dict, target: Target, run_id: str | None, error: str | None) -> dict:
    """run.json's `tracking.mlflow`: where the run is logged, or why it is not."""
    from ..runs import now

    entry: dict[str, Any] = {"tracking_uri": shown_uri(target.resolved_uri())}
    if target.experiment:
        entry["experiment"] = target.experiment
    if run_id:
        entry["run_id"] = run_id
    entry.update(status="failed" if error else "logged", at=now())
    if error:
        entry["error"] = error
    info.setdefault("tracking", {})["mlflow"] = entry
    return entry


def _pictures(folder: Path, scratch: Path, on_note: Callable[[str], None] | None) -> list[Path]:
    """curves.png and report.html of the run, drawn into `scratch` (the report of a classifier not yet
    evaluated evaluates it, and writes its evaluation.json, as `nnflow report` does)."""
    from .show import plot, report

    made = []
    try:
        if (folder / "history.csv").is_file():
            made.append(plot([folder], scratch / "curves.png").output)
        shown = report(folder, scratch / "report.html")
        made.append(shown.output)
    except NnflowError as error:  # a report that cannot be drawn does not stop the logging
        if on_note:
            on_note(f"{folder}: no curves or report for MLflow: {error}")
    return made


def log_evaluation(result: Any, data: str | Path | None, *, on_note: Callable[[str], None] | None = None) -> str | None:
    """`evaluate --mlflow`: the evaluation's metrics (`eval_test_accuracy`, or `eval_<file>_accuracy` for
    --data FILE) and its JSON added to the run's MLflow run, made first if MLflow has none of it.
    A failure is a warning (`on_note`): the evaluation stands. Returns the MLflow run id, or None."""
    import re

    from .. import runs
    from ..tracking import import_mlflow

    import_mlflow()
    target = Target.from_environment()
    label = "test" if data is None else re.sub(r"[^A-Za-z0-9_]+", "_", Path(data).name.split(".")[0]).strip("_")
    try:
        client = target.client()
        info = runs.read_run_info(result.run_dir)
        options = LogOptions(pictures="run_id" not in content.mlflow_entry(info), on_note=on_note)  # once, when new
        logged = sync_folder(client, target, result.run_dir, options)
        assert logged.run_id is not None
        step = int(info.get("epochs", {}).get("completed", 0) or 0)
        points = [
            (f"eval_{label}_{key}", float(value), step)
            for key, value in result.metrics.items()
            if isinstance(value, (int, float))
        ]
        mirror.log_points(client, logged.run_id, points)
        client.log_artifact(logged.run_id, str(result.written), artifact_path="evaluations")
    except Exception as error:  # noqa: BLE001 - the evaluation stands without its MLflow copy
        if on_note:
            on_note(f"the evaluation could not be logged to MLflow: {short_error(error)}")
        return None
    record_tracking(info, target, logged.run_id, None)
    runs.write_json(result.run_dir / runs.RUN_FILE, info)
    return logged.run_id
