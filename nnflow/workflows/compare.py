"""`runs` and `compare`: what is in `runs/`, and how runs differ (metrics and experiment files).

Reads run folders only, through `nnflow.runs` (checked, bounded, regular files only): no
TensorFlow, no pandas, so both answer at once. A listing shows a damaged run as `damaged`
and goes on; `compare` refuses one (exit 6).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, Problem


@dataclass(frozen=True)
class RunRow:
    folder: Path
    name: str
    started: str
    status: str
    epochs: dict
    metrics: dict
    gates: list[dict]
    problem: str | None = None  # what is wrong with a damaged run's files

    @property
    def key_metrics(self) -> dict:
        """The metrics a reader looks at first: the gated ones, else the losses."""
        from ..spec import reported_metric_names

        names = [gate["metric"] for gate in self.gates] or reported_metric_names(["loss"], None)
        return {name: self.metrics[name] for name in names if name in self.metrics}

    @property
    def gates_passed(self) -> bool | None:
        return all(gate.get("passed") for gate in self.gates) if self.gates else None

    def to_json(self) -> dict:
        return {
            "run": str(self.folder),
            "name": self.name,
            "started": self.started,
            "status": self.status,
            "epochs": self.epochs,
            "metrics": self.metrics,
            "gates": self.gates,
            "gates_passed": self.gates_passed,
            **({"problem": self.problem} if self.problem else {}),
        }


def list_runs(name: str | None = None, root: str | Path = "runs") -> list[RunRow]:
    """The runs under `root` (of one name, or all), oldest first; damaged ones as `damaged`."""
    from ..runs import RUN_FILE

    root = Path(root)
    if name and not (root / name).is_dir():
        raise ConfigError(Problem(f"no runs named {name!r} in {root}/.", where="NAME"))
    base = root / name if name else root
    # Runs are runs/NAME/TIMESTAMP; a sweep's members are one level deeper (runs/NAME/sweep-.../NN-...).
    # A run.json that is a FIFO, a folder or a broken link still marks a (damaged) run.
    rows = []
    for folder, folders, files in os.walk(base):
        if RUN_FILE in files or RUN_FILE in folders:
            rows.append(_listed(Path(folder)))
            folders[:] = [child for child in folders if child != RUN_FILE]
    return sorted(rows, key=lambda row: (row.started, str(row.folder)))


def _status(info: dict) -> str:
    """run.json's status, except that a `running` run whose process has gone on this machine was killed."""
    import socket

    from ..runs import is_live_nnflow_process

    status = info["status"]
    if status == "running" and info.get("host") == socket.gethostname() and not is_live_nnflow_process(info.get("pid")):
        return "killed"
    return status


def run_row(folder: Path) -> RunRow:
    """A run's row, from its checked run.json and metrics.json (a DamagedRunError when one is damaged)."""
    from ..runs import read_metrics, read_run_info

    info = read_run_info(folder)
    metrics = read_metrics(folder, optional=True) or {}
    return RunRow(
        folder=folder,
        name=info["name"],
        started=info["started"],
        status=_status(info),
        epochs=info["epochs"],
        metrics={k: v for k, v in metrics.items() if v is not None},
        gates=info.get("gates", []),
    )


def _listed(folder: Path) -> RunRow:
    """A run's row; a damaged run is listed as `damaged`, with the problem, so a listing never stops."""
    from ..errors import UnsafeModelError

    try:
        return run_row(folder)
    except UnsafeModelError as error:  # damaged, or written by a newer nnflow
        return RunRow(folder, folder.parent.name, "", "damaged", {}, {}, [], problem=str(error))


@dataclass(frozen=True)
class Comparison:
    runs: list[RunRow]
    metric_names: list[str]
    differences: dict[str, list[Any]]  # dotted key of the experiment file -> each run's value (MISSING: absent)

    def to_json(self) -> dict:
        return {
            "runs": [row.to_json() for row in self.runs],
            "metrics": {name: [row.metrics.get(name) for row in self.runs] for name in self.metric_names},
            "differences": self.differences,
        }


MISSING = "(absent)"


def compare_runs(runs: list[str | Path]) -> Comparison:
    """Metrics side by side, and every key where the runs' resolved experiment files differ.

    Each run's files are checked: a damaged one is a DamagedRunError (exit 6) naming it.
    """
    from ..runs import find_run

    if len(runs) < 2:
        raise ConfigError(Problem("compare needs at least two runs: nnflow compare RUN RUN ...", where="RUN"))
    folders = [find_run(run) for run in runs]
    rows = [run_row(folder) for folder in folders]
    return Comparison(rows, metric_names(row.metrics for row in rows), experiment_differences(folders))


def metric_names(metrics: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every metric name of some runs, in the order they first appear."""
    return list(dict.fromkeys(name for each in metrics for name in each))


def experiment_differences(folders: list[Path]) -> dict[str, list[Any]]:
    """Each dotted key where the runs' resolved experiment files differ -> each run's value (MISSING: absent)."""
    from ..overrides import dotted_items
    from ..runs import read_experiment

    flat = [dict(dotted_items(read_experiment(folder))) for folder in folders]
    keys = list(dict.fromkeys(key for values in flat for key in values))
    return {
        key: [values.get(key, MISSING) for values in flat]
        for key in keys
        if len({repr(values.get(key, MISSING)) for values in flat}) > 1
    }
