"""The client harness of benchmarks/serve_latency.py: a lean HTTP client, the three phases, their arithmetic.

Standard library only, like _common.py: the sides import TensorFlow, FastAPI and MLflow; the client
must not pay for them.

The client is lean on purpose: raw sockets, request bytes built once, the status line and headers
read, then exactly Content-Length bytes. Every status must be 200; the body is parsed (its number
of predictions) on the first response and every 16th. This machine has 2 cores and the client
shares them with the server: each microsecond the client spends is one the server does not get, so
the figures are those of the pair, below what a client on another machine would see.

It also holds the three phases (serve_latency.py's docstring says what each measures) and the
arithmetic on their figures: percentiles, nnflow's ratios to another side, and its target verdicts.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import closing
from dataclasses import dataclass, replace

CLIENTS = 8
BULK_ROWS = 1000
CHECK_EVERY = 16  # the body of the first response and of every 16th is parsed; every status is checked
TARGETS = {"p50_ms": ("<=", 3.0), "p99_ms": ("<=", 15.0), "requests_per_s": (">=", 1000.0), "rows_per_s": (">=", 1e5)}


@dataclass(frozen=True)
class Plan:
    """How long each phase runs: untimed then timed requests (capped in seconds), or seconds."""

    warm: int = 200
    timed: int = 2000
    timed_cap_s: float = 60.0
    concurrent_warm_s: float = 1.0
    concurrent_s: float = 5.0
    bulk_warm: int = 5
    bulk_timed: int = 100
    bulk_cap_s: float = 60.0


QUICK = Plan(20, 200, 10.0, 0.3, 1.0, 2, 10, 10.0)


def capped_for_mlflow(plan: Plan) -> Plan:
    """MLflow's server calls model.predict per request (tens of ms): fewer requests, and a time cap."""
    return replace(
        plan,
        warm=min(plan.warm, 10),
        timed=min(plan.timed, 200),
        timed_cap_s=min(plan.timed_cap_s, 20.0),
        bulk_warm=min(plan.bulk_warm, 2),
        bulk_timed=min(plan.bulk_timed, 20),
        bulk_cap_s=min(plan.bulk_cap_s, 20.0),
    )


# ---------------------------------------------------------------------------
# The HTTP client


class HttpFailure(Exception):
    """An answer the harness refuses: not HTTP, not 200, or not the predictions asked for."""


def request_bytes(method: str, address: tuple[str, int], path: str, body: bytes = b"") -> bytes:
    """One HTTP/1.1 request, built once and sent many times (keep-alive is HTTP/1.1's default)."""
    head = f"{method} {path} HTTP/1.1\r\nHost: {address[0]}:{address[1]}\r\n"
    if method == "POST":
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + "\r\n").encode("ascii") + body


def json_body(key: str, rows: list[dict]) -> bytes:
    return json.dumps({key: rows}, separators=(",", ":")).encode()


