"""`sweep`: every combination of a grid of overrides becomes its own run, in N parallel processes.

Each member is `nnflow train CONFIG --set ... --out FOLDER --json` in a process of its own:
members cannot disturb each other (TensorFlow state, seeds, memory), a member that fails
(a bad override, a NaN, a failed gate) is reported and the others go on, and Ctrl-C stops
each member cleanly (its run marked interrupted, resumable). The sweep folder holds the
members' run folders, their logs, and the leaderboard as CSV and JSON.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..errors import (
    ConfigError,
    DataError,
    Problem,
    TrainingError,
    UnsafeModelError,
)
from ..spec import load_spec
from .sweep_members import BUG, GATE_FAILED, INTERRUPTED, Member, run_members

# The worst outcome decides the sweep's exit code: a bug, an interruption, a failed training,
# bad data, a refused model, a bad experiment, and last a gate that did not hold.
SEVERITY = (
    BUG,
    INTERRUPTED,
    TrainingError.exit_code,
    DataError.exit_code,
    UnsafeModelError.exit_code,
    ConfigError.exit_code,
    GATE_FAILED,
)
LOWER_IS_BETTER = re.compile(r"(loss|error|mae|mse|mape|msle|hinge|crossentropy|divergence|poisson)$")

__all__ = ["Member", "SweepResult", "higher_is_better", "parse_grid", "sweep"]


@dataclass
class SweepResult:
    folder: Path
    metric: str
    higher_is_better: bool
    members: list[Member]  # ranked: finished members by the metric, then the others

    @property
    def exit_code(self) -> int:
        codes = {m.exit_code if m.exit_code > 0 else BUG for m in self.members if m.exit_code}
        return next((code for code in SEVERITY if code in codes), BUG if codes else 0)

    def to_json(self) -> dict:
        return {
            "sweep": str(self.folder),
            "metric": self.metric,
            "order": "descending" if self.higher_is_better else "ascending",
            "exit_code": self.exit_code,
            "members": [member.to_json(self.metric) for member in self.members],
        }


def parse_grid(grids: Iterable[str]) -> dict[str, list[str]]:
    """`KEY=V1,V2,...` (commas inside [] {} or quotes do not split) -> {KEY: [V1, V2, ...]}."""
    parsed: dict[str, list[str]] = {}
    for text in grids:
        key, sep, values = text.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise ConfigError(
                Problem(
                    f"expected KEY=V1,V2,... (e.g. fit.batch_size=16,32); received {text!r}.", where=f"--grid {text}"
                )
            )
        if key in parsed:
            raise ConfigError(
                Problem(f"{key} is given twice; put all its values in one --grid.", where=f"--grid {text}")
            )
        parsed[key] = _split_values(values)
        if not parsed[key]:
            raise ConfigError(Problem(f"no values for {key}; give at least one: {key}=V1,V2.", where=f"--grid {text}"))
    if not parsed:
        raise ConfigError(Problem("a sweep needs at least one --grid KEY=V1,V2,...", where="--grid"))
    return parsed


def _split_values(text: str) -> list[str]:
    values, depth, quote, current = [], 0, "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            values.append(current.strip())
            current = ""
            continue
        current += char
    values.append(current.strip())
    return [value for value in values if value != ""]


def higher_is_better(metric: str, spec) -> bool:
    """From the metric's gate when it has one (`>=` means higher is better), else from its name."""
    for gate in spec.expect:
        if gate.metric == metric:
            return gate.operator in (">=", ">")
    return not LOWER_IS_BETTER.search(metric.removeprefix("val_").removeprefix("test_"))


