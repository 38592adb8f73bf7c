"""benchmarks/serve_latency.py's client harness (_serve_client.py) reads HTTP right and judges its figures right.

The harness is imported, never run against nnflow or MLflow: no TensorFlow. Its HTTP client talks to
tiny servers on 127.0.0.1 port 0 that answer canned bytes (split across writes, coalesced, cut short,
not 200); its phases run for a fraction of a second against a fake model server; its arithmetic
(percentiles, ratios, targets, Prometheus counters) is checked on figures made up here; and the
processes serve_latency.py starts are stopped, children included.
"""

from __future__ import annotations

import ast
import json
import re
import socketserver
import statistics
import sys
import threading
import time
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import _serve_client  # noqa: E402
import serve_latency  # noqa: E402

ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
ONE = b'{"predictions":[{"predicted_species":"setosa"}]}'


def ok(body: bytes = ONE) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


def read_request(stream) -> bytes:
    """One request off the wire: the head, then Content-Length bytes."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        byte = stream.read(1)
        if not byte:
            return b""
        head += byte
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0
    )
    return head + stream.read(length)


@pytest.fixture
def canned():
    """A server for one connection: after each request it writes the next list of pieces, 20 ms apart."""
    received: list[bytes] = []
    servers = []

    def serve(*answers: list[bytes], close: bool = False) -> tuple[str, int]:
        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                for pieces in answers:
                    received.append(read_request(self.rfile))
                    for piece in pieces:
                        self.wfile.write(piece)
                        self.wfile.flush()
                        time.sleep(0.02)
                if not close:
                    read_request(self.rfile)  # keep the connection open until the client is done

        server = socketserver.TCPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.handle_request, daemon=True).start()
        servers.append(server)
        return server.server_address

    serve.received = received
    yield serve
    for server in servers:
        server.server_close()


def test_a_post_is_built_once_with_its_length_and_a_get_has_no_body():
    body = _serve_client.json_body("rows", [ROW])
    assert body == b'{"rows":[{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2}]}'
    assert _serve_client.request_bytes("POST", ("127.0.0.1", 8000), "/predict", b"hello") == (
        b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
        b"Content-Type: application/json\r\nContent-Length: 5\r\n\r\nhello"
    )
    assert _serve_client.request_bytes("GET", ("127.0.0.1", 41234), "/metrics") == (
        b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:41234\r\n\r\n"
    )


def test_a_response_in_pieces_is_read_to_exactly_its_length_and_the_connection_kept(canned):
    second = b'{"predictions":[[1,2,3]]}'
    first, body_at = ok(), ok().index(b"\r\n\r\n") + 4
    address = canned(
        # cut in the status line, in a header, after the head, and twice in the body
        [
            first[:7],
            first[7:40],
            first[40:body_at],
            first[body_at : body_at + 10],
            first[body_at + 10 : -5],
            first[-5:],
        ],
        [ok(second) + b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"],  # then a third, unasked, in the same write
    )
    request = _serve_client.request_bytes("POST", address, "/predict", _serve_client.json_body("rows", [ROW]))
    connection = _serve_client.Connection(address)
    try:
        assert connection.exchange(request) == (200, ONE)
        assert connection.exchange(request) == (200, second)
        assert connection.pending.startswith(b"HTTP/1.1 200 OK")  # the surplus waits for the next read
    finally:
        connection.close()
    assert canned.received == [request, request]
    assert connection.sent == 2


@pytest.mark.parametrize(
    ("answer", "check", "message"),
    [
        (
            b'HTTP/1.1 422 Unprocessable Entity\r\ncontent-length: 13\r\n\r\n{"error": 1}\n',
            False,
            'status 422: {"error"',
        ),
        (b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n", False, "status 503"),
        (ok(b'{"predictions":[{},{}]}'), True, "2 predictions for 1 rows"),
        (ok(b'{"predictions":[1]}'), True, "predictions are not a list of rows"),
        (ok(b'{"detail":"nope"}'), True, "no predictions in the answer (KeyError)"),
        (ok(b"<html>"), True, "no predictions in the answer (JSONDecodeError)"),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            False,
            "HTTP/1.1 200 OK: no valid Content-Length",
        ),
        (b"SSH-2.0-OpenSSH\r\n\r\n", False, "not an HTTP/1.x status line"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: -3\r\n\r\n", False, "HTTP/1.1 200 OK: no valid Content-Length"),
    ],
)
def test_an_answer_that_is_not_a_200_with_the_predictions_asked_for_is_a_failure(canned, answer, check, message):
    address = canned([answer])
    connection = _serve_client.Connection(address)
    try:
        with pytest.raises(_serve_client.HttpFailure, match="^" + re.escape(message)):
            _serve_client.call(connection, _serve_client.request_bytes("GET", address, "/"), 1, check=check)
    finally:
        connection.close()


def test_unchecked_answers_are_judged_by_their_status_alone(canned):
    address = canned([ok(b"not even json")])
    connection = _serve_client.Connection(address)
    try:
        _serve_client.call(connection, _serve_client.request_bytes("GET", address, "/"), 1, check=False)
    finally:
        connection.close()


def test_a_server_that_hangs_up_mid_response_is_a_failure(canned):
    address = canned([ok()[:-10]], close=True)
    connection = _serve_client.Connection(address)
    try:
        with pytest.raises(_serve_client.HttpFailure, match="closed the connection mid-response"):
            connection.exchange(_serve_client.request_bytes("GET", address, "/"))
    finally:
        connection.close()


@pytest.mark.parametrize("values", [[3.0, 1.0, 2.0, 4.0], list(range(1, 101)), [7.5], [0.1, 0.9, 0.2, 0.4, 0.3]])
@pytest.mark.parametrize("q", [0, 1, 50, 99, 100])
def test_percentiles_interpolate_between_ranks_like_numpy_and_statistics(values, q):
    expected = min(values) if q == 0 else max(values) if q == 100 or len(values) == 1 else None
    if expected is None:
        expected = statistics.quantiles(values, n=100, method="inclusive")[q - 1]
    assert _serve_client.percentile(values, q) == pytest.approx(expected)


def test_known_percentiles_and_none_of_nothing():
    assert _serve_client.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert _serve_client.percentile([float(v) for v in range(1, 101)], 99) == pytest.approx(99.01)
    summary = _serve_client.summary([0.001, 0.002, 0.003])
    assert summary == pytest.approx({"requests": 3, "seconds": 0.006, "p50_ms": 2.0, "p99_ms": 2.98})
    with pytest.raises(ValueError, match="no values"):
        _serve_client.percentile([], 50)


def test_prometheus_counters_are_summed_over_their_labels_and_only_theirs():
    text = (
        "# HELP nnflow_model_calls_total Model calls.\n# TYPE nnflow_model_calls_total counter\n"
        'nnflow_requests_total{status="200"} 2\nnnflow_requests_total{status="422",path="/p{x}"} 1\n'
        "nnflow_model_calls_total 7\nnnflow_model_calls_total_seconds 9.5\nnnflow_rows_total 1e3\n"
    )
    assert _serve_client.metric(text, "nnflow_model_calls_total") == 7
    assert _serve_client.metric(text, "nnflow_requests_total") == 3
    assert _serve_client.metric(text, "nnflow_rows_total") == 1000
    assert _serve_client.metric(text, "nnflow_missing_total") == 0


def figures(p50, p99, per_second, rows_per_second):
    return {
        "sequential": {"p50_ms": p50, "p99_ms": p99},
        "concurrent": {"requests_per_s": per_second, "p50_ms": 99.0},
        "bulk": {"rows_per_s": rows_per_second, "p50_ms": 99.0},
    }


def test_ratios_are_nnflow_over_the_other_side_on_each_headline_figure():
    nnflow, floor = figures(1.0, 4.0, 1500.0, 150_000.0), figures(0.5, 1.0, 3000.0, 300_000.0)
    assert _serve_client.ratios(nnflow, floor) == pytest.approx(
        {"p50_ms": 2.0, "p99_ms": 4.0, "requests_per_s": 0.5, "rows_per_s": 0.5}
    )
    mlflow = figures(66.0, 130.0, 15.0, 10_000.0)
    assert 1 / _serve_client.ratios(nnflow, mlflow)["p50_ms"] == pytest.approx(66.0)  # printed as "66x faster"


@pytest.mark.parametrize(
    ("side", "met"),
    [
        (figures(3.0, 15.0, 1000.0, 100_000.0), [True, True, True, True]),  # every bound is included
        (figures(3.01, 15.01, 999.9, 99_999.0), [False, False, False, False]),
        (figures(0.9, 20.0, 1200.0, 90_000.0), [True, False, True, False]),
    ],
)
def test_the_targets_are_p50_p99_upper_bounds_and_throughput_lower_bounds(side, met):
    assert _serve_client.verdicts(side) == dict(zip(["p50_ms", "p99_ms", "requests_per_s", "rows_per_s"], met))


def side(p50, per_second, rows_per_second, species, **extra):
    made = figures(p50, p50 * 2, per_second, rows_per_second)
    made["sequential"]["requests"] = 2000
    made["concurrent"]["p99_ms"] = 9.0
    made |= {
        "load_average_before": 0.5,
        "start_seconds": 1.0,
        "requests_sent": 100,
        "stderr_lines": 0,
        "exit_code": 0,
        "species": species,
    }
    return made | extra


def test_the_report_judges_nnflow_compares_the_answers_and_prints_ok_or_missed():
    labels = ["setosa", "versicolor", "virginica", "setosa"]
    nnflow = side(1.0, 900.0, 150_000.0, labels, access_log_lines=100, health_status_when_ready=200, exit_code=0)
    mlflow = side(66.0, 15.0, 10_000.0, ["setosa", "versicolor", "setosa", "setosa"], exit_code=-15)
    floor = side(0.25, 5000.0, 500_000.0, [None] * 4)
    document = serve_latency.report(
        {"nnflow": nnflow, "floor": floor, "mlflow": mlflow}, labels, 80.0, _serve_client.QUICK
    )
    assert document["targets"]["requests_per_s"] == [">=", 1000.0, False]
    assert document["targets"]["p50_ms"] == ["<=", 3.0, True]
    assert document["ratios"]["nnflow/floor"]["p50_ms"] == 4.0
    assert (nnflow["accuracy"], mlflow["accuracy"], "accuracy" in floor) == (1.0, 0.75, False)
    assert document["notes"] == ["nnflow and MLflow predict another species for 1 of the 4 rows"]
    text = serve_latency.render(document)
    assert "(--quick)" in text
    assert re.search(r"8 clients: requests/s +900 +5,000 +15\.00 +>= 1,000  MISSED", text), text
    assert re.search(r"one row, sequential: p50 \(ms\) +1\.00 +0\.25 +66\.00 +<= 3\.00  ok", text), text
    assert "nnflow/mlflow: 66.0x faster (p50), requests/s x60.0, rows/s x15.0" in text


def test_the_report_notes_what_nnflow_did_wrong_and_renders_without_nnflow():
    nnflow = side(1.0, 1000.0, 1e5, ["setosa"], access_log_lines=98, health_status_when_ready=503, exit_code=-15)
    document = serve_latency.report({"nnflow": nnflow}, ["setosa"], 1.0, _serve_client.Plan())
    assert document["notes"] == [
        "nnflow serve exited -15 on SIGTERM (expected 0)",
        "nnflow's access log has 98 lines for 100 requests",
        "nnflow's /health answered 503 after its ready line",
    ]
    floor_only = serve_latency.report({"floor": side(0.25, 5000.0, 5e5, [None])}, ["setosa"], 1.0, _serve_client.Plan())
    assert "targets" not in floor_only and "ratios" not in floor_only
    assert "MISSED" not in serve_latency.render(
        floor_only
    ) and "floor: load 0.5 before, ready after 1.0 s" in serve_latency.render(floor_only)


def test_mlflows_phases_are_capped_and_a_shorter_plan_stays_as_it_is():
    capped = _serve_client.capped_for_mlflow(_serve_client.Plan())
    assert (capped.warm, capped.timed, capped.timed_cap_s) == (10, 200, 20.0)
    assert (capped.bulk_warm, capped.bulk_timed, capped.bulk_cap_s) == (2, 20, 20.0)
    assert capped.concurrent_s == _serve_client.Plan().concurrent_s
    quick = _serve_client.capped_for_mlflow(_serve_client.QUICK)
    assert (quick.timed, quick.timed_cap_s, quick.bulk_timed) == (200, 10.0, 10)


class FakeModel(socketserver.ThreadingTCPServer):
    """Answers each POST with one prediction per row, counts a model call every second request."""

    daemon_threads = True
    request_queue_size = 64  # socketserver's 5 drops some of 8 connections made at once: a 1 s SYN retry
    posts = 0
    refuse_after: int | None = None

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            server = self.server
            while request := read_request(self.rfile):
                if request.startswith(b"GET /metrics"):
                    self.wfile.write(ok(b"nnflow_model_calls_total %d\n" % (server.posts // 2)))
                    continue
                with server.lock:
                    server.posts += 1
                    refused = server.refuse_after is not None and server.posts > server.refuse_after
                rows = len(json.loads(request.split(b"\r\n\r\n", 1)[1])["rows"])
                body = json.dumps({"predictions": [[0.1, 0.2, 0.7]] * rows}).encode()
                self.wfile.write(b"HTTP/1.1 500 Oops\r\ncontent-length: 0\r\n\r\n" if refused else ok(body))

    def __init__(self):
        super().__init__(("127.0.0.1", 0), self.Handler)
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture
def fake_model():
    server = FakeModel()
    yield server
    server.shutdown()
    server.server_close()


TINY = _serve_client.Plan(3, 20, 5.0, 0.05, 0.15, 1, 2, 5.0)


def test_the_three_phases_measure_a_server_and_count_its_model_calls(fake_model):
    measured = _serve_client.measure(fake_model.server_address, "/predict", "rows", [ROW] * 3, TINY, metrics=True)
    assert measured["sequential"]["requests"] == 20
    assert measured["bulk"]["requests"] == 2 and measured["bulk"]["rows"] == 1000
    assert measured["bulk"]["rows_per_s"] == pytest.approx(2000 / measured["bulk"]["seconds"])
    concurrent = measured["concurrent"]
    assert concurrent["clients"] == 8 and concurrent["requests"] > 0
    assert concurrent["seconds"] == 0.15
    assert concurrent["requests_per_s"] == pytest.approx(concurrent["requests"] / 0.15)
    assert concurrent["model_calls_per_request"] == pytest.approx(0.5, abs=0.1)  # the fake calls its model every 2nd


def test_only_the_requests_that_end_after_the_warm_up_are_timed(fake_model):
    request = _serve_client.request_bytes(
        "POST", fake_model.server_address, "/predict", _serve_client.json_body("rows", [ROW])
    )
    window, sent = _serve_client.concurrent(fake_model.server_address, [request], 8, 0.1, 0.1)
    assert sent == fake_model.posts
    assert 0.2 < len(window) / sent < 0.8  # about half: 0.1 s of warm-up, then 0.1 s timed


def test_a_failure_in_one_of_the_8_clients_stops_the_phase_and_is_raised(fake_model):
    fake_model.refuse_after = 30
    request = _serve_client.request_bytes(
        "POST", fake_model.server_address, "/predict", _serve_client.json_body("rows", [ROW])
    )
    with pytest.raises(_serve_client.HttpFailure, match="status 500"):
        _serve_client.concurrent(fake_model.server_address, [request], 8, 0.0, 5.0)


def test_a_side_s_ready_line_gives_its_address(tmp_path):
    line = json.dumps({"command": "serve", "ok": True, "url": "http://127.0.0.1:41234", "pid": 1})
    code = f"import time; print({line!r}, flush=True); time.sleep(30)"
    server = serve_latency.start("side", [sys.executable, "-c", code], tmp_path / "side", {"PATH": "/usr/bin"})
    try:
        assert serve_latency.wait_ready(server, None, None) == ("127.0.0.1", 41234)
    finally:
        serve_latency.stop(server)
    assert server.exit_code == -15


def test_a_side_that_exits_before_it_is_ready_stops_the_benchmark_with_its_output(tmp_path):
    code = "import sys; print('no model here', file=sys.stderr); sys.exit(3)"
    server = serve_latency.start("nnflow", [sys.executable, "-c", code], tmp_path / "side", {"PATH": "/usr/bin"})
    with pytest.raises(SystemExit) as stopped:
        serve_latency.wait_ready(server, None, None)
    assert "benchmark aborted: nnflow failed (exit code 3 before it was ready)" in stopped.value.code
    assert "no model here" in stopped.value.code


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_stopping_a_side_ends_its_children_too_and_kills_what_ignores_sigterm(tmp_path):
    """MLflow's server is a child of `mlflow models serve`: the whole process group goes."""
    code = (
        "import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']);"
        "print(child.pid, flush=True); time.sleep(30)"
    )
    server = serve_latency.start("side", [sys.executable, "-c", code], tmp_path / "side", {"PATH": "/usr/bin"})
    while "\n" not in server.output("stdout"):
        time.sleep(0.01)
    child = int(server.output("stdout"))
    serve_latency.stop(server, grace=0.3)
    assert server.exit_code == -9
    for _ in range(100):  # SIGKILL is sent, not yet acted on
        if ended(child):
            break
        time.sleep(0.01)
    assert ended(child)


def ended(pid: int) -> bool:
    """Gone, or dead and waiting for init to reap it (an orphan is not ours to wait for)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("module_file", ["serve_latency.py", "_serve_client.py"])
def test_the_harness_imports_only_the_standard_library(module_file):
    """The sides import TensorFlow, FastAPI and MLflow; the client must not pay for them."""
    tree = ast.parse((BENCHMARKS / module_file).read_text(encoding="utf-8"))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    tops = {name.split(".")[0] for name in names}
    assert tops - {"_common", "_serve_client"} <= set(sys.stdlib_module_names), tops - set(sys.stdlib_module_names)
