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
import errno
import hashlib
import json
import os
import selectors
import socket
import time
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, DamagedRunError, DataError, GateError, NnflowError, OutputError, Problem, TrainingError
from .fileio import os_reason

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
        if not isinstance(addresses, list) or not addresses or not all(_is_address(a) for a in addresses):
            raise ConfigError(Problem(
                f"TF_CONFIG's cluster.{job} must be a list of \"host:port\" addresses (a port from 1 to 65535); received {json.dumps(addresses)}.",
                where="TF_CONFIG",
            ))
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


def _is_address(value) -> bool:
    if not isinstance(value, str):
        return False
    host, _, port = value.rpartition(":")
    return bool(host) and port.isascii() and port.isdigit() and 0 < int(port) < 65536


def task_names(config: dict) -> list[str]:
    """Every task of the cluster, chief first: `chief:0`, `worker:0`, `worker:1`, ..."""
    return [f"{job}:{index}" for job in ("chief", "worker") for index in range(len(config["cluster"].get(job, [])))]


def is_chief(config: dict) -> bool:
    """The chief is `chief:0`, or `worker:0` in a cluster without a chief (TensorFlow's rule)."""
    task = config["task"]
    if "chief" in config["cluster"]:
        return task["type"] == "chief"
    return task["type"] == "worker" and task.get("index", 0) == 0


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
    name, address = task_name(config), task_address(config)
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
                on_note(f"this is {name} of {len(tasks)} workers ({role}); waiting up to {join_timeout:g} s (fit.join_timeout) for all of them to join.")
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
    return Distribution("multi_worker", strategy, replicas=strategy.num_replicas_in_sync, workers=len(tasks), task=name, chief=chief, tasks=tuple(tasks))


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
        if not tasks:  # a worker hears only that the chief's service did not answer; the chief, only that someone was late
            tasks = [everyone[0]] if name != everyone[0] else [task for task in everyone if task != name]
        who = ", ".join(f"{task} ({_address_of(config, task)})" for task in tasks)
        return TrainingError(
            f"{who} joined, then did not start TensorFlow's side within {join_timeout:g} s (fit.join_timeout): "
            f"{'it' if len(tasks) == 1 else 'one of them'} failed or was stopped in between (its output says why). Start every worker again."
        )
    message = text.splitlines()[0] if text else type(error).__name__
    if "startup" in message or "initialized" in message:
        message += ". Run multi_worker training as `nnflow train` in a process of its own."
    elif "gRPC server" in message:
        message += f" (is port {_port(address)} in use by another process?)"
    return ConfigError(Problem(f"could not start this worker ({name} at {address}): {message}", where="TF_CONFIG"))


# ---------------------------------------------------------------------------
# Joining: the workers agree that all of them are there before any of them builds the strategy.
#
# The chief listens on its own TF_CONFIG port (TensorFlow's gRPC server binds it later); each
# other worker connects, retrying until the chief listens, and says which task it is. The
# chief tells the joined workers which tasks it still waits for, whenever that changes, and
# `go` once none is missing; then every worker closes its socket and builds the strategy at
# once. Past the deadline the chief tells the joined workers whom it still misses. The wait is
# in Python, in steps of _POLL seconds, so Ctrl-C and SIGTERM stop it. One ASCII line each:
#
#   worker -> chief   nnflow-join 1 TASK CLUSTER_DIGEST
#   chief -> worker   waiting TASK...  |  go  |  missing TASK...  |  refused REASON  |  stopped

JOIN_PROTOCOL, JOIN_VERSION = "nnflow-join", "1"
_POLL = 0.2  # seconds
_LINE_LIMIT = 65536  # bytes: a longer line is not nnflow speaking


def join_cluster(config: dict, port: socket.socket, deadline: float, join_timeout: float) -> None:
    """Return once every worker of TF_CONFIG's cluster has joined; at `deadline` (a
    `time.monotonic()` value), raise TrainingError naming the missing workers.

    `port` is this worker's own port, held since start-up; the chief listens on it.
    """
    if is_chief(config):
        _gather(config, port, deadline, join_timeout)
    else:
        _reach_chief(config, deadline, join_timeout)