class Connection:
    """One keep-alive connection: send pre-built bytes, read one response at a time."""

    sent_lock = threading.Lock()
    sent_total = 0  # requests sent on every connection closed so far

    def __init__(self, address: tuple[str, int], timeout: float = 60.0):
        self.sock = socket.create_connection(address, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = bytearray()
        self.sent = 0

    def close(self) -> None:
        self.sock.close()
        with Connection.sent_lock:
            Connection.sent_total += self.sent

    def exchange(self, request: bytes) -> tuple[int, bytes]:
        """(status, body) of the response to `request`."""
        self.sock.sendall(request)
        self.sent += 1
        while (end := self.pending.find(b"\r\n\r\n")) < 0:
            self._receive()
        status_line, *header_lines = self.pending[:end].decode("latin-1").split("\r\n")
        del self.pending[: end + 4]
        version, _, rest = status_line.partition(" ")
        if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
            raise HttpFailure(f"not an HTTP/1.x status line: {status_line[:100]!r}")
        length = None
        for line in header_lines:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length" and value.strip().isdigit():
                length = int(value)
        if length is None:
            raise HttpFailure(f"{status_line}: no valid Content-Length (this client reads no chunked bodies)")
        while len(self.pending) < length:
            self._receive()
        body = bytes(self.pending[:length])
        del self.pending[:length]
        return int(rest[:3]), body

    def _receive(self) -> None:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise HttpFailure(f"the server closed the connection mid-response ({len(self.pending)} bytes read)")
        self.pending += chunk


def predictions_of(body: bytes) -> list:
    """The list under "predictions" (nnflow, the floor and MLflow all answer one), each a row's object or list."""
    try:
        predictions = json.loads(body)["predictions"]
    except (ValueError, KeyError, TypeError) as error:
        raise HttpFailure(f"no predictions in the answer ({type(error).__name__}): {body[:200]!r}") from None
    if not isinstance(predictions, list) or not all(isinstance(each, (dict, list)) for each in predictions):
        raise HttpFailure(f"predictions are not a list of rows: {body[:200]!r}")
    return predictions


def call(connection: Connection, request: bytes, rows: int, check: bool) -> None:
    """Send one request; a status other than 200, or (when checked) a wrong answer, raises HttpFailure."""
    status, body = connection.exchange(request)
    if status != 200:
        raise HttpFailure(f"status {status}: {body[:300].decode(errors='replace')}")
    if check and (count := len(predictions_of(body))) != rows:
        raise HttpFailure(f"{count} predictions for {rows} rows")


def get(address: tuple[str, int], path: str) -> tuple[int, bytes]:
    with closing(Connection(address, timeout=10.0)) as connection:
        return connection.exchange(request_bytes("GET", address, path))


def species_of(address: tuple[str, int], path: str, key: str, rows: list[dict]) -> list:
    """Each row's predicted species, all rows in one request (None where the answer has none: the floor)."""
    with closing(Connection(address)) as connection:
        status, body = connection.exchange(request_bytes("POST", address, path, json_body(key, rows)))
    if status != 200 or len(predictions := predictions_of(body)) != len(rows):
        raise HttpFailure(f"status {status}, {body[:200]!r} for {len(rows)} rows")
    return [each.get("predicted_species") if isinstance(each, dict) else None for each in predictions]


# ---------------------------------------------------------------------------
# The phases and their arithmetic


def sequential(address: tuple[str, int], requests: list[bytes], rows: int, warm: int, timed: int, cap_s: float):
    """Seconds per request on one connection, after `warm` untimed ones; stops early after cap_s."""
    with closing(Connection(address)) as connection:
        for number in range(warm):
            call(connection, requests[number % len(requests)], rows, check=number == 0)
        latencies: list[float] = []
        deadline = time.perf_counter() + cap_s
        for number in range(timed):
            sent = time.perf_counter()
            call(connection, requests[number % len(requests)], rows, check=number % CHECK_EVERY == 0)
            done = time.perf_counter()
            latencies.append(done - sent)
            if done > deadline:
                break
    return latencies


def concurrent(address: tuple[str, int], requests: list[bytes], clients: int, warm_s: float, run_s: float):
    """(latencies of the requests that ended in the timed window, requests sent in all) for `clients` threads."""
    clock: list[float] = []
    barrier = threading.Barrier(clients, action=lambda: clock.append(time.perf_counter()))
    latencies: list[list[float]] = [[] for _ in range(clients)]
    sent_counts = [0] * clients
    errors: list[BaseException] = []

    def client(index: int) -> None:
        try:
            with closing(Connection(address)) as connection:
                barrier.wait()
                begin = clock[0] + warm_s
                end = begin + run_s
                number = 0
                while not errors and (sent := time.perf_counter()) < end:
                    request = requests[(index + number * clients) % len(requests)]
                    call(connection, request, 1, check=number % CHECK_EVERY == 0)
                    done = time.perf_counter()
                    number += 1
                    if begin <= done <= end:
                        latencies[index].append(done - sent)
                sent_counts[index] = number
        except Exception as error:  # raised again in the calling thread, after the others stopped
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=client, args=(index,), daemon=True) for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise next((e for e in errors if not isinstance(e, threading.BrokenBarrierError)), errors[0])
    return [latency for mine in latencies for latency in mine], sum(sent_counts)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between the closest ranks (numpy's default)."""
    if not values:
        raise ValueError("Received no values to take a percentile of.")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(latencies: list[float]) -> dict:
    return {
        "requests": len(latencies),
        "seconds": sum(latencies),
        "p50_ms": percentile(latencies, 50) * 1e3,
        "p99_ms": percentile(latencies, 99) * 1e3,
    }


def metric(text: str, name: str) -> float:
    """The sum of a Prometheus metric's samples over every label set."""
    total = 0.0
    for line in text.splitlines():
        rest = line[len(name) :]
        if line.startswith(name) and rest[:1] in (" ", "{"):
            total += float((rest[rest.rindex("}") + 1 :] if rest[0] == "{" else rest).split()[0])
    return total


def measure(address: tuple[str, int], path: str, key: str, rows: list[dict], plan: Plan, metrics: bool) -> dict:
    """The three phases against one server; with `metrics`, model calls per request at 8 clients."""
    one_row = [request_bytes("POST", address, path, json_body(key, [row])) for row in rows]
    bulk = [request_bytes("POST", address, path, json_body(key, (rows * BULK_ROWS)[:BULK_ROWS]))]
    figures = {"sequential": summary(sequential(address, one_row, 1, plan.warm, plan.timed, plan.timed_cap_s))}
    calls_before = metric(get(address, "/metrics")[1].decode(), "nnflow_model_calls_total") if metrics else 0.0
    window, sent = concurrent(address, one_row, CLIENTS, plan.concurrent_warm_s, plan.concurrent_s)
    per_second = len(window) / plan.concurrent_s
    figures["concurrent"] = summary(window) | {
        "seconds": plan.concurrent_s,
        "clients": CLIENTS,
        "requests_per_s": per_second,
    }
    if metrics:
        calls = metric(get(address, "/metrics")[1].decode(), "nnflow_model_calls_total") - calls_before
        figures["concurrent"]["model_calls_per_request"] = calls / sent
    latencies = sequential(address, bulk, BULK_ROWS, plan.bulk_warm, plan.bulk_timed, plan.bulk_cap_s)
    figures["bulk"] = summary(latencies) | {
        "rows": BULK_ROWS,
        "rows_per_s": BULK_ROWS * len(latencies) / sum(latencies),
    }
    return figures


def headline(figures: dict) -> dict:
    """The four figures the targets are about."""
    return {
        "p50_ms": figures["sequential"]["p50_ms"],
        "p99_ms": figures["sequential"]["p99_ms"],
        "requests_per_s": figures["concurrent"]["requests_per_s"],
        "rows_per_s": figures["bulk"]["rows_per_s"],
    }


def ratios(nnflow: dict, other: dict) -> dict:
    """nnflow / other for each headline figure (latency: < 1 is faster; throughput: > 1 is more)."""
    ours, theirs = headline(nnflow), headline(other)
    return {name: ours[name] / theirs[name] for name in ours}


def verdicts(nnflow: dict) -> dict[str, bool]:
    """Whether each of nnflow's targets is met (bounds included)."""
    ours = headline(nnflow)
    return {name: ours[name] <= bound if op == "<=" else ours[name] >= bound for name, (op, bound) in TARGETS.items()}
