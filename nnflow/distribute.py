"""`fit.distribute`: training under TensorFlow's own distribution strategies.

- `none`: the default strategy (one device).
- `mirrored`: `tf.distribute.MirroredStrategy` over this machine's GPUs; without GPUs, over
  its logical CPU devices (one, unless the process split the CPU with
  `tf.config.set_logical_device_configuration`).
- `multi_worker`: `tf.distribute.MultiWorkerMirroredStrategy`, one process per machine,
  each configured by the standard `TF_CONFIG` variable. Every worker reads the same files
  and runs the same code; the batches are auto-sharded by tf.data (each worker trains on
  its share of every global batch). Only the chief writes the run folder.

The strategy's constructor waits inside TensorFlow, deaf to signals, until every worker of
the cluster has started. So the workers join first (`join_cluster`): a small exchange with
the chief, in Python, bounded by `fit.join_timeout`; the strategy is built only once all of
them are there, with TensorFlow's own registration bounded by the same timeout.

`fit.batch_size` is the global batch: with N replicas each computes the gradient of
batch_size / N rows and the replicas' gradients are summed, so a step is the same
arithmetic as on one device (up to float rounding).

Keras 3.15 does not run `model.fit` under `MultiWorkerMirroredStrategy` out of the box
(keras-team/keras#20585): its first-batch model build averages the data batch over the
replicas (which fails across workers, and on one machine for an uneven batch), and its
metric logs are reduced with `axis=0` although they are scalars. `prepare_model` (any
strategy) and `patch_keras` (multi_worker) work around both. Its multi-step loop
(`steps_per_execution` > 1) cannot run the replicas' collective ops either, so runs with
several replicas take one step per execution.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass
from typing import Any

from . import errors
from ._keras_compat import build_under_strategy, install_elementwise_log_reduction
from .cluster_join import hold_port, join_cluster
from .errors import ConfigError, NnflowError, Problem, TrainingError
from .tf_config import (  # noqa: F401  (re-exported: TF_CONFIG's reading lives in tf_config)
    TF_CONFIG_EXAMPLE,
    address_of,
    cluster_digest,
    is_chief,
    port_of,
    read_tf_config,
    task_address,
    task_name,
    task_names,
)

_cluster_digest = cluster_digest  # the name tests/test_distribute.py uses


@dataclass(frozen=True)
class Distribution:
    """The strategy a run trains under, and this process's place in it."""

    mode: str  # none | mirrored | multi_worker
    strategy: Any = None  # a tf.distribute.Strategy, or None for `none`
    replicas: int = 1
    workers: int = 1
    task: str | None = None  # "worker:1" under multi_worker
    chief: bool = True  # writes the run folder
    tasks: tuple[str, ...] = ()  # every task of the cluster, chief first (multi_worker)

    def scope(self):
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def to_json(self) -> dict:
        return {
            "mode": self.mode,
            "replicas": self.replicas,
            "workers": self.workers,
            "task": self.task,
            "chief": self.chief,
        }


def start(mode: str, on_note=None, join_timeout: float = 300.0) -> Distribution:
    """The strategy of `fit.distribute`. For multi_worker, call before any other TensorFlow work.

    Under multi_worker, every worker first joins the others (`join_cluster`): it waits in
    Python, answering Ctrl-C and SIGTERM, at most `join_timeout` seconds for all of them,
    and only then builds the strategy, whose constructor TensorFlow would otherwise block
    in until every worker had started. `on_note` hears which worker this is before the wait.
    """
    if mode == "none":
        return Distribution("none")
    if mode == "mirrored":
        import tensorflow as tf

        devices = None  # TensorFlow's choice: every local GPU
        if not tf.config.list_logical_devices("GPU"):
            devices = [device.name for device in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices)
        return Distribution("mirrored", strategy, replicas=strategy.num_replicas_in_sync)
    deadline = time.monotonic() + join_timeout  # importing TensorFlow counts: the others wait meanwhile
    config = read_tf_config()
    name = task_name(config)
    tasks = task_names(config)
    chief = is_chief(config)
    # This worker's port, held from now on: taken by another process, it is this worker's
    # own clear error, before it joins (the others then time out instead of hanging).
    port = hold_port(config) if len(tasks) > 1 else None
    try:
        import tensorflow as tf  # before joining: once all have joined, the strategy follows at once

        if port is not None:
            if on_note is not None:
                role = "the chief: it writes the run folder" if chief else "the chief writes the run folder"
                on_note(
                    f"this is {name} of {len(tasks)} workers ({role}); waiting up to {join_timeout:g} s (fit.join_timeout) for all of them to join."
                )
            join_cluster(config, port, deadline, join_timeout)
    finally:
        if port is not None:
            port.close()  # TensorFlow's gRPC server binds it next (both set SO_REUSEADDR)
    if port is not None:
        _bound_registration(config, join_timeout)
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except (RuntimeError, ValueError, tf.errors.OpError) as error:
        raise _start_error(error, config, join_timeout) from None
    patch_keras()
    return Distribution(
        "multi_worker",
        strategy,
        replicas=strategy.num_replicas_in_sync,
        workers=len(tasks),
        task=name,
        chief=chief,
        tasks=tuple(tasks),
    )