def _gather(config: dict, listener: socket.socket, deadline: float, join_timeout: float) -> None:
    """The chief's side: take the others' hellos until each task has said one."""
    others = [task for task in task_names(config) if task != task_name(config)]
    digest = _cluster_digest(config)
    joined: dict[str, socket.socket] = {}
    unread: dict[socket.socket, bytes] = {}  # connections whose hello is not complete yet
    refused: dict[str, str] = {}  # task -> why a process claiming it was turned away
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    farewell = "stopped"  # what the joined workers hear if this worker stops (Ctrl-C, SIGTERM)
    try:
        while len(joined) < len(others):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                missing = [task for task in others if task not in joined]
                farewell = "missing " + " ".join(missing)
                raise TrainingError(_not_joined(config, missing, join_timeout, refused=refused))
            for key, _ in selector.select(min(remaining, _POLL)):
                if key.fileobj is listener:
                    try:
                        connection, _ = listener.accept()
                    except OSError:  # the caller gave up already
                        continue
                    connection.setblocking(False)
                    unread[connection] = b""
                    selector.register(connection, selectors.EVENT_READ)
                    continue
                connection = key.fileobj
                try:
                    data = connection.recv(_LINE_LIMIT)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if connection not in unread:  # a joined worker: only its going away is news
                    if not data:
                        joined = {task: other for task, other in joined.items() if other is not connection}
                        _drop(selector, connection)
                        _tell(joined.values(), "waiting " + " ".join(task for task in others if task not in joined))
                    continue
                hello = unread.pop(connection) + data
                if data and b"\n" not in hello and len(hello) < _LINE_LIMIT:
                    unread[connection] = hello
                    continue
                task, refusal = _read_hello(hello, config, joined, digest)
                if task is None:
                    if refusal is not None:
                        refused[refusal[0]] = refusal[1]
                        _tell([connection], f"refused {refusal[1]}")
                    _drop(selector, connection)
                    continue
                joined[task] = connection
                refused.pop(task, None)
                if len(joined) < len(others):
                    _tell(joined.values(), "waiting " + " ".join(task for task in others if task not in joined))
        farewell = "go"
    finally:
        _tell(joined.values(), farewell)
        for connection in [*joined.values(), *unread]:
            connection.close()
        selector.close()


def _read_hello(line: bytes, config: dict, joined: dict, digest: str) -> tuple[str | None, tuple[str, str] | None]:
    """(task, None) for a worker's hello; (None, (task, reason)) to refuse it; (None, None) for a stranger."""
    words = line.split(b"\n", 1)[0].decode("ascii", "replace").split(" ")
    if len(words) != 4 or words[0] != JOIN_PROTOCOL:
        return None, None
    _, version, task, their_digest = words
    if version != JOIN_VERSION:
        return None, (task, f"it speaks version {version} of nnflow's join protocol, the chief version {JOIN_VERSION}: install the same nnflow on every worker")
    if their_digest != digest:
        return None, (task, "its TF_CONFIG has another cluster than the chief's: give every worker the same `cluster`, and each its own `task`")
    if task not in task_names(config) or task == task_name(config):
        return None, (task, f"{task} is not one of the workers the chief waits for")
    if task in joined:
        return None, (task, f"another process has joined as {task} already: give each worker its own task index in TF_CONFIG")
    return task, None


def _tell(connections, line: str) -> None:
    for connection in connections:
        try:
            connection.send(f"{line}\n".encode("ascii", "replace"))
        except OSError:  # it went away: the chief's loop, or TensorFlow's timeout, notices
            pass


def _drop(selector: selectors.BaseSelector, connection: socket.socket) -> None:
    selector.unregister(connection)
    connection.close()


def _reach_chief(config: dict, deadline: float, join_timeout: float) -> None:
    """A worker's side: say hello to the chief, retrying until it listens, and wait for its `go`."""
    name, chief = task_name(config), task_names(config)[0]
    address = _address_of(config, chief)
    hello = f"{JOIN_PROTOCOL} {JOIN_VERSION} {name} {_cluster_digest(config)}\n".encode("ascii")
    heard = None  # None (no answer yet) | "waiting" | "gone" | "stranger"
    missing: list[str] = []  # what the chief last said it waits for
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            connection = socket.create_connection((_host(address), _port(address)), timeout=min(remaining, 1.0))
        except OSError:  # not listening yet, or not reachable yet
            time.sleep(max(min(_POLL, deadline - time.monotonic()), 0))
            continue
        with connection:
            for line in _answers(connection, hello, deadline):
                word, _, rest = line.partition(" ")
                if word == "go":
                    return
                if word == "waiting":
                    heard, missing = "waiting", rest.split()
                elif word == "missing":
                    raise TrainingError(_not_joined(config, rest.split(), join_timeout, reporter=chief))
                elif word == "refused":
                    raise ConfigError(Problem(f"the chief, {chief} at {address}, refused this worker ({name}): {rest}.", where="TF_CONFIG"))
                elif word == "stopped":
                    raise TrainingError(f"the chief, {chief} at {address}, stopped before every worker had joined (its output says why), so this worker stops too.")
                else:
                    heard = "stranger"
                    break
            else:
                # The chief closed the connection before our deadline (it may be started again, until then);
                # at the deadline it is still waiting, and what it waits for is the answer.
                if heard == "waiting" and time.monotonic() < deadline:
                    heard = "gone"
        time.sleep(max(min(_POLL, deadline - time.monotonic()), 0))
    if heard == "waiting":
        raise TrainingError(_not_joined(config, missing, join_timeout, reporter=chief))
    reason = {
        None: f"it is not running, it failed before it listened (its output says why), or {address} cannot be reached from here",
        "gone": "it went away before every worker had joined (its output says why)",
        "stranger": f"something other than an nnflow worker answers at {address} (another program on that port?)",
    }[heard]
    raise TrainingError(f"the chief, {chief} at {address}, did not answer within {join_timeout:g} s (fit.join_timeout): {reason}. Start it with its TF_CONFIG, or check its address in this worker's TF_CONFIG.")


