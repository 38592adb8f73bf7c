"""`nnflow serve` with a real HTTP client against a real server on a free 127.0.0.1 port.

One `nnflow serve` process per module (a fresh interpreter), on a run trained in-process with a
number, a category and a boolean feature. Its last test stops it with SIGTERM while a request
is in flight. The warm-up test runs the server in a thread of this process, to hold its warm-up.
"""

from __future__ import annotations

import http.client
import json
import logging
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import ROOT
from nnflow.cli import cli
from nnflow.workflows import predict, train

pytestmark = pytest.mark.slow
FEATURES = ["size", "colour", "shiny"]
OUTPUTS = ["predicted_kind", "probability_big", "probability_medium", "probability_small"]
START_SECONDS = 120


def mixed_rows(seed: int, rows: int, prefix: str) -> pd.DataFrame:
    """Rows of an id, a number `size`, a category `colour` and a boolean `shiny`."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": [f"{prefix}{i:03d}" for i in range(rows)],
            "size": rng.normal(size=rows).round(3),
            "colour": rng.choice(["red", "blue", "green"], rows),
            "shiny": rng.choice([True, False], rows),
        }
    )


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory) -> Path:
    """A run with a numeric, a category and a boolean feature, and an id column it does not use."""
    folder = tmp_path_factory.mktemp("mixed")
    frame = mixed_rows(seed=0, rows=120, prefix="r")
    frame["kind"] = np.select([frame["size"] > 0.5, frame["size"] < -0.5], ["big", "small"], "medium")
    frame.to_csv(folder / "train.csv", index=False)
    (folder / "experiment.yaml").write_text(
        "data: {train: train.csv, target: kind, features: [size, colour, shiny], validation: 0, test: 0.2}\n"
        "layers: [{Dense: {units: 8, activation: relu}}, {Dense: {units: 3, activation: softmax}}]\n"
        "compile: {optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}\n"
        "fit: {epochs: 3}\n"
    )
    return train(folder / "experiment.yaml", out=folder / "run").run_dir


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    log: Path

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def log_tail(self) -> str:
        return self.log.read_text()[-3000:]


def start_server(run: Path, folder: Path, *args: str) -> Server:
    log = folder / "serve-stderr.log"
    command = [sys.executable, "-m", "nnflow", "serve", str(run), "--port", "0", "--json", *args]
    with open(log, "w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    ready = selector.select(timeout=START_SECONDS)
    line = process.stdout.readline() if ready else ""
    if not line:
        process.kill()
        pytest.fail(f"nnflow serve did not start in {START_SECONDS} s: {log.read_text()[-3000:]}")
    document = json.loads(line)
    jsonschema.validate(document, json.loads((ROOT / "docs" / "json" / "serve.schema.json").read_text()))
    assert document["ok"] is True and document["url"].startswith("http://127.0.0.1:"), document
    return Server(process, document["url"], log)


@pytest.fixture(scope="module")
def server(mixed_run, tmp_path_factory):
    running = start_server(mixed_run, tmp_path_factory.mktemp("serve"), "--max-rows", "3000", "--max-body", "256KB")
    yield running
    if running.process.poll() is None:
        running.process.terminate()
    running.process.wait(timeout=60)


def call(connection, method: str, path: str, body: bytes | str | None = None, content_type="application/json"):
    """(status, headers, body bytes) on a kept-alive connection."""
    headers = {"Content-Type": content_type} if body is not None else {}
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    return response.status, response.headers, response.read()  # headers: case-insensitive


def rows_body(rows) -> str:
    return json.dumps({"rows": rows})


GOOD_ROW = {"size": 0.9, "colour": "red", "shiny": True}


def new_rows() -> pd.DataFrame:
    frame = mixed_rows(seed=1, rows=40, prefix="n")
    frame.loc[[5, 9], "colour"] = "purple"  # unseen in training: all zeros, and a note
    return frame


# ---------------------------------------------------------------------------
# Predictions: those of nnflow predict, in each form


def test_predictions_equal_nnflow_predict_in_each_form(server, mixed_run, tmp_path):
    frame = new_rows()
    frame.to_csv(tmp_path / "new.csv", index=False)
    result = predict(mixed_run, tmp_path / "new.csv", tmp_path / "out.csv")
    expected = pd.read_csv(tmp_path / "out.csv")
    assert list(expected.columns) == ["id", *OUTPUTS]
    records = json.loads(frame.to_json(orient="records"))
    connection = server.connection()

    status, _, body = call(connection, "POST", "/predict", rows_body(records))
    assert status == 200, body
    answer = json.loads(body)
    by_rows = pd.DataFrame(answer["predictions"])
    status, _, body = call(
        connection, "POST", "/predict", json.dumps({"columns": list(frame.columns), "data": frame.values.tolist()})
    )
    assert status == 200, body
    columns_answer = json.loads(body)
    by_columns = pd.DataFrame(columns_answer["data"], columns=columns_answer["columns"])
    status, headers, body = call(connection, "POST", "/predict", (tmp_path / "new.csv").read_bytes(), "text/csv")
    assert status == 200 and headers["content-type"].startswith("text/csv"), body
    (tmp_path / "served.csv").write_bytes(body)
    by_csv = pd.read_csv(tmp_path / "served.csv")

    for served in (by_rows, by_columns, by_csv):
        assert list(served.columns) == list(expected.columns)
        assert served["id"].tolist() == expected["id"].tolist()
        assert served["predicted_kind"].tolist() == expected["predicted_kind"].tolist()
        np.testing.assert_allclose(
            served[OUTPUTS[1:]].to_numpy(float), expected[OUTPUTS[1:]].to_numpy(float), atol=1e-6
        )
    note = "request: column 'colour' has 2 row(s) with categories not seen in training (first: 'purple' at {}); encoded as all zeros."
    assert result.notes == (note.replace("request", "new.csv").format("row 6 (line 7)"),)
    assert answer["notes"] == [note.format("rows[5]")] and columns_answer["notes"] == [note.format("data[5]")]
    assert json.loads(headers["X-Nnflow-Notes"]) == [note.format("line 7")]


def test_health_metadata_metrics_and_openapi(server):
    connection = server.connection()
    status, _, body = call(connection, "GET", "/health")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    status, _, body = call(connection, "GET", "/metadata")
    metadata = json.loads(body)
    assert metadata["features"] == [
        {"name": "size", "type": "number"},
        {"name": "colour", "type": "category", "categories": ["blue", "green", "red"]},
        {"name": "shiny", "type": "boolean"},
    ]
    assert metadata["classes"] == ["big", "medium", "small"] and metadata["outputs"] == OUTPUTS
    assert set(metadata["versions"]) == {"nnflow", "keras", "tensorflow"} and metadata["run"]["name"]
    assert metadata["limits"] == {"max_batch": 256, "max_rows": 3000, "max_body": 256 * 1024}
    status, _, body = call(connection, "GET", "/openapi.json")
    assert "Duplicate Operation ID" not in server.log.read_text()  # FastAPI's warning, were HEAD and GET one operation
    operation = json.loads(body)["paths"]["/predict"]["post"]
    assert set(operation["requestBody"]["content"]) == {"application/json", "text/csv"}
    assert {"200", "400", "413", "422"} <= set(operation["responses"])
    answers = operation["responses"]["200"]["content"]["application/json"]["schema"]
    for body in (rows_body([GOOD_ROW]), json.dumps({"columns": FEATURES, "data": [[0.9, "red", True]]})):
        jsonschema.validate(json.loads(call(connection, "POST", "/predict", body)[2]), answers)  # one branch of oneOf
    status, headers, body = call(connection, "GET", "/metrics")
    assert status == 200 and "nnflow_model_calls_total" in body.decode() and "nnflow_ready 1" in body.decode()
    connection.request("HEAD", "/health")  # what some probes send
    response = connection.getresponse()
    assert (response.status, response.read()) == (200, b"")
    status, _, body = call(connection, "GET", "/nowhere")
    assert status == 404 and json.loads(body)["error"]["code"] == "not_found"
    status, _, body = call(connection, "GET", "/predict")
    assert status == 405 and json.loads(body)["error"]["code"] == "method_not_allowed"


# ---------------------------------------------------------------------------
# Errors: each answered, then a good request still served


def csv_text(*lines: str) -> str:
    return "\n".join(lines) + "\n"


ERRORS = [
    (
        "missing feature",
        rows_body([GOOD_ROW, {"size": 1, "shiny": True}]),
        "application/json",
        422,
        "missing_feature",
        1,
        "colour",
    ),
    ("non-numeric", rows_body([{**GOOD_ROW, "size": "big"}]), "application/json", 422, "not_a_number", 0, "size"),
    (
        "non-numeric in CSV",
        csv_text("size,colour,shiny", "1,red,true", "x,red,true"),
        "text/csv",
        422,
        "not_a_number",
        1,
        "size",
    ),
    ("missing value", rows_body([{**GOOD_ROW, "colour": None}]), "application/json", 422, "missing_value", 0, "colour"),
    ("empty body", "", "application/json", 400, "empty_body", None, None),
    ("malformed JSON", '{"rows": [{"size": 1,', "application/json", 400, "malformed_json", None, None),
    ("malformed CSV", csv_text("size,colour,shiny", "1,red,true,4"), "text/csv", 400, "malformed_csv", 0, None),
    ("body over --max-body", rows_body([GOOD_ROW] * 6000), "application/json", 413, "body_too_large", None, None),
    ("rows over --max-rows", rows_body([GOOD_ROW] * 3001), "application/json", 413, "too_many_rows", None, None),
    ("wrong content type", "size=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type", None, None),
]


@pytest.mark.parametrize(
    ("case", "body", "content_type", "status", "code", "row", "field"), ERRORS, ids=[e[0] for e in ERRORS]
)
def test_an_error_names_its_row_and_field_and_the_service_goes_on(
    server, case, body, content_type, status, code, row, field
):
    connection = server.connection()
    got, headers, answer = call(connection, "POST", "/predict", body, content_type)
    assert got == status, answer
    error = json.loads(answer)["error"]
    assert (error["code"], error.get("row"), error.get("field")) == (code, row, field)
    assert error["message"] and "Traceback" not in error["message"]
    if headers.get("connection") == "close":  # the server may close after refusing a large body unread
        connection = server.connection()
    got, _, answer = call(connection, "POST", "/predict", rows_body([GOOD_ROW]))
    assert got == 200 and json.loads(answer)["predictions"][0]["predicted_kind"] in ("big", "medium", "small")


def test_an_unknown_category_is_served_with_predicts_note(server):
    status, _, body = call(
        server.connection(), "POST", "/predict", rows_body([GOOD_ROW, {**GOOD_ROW, "colour": "teal"}])
    )
    answer = json.loads(body)
    assert status == 200 and len(answer["predictions"]) == 2
    assert answer["notes"] == [
        "request: column 'colour' has 1 row(s) with categories not seen in training (first: 'teal' at rows[1]); encoded as all zeros."
    ]


def test_a_client_gone_mid_body_is_logged_as_499_without_a_traceback(server):
    gone = socket.create_connection(("127.0.0.1", server.port))
    gone.sendall(raw_request(rows_body([GOOD_ROW]).encode())[:-10])
    time.sleep(0.2)
    gone.close()
    deadline = time.monotonic() + 10
    while " POST /predict 499 " not in server.log.read_text():
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.05)
    assert "Traceback" not in server.log.read_text()
    assert call(server.connection(), "POST", "/predict", rows_body([GOOD_ROW]))[0] == 200


def test_a_second_server_on_a_taken_port_is_exit_2_before_loading_its_model(server, mixed_run, monkeypatch):
    from nnflow.workflows import serve as serve_workflow

    monkeypatch.setattr(serve_workflow, "load_run", lambda run: pytest.fail("the model was loaded"))
    result = CliRunner().invoke(cli, ["serve", str(mixed_run), "--port", str(server.port)])
    assert result.exit_code == 2 and "choose another --port" in result.stderr, result.output


# ---------------------------------------------------------------------------
# Batching, and the access log


def metric(server: Server, name: str) -> float:
    _, _, body = call(server.connection(), "GET", "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def raw_request(body: bytes) -> bytes:
    head = (
        f"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    reader = sock.makefile("rb")
    status = int(reader.readline().split()[1])
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return status, reader.read(length)


def test_concurrent_requests_are_batched_into_few_model_calls(server):
    """32 one-row requests that arrive together share a few model calls.

    The server is paused (SIGSTOP) while they are sent, so that they all wait in its sockets
    when it resumes, as a burst does while the model is busy.
    """
    lines_before = len(server.log.read_text().splitlines())
    clients = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(32)]
    for client in clients:  # accepted and kept alive before the burst
        client.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        assert read_response(client)[0] == 200
    calls_before = metric(server, "nnflow_model_calls_total")
    rows = [{"size": round(i / 10 - 1.6, 2), "colour": "blue", "shiny": False} for i in range(32)]
    server.process.send_signal(signal.SIGSTOP)
    try:
        for client, row in zip(clients, rows):
            client.sendall(raw_request(json.dumps({"rows": [row]}).encode()))
    finally:
        server.process.send_signal(signal.SIGCONT)
    answers = [read_response(client) for client in clients]
    assert all(status == 200 for status, _ in answers)
    calls = metric(server, "nnflow_model_calls_total") - calls_before
    assert 1 <= calls <= 4, f"{calls:.0f} model calls for 32 requests"
    one_by_one = [json.loads(call(server.connection(), "POST", "/predict", rows_body([row]))[2]) for row in rows[:3]]
    for (_, answer), alone in zip(answers, one_by_one):  # batched or alone, the same answer
        assert json.loads(answer)["predictions"] == alone["predictions"]
    for client in clients:
        client.close()
    # One line per request: method, path, status, rows, milliseconds
    new_lines = server.log.read_text().splitlines()[lines_before:]
    predicts = [line for line in new_lines if " POST /predict 200 rows=1 " in line]
    assert len(predicts) == 35 and all(line.endswith("ms") for line in predicts)
    assert sum(" GET /health 200 rows=- " in line for line in new_lines) == 32


# ---------------------------------------------------------------------------
# In-process: warm-up before ready, an unsafe model, a taken port, a missing extra


def test_health_is_503_until_warm_up_is_done_and_a_bug_is_a_json_500(mixed_run, tmp_path, caplog):
    from nnflow.serving import server as serving_server
    from nnflow.serving.app import Limits, Service, build_app
    from nnflow.serving.encoding import RowEncoder
    from nnflow.serving.model import CompiledModel
    from nnflow.workflows.trained_run import load_run

    trained = load_run(mixed_run)
    model = CompiledModel(trained.model, trained.preprocessing.input_shape)
    release = threading.Event()
    warm_up = model.warm_up
    model.warm_up = lambda max_batch: (release.wait(60), warm_up(max_batch))
    metadata = {"run": {"name": "t"}, "versions": {"nnflow": "0"}}
    service = Service(model, RowEncoder(trained.preprocessing), Limits(), metadata)
    log = tmp_path / "access.log"
    app = build_app(service, log=open(log, "w", buffering=1))
    sock = serving_server.listen("127.0.0.1", 0)
    uvicorn_server = serving_server.make_server(app)
    thread = threading.Thread(target=uvicorn_server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not uvicorn_server.started:  # listening once uvicorn serves (the socket is only bound before)
            assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
            time.sleep(0.02)
        connection = http.client.HTTPConnection("127.0.0.1", sock.getsockname()[1], timeout=30)
        status, headers, body = call(connection, "GET", "/health")
        assert (status, headers.get("retry-after")) == (503, "1")
        status, _, body = call(connection, "POST", "/predict", rows_body([GOOD_ROW]))
        assert status == 503 and json.loads(body)["error"]["code"] == "warming_up"
        release.set()
        deadline = time.monotonic() + 60
        while call(connection, "GET", "/health")[0] != 200:
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.05)
        assert call(connection, "POST", "/predict", rows_body([GOOD_ROW]))[0] == 200
        assert model.calls == 1  # the dry run is not counted: only requests' calls are
        # A bug in nnflow is a JSON 500 with its traceback in the log, and the service goes on
        encode = service.encoder.encode
        service.encoder.encode = lambda table: 1 / 0
        status, _, body = call(
            http.client.HTTPConnection("127.0.0.1", sock.getsockname()[1], timeout=30),
            "POST",
            "/predict",
            rows_body([GOOD_ROW]),
        )
        assert status == 500 and json.loads(body)["error"]["code"] == "internal_error"
        assert "ZeroDivisionError" in json.loads(body)["error"]["message"]
        service.encoder.encode = encode
        connection = http.client.HTTPConnection("127.0.0.1", sock.getsockname()[1], timeout=30)
        assert call(connection, "POST", "/predict", rows_body([GOOD_ROW]))[0] == 200
        # Stopped at once (a second Ctrl-C) with a request still in flight: a JSON 503, no traceback
        in_flight = socket.create_connection(("127.0.0.1", sock.getsockname()[1]))
        in_flight.sendall(raw_request(rows_body([GOOD_ROW]).encode())[:-5])
        time.sleep(0.3)
        uvicorn_server.should_exit = uvicorn_server.force_exit = True
        status, body = read_response(in_flight)
        assert status == 503 and json.loads(body)["error"]["code"] == "stopping"
    finally:
        release.set()
        uvicorn_server.should_exit = True
        thread.join(30)
        sock.close()
    text = log.read_text()
    assert "ZeroDivisionError" in text and " POST /predict 500 " in text and " POST /predict 503 " in text
    assert text.count("Traceback") == 1  # the bug's, not the cancelled request's
    assert [
        r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR
    ] == []  # nor uvicorn's, nor the lifespan's


def test_an_unsafe_model_is_refused_before_the_port_opens(mixed_run, tmp_path, monkeypatch):
    from nnflow.serving import server as serving_server
    from test_modelfile import lambda_model

    run = tmp_path / "run"
    shutil.copytree(mixed_run, run)
    trace = tmp_path / "lambda-ran"
    lambda_model(run / "model.keras", trace)
    listened = []
    monkeypatch.setattr(serving_server, "listen", lambda *args: listened.append(args))
    result = CliRunner().invoke(cli, ["serve", str(run), "--port", "0"])
    assert result.exit_code == 6, result.output
    assert "Lambda" in result.stderr and "Traceback" not in result.output
    assert listened == [] and not trace.exists()


def test_a_taken_port_is_exit_2_naming_the_fix(mixed_run):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", str(mixed_run), "--port", str(port)])
    assert result.exit_code == 2, result.output
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "--port 0" in result.stderr


def test_a_missing_extra_is_exit_2_naming_the_install_command(mixed_run, monkeypatch):
    monkeypatch.setitem(sys.modules, "fastapi", None)
    result = CliRunner().invoke(cli, ["serve", str(mixed_run)])
    assert result.exit_code == 2 and "pip install 'nnflow[serve]'" in result.stderr, result.output


def test_a_model_that_cannot_run_is_exit_6_and_never_ready(mixed_run, monkeypatch):
    from nnflow.serving.model import CompiledModel

    def broken(self, max_batch):
        raise RuntimeError("no kernel for this op")

    monkeypatch.setattr(CompiledModel, "warm_up", broken)
    result = CliRunner().invoke(cli, ["serve", str(mixed_run), "--port", "0", "--json"])
    assert result.exit_code == 6, result.output
    assert "could not run (RuntimeError: no kernel for this op); nothing was served" in result.stderr
    assert '"ok": true' not in result.stdout and '"exit_code": 6' in result.stdout


def test_sigterm_while_the_model_loads_is_a_clean_stop(mixed_run, monkeypatch):
    from nnflow.errors import Terminated
    from nnflow.workflows import serve as serve_workflow

    def terminated(run):
        raise Terminated()

    monkeypatch.setattr(serve_workflow, "load_run", terminated)
    result = CliRunner().invoke(cli, ["serve", str(mixed_run), "--port", "0"])
    assert result.exit_code == 0 and "Stopped (SIGTERM) before serving." in result.stderr, result.output


@pytest.mark.parametrize("size", ["10XB", "abc", "0", "-5MB"])
def test_a_bad_max_body_is_exit_2(size):
    result = CliRunner().invoke(cli, ["serve", "runs/none", "--max-body", size])
    assert result.exit_code == 2 and "is not a size" in result.output


# ---------------------------------------------------------------------------
# Last, as it stops the module's server: SIGTERM drains the request in flight, then exit 0


def test_sigterm_lets_the_request_in_flight_finish_then_exits_0(server):
    body = rows_body([GOOD_ROW]).encode()
    in_flight = socket.create_connection(("127.0.0.1", server.port))
    idle = server.connection()
    assert call(idle, "GET", "/health")[0] == 200  # a kept-alive connection with nothing in flight
    in_flight.sendall(raw_request(body)[:-10])  # headers and most of the body: the handler is reading it
    time.sleep(0.3)
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(OSError):  # no new connections once stopping
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
    in_flight.sendall(body[-10:])
    status, answer = read_response(in_flight)
    assert status == 200 and len(json.loads(answer)["predictions"]) == 1
    assert server.process.wait(timeout=30) == 0
    log = server.log.read_text()
    assert "Stopped (SIGTERM) after" in log and "Traceback" not in log