def _start_error(error: BaseException, config: dict, join_timeout: float) -> NnflowError:
    """What to tell the user when TensorFlow's strategy constructor fails."""
    import re

    name, address = task_name(config), task_address(config)
    text = str(error).strip()
    if "Wait_for_all_tasks_to_register" in text or "RegisterTask" in text:
        # Every worker joined, then one failed or stopped before TensorFlow registered it:
        # TensorFlow's own registration timeout (`_bound_registration`) ended the wait.
        late = []  # the lines after "Some timed out task names:", one task each
        for part in text.split("timed out task names:")[1:]:
            for line in part.strip().splitlines():
                found = re.fullmatch(r"\s*/job:(\w+)/replica:\d+/task:(\d+)\s*", line)
                if not found:
                    break
                late.append(f"{found[1]}:{found[2]}")
        everyone = task_names(config)
        tasks = [task for task in everyone if task in late and task != name]
        if (
            not tasks
        ):  # a worker hears only that the chief's service did not answer; the chief, only that someone was late
            tasks = [everyone[0]] if name != everyone[0] else [task for task in everyone if task != name]
        who = ", ".join(f"{task} ({address_of(config, task)})" for task in tasks)
        return TrainingError(
            f"{who} joined, then did not start TensorFlow's side within {join_timeout:g} s (fit.join_timeout): "
            f"{'it' if len(tasks) == 1 else 'one of them'} failed or was stopped in between (its output says why). Start every worker again."
        )
    message = text.splitlines()[0] if text else type(error).__name__
    if "startup" in message or "initialized" in message:
        message += ". Run multi_worker training as `nnflow train` in a process of its own."
    elif "gRPC server" in message:
        message += f" (is port {port_of(address)} in use by another process?)"
    return ConfigError(Problem(f"could not start this worker ({name} at {address}): {message}", where="TF_CONFIG"))


def _bound_registration(config: dict, join_timeout: float) -> None:
    """Bound TensorFlow's own wait too, for a worker lost between joining and registering with
    TensorFlow's coordination service (a few milliseconds): with a registration barrier, the
    leader gives up after `join_timeout` as the other workers do (without it, it waits for ever).

    This is the configuration the strategy would make, plus the timeout; the strategy keeps a
    configuration made before it.
    """
    try:
        from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
        from tensorflow.python.eager import context
    except ImportError:  # another TensorFlow layout: the join alone bounds the wait
        return
    eager = context.context()
    if eager.coordination_service is not None or getattr(eager, "_initialized", False):
        return  # configured by the caller, or too late (the strategy says so)
    cluster = config["cluster"]
    eager.configure_coordination_service(
        service_type="standalone",
        service_leader=f"/job:{'chief' if 'chief' in cluster else 'worker'}/replica:0/task:0",
        coordinated_jobs=[
            coordination_config_pb2.CoordinatedJob(name=job, num_tasks=len(cluster[job]))
            for job in ("chief", "worker")
            if job in cluster
        ],
        cluster_register_timeout_in_ms=max(int(join_timeout * 1000), 1),
    )
    settings: Any = eager.coordination_service
    if "cluster_register_with_barrier" in settings.DESCRIPTOR.fields_by_name:
        settings.cluster_register_with_barrier = True


# ---------------------------------------------------------------------------
# Agreement between workers: every worker must train the same experiment on the same data.