def _answers(connection: socket.socket, hello: bytes, deadline: float):
    """The chief's lines, as they come, until it closes the connection or the deadline passes."""
    connection.settimeout(_POLL)
    buffer = b""
    try:
        connection.sendall(hello)
        while time.monotonic() < deadline:
            try:
                data = connection.recv(_LINE_LIMIT)
            except TimeoutError:
                continue
            if not data:
                return
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                yield line.decode("ascii", "replace")
            if len(buffer) > _LINE_LIMIT:
                yield ""  # no worker speaks such lines
                return
    except OSError:  # reset: the chief stopped
        return


def _not_joined(config: dict, missing: list[str], join_timeout: float, *, reporter: str | None = None, refused: dict | None = None) -> str:
    """The error of a worker that waited `join_timeout` for the `missing` tasks."""
    who = ", ".join(f"{task} ({_address_of(config, task)})" for task in missing)
    one = len(missing) == 1
    says = f", says the chief {reporter}" if reporter else ""
    turned_away = "".join(f" A process claiming to be {task} was turned away: {reason}." for task, reason in (refused or {}).items() if task in missing)
    return (
        f"{who} did not join within {join_timeout:g} s (fit.join_timeout{says}): "
        f"{'it is' if one else 'they are'} not running, or failed before joining ({'its' if one else 'their'} own output says why).{turned_away} "
        "Start every worker, each with its TF_CONFIG, or raise fit.join_timeout if they take longer to start."
    )


def hold_port(config: dict) -> socket.socket:
    """This worker's port, bound on every interface as TensorFlow's gRPC server binds it, and
    held until the strategy is built; the chief also listens on it for the others' hellos."""
    name, address = task_name(config), task_address(config)
    port = _port(address)
    dual = socket.has_dualstack_ipv6()
    held = socket.socket(socket.AF_INET6 if dual else socket.AF_INET)
    try:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC does: old connections' TIME_WAIT is no obstacle
        if dual:
            held.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        held.bind(("", port))
        if is_chief(config):
            held.listen(64)
    except OSError as error:
        held.close()
        if error.errno == errno.EADDRINUSE:
            reason = f"port {port} is in use by another process. Stop it, or give this worker another port in every worker's TF_CONFIG"
        else:
            reason = f"port {port} cannot be used ({os_reason(error)})"
        raise ConfigError(Problem(f"could not start this worker ({name} at {address}): {reason}.", where="TF_CONFIG")) from None
    return held


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
        coordinated_jobs=[coordination_config_pb2.CoordinatedJob(name=job, num_tasks=len(cluster[job])) for job in ("chief", "worker") if job in cluster],
        cluster_register_timeout_in_ms=max(int(join_timeout * 1000), 1),
    )
    settings = eager.coordination_service
    if "cluster_register_with_barrier" in settings.DESCRIPTOR.fields_by_name:
        settings.cluster_register_with_barrier = True


def task_name(config: dict) -> str:
    """This process's task: `worker:1`."""
    task = config["task"]
    return f"{task['type']}:{task.get('index', 0)}"


def task_address(config: dict) -> str:
    return _address_of(config, task_name(config))


def _address_of(config: dict, task: str) -> str:
    job, _, index = task.partition(":")
    return config["cluster"][job][int(index)]


def _host(address: str) -> str:
    return address.rpartition(":")[0].strip("[]")


def _port(address: str) -> int:
    return int(address.rpartition(":")[2])


def _cluster_digest(config: dict) -> str:
    return hashlib.sha256(json.dumps(config["cluster"], sort_keys=True).encode()).hexdigest()[:16]



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
        error = {2: ConfigError, 3: DataError, 4: TrainingError, 5: GateError, 6: DamagedRunError, 7: OutputError}.get(code, NnflowError)
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
