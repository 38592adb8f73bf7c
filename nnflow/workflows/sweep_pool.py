"""The sweep's warm workers: N processes, watched. A worker that dies (SIGKILL, out of memory) has its
trial failed and is replaced; Ctrl-C and SIGTERM stop every worker cleanly (their trials marked
interrupted, their runs resumable) before the sweep exits."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ..errors import NnflowError, Terminated, error_for_exit_code
from .sweep_members import Member
from .sweep_plan import SweepPlan

MAX_EARLY_DEATHS = 3  # workers that die before finishing a trial, in a row: a bug, not bad luck
STOP_SECONDS = 60  # how long a stopped worker may take to mark its run interrupted


@dataclass(eq=False)
class _Worker:
    number: int
    process: subprocess.Popen
    events: IO[bytes]
    log: Path
    trial: dict | None = None  # the "started" event of the trial it trains
    buffer: str = field(default="", repr=False)


def worker_environment(jobs: int) -> dict[str, str]:
    """Share the cores: each worker's TensorFlow gets its part of them."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    env = dict(os.environ)
    env.pop("GITHUB_STEP_SUMMARY", None)  # the sweep writes one summary, the leaderboard
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["NNFLOW_SWEEP_PARENT"] = str(os.getpid())  # a worker whose sweep is gone stops (sweep_worker.py)
    env.setdefault("TF_NUM_INTRAOP_THREADS", str(max(1, cores // max(1, jobs))))
    env.setdefault("TF_NUM_INTEROP_THREADS", "1" if jobs > 1 else env.get("TF_NUM_INTEROP_THREADS", "0"))
    if env["TF_NUM_INTEROP_THREADS"] == "0":
        del env["TF_NUM_INTEROP_THREADS"]
    return env


class Pool:
    def __init__(self, plan: SweepPlan, study, jobs: int, on_event: Callable[[str, Member], None] | None) -> None:
        self.plan, self.study, self.jobs, self.on_event = plan, study, jobs, on_event
        self.workers: dict[int, _Worker] = {}
        self.selector = selectors.DefaultSelector()
        self.env = worker_environment(jobs)
        self.started = 0
        self.early_deaths = 0

    def run(self, wanted: Callable[[], bool]) -> None:
        """Start the workers and watch them until each has stopped; replace those that die."""
        for _ in range(self.jobs):
            self._start()
        try:
            while self.workers:
                for key, _ in self.selector.select(timeout=0.2):
                    self._read(key.data)
                for worker in [w for w in self.workers.values() if w.process.poll() is not None]:
                    self._ended(worker, wanted)
        except BaseException:
            self.stop()
            raise
        finally:
            self.selector.close()

    def _start(self) -> None:
        self.started += 1
        logs = self.plan.folder / "logs"
        log = logs / f"worker-{os.getpid()}-{self.started}.log"
        with open(log, "w") as stderr:
            # A session of its own: a Ctrl-C reaches the sweep, which stops each worker exactly once.
            process = subprocess.Popen(
                [sys.executable, "-m", "nnflow.workflows.sweep_worker", json.dumps(self.plan.options.to_json())],
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=self.env,
                start_new_session=True,
            )
        assert process.stdout is not None
        os.set_blocking(process.stdout.fileno(), False)
        worker = _Worker(self.started, process, process.stdout, log)
        self.workers[worker.number] = worker
        self.selector.register(process.stdout, selectors.EVENT_READ, worker)

    def _read(self, worker: _Worker) -> None:
        """Every whole line the worker has written so far."""
        while True:
            try:
                chunk = os.read(worker.events.fileno(), 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            worker.buffer += chunk.decode("utf-8", errors="replace")
        *lines, worker.buffer = worker.buffer.split("\n")
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            self._event(worker, event)

    def _event(self, worker: _Worker, event: dict) -> None:
        kind = event.get("event")
        if kind == "started":
            worker.trial = event
        elif kind == "finished":
            worker.trial = None
            self.early_deaths = 0
        elif kind == "error":  # the worker could not start (the file changed under the sweep, the storage went away)
            code = event.get("exit_code")
            raise error_for_exit_code(code if isinstance(code, int) else 1)(str(event.get("error")))
        if self.on_event and kind in ("started", "finished"):
            self.on_event(kind, _member(event))

    def _ended(self, worker: _Worker, wanted: Callable[[], bool]) -> None:
        self._read(worker)
        self.selector.unregister(worker.events)
        worker.events.close()
        del self.workers[worker.number]
        code = worker.process.returncode
        if code == 0:
            return
        if 1 < code < 128:  # it said why in an "error" event, read above; in case it could not
            raise error_for_exit_code(code)(f"a sweep worker stopped with exit code {code}; see {worker.log}")
        if code in (130, 143) or code == -signal.SIGINT:
            raise KeyboardInterrupt()
        reason = _death(code)
        if worker.trial is not None:
            self._fail(worker.trial, f"its worker was {reason}")
        else:
            self.early_deaths += 1
        if self.early_deaths >= MAX_EARLY_DEATHS:
            tail = worker.log.read_text(errors="replace").strip().splitlines()[-5:]
            raise NnflowError(
                f"sweep workers keep dying before they train ({reason}); the last log, {worker.log}:\n"
                + "\n".join(tail)
            )
        if wanted():
            self._start()

    def _fail(self, started: dict, error: str, status: str = "failed", code: int = 1) -> None:
        """Record the trial of a worker that is gone (a replaced worker's, or one that would not stop)."""
        from optuna.trial import TrialState

        from ..studies import record_outcome

        trial = self.study.get_trials(deepcopy=False)[started["trial"]]
        if trial.state == TrialState.RUNNING:
            record_outcome(self.study, trial._trial_id, {"status": status, "exit_code": code, "error": error})
            self.study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        if self.on_event:
            self.on_event("finished", _member({**started, "status": status, "exit_code": code, "error": error}))

    def stop(self) -> None:
        """Ctrl-C, SIGTERM or an error: stop every worker; none is left running on its own."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        try:
            for worker in self.workers.values():
                if worker.process.poll() is None:
                    worker.process.send_signal(signal.SIGINT)  # it marks its run and its trial interrupted
            deadline = time.monotonic() + STOP_SECONDS
            for worker in list(self.workers.values()):
                try:
                    worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    worker.process.kill()
                    worker.process.wait()
                try:
                    self._read(worker)
                except (NnflowError, OSError, ValueError):
                    pass
                if worker.trial is not None:  # killed before it could say: still the trial is interrupted
                    self._fail(worker.trial, "stopped", status="interrupted", code=130)
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def _death(code: int) -> str:
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        return f"killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
    return f"ended with exit code {code}"


def _member(event: dict) -> Member:
    return Member(
        index=int(event.get("trial", 0)) + 1,
        grid=dict(event.get("grid") or {}),
        folder=Path(event["run"]) if event.get("run") else None,
        status=str(event.get("status", "running")),
        exit_code=event.get("exit_code"),
        error=str(event.get("error", "")),
        metrics=dict(event.get("metrics") or {}),
        seconds=float(event.get("seconds") or 0.0),
    )


__all__ = ["Pool", "Terminated", "worker_environment"]