def _sum_over_workers(distribution: Distribution, values: list[int]) -> list[int]:
    """Each worker's `values`, summed element-wise over the workers (an all-reduce)."""
    import tensorflow as tf

    strategy = distribution.strategy
    local = tf.constant(values, tf.int64)
    per_worker = distribution.replicas // distribution.workers  # every local replica contributes once

    @tf.function  # a strategy run outside a function warns of its overhead
    def total():
        return strategy.reduce("SUM", strategy.run(lambda: tf.identity(local)), axis=None)

    return [int(v) // per_worker for v in total().numpy()]


def exchange(distribution: Distribution, values: list[int], failure: BaseException | None = None) -> list[int]:
    """`values` summed over the workers; and if any worker failed, every worker stops.

    A worker whose own checks failed (its data file is missing, the chief's --out folder
    exists) still takes part, so that the others do not wait for it for ever; then it raises
    its own error, and the others one that names it, with its exit code.
    """
    if distribution.mode != "multi_worker" or distribution.workers == 1:
        if failure is not None:
            raise failure
        return list(values)
    code = (
        (failure.exit_code if isinstance(failure, NnflowError) else NnflowError.exit_code) if failure is not None else 0
    )
    codes = [0] * distribution.workers
    codes[distribution.tasks.index(distribution.task)] = code
    try:
        summed = _sum_over_workers(distribution, [*values, *codes])
    except Exception as error:  # a worker died (or was stopped) while the others waited here
        lost = lost_worker(distribution, error)
        if lost is None:
            raise
        raise TrainingError(f"{lost}; training stopped. Start every worker again.") from None
    if failure is not None:
        raise failure
    failed = [(task, code) for task, code in zip(distribution.tasks, summed[len(values) :]) if code]
    if failed:
        task, code = failed[0]
        raise errors.error_for_exit_code(code)(
            f"{task} stopped (exit {code}; its output says why), so this worker stops too."
        )
    return summed[: len(values)]


def agree_seed(distribution: Distribution, seed: int, failure: BaseException | None = None) -> int:
    """The chief's seed, on every worker (each drew its own when the file has none)."""
    if distribution.mode != "multi_worker":
        return exchange(distribution, [seed], failure)[0]
    return exchange(distribution, [seed if distribution.chief else 0], failure)[0]


def check_same_experiment(distribution: Distribution, fingerprint: str, failure: BaseException | None = None) -> None:
    """Refuse to train when the workers' experiments or data differ (on every worker at once).

    Each worker contributes a 20-bit number f from its fingerprint; the sums of f and f²
    over n workers satisfy n·Σf² = (Σf)² exactly when every f is the same.
    """
    f = int(hashlib.sha256(fingerprint.encode()).hexdigest()[:5], 16)
    total, squares, count = exchange(distribution, [f, f * f, 1], failure)
    if count * squares != total * total:
        raise ConfigError(
            Problem(
                "the workers are not training the same experiment: their experiment files, --set options or data files differ. "
                "Give every worker the same command and the same files.",
                where="TF_CONFIG",
            )
        )


# ---------------------------------------------------------------------------
# Keras under MultiWorkerMirroredStrategy (keras-team/keras#20585)


def prepare_model(distribution: Distribution, model, x, y) -> None:
    """Build the model's compiled loss and metrics on a sample, so `fit` and `evaluate` need not.

    Under a strategy, Keras builds them from the first batch averaged over the replicas:
    a collective that fails across workers, and on one machine whenever that batch does
    not split evenly (an evaluation split of 15 rows over 2 replicas).
    """
    if distribution.strategy is not None:
        build_under_strategy(model, distribution.strategy, x, y)


def patch_keras() -> None:
    """Reduce Keras's per-step logs across workers element-wise (`axis=None`), not along axis 0.

    Stays installed for the process; `nnflow.train` puts Keras's own function back when it returns.
    """
    install_elementwise_log_reduction()


# ---------------------------------------------------------------------------
# A worker lost mid-run


def lost_worker(distribution: Distribution, error: BaseException) -> str | None:
    """What to tell the user when `error` is TensorFlow aborting the collective ops because a
    worker stopped (it stops sending heartbeats; the others fail within seconds); else None."""
    if distribution.mode != "multi_worker":
        return None
    import re

    import tensorflow as tf

    if not isinstance(error, (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError)):
        return None
    tasks = sorted(set(re.findall(r"/job:(\w+)/replica:\d+/task:(\d+)", str(error))))
    lost = (
        ", ".join(f"{job}:{index}" for job, index in tasks if f"{job}:{index}" != distribution.task) or "another worker"
    )
    return f"lost contact with {lost} ({type(error).__name__}: TensorFlow aborted the collective ops)"
