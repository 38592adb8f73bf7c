"""A sweep's members: one `nnflow train` process each, run `jobs` at a time, and the outcome of each
read from its exit code, its JSON document and its run.json."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import GateError, NnflowError, Terminated, interrupt_exit_code

# A member's exit codes, as errors.py declares them.
BUG = NnflowError.exit_code
GATE_FAILED = GateError.exit_code
INTERRUPTED = interrupt_exit_code(KeyboardInterrupt())


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


def _child_environment(jobs: int, members: int) -> dict[str, str]:
    """Share the cores: each member's TensorFlow gets its part of them."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    env = dict(os.environ)
    env.pop("GITHUB_STEP_SUMMARY", None)  # the sweep writes one summary, the leaderboard; not one per member
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("TF_NUM_INTRAOP_THREADS", str(max(1, cores // max(1, min(jobs, members)))))
    return env


def run_members(config, overrides, members: list[Member], jobs: int, on_event) -> None:
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
                with (
                    open(logs / f"{member.folder.name}.json", "w") as out,
                    open(logs / f"{member.folder.name}.log", "w") as log,
                ):
                    process = subprocess.Popen(args, stdout=out, stderr=log, env=env, start_new_session=True)
                running[member] = (process, time.monotonic())
                member.status = "running"
                if on_event:
                    on_event("started", member)
            for member, (process, started) in list(running.items()):
                if process.poll() is None:
                    continue
                del running[member]
                collect_outcome(member, process.returncode, time.monotonic() - started)
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
                collect_outcome(member, process.returncode, time.monotonic() - started)
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        raise
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def collect_outcome(member: Member, code: int, seconds: float) -> None:
    """The member's outcome from its exit code, its JSON document and its run.json."""
    from .. import runs

    logs = member.folder.parent / "logs"
    member.exit_code, member.seconds = code, seconds
    document = _read_json(logs / f"{member.folder.name}.json")
    member.metrics = _finite_numbers(document.get("metrics"))
    member.gates = (
        [g for g in document.get("gates", []) if isinstance(g, dict)] if isinstance(document.get("gates"), list) else []
    )
    info = _read_json(member.folder / runs.RUN_FILE)
    if code not in (0, GATE_FAILED) and info.get("status") == "completed":
        # Stopped while it was already finishing: the run itself completed, and says so.
        member.metrics = member.metrics or _finite_numbers(_read_json(member.folder / "metrics.json"))
        member.gates = member.gates or [g for g in info.get("gates", []) if isinstance(g, dict)]
        code = member.exit_code = GATE_FAILED if any(not g.get("passed") for g in member.gates) else 0
    if code == 0:
        member.status, member.error = "completed", ""
    elif code == GATE_FAILED:
        member.status, member.error = (
            "completed",
            "; ".join(
                f"{g.get('metric')} = {g['value']:.4g}, expected {g.get('condition')}"
                if isinstance(g.get("value"), (int, float))
                else f"{g.get('metric')} not reported"
                for g in member.gates
                if not g.get("passed")
            ),
        )
    elif (
        code in (INTERRUPTED, Terminated.exit_code, -signal.SIGINT, -signal.SIGTERM)
        or info.get("status") == "interrupted"
    ):
        member.status, member.exit_code = "interrupted", INTERRUPTED
        if info:  # it has a run folder to continue
            member.error = f"stopped; resume with nnflow train --resume {member.folder}"
        else:
            member.error = "stopped before it started training: it has no run to resume"
    elif code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        member.status, member.exit_code = "failed", BUG
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
    from ..runs import present, read_json_file

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
    return {
        k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }
