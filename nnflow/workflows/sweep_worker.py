"""A warm sweep worker: one process that imports TensorFlow once, then claims trials from the study
and trains them one after another, each in a fresh Keras session into a run folder of its own.

`nnflow sweep` starts N of them (`python -m nnflow.workflows.sweep_worker OPTIONS_JSON`) and reads
their events, one JSON object per line, on their stdout. A Ctrl-C (SIGINT from the sweep) or SIGTERM
stops the trial being trained, which marks its run interrupted (resumable) and its trial interrupted,
and then the worker; one that arrives while the worker talks to the study waits until it is done,
so the study is never left half-written.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from ..errors import NnflowError, Terminated, interrupt_exit_code
from ..model_cache import ModelCache
from ..studies import finite, heartbeat, record_outcome, set_texts
from .sweep_grid import slug
from .sweep_plan import SweepOptions, SweepPlan, make_plan

# A trial's checkpoint at most once a second (and after its last epoch): a checkpoint after each epoch
# costs about a seventh of a small trial, and a trial continued after Ctrl-C repeats at most a second.
CHECKPOINT_SECONDS = 1.0


class _Signals:
    """Ctrl-C and SIGTERM become exceptions only while a trial trains; elsewhere they wait."""

    def __init__(self) -> None:
        self.training = False
        self.pending: int | None = None
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, self._handle)

    def _handle(self, signum, frame) -> None:
        self.pending = signum  # also while training: an error the interruption causes is still a stop
        if self.training:
            self.training = False
            raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    def raise_pending(self) -> None:
        if self.pending is not None:
            raise Terminated() if self.pending == signal.SIGTERM else KeyboardInterrupt()


class Worker:
    def __init__(self, plan: SweepPlan, events) -> None:
        import optuna

        from ..studies import open_storage

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.plan, self.events = plan, events
        self.storage = open_storage(plan.options.storage, plan.folder / "study.journal")
        self.study = optuna.load_study(
            study_name=plan.study.name,
            storage=self.storage.optuna(),
            sampler=plan.sampler_for(0),
            pruner=plan.pruner_object(),
        )
        self.signals = _Signals()
        from .. import training

        training.fresh_session()  # TensorFlow imported once, before the first trial is claimed
        self.models = ModelCache()  # a trial whose model differs only in its learning rate skips tracing
        self.kept: list[str | None] = []  # the shapes of the models it keeps (the last trials')
        self.shapes: dict[int, str | None] = {}  # trial number -> its shape
        gc.freeze()  # TensorFlow's own objects live as long as the worker: the collector need not scan them again

    def emit(self, event: str, **fields: Any) -> None:
        self.events.write(json.dumps({"event": event, **fields}) + "\n")
        self.events.flush()

    def run(self) -> int:
        from ..studies import claim

        plan = self.plan
        while True:
            self.signals.raise_pending()
            trial, params = claim(
                self.study,
                self.storage,
                plan.space,
                plan.sampler_for,
                trials=plan.trials,
                max_failures=plan.max_failures,
                grid=plan.grid,
                choose=self.choose if plan.grid else None,
            )
            if trial is None:
                return 0
            self.kept.append(self.shape_of(trial.number, params))
            del self.kept[: -self.models.kept]
            self.run_trial(trial, params)

    def choose(self, waiting: list, running: list):
        return choose_waiting(waiting, running, lambda t: self.shape_of(t.number, _params(t)), self.kept)

    def shape_of(self, number: int, params: dict) -> str | None:
        """What decides a trial's model (`model_cache.shape_key`, without the data): None if unknown."""
        if number not in self.shapes:
            from ..model_cache import shape_key
            from ..spec import load_spec

            try:
                texts = set_texts(self.plan.space, params)
                spec = load_spec(self.plan.options.config, [*self.plan.options.overrides, *texts])
                self.shapes[number] = shape_key(spec.to_dict(), (), 0, False)
            except (NnflowError, KeyError, StopIteration):
                self.shapes[number] = None
        return self.shapes[number]

    def run_trial(self, trial, params: dict) -> None:
        from optuna.trial import TrialState

        plan = self.plan
        texts = set_texts(plan.space, params)
        values = {text.split("=", 1)[0]: text.split("=", 1)[1] for text in texts}
        resume = _resumable(trial.user_attrs.get("resume"))
        folder = resume or plan.folder / f"{trial.number + 1:03d}-{slug(values)}"
        trial.set_user_attr("run", str(folder))
        self.emit("started", trial=trial.number, grid=values, run=str(folder))
        started = time.monotonic()
        outcome, state, value = self.train(trial, texts, folder, resume is not None)
        outcome["seconds"] = round(time.monotonic() - started, 3)
        record_outcome(self.study, trial._trial_id, outcome)
        if state == TrialState.COMPLETE:
            self.study.tell(trial, value)
        else:
            self.study.tell(trial, state=state)
        self.emit("finished", trial=trial.number, grid=values, run=str(folder), **outcome)
        if outcome["status"] == "interrupted":
            raise Terminated() if self.signals.pending == signal.SIGTERM else KeyboardInterrupt()

    def train(self, trial, texts: list[str], folder: Path, resume: bool) -> tuple[dict, Any, float | None]:
        """Train the trial; its outcome (user attributes), its Optuna state and its value."""
        from optuna.trial import TrialState

        from .. import training
        from .tracking_sweep import trial_tracker
        from .train import train
        from .train_steps import Progress

        plan = self.plan
        overrides = [*plan.options.overrides, *texts]
        progress = Progress(
            should_prune=self.pruning(trial) if plan.pruner != "none" else None,
            checkpoint_seconds=CHECKPOINT_SECONDS,
        )
        command = [
            "nnflow",
            "train",
            str(plan.options.config),
            *(f"--set={t}" for t in overrides),
            "--out",
            str(folder),
        ]
        training.fresh_session()
        try:
            with heartbeat(self.storage, trial):
                self.signals.raise_pending()  # a Ctrl-C while the trial was claimed: it has not started
                self.signals.training = True
                try:
                    tracker = trial_tracker(plan.options, trial.number, plan.study.name)
                    if resume:
                        result = train(
                            resume=folder, progress=progress, command=command, models=self.models, tracker=tracker
                        )
                    else:
                        result = train(
                            plan.options.config,
                            overrides,
                            out=folder,
                            progress=progress,
                            command=command,
                            models=self.models,
                            tracker=tracker,
                        )
                finally:
                    self.signals.training = False
        except (KeyboardInterrupt, Terminated) as stop:
            self.signals.pending = self.signals.pending or (
                signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT
            )
            return (
                {"status": "interrupted", "exit_code": interrupt_exit_code(stop), "error": "stopped"},
                TrialState.FAIL,
                None,
            )
        except Exception as error:
            return self.failed(error), TrialState.FAIL, None
        return _trained(result, plan.metric)

    def failed(self, error: Exception) -> dict:
        """The outcome of a trial that raised: an interruption when a stop caused it (it can surface as
        another error from inside TensorFlow), else a failure with the error's exit code."""
        if self.signals.pending is not None:
            stop = Terminated() if self.signals.pending == signal.SIGTERM else KeyboardInterrupt()
            return {"status": "interrupted", "exit_code": interrupt_exit_code(stop), "error": f"stopped ({error})"}
        if isinstance(error, NnflowError):
            return {"status": "failed", "exit_code": error.exit_code, "error": str(error)}
        traceback.print_exc()  # a bug: its traceback in the worker's log, the study goes on
        return {"status": "failed", "exit_code": 1, "error": f"bug: {type(error).__name__}: {error}"}

    def pruning(self, trial):
        """After each epoch: report the metric, and ask the pruner (a signal waits until that is done)."""
        metric = self.plan.metric

        def should_prune(row: dict) -> bool:
            value = finite(row.get(metric))
            if value is None:
                return False
            self.signals.training = False
            try:
                trial.report(value, step=int(row["epoch"]))
                prune = trial.should_prune()
            finally:
                self.signals.training = True
            self.signals.raise_pending()
            return prune

        return should_prune


def choose_waiting(waiting: list, running: list, shape_of, kept: list):
    """A waiting trial whose model shape this worker keeps; else one of a shape no other worker is
    training (so that each worker goes on with shapes of its own, and reuses its models); else None:
    the oldest."""
    busy = {shape_of(trial) for trial in running}
    fallback = None
    for candidate in waiting:
        shape = shape_of(candidate)
        if shape is not None and shape in kept:
            return candidate
        if fallback is None and shape not in busy:
            fallback = candidate
    return fallback


def _params(trial) -> dict:
    """A trial's values: a waiting grid point's are fixed when it is enqueued."""
    return dict(trial.system_attrs.get("fixed_params") or trial.params)


def _trained(result, metric: str) -> tuple[dict, Any, float | None]:
    """A trained trial's outcome: completed with its metric, pruned, or failed when the metric is missing."""
    from optuna.trial import TrialState

    metrics = {k: v for k, v in result.metrics.items() if finite(v) is not None}
    gates = [gate.to_json() for gate in result.gates]
    # The gates are recorded with each trial, and judged for the best one only (by the sweep).
    outcome = {"status": result.status, "exit_code": 0, "metrics": metrics, "gates": gates, "error": ""}
    value = finite(metrics.get(metric))
    if result.status == "pruned":
        return outcome, TrialState.PRUNED, value
    if value is None:
        outcome.update(status="failed", exit_code=4, error=f"the run did not report {metric} as a finite number")
        return outcome, TrialState.FAIL, None
    return outcome, TrialState.COMPLETE, value


