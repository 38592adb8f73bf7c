"""`fit.distribute`: training under TensorFlow's own distribution strategies.

- `none`: the default strategy (one device).
- `mirrored`: `tf.distribute.MirroredStrategy` over this machine's GPUs; without GPUs, over
  its logical CPU devices (one, unless the process split the CPU with
  `tf.config.set_logical_device_configuration`).
- `multi_worker`: `tf.distribute.MultiWorkerMirroredStrategy`, one process per machine,
  each configured by the standard `TF_CONFIG` variable. Every worker reads the same files
  and runs the same code; the batches are auto-sharded by tf.data (each worker trains on
  its share of every global batch). Only the chief writes the run folder.

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
import json
import os
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, DataError, NnflowError, Problem, TrainingError, UnsafeModelError

TF_CONFIG_EXAMPLE = (
    "TF_CONFIG='{\"cluster\": {\"worker\": [\"host1:12345\", \"host2:12345\"]}, "
    "\"task\": {\"type\": \"worker\", \"index\": 0}}' (index 1 on the second machine)"
)


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
        return {"mode": self.mode, "replicas": self.replicas, "workers": self.workers, "task": self.task, "chief": self.chief}


def read_tf_config(environ=os.environ) -> dict:
    """`TF_CONFIG`, checked: a cluster of chief/worker addresses and this process's task in it."""
    raw = environ.get("TF_CONFIG")
    if not raw:
        raise ConfigError(Problem(
            f"fit.distribute is multi_worker, but TF_CONFIG is not set. Start each worker with {TF_CONFIG_EXAMPLE}.",
            where="TF_CONFIG",
        ))
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ConfigError(Problem(f"TF_CONFIG is not JSON ({error.msg} at character {error.pos}). Expected {TF_CONFIG_EXAMPLE}.", where="TF_CONFIG")) from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict) or not isinstance(config.get("task"), dict):
        raise ConfigError(Problem(f"TF_CONFIG needs a `cluster` and a `task` mapping. Expected {TF_CONFIG_EXAMPLE}.", where="TF_CONFIG"))
    cluster, task = config["cluster"], config["task"]
    for job, addresses in cluster.items():
        if job not in ("chief", "worker"):
            raise ConfigError(Problem(
                f"TF_CONFIG's cluster has a {job!r} job; MultiWorkerMirroredStrategy uses only `chief` and `worker` "
                "(parameter servers and evaluators belong to other strategies).",
                where="TF_CONFIG",
            ))
        if not isinstance(addresses, list) or not addresses or not all(isinstance(a, str) and ":" in a for a in addresses):
            raise ConfigError(Problem(f"TF_CONFIG's cluster.{job} must be a list of \"host:port\" addresses; received {json.dumps(addresses)}.", where="TF_CONFIG"))
    if "worker" not in cluster and "chief" not in cluster:
        raise ConfigError(Problem(f"TF_CONFIG's cluster lists no workers. Expected {TF_CONFIG_EXAMPLE}.", where="TF_CONFIG"))
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in cluster:
        raise ConfigError(Problem(f"TF_CONFIG's task type {kind!r} is not a job of its cluster ({', '.join(cluster)}).", where="TF_CONFIG"))
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(cluster[kind]):
        raise ConfigError(Problem(
            f"TF_CONFIG's task index {index!r} is not in the cluster: `{kind}` has {len(cluster[kind])} address(es), so 0 to {len(cluster[kind]) - 1}.",
            where="TF_CONFIG",
        ))
    if len(cluster.get("chief", [None])) != 1:
        raise ConfigError(Problem("TF_CONFIG's cluster.chief must list exactly one address (or leave the chief out: worker 0 is then the chief).", where="TF_CONFIG"))
    return config


def task_names(config: dict) -> list[str]:
    """Every task of the cluster, chief first: `chief:0`, `worker:0`, `worker:1`, ..."""
    return [f"{job}:{index}" for job in ("chief", "worker") for index in range(len(config["cluster"].get(job, [])))]