def sweep(
    config: str | Path,
    grids: Iterable[str],
    overrides: Iterable[str] = (),
    *,
    jobs: int = 1,
    metric: str | None = None,
    out: str | Path | None = None,
    on_event: Callable[[str, Member], None] | None = None,
) -> SweepResult:
    """Train every combination of the grid (with `overrides` under it) and rank the runs by `metric`."""
    overrides = tuple(overrides)
    spec = load_spec(config, overrides)  # the base experiment must be right: exit 2 for the whole sweep
    if spec.data is None:
        raise ConfigError(
            Problem("`nnflow sweep` trains, so the file needs a `data:` section.", where=str(spec.source))
        )
    grid = parse_grid(grids)
    if jobs < 1:
        raise ConfigError(Problem(f"--jobs must be at least 1; received {jobs}.", where="--jobs"))
    reported = spec.reported_metrics
    metric = metric or (spec.expect[0].metric if spec.expect else "val_loss" if spec.data.validation else "loss")
    if metric not in reported:
        raise ConfigError(
            Problem(f"{metric!r} is not a metric these runs report ({', '.join(reported)}).", where="--metric")
        )

    folder = _sweep_folder(spec.name, out)
    members = _members(config, overrides, grid, folder)
    result = SweepResult(folder, metric, higher_is_better(metric, spec), members)
    for member in members:
        if member.status == "failed" and on_event:
            on_event("finished", member)
    try:
        run_members(config, overrides, members, jobs, on_event)
    except KeyboardInterrupt as interrupt:
        result.members = _ranked(members, metric, result.higher_is_better)
        _write_leaderboard(result)
        interrupt.sweep = result  # type: ignore[attr-defined]  # for the CLI's message
        raise
    result.members = _ranked(members, metric, result.higher_is_better)
    _write_leaderboard(result)
    return result


def _sweep_folder(name: str, out: str | Path | None) -> Path:
    """`out`, or a new `runs/NAME/sweep-TIMESTAMP`; made, with its `logs/`, once checked."""
    from .. import runs

    if out is not None:
        folder = Path(out)
    else:
        folder = runs.RUNS_ROOT / name / datetime.now().strftime("sweep-%Y-%m-%d_%H-%M-%S")
        stem = folder
        for attempt in range(2, 1000):
            if not folder.exists():
                break
            folder = stem.with_name(f"{stem.name}_{attempt}")
    runs.check_new_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "logs").mkdir(exist_ok=True)
    return folder


def _members(config, overrides: tuple[str, ...], grid: dict[str, list[str]], folder: Path) -> list[Member]:
    """One member per combination of the grid; a bad override fails its member here, before anything runs."""
    members = [
        Member(index, dict(zip(grid, values)), folder / f"{index:02d}-{_slug(dict(zip(grid, values)))}")
        for index, values in enumerate(itertools.product(*grid.values()), start=1)
    ]
    for member in members:
        try:
            member_spec = load_spec(config, [*overrides, *member.overrides])
            if member_spec.fit.distribute == "multi_worker":
                raise ConfigError(
                    Problem(
                        "a sweep trains its members on this machine, and multi_worker members would all claim the ports of one "
                        "TF_CONFIG; sweep with fit.distribute none or mirrored, or launch multi_worker runs one at a time.",
                        where="fit.distribute",
                    )
                )
        except ConfigError as error:
            member.status, member.exit_code, member.error = "failed", error.exit_code, str(error)
    return members


def _slug(grid: dict[str, str]) -> str:
    text = "_".join(f"{key.split('.')[-1]}={value}" for key, value in grid.items())
    return re.sub(r"[^A-Za-z0-9._=-]+", "-", text)[:80].strip("-") or "member"


def _ranked(members: list[Member], metric: str, higher: bool) -> list[Member]:
    scored = [m for m in members if m.metric_value(metric) is not None]
    others = [m for m in members if m not in scored]
    scored.sort(key=lambda m: m.metrics[metric], reverse=higher)
    return scored + sorted(others, key=lambda m: m.index)


def _write_leaderboard(result: SweepResult) -> None:
    from .. import runs

    runs.write_json(result.folder / "leaderboard.json", result.to_json())
    out = io.StringIO()
    grid_keys = list(result.members[0].grid) if result.members else []
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["rank", "member", *grid_keys, result.metric, "status", "exit_code", "run", "error"])
    for rank, member in enumerate(result.members, start=1):
        writer.writerow(
            [
                rank,
                member.index,
                *member.grid.values(),
                member.metrics.get(result.metric, ""),
                member.status,
                "" if member.exit_code is None else member.exit_code,
                member.folder,
                member.error,
            ]
        )
    runs.write_text_atomic(result.folder / "leaderboard.csv", out.getvalue())
