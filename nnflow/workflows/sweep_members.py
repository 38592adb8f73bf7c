"""A sweep's results, read back from its study: one `Member` per trial (whichever process or machine
ran it), ranked, with the study's best, and written as leaderboard.csv and leaderboard.json."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..studies import finite
from .sweep_rank import GATE_FAILED, worst

_STATES = {"COMPLETE": "completed", "PRUNED": "pruned", "RUNNING": "running", "WAITING": "waiting", "FAIL": "failed"}


@dataclass(eq=False)
class Member:
    index: int  # the trial's number + 1
    grid: dict[str, str]  # KEY -> the `--set` value text of this trial
    folder: Path | None
    params: dict[str, Any] = field(default_factory=dict)  # as Optuna keeps them
    status: str = "waiting"  # completed, pruned, failed, interrupted, running, waiting
    exit_code: int | None = None
    metrics: dict = field(default_factory=dict)
    gates: list = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0
    host: str = ""
    invalid: bool = False  # a grid point the file refuses: never ran

    @property
    def trial(self) -> int:
        return self.index - 1

    @property
    def label(self) -> str:
        from ..render import value_text

        return " ".join(f"{key}={value_text(value)}" for key, value in self.grid.items())

    def metric_value(self, metric: str) -> float | None:
        return finite(self.metrics.get(metric))

    def to_json(self, metric: str) -> dict:
        return {
            "member": self.index,
            "trial": self.trial,
            "grid": self.grid,
            "params": self.params,
            "status": self.status,
            "exit_code": self.exit_code,
            "metric": self.metrics.get(metric),
            "metrics": self.metrics,
            "gates": self.gates,
            "run": str(self.folder) if self.folder else None,
            "host": self.host,
            "seconds": round(self.seconds, 3),
            "error": self.error,
        }


def member_of(trial, texts: dict[str, str]) -> Member:
    """The leaderboard's view of one trial (`texts`: its `--set` values)."""
    attrs = trial.user_attrs
    status = _STATES.get(trial.state.name, trial.state.name.lower())
    if status == "failed":
        status = attrs.get("status", "failed")
    code = attrs.get("exit_code")
    if code is None and status in ("completed", "pruned"):
        code = 0
    seconds = attrs.get("seconds")
    if seconds is None and trial.datetime_start and trial.datetime_complete:
        seconds = (trial.datetime_complete - trial.datetime_start).total_seconds()
    return Member(
        index=trial.number + 1,
        grid=texts,
        folder=Path(attrs["run"]) if attrs.get("run") else None,
        params=dict(trial.params),
        status=status,
        exit_code=code if isinstance(code, int) else None,
        metrics=dict(attrs.get("metrics") or {}),
        gates=list(attrs.get("gates") or []),
        error=str(attrs.get("error", "")),
        seconds=float(seconds or 0.0),
        host=str(attrs.get("host", "")),
        invalid=bool(attrs.get("invalid")),
    )


@dataclass
class SweepResult:
    folder: Path
    metric: str
    higher_is_better: bool
    members: list[Member]  # ranked: finished members by the metric, then the others
    study: str = ""
    storage: str = ""
    trials: int = 0  # finished trials wanted
    sampler: str = "grid"
    pruner: str = "none"
    best: Member | None = None
    exit_code: int = 0
    mlflow: dict | None = None  # with --mlflow: the sweep's parent run {run_id, tracking_uri}

    @property
    def finished(self) -> int:
        return sum(1 for m in self.members if m.status in ("completed", "pruned"))

    def to_json(self) -> dict:
        return {
            "sweep": str(self.folder),
            "metric": self.metric,
            "order": "descending" if self.higher_is_better else "ascending",
            "exit_code": self.exit_code,
            "study": self.study,
            "storage": self.storage,
            "sampler": self.sampler,
            "pruner": self.pruner,
            "trials": {"wanted": self.trials, "finished": self.finished, **_tally(self.members)},
            "best": self.best.index if self.best else None,
            "mlflow": self.mlflow,
            "members": [member.to_json(self.metric) for member in self.members],
        }


def _tally(members: list[Member]) -> dict[str, int]:
    tally: dict[str, int] = {}
    for member in members:
        tally[member.status] = tally.get(member.status, 0) + 1
    return tally


def ranked(members: list[Member], metric: str, higher: bool) -> list[Member]:
    """Completed trials by the metric, then pruned ones by it, then the others by number."""

    def score(m: Member) -> float:
        value = m.metric_value(metric)
        assert value is not None
        return -value if higher else value

    scored = [m for m in members if m.status == "completed" and m.metric_value(metric) is not None]
    pruned = [m for m in members if m.status == "pruned" and m.metric_value(metric) is not None]
    others = [m for m in members if m not in scored and m not in pruned]
    return sorted(scored, key=score) + sorted(pruned, key=score) + sorted(others, key=lambda m: m.index)


def exit_code(result: SweepResult, max_failures: int) -> int:
    """0 when `trials` trials finished; past max_failures (or a grid whose points ran out) the worst
    trial's code; 2 when a grid point was refused; 5 when the best trial misses a gate."""
    failed = [m for m in result.members if m.status == "failed" and not m.invalid]
    if len(failed) > max_failures or result.finished < result.trials:
        code = worst(m.exit_code or 1 for m in failed)
        if code:
            return code
    if any(m.invalid for m in result.members):
        return 2
    if result.best is not None and any(not g.get("passed") for g in result.best.gates if isinstance(g, dict)):
        return GATE_FAILED
    return 0


def write_leaderboard(result: SweepResult) -> None:
    from .. import runs

    runs.write_json(result.folder / "leaderboard.json", result.to_json())
    out = io.StringIO()
    keys = list(result.members[0].grid) if result.members else []
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["rank", "member", *keys, result.metric, "status", "exit_code", "run", "host", "error"])
    for rank, member in enumerate(result.members, start=1):
        writer.writerow(
            [
                rank,
                member.index,
                *(member.grid.get(key, "") for key in keys),
                member.metrics.get(result.metric, ""),
                member.status,
                "" if member.exit_code is None else member.exit_code,
                member.folder or "",
                member.host,
                member.error,
            ]
        )
    runs.write_text_atomic(result.folder / "leaderboard.csv", out.getvalue())