def _resumable(run: Any) -> Path | None:
    """An interrupted trial's run folder, when it is on this machine and can be continued."""
    from ..run_layout import RUN_FILE

    if not isinstance(run, str) or not run:
        return None
    folder = Path(run)
    from ..errors import DamagedRunError
    from ..runs import present, read_json_file

    if not present(folder / RUN_FILE):  # another machine's: start afresh
        return None
    try:
        info = read_json_file(folder / RUN_FILE)
    except DamagedRunError:  # `nnflow runs` says what is wrong with it; the trial starts afresh
        return None
    return folder if isinstance(info, dict) and info.get("status") in ("interrupted", "running") else None


def _die_with_parent() -> None:
    """On Linux, SIGTERM when the sweep that started this worker dies, even by SIGKILL: a worker is
    never left training on its own. Its trial then stops as after Ctrl-C: interrupted, resumable."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the sweep's own clean-up still stops its workers
        return
    if str(os.getppid()) != os.environ.get("NNFLOW_SWEEP_PARENT", str(os.getppid())):
        os.kill(os.getpid(), signal.SIGTERM)  # the sweep died before the line above ran


def main(argv: list[str]) -> int:
    """`python -m nnflow.workflows.sweep_worker OPTIONS_JSON`: exit 0 when the study needs no more trials
    from it, 130/143 when stopped, 2 when the plan no longer holds (the file changed under it)."""
    events = os.fdopen(os.dup(1), "w", buffering=1)  # events on the real stdout; anything else printed goes to the log
    os.dup2(2, 1)
    options = SweepOptions.from_json(json.loads(argv[0]))
    try:
        _die_with_parent()
        worker = Worker(make_plan(options, check_points=False), events)
        return worker.run()
    except (KeyboardInterrupt, Terminated) as stop:
        return interrupt_exit_code(stop)
    except NnflowError as error:
        events.write(json.dumps({"event": "error", "exit_code": error.exit_code, "error": str(error)}) + "\n")
        return error.exit_code


if __name__ == "__main__":
    code = main(sys.argv[1:])
    # Everything is written (the study's storage commits each call; the run folders are closed), so
    # skip TensorFlow's slow teardown at exit: about a second the sweep would wait for each worker.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