def is_chief(config: dict) -> bool:
    """The chief is `chief:0`, or `worker:0` in a cluster without a chief (TensorFlow's rule)."""
    task = config["task"]
    if "chief" in config["cluster"]:
        return task["type"] == "chief"
    return task["type"] == "worker" and task.get("index", 0) == 0


def start(mode: str, on_note=None) -> Distribution:
    """The strategy of `fit.distribute`. For multi_worker, call before any other TensorFlow work.

    A multi-worker strategy waits, inside TensorFlow and deaf to Ctrl-C, until every worker
    of the cluster has started; `on_note` hears which worker this is before that wait.
    """
    if mode == "none":
        return Distribution("none")
    import tensorflow as tf

    if mode == "mirrored":
        devices = None  # TensorFlow's choice: every local GPU
        if not tf.config.list_logical_devices("GPU"):
            devices = [device.name for device in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices)
        return Distribution("mirrored", strategy, replicas=strategy.num_replicas_in_sync)
    config = read_tf_config()
    task = config["task"]
    name = f"{task['type']}:{task.get('index', 0)}"
    address = config["cluster"][task["type"]][task.get("index", 0)]
    tasks = task_names(config)
    chief = is_chief(config)
    if on_note is not None and len(tasks) > 1:
        role = "the chief: it writes the run folder" if chief else "the chief writes the run folder"
        on_note(f"this is {name} of {len(tasks)} workers ({role}); training starts when all of them have joined.")
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except (RuntimeError, ValueError, tf.errors.OpError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if "startup" in message or "initialized" in message:
            message += ". Run multi_worker training as `nnflow train` in a process of its own."
        elif "gRPC server" in message:
            message += f" (is port {address.rsplit(':', 1)[1]} in use by another process?)"
        raise ConfigError(Problem(f"could not start this worker ({name} at {address}): {message}", where="TF_CONFIG")) from None
    patch_keras()
    return Distribution("multi_worker", strategy, replicas=strategy.num_replicas_in_sync, workers=len(tasks), task=name, chief=chief, tasks=tuple(tasks))


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
    code = (failure.exit_code if isinstance(failure, NnflowError) else 1) if failure is not None else 0
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
    failed = [(task, code) for task, code in zip(distribution.tasks, summed[len(values):]) if code]
    if failed:
        task, code = failed[0]
        error = {2: ConfigError, 3: DataError, 4: TrainingError, 6: UnsafeModelError}.get(code, NnflowError)
        raise error(f"{task} stopped (exit {code}; its output says why), so this worker stops too.")
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
        raise ConfigError(Problem(
            "the workers are not training the same experiment: their experiment files, --set options or data files differ. "
            "Give every worker the same command and the same files.",
            where="TF_CONFIG",
        ))


# ---------------------------------------------------------------------------
# Keras under MultiWorkerMirroredStrategy (keras-team/keras#20585)


def prepare_model(distribution: Distribution, model, x, y) -> None:
    """Build the model's compiled loss and metrics on a sample, so `fit` and `evaluate` need not.

    Under a strategy, Keras builds them from the first batch averaged over the replicas:
    a collective that fails across workers, and on one machine whenever that batch does
    not split evenly (an evaluation split of 15 rows over 2 replicas).
    """
    if distribution.strategy is None:
        return
    with distribution.scope():
        model._symbolic_build(data_batch=(x[:1], y[:1]))

    def built_already(iterator=None, data_batch=None):
        return None

    model._maybe_symbolic_build = built_already


def patch_keras() -> None:
    """Reduce Keras's per-step logs across workers element-wise (`axis=None`), not along axis 0."""
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    original = trainer.reduce_per_replica
    if getattr(original, "nnflow", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(lambda value: strategy.reduce("MEAN", value, axis=None), values)
        return original(values, strategy, reduction)

    reduce_per_replica.nnflow = True
    trainer.reduce_per_replica = reduce_per_replica


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
    lost = ", ".join(f"{job}:{index}" for job, index in tasks if f"{job}:{index}" != distribution.task) or "another worker"
    return f"lost contact with {lost} ({type(error).__name__}: TensorFlow aborted the collective ops)"
