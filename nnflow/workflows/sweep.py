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
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable

from ..errors import ConfigError, Problem, Terminated
from ..spec import load_spec

# The worst outcome decides the sweep's exit code: a bug, an interruption, a failed training,
# bad data, a refused model, a bad experiment, and last a gate that did not hold.
SEVERITY = (1, 130, 4, 3, 6, 2, 5)
LOWER_IS_BETTER = re.compile(r"(loss|error|mae|mse|mape|msle|hinge|crossentropy|divergence|poisson)$")


@dataclass(eq=False)  # members are told apart by identity (they key the running processes)
class Member:
    index: int
    grid: dict[str, str]  # the grid's KEY -> VALUE for this member
    folder: Path
    status: str = "not started"  # not started, running, completed, failed, interrupted
    exit_code: int | None = None
    metrics: dict = field(default_factory=dict)
    gates: list = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0

    def metric_value(self, metric: str) -> float | None:
        value = self.metrics.get(metric)
        return value if isinstance(value, (int, float)) and value == value and abs(value) != float("inf") else None

    @property
    def overrides(self) -> list[str]:
        return [f"{key}={value}" for key, value in self.grid.items()]

    @property
    def label(self) -> str:
        return " ".join(f"{key}={value}" for key, value in self.grid.items())

    def to_json(self, metric: str) -> dict:
        return {
            "member": self.index,
            "grid": self.grid,
            "status": self.status,
            "exit_code": self.exit_code,
            "metric": self.metrics.get(metric),
            "metrics": self.metrics,
            "gates": self.gates,
            "run": str(self.folder),
            "seconds": round(self.seconds, 3),
            "error": self.error,
        }


@dataclass
class SweepResult:
    folder: Path
    metric: str
    higher_is_better: bool
    members: list[Member]  # ranked: finished members by the metric, then the others

    @property
    def exit_code(self) -> int:
        codes = {m.exit_code if m.exit_code > 0 else 1 for m in self.members if m.exit_code}
        return next((code for code in SEVERITY if code in codes), 1 if codes else 0)

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
            raise ConfigError(Problem(f"expected KEY=V1,V2,... (e.g. fit.batch_size=16,32); received {text!r}.", where=f"--grid {text}"))
        if key in parsed:
            raise ConfigError(Problem(f"{key} is given twice; put all its values in one --grid.", where=f"--grid {text}"))
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
    from .. import runs

    overrides = tuple(overrides)
    spec = load_spec(config, overrides)  # the base experiment must be right: exit 2 for the whole sweep
    if spec.data is None:
        raise ConfigError(Problem("`nnflow sweep` trains, so the file needs a `data:` section.", where=str(spec.source)))
    grid = parse_grid(grids)
    if jobs < 1:
        raise ConfigError(Problem(f"--jobs must be at least 1; received {jobs}.", where="--jobs"))
    prefixes = [""] + (["val_"] if spec.data.validation else []) + (["test_"] if spec.data.test else [])
    reported = [prefix + name for prefix in prefixes for name in spec.metric_names]
    metric = metric or (spec.expect[0].metric if spec.expect else "val_loss" if spec.data.validation else "loss")
    if metric not in reported:
        raise ConfigError(Problem(f"{metric!r} is not a metric these runs report ({', '.join(reported)}).", where="--metric"))

    if out is not None:
        folder = Path(out)
    else:
        folder = runs.RUNS_ROOT / spec.name / datetime.now().strftime("sweep-%Y-%m-%d_%H-%M-%S")
        stem = folder
        for attempt in range(2, 1000):
            if not folder.exists():
                break
            folder = stem.with_name(f"{stem.name}_{attempt}")
    runs.check_new_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "logs").mkdir(exist_ok=True)
    members = [
        Member(index, dict(zip(grid, values)), folder / f"{index:02d}-{_slug(dict(zip(grid, values)))}")
        for index, values in enumerate(itertools.product(*grid.values()), start=1)
    ]
    for member in members:  # a bad override fails its member here, before anything runs
        try:
            member_spec = load_spec(config, [*overrides, *member.overrides])
            if member_spec.fit.distribute == "multi_worker":
                raise ConfigError(Problem(
                    "a sweep trains its members on this machine, and multi_worker members would all claim the ports of one "
                    "TF_CONFIG; sweep with fit.distribute none or mirrored, or launch multi_worker runs one at a time.",
                    where="fit.distribute",
                ))
        except ConfigError as error:
            member.status, member.exit_code, member.error = "failed", error.exit_code, str(error)

    result = SweepResult(folder, metric, higher_is_better(metric, spec), members)
    for member in members:
        if member.status == "failed" and on_event:
            on_event("finished", member)
    try:
        _run_members(config, overrides, members, jobs, on_event)
    except KeyboardInterrupt as interrupt:
        result.members = _ranked(members, metric, result.higher_is_better)
        _write_leaderboard(result)
        interrupt.sweep = result
        raise
    result.members = _ranked(members, metric, result.higher_is_better)
    _write_leaderboard(result)
    return result


def _slug(grid: dict[str, str]) -> str:
    text = "_".join(f"{key.split('.')[-1]}={value}" for key, value in grid.items())
    return re.sub(r"[^A-Za-z0-9._=-]+", "-", text)[:80].strip("-") or "member"


