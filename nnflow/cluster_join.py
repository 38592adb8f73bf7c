"""Joining: the workers of a multi_worker run agree that all of them are there before any of
them builds TensorFlow's strategy (whose constructor would wait, deaf to signals, until then).

The chief listens on its own TF_CONFIG port (TensorFlow's gRPC server binds it later); each
other worker connects, retrying until the chief listens, and says which task it is. The
chief tells the joined workers which tasks it still waits for, whenever that changes, and
`go` once none is missing; then every worker closes its socket and builds the strategy at
once. Past the deadline the chief tells the joined workers whom it still misses. The wait is
in Python, in steps of _POLL seconds, so Ctrl-C and SIGTERM stop it. One ASCII line each:

  worker -> chief   nnflow-join 1 TASK CLUSTER_DIGEST
  chief -> worker   waiting TASK...  |  go  |  missing TASK...  |  refused REASON  |  stopped
"""

from __future__ import annotations

import errno
import selectors
import socket
import time
from typing import cast

from .errors import ConfigError, Problem, TrainingError
from .fileio import os_reason
from .tf_config import address_of, cluster_digest, host_of, is_chief, port_of, task_address, task_name, task_names

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
    digest = cluster_digest(config)
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
                    _accept(listener, selector, unread)
                    continue
                connection = cast(
                    socket.socket, key.fileobj
                )  # the selector holds the listener and its connections only
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


def _accept(listener: socket.socket, selector: selectors.BaseSelector, unread: dict) -> None:
    """A new connection, watched until its hello is complete."""
    try:
        connection, _ = listener.accept()
    except OSError:  # the caller gave up already
        return
    connection.setblocking(False)
    unread[connection] = b""
    selector.register(connection, selectors.EVENT_READ)


def _read_hello(line: bytes, config: dict, joined: dict, digest: str) -> tuple[str | None, tuple[str, str] | None]:
    """(task, None) for a worker's hello; (None, (task, reason)) to refuse it; (None, None) for a stranger."""
    words = line.split(b"\n", 1)[0].decode("ascii", "replace").split(" ")
    if len(words) != 4 or words[0] != JOIN_PROTOCOL:
        return None, None
    _, version, task, their_digest = words
    if version != JOIN_VERSION:
        return None, (
            task,
            f"it speaks version {version} of nnflow's join protocol, the chief version {JOIN_VERSION}: install the same nnflow on every worker",
        )
    if their_digest != digest:
        return None, (
            task,
            "its TF_CONFIG has another cluster than the chief's: give every worker the same `cluster`, and each its own `task`",
        )
    if task not in task_names(config) or task == task_name(config):
        return None, (task, f"{task} is not one of the workers the chief waits for")
    if task in joined:
        return None, (
            task,
            f"another process has joined as {task} already: give each worker its own task index in TF_CONFIG",
        )
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
    address = address_of(config, chief)
    hello = f"{JOIN_PROTOCOL} {JOIN_VERSION} {name} {cluster_digest(config)}\n".encode("ascii")
    heard = None  # None (no answer yet) | "waiting" | "gone" | "stranger"
    missing: list[str] = []  # what the chief last said it waits for
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            connection = socket.create_connection((host_of(address), port_of(address)), timeout=min(remaining, 1.0))
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
                    raise ConfigError(
                        Problem(
                            f"the chief, {chief} at {address}, refused this worker ({name}): {rest}.", where="TF_CONFIG"
                        )
                    )
                elif word == "stopped":
                    raise TrainingError(
                        f"the chief, {chief} at {address}, stopped before every worker had joined (its output says why), so this worker stops too."
                    )
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
    raise TrainingError(
        f"the chief, {chief} at {address}, did not answer within {join_timeout:g} s (fit.join_timeout): {reason}. Start it with its TF_CONFIG, or check its address in this worker's TF_CONFIG."
    )


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


def _not_joined(
    config: dict, missing: list[str], join_timeout: float, *, reporter: str | None = None, refused: dict | None = None
) -> str:
    """The error of a worker that waited `join_timeout` for the `missing` tasks."""
    who = ", ".join(f"{task} ({address_of(config, task)})" for task in missing)
    one = len(missing) == 1
    says = f", says the chief {reporter}" if reporter else ""
    turned_away = "".join(
        f" A process claiming to be {task} was turned away: {reason}."
        for task, reason in (refused or {}).items()
        if task in missing
    )
    return (
        f"{who} did not join within {join_timeout:g} s (fit.join_timeout{says}): "
        f"{'it is' if one else 'they are'} not running, or failed before joining ({'its' if one else 'their'} own output says why).{turned_away} "
        "Start every worker, each with its TF_CONFIG, or raise fit.join_timeout if they take longer to start."
    )


def hold_port(config: dict) -> socket.socket:
    """This worker's port, bound on every interface as TensorFlow's gRPC server binds it, and
    held until the strategy is built; the chief also listens on it for the others' hellos."""
    name, address = task_name(config), task_address(config)
    port = port_of(address)
    dual = socket.has_dualstack_ipv6()
    held = socket.socket(socket.AF_INET6 if dual else socket.AF_INET)
    try:
        held.setsockopt(
            socket.SOL_SOCKET, socket.SO_REUSEADDR, 1
        )  # as gRPC does: old connections' TIME_WAIT is no obstacle
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
        raise ConfigError(
            Problem(f"could not start this worker ({name} at {address}): {reason}.", where="TF_CONFIG")
        ) from None
    return held
