"""Trials: claimed one at a time under the storage's lock (so that, together, every process stops at
`trials` finished ones and no grid point runs twice), kept alive, and finished with what nnflow knows.

Each trial records the host and pid that runs it. A trial left running by a process that is gone is
failed by the next process that looks: on a database through Optuna's heartbeat (any machine), on a
journal file (which has no heartbeat) only when the process was on this host and is gone, so that a
live sweep on the same file is never disturbed.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .search import Dimension, suggest
from .storage import HEARTBEAT_SECONDS, Storage

HOST = socket.gethostname()


@dataclass(frozen=True)
class Counts:
    finished: int  # completed + pruned: what `trials` counts
    running: int
    waiting: int  # enqueued, not yet claimed
    failed: int  # failed trials that count against max_failures (not interrupted, not invalid grid points)


def counts(study) -> Counts:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    states = [trial.state for trial in trials]
    failed = sum(
        1
        for trial in trials
        if trial.state == TrialState.FAIL
        and trial.user_attrs.get("status", "failed") == "failed"
        and not trial.user_attrs.get("invalid")
    )
    return Counts(
        finished=states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED),
        running=states.count(TrialState.RUNNING),
        waiting=states.count(TrialState.WAITING),
        failed=failed,
    )


def process_start(pid: int) -> str:
    """When process `pid` started (Linux: /proc), so that a reused pid is not taken for the same process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def alive(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return not started or process_start(pid) in ("", started)


def fail_lost(study, storage: Storage) -> list[int]:
    """Fail the running trials whose process is gone; the numbers of those failed."""
    from optuna.storages import fail_stale_trials
    from optuna.trial import TrialState

    lost = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        pid = attrs.get("pid")
        if attrs.get("host") != HOST or not isinstance(pid, int) or alive(pid, attrs.get("pid_start", "")):
            continue
        record_outcome(
            study,
            trial._trial_id,
            {"status": "failed", "exit_code": 1, "error": f"its process (pid {pid} on {HOST}) is gone"},
        )
        study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        lost.append(trial.number)
    if storage.has_heartbeat:
        from optuna.exceptions import ExperimentalWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            fail_stale_trials(study)
    return lost


def record_outcome(study, trial_id: int, outcome: Mapping[str, Any]) -> None:
    """User attributes of a running trial, whichever process runs it (Optuna's Trial sets only its own)."""
    for key, value in outcome.items():
        study._storage.set_trial_user_attr(trial_id, key, value)


def requeue_interrupted(study) -> int:
    """Enqueue, once, each interrupted trial again with its params; its worker resumes its run folder."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    queued = 0
    for trial in trials:
        if (
            trial.state == TrialState.FAIL
            and trial.user_attrs.get("status") == "interrupted"
            and trial.number not in retried
        ):
            study.enqueue_trial(
                dict(trial.params),
                user_attrs={"retry_of": trial.number, "resume": trial.user_attrs.get("run", "")},
            )
            queued += 1
    return queued


def claim(
    study,
    storage: Storage,
    space: Mapping[str, Dimension],
    sampler_for: Callable[[int], Any],
    *,
    trials: int,
    max_failures: int,
    grid: bool,
    choose: Callable[[list, list], Any] | None = None,
):
    """The next trial for this process, with its params; (None, {}) when the study needs no more from it.

    Under the storage's lock: together the processes start no more than `trials` (finished + running),
    and a grid's points, all enqueued when the study was made, each go to one process. The sampler is
    seeded for the trial's number (`sampler_for`): two processes seeded alike would propose alike.
    `choose(waiting, running)` may pick which waiting trial to take (a worker takes one its kept
    models fit); by default, and when it picks none, the oldest.
    """
    with storage.lock():
        fail_lost(study, storage)
        now = counts(study)
        if not wanted(now, trials=trials, max_failures=max_failures, grid=grid):
            return None, {}
        study.sampler = sampler_for(len(study.get_trials(deepcopy=False)))
        trial = _chosen(study, choose) if choose is not None and now.waiting else None
        if trial is None:
            with warnings.catch_warnings():  # nnflow beats itself (`heartbeat`), outside Study.optimize
                warnings.filterwarnings(
                    "ignore", message="Heartbeat of storage is supposed to be used with Study.optimize"
                )
                trial = study.ask()
        params = {key: suggest(trial, key, dimension) for key, dimension in space.items()}
        for key, value in (("host", HOST), ("pid", os.getpid()), ("pid_start", process_start(os.getpid()))):
            trial.set_user_attr(key, value)
        return trial, params


def _chosen(study, choose: Callable[[list, list], Any]):
    """The waiting trial `choose` picks, taken (running) as `Study.ask` takes the oldest one."""
    from optuna.trial import Trial, TrialState

    trials = study.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING))
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    picked = choose(waiting, [t for t in trials if t.state == TrialState.RUNNING])
    if picked is None or not study._storage.set_trial_state_values(picked._trial_id, state=TrialState.RUNNING):
        return None
    return Trial(study, picked._trial_id)


def wanted(now: Counts, *, trials: int, max_failures: int, grid: bool) -> bool:
    """Whether the study needs another trial started: below `trials`, within `max_failures`, and, for a
    grid, with a point left."""
    if now.failed > max_failures:
        return False
    return now.finished + now.running < trials and (now.waiting > 0 or not grid)


@contextlib.contextmanager
def heartbeat(storage: Storage, trial) -> Iterator[None]:
    """On a database, record that the trial's process lives, every HEARTBEAT_SECONDS, until it ends."""
    if not storage.has_heartbeat:
        yield
        return
    backend = storage.optuna()
    stopped = threading.Event()

    def beat() -> None:
        while True:
            with contextlib.suppress(Exception):  # a missed beat is retried; the grace period is six beats
                backend.record_heartbeat(trial._trial_id)
            if stopped.wait(HEARTBEAT_SECONDS):
                return

    thread = threading.Thread(target=beat, name=f"nnflow-heartbeat-{trial.number}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stopped.set()
        thread.join()