def _child_environment(jobs: int, members: int) -> dict[str, str]:
    """Share the cores: each member's TensorFlow gets its part of them."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    env = dict(os.environ)
    env.pop("GITHUB_STEP_SUMMARY", None)  # the sweep writes one summary, the leaderboard; not one per member
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("TF_NUM_INTRAOP_THREADS", str(max(1, cores // max(1, min(jobs, members)))))
    return env


def _run_members(config, overrides, members: list[Member], jobs: int, on_event) -> None:
    """Run the members, `jobs` at a time. SIGTERM/SIGHUP (a cancelled CI job) stop them like Ctrl-C."""
    waiting = [m for m in members if m.status == "not started"]
    running: dict[Member, tuple[subprocess.Popen, float]] = {}
    env = _child_environment(jobs, len(waiting))

    def stop(signum, frame):
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    previous = {number: signal.signal(number, stop) for number in (signal.SIGTERM, signal.SIGHUP)}
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                member = waiting.pop(0)
                logs = member.folder.parent / "logs"
                args = [sys.executable, "-m", "nnflow", "train", str(config), "--out", str(member.folder), "--json"]
                for override in [*overrides, *member.overrides]:
                    args += ["--set", override]
                # Output goes to files (a pipe could fill up). A session of its own: a Ctrl-C
                # reaches the sweep, which stops each member exactly once.
                with open(logs / f"{member.folder.name}.json", "w") as out, open(logs / f"{member.folder.name}.log", "w") as log:
                    process = subprocess.Popen(args, stdout=out, stderr=log, env=env, start_new_session=True)
                running[member] = (process, time.monotonic())
                member.status = "running"
                if on_event:
                    on_event("started", member)
            for member, (process, started) in list(running.items()):
                if process.poll() is None:
                    continue
                del running[member]
                _collect(member, process.returncode, time.monotonic() - started)
                if on_event:
                    on_event("finished", member)
            time.sleep(0.05)
    except BaseException:  # Ctrl-C, SIGTERM, or anything else: no member is left running on its own
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        try:
            for process, _ in running.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)  # the member marks its run interrupted and exits
            for member, (process, started) in running.items():
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                _collect(member, process.returncode, time.monotonic() - started)
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        raise
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _collect(member: Member, code: int, seconds: float) -> None:
    """The member's outcome from its exit code, its JSON document and its run.json."""
    from .. import runs

    logs = member.folder.parent / "logs"
    member.exit_code, member.seconds = code, seconds
    document = _read_json(logs / f"{member.folder.name}.json")
    member.metrics = _finite_numbers(document.get("metrics"))
    member.gates = [g for g in document.get("gates", []) if isinstance(g, dict)] if isinstance(document.get("gates"), list) else []
    info = _read_json(member.folder / runs.RUN_FILE)
    if code not in (0, 5) and info.get("status") == "completed":
        # Stopped while it was already finishing: the run itself completed, and says so.
        member.metrics = member.metrics or _finite_numbers(_read_json(member.folder / "metrics.json"))
        member.gates = member.gates or [g for g in info.get("gates", []) if isinstance(g, dict)]
        code = member.exit_code = 5 if any(not g.get("passed") for g in member.gates) else 0
    if code == 0:
        member.status, member.error = "completed", ""
    elif code == 5:
        member.status, member.error = "completed", "; ".join(
            f"{g.get('metric')} = {g['value']:.4g}, expected {g.get('condition')}" if isinstance(g.get("value"), (int, float))
            else f"{g.get('metric')} not reported" for g in member.gates if not g.get("passed")
        )
    elif code in (130, 143, -signal.SIGINT, -signal.SIGTERM) or info.get("status") == "interrupted":
        member.status, member.exit_code = "interrupted", 130
        if info:  # it has a run folder to continue
            member.error = f"stopped; resume with nnflow train --resume {member.folder}"
        else:
            member.error = "stopped before it started training: it has no run to resume"
    elif code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        member.status, member.exit_code = "failed", 1
        member.error = f"killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
    else:
        member.status = "failed"
        error = document.get("error", {})
        member.error = error.get("message", "") if isinstance(error, dict) else ""
        if not member.error:
            log = logs / f"{member.folder.name}.log"
            tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:] if log.exists() else []
            member.error = tail[0] if tail else f"exit code {code}"


def _read_json(path: Path) -> dict:
    """A member's JSON document or run.json, or {} when it is missing or damaged (read bounded, regular files only)."""
    from ..errors import DamagedRunError
    from ..runfiles import present, read_json_file

    if not present(path):
        return {}
    try:
        value = read_json_file(path)
    except DamagedRunError:
        return {}
    return value if isinstance(value, dict) else {}


def _finite_numbers(metrics) -> dict:
    import math

    if not isinstance(metrics, dict):
        return {}
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


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
        writer.writerow([rank, member.index, *member.grid.values(), member.metrics.get(result.metric, ""), member.status,
                         "" if member.exit_code is None else member.exit_code, member.folder, member.error])
    runs.write_text_atomic(result.folder / "leaderboard.csv", out.getvalue())
