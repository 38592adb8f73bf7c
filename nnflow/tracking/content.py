"""What a run folder gives MLflow: params, tags, per-epoch and final metrics, the files to upload.

Read from the folder alone (no MLflow, no TensorFlow), so that the run folder stays the source of
truth and its MLflow copy can always be made again from it (`nnflow log`).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# MLflow's limits on a param (it refuses longer ones, failing the whole batch).
MAX_PARAM_VALUE = 6000
MAX_KEY = 250
# Files of a run folder uploaded as they are, when present.
RUN_ARTIFACTS = (
    "experiment.yaml",
    "history.csv",
    "metrics.json",
    "preprocessing.json",
    "gradients.csv",
    "evaluation.json",
    "run.json",
)
# A run's status in nnflow -> MLflow's (which has no "pruned": a tag says it).
STATUSES = {"completed": "FINISHED", "pruned": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}
# The namespace of ids made up for runs written before nnflow gave each run a UUID.
_OLD_RUNS = uuid.UUID("6f1d3c0e-5d1b-4c38-9a8e-6e6e6e6f7700")


@dataclass(frozen=True)
class RunContent:
    """A run folder as MLflow will hold it."""

    folder: Path
    info: dict  # run.json
    uuid: str
    params: dict[str, str]
    truncated: tuple[str, ...]  # params cut to MLflow's limit
    tags: dict[str, str]
    history: list[dict]  # history.csv's rows (none for a run that never finished an epoch)
    metrics: dict[str, float]  # metrics.json (none for a run that did not finish)

    @property
    def name(self) -> str:
        """The MLflow run's name: `iris-mlp/2026-11-27_08-02-37` (a sweep's trial: `03-units=16-...`)."""
        return f"{self.info['name']}/{self.folder.name}"

    @property
    def status(self) -> str:
        """MLflow's status for the run: RUNNING while nnflow trains it; KILLED for a `running` run whose
        process on this machine is gone (killed; `--resume` continues it)."""
        status = self.info.get("status", "")
        if status == "running":
            return "KILLED" if _killed(self.info) else "RUNNING"
        return STATUSES.get(status, "KILLED")

    @property
    def last_step(self) -> int:
        return int(self.info.get("epochs", {}).get("completed", 0) or 0)

    def epoch_metrics(self, rows: list[dict] | None = None) -> list[tuple[str, float, int]]:
        """(key, value, step) of each epoch's numbers; step is the epoch (1, 2, ...)."""
        points = []
        for row in self.history if rows is None else rows:
            step = int(row["epoch"])
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)) and not math.isnan(value):
                    points.append((str(key), float(value), step))
        return points

    def files(self) -> list[Path]:
        return [self.folder / name for name in RUN_ARTIFACTS if (self.folder / name).is_file()]


def _killed(info: dict) -> bool:
    import socket

    from ..runs import is_live_nnflow_process

    return info.get("host") == socket.gethostname() and not is_live_nnflow_process(info.get("pid"))


def read_content(folder: Path, *, extra_tags: dict[str, str] | None = None) -> RunContent:
    """A run folder's MLflow content, from its checked files (a damaged one is DamagedRunError, exit 6)."""
    from .. import runs

    info = runs.read_run_info(folder)
    history = runs.read_history(folder) if (folder / "history.csv").is_file() else []
    metrics = runs.read_metrics(folder, optional=True) or {}
    return content_of(folder, info, history, metrics, extra_tags=extra_tags)


def content_of(
    folder: Path, info: dict, history: list[dict], metrics: dict, *, extra_tags: dict[str, str] | None = None
) -> RunContent:
    """The MLflow content of a run folder whose run.json, history and metrics are these (a run still
    training has its experiment.yaml, and the rest in memory)."""
    from .. import runs

    params, truncated = params_of(runs.read_experiment(folder))  # resolved: defaults, overrides, the seed drawn
    tags = {**tags_of(folder, info), **(extra_tags or {})}
    numbers = {key: float(value) for key, value in metrics.items() if isinstance(value, (int, float))}
    return RunContent(folder, info, run_uuid(info), params, truncated, tags, history, numbers)


def mlflow_entry(info: dict) -> dict:
    """run.json's `tracking.mlflow` (where --mlflow or `nnflow log` logged the run); {} when there is none."""
    tracking = info.get("tracking")
    entry = tracking.get("mlflow") if isinstance(tracking, dict) else None
    return entry if isinstance(entry, dict) else {}


def run_uuid(info: dict) -> str:
    """The run's stable id: run.json's `uuid`; for a run written before there was one, a UUID made from
    what identifies it (name, start time, seed), the same every time it is asked for."""
    if isinstance(info.get("uuid"), str):
        return info["uuid"]
    return str(uuid.uuid5(_OLD_RUNS, f"{info.get('name')}|{info.get('started')}|{info.get('seed')}"))


def params_of(document: dict) -> tuple[dict[str, str], tuple[str, ...]]:
    """Every key of the resolved experiment as `--set` writes it (`layers.0.Dense.units`), its value as
    YAML would show it; values longer than MLflow takes are cut, and their keys returned."""
    import json

    from ..overrides import dotted_items

    params: dict[str, str] = {}
    truncated = []
    for key, value in dotted_items(document):
        if key.startswith("sweep."):  # the search, not this run: a trial's own values are its params
            continue
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        if len(text) > MAX_PARAM_VALUE:
            note = f" ... [{len(text)} characters; the whole value is in experiment.yaml]"
            text = text[: MAX_PARAM_VALUE - len(note)] + note
            truncated.append(key)
        params[key[:MAX_KEY]] = text
    return params, tuple(truncated)


def tags_of(folder: Path, info: dict) -> dict[str, str]:
    """Who made the run, from what: versions, the git commit, the data's checksums, the folder, the id."""
    tags = {
        "nnflow.run_uuid": run_uuid(info),
        "nnflow.run_folder": str(folder.resolve()),
        "nnflow.status": str(info.get("status")),
        "nnflow.seed": str(info.get("seed")),
    }
    for package in ("nnflow", "keras", "tensorflow"):
        version = info.get("versions", {}).get(package)
        if version:
            tags[f"nnflow.versions.{package}"] = str(version)
    for role, entry in sorted(info.get("data", {}).items()):
        tags[f"nnflow.data.{role}.sha256"] = str(entry.get("sha256"))
        tags[f"nnflow.data.{role}.path"] = str(entry.get("path"))
    git = info.get("git")
    if isinstance(git, dict) and git.get("commit"):
        tags["mlflow.source.git.commit"] = str(git["commit"])
        tags["nnflow.git.dirty"] = "unknown" if git.get("dirty") is None else str(bool(git["dirty"])).lower()
    if info.get("config"):
        tags["mlflow.source.name"] = str(info["config"])
    if info.get("status") == "pruned":
        tags["nnflow.pruned_at_epoch"] = str(info.get("pruned_at_epoch"))
    if info.get("error"):
        tags["nnflow.error"] = str(info["error"])[:5000]
    return tags


def git_commit(path: Path | None) -> dict[str, Any] | None:
    """`{commit, dirty}` of the git work tree holding `path` (the experiment file), or None outside one.
    `dirty` is None when git cannot tell (it takes no lock to ask: trials in parallel do not contend)."""
    import subprocess

    if path is None:
        return None
    where = str(Path(path).resolve().parent)
    git = ["git", "--no-optional-locks", "-C", where]
    try:
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False)
        if head.returncode != 0:
            return None
        status = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):  # no git on this machine, or it hangs
        return None
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return {"commit": head.stdout.strip(), "dirty": dirty}
