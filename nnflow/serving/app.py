"""The FastAPI application: `POST /predict`, `GET /health`, `/metadata`, `/metrics`, `/openapi.json`.

Handlers take the raw request and answer with ready-made bytes: the body is read and checked by
bodies.py and encoding.py (stricter and cheaper than a pydantic model of every row), and the
OpenAPI document describes it from the run's own features. `AccessLog` wraps the whole app:
one line per request on stderr, and the counters behind `/metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from .bodies import RequestError, media_type, read_body
from .describe import predict_openapi
from .encoding import RowEncoder
from .model import Batcher, CompiledModel

JSON = "application/json"
STOPPING = "the service stopped before this request finished; send it again."


@dataclass
class Limits:
    max_batch: int = 256
    max_rows: int = 10_000
    max_body: int = 10 * 1024 * 1024


@dataclass
class Service:
    """What the app serves: one run's model, its encoder, limits, state and counters."""

    model: CompiledModel
    encoder: RowEncoder
    limits: Limits
    metadata: dict
    ready: asyncio.Event | None = None  # set once warm-up is done
    statuses: Counter = field(default_factory=Counter)
    rows: int = 0
    seconds: float = 0.0

    def __post_init__(self):
        self.batcher = Batcher(self.model, self.limits.max_batch)

    @property
    def is_ready(self) -> bool:
        return self.ready is not None and self.ready.is_set()


def build_app(service: Service, *, on_ready=None, on_failure=None, log=sys.stderr, own_process=False) -> AccessLog:
    """The ASGI application serving `service`.

    `on_ready()` is called once warm-up is done; `on_failure(error)` if warm-up fails (the model
    cannot run), after which the service never says it is ready. `own_process`: the process is
    the service's (`nnflow serve`), and its garbage collector is tuned for it after warm-up.
    """

    async def lifespan(app):
        service.ready = asyncio.Event()
        task = asyncio.create_task(_warm_up(service, on_ready, on_failure, log, own_process))
        try:
            yield
        finally:
            task.cancel()

    app = FastAPI(
        title=f"nnflow: {service.metadata['run']['name']}",
        version=service.metadata["versions"]["nnflow"],
        description='Predictions of one trained nnflow run. Errors are `{"error": {"code", "message", "row", "field"}}`.',
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )

    @app.post(
        "/predict",
        openapi_extra=predict_openapi(service.encoder.preprocessing, service.limits),
        response_class=Response,
    )
    async def predict(request: Request) -> Response:
        """Predictions for JSON rows, JSON columns/data, or CSV, answered in the same form."""
        return await _predict(service, request)

    _handle_errors(app)

    @app.head("/health", response_class=Response, include_in_schema=False)  # what some probes send
    @app.get("/health", response_class=Response)
    async def health() -> Response:
        """200 once the model is warmed up and answering, 503 before."""
        if service.is_ready:
            return Response(b'{"status":"ok"}', media_type=JSON)
        return Response(b'{"status":"warming up"}', status_code=503, media_type=JSON, headers={"Retry-After": "1"})

    @app.get("/metadata", response_class=Response)
    async def metadata() -> Response:
        """The run, its features (types, categories), classes, outputs, limits and versions."""
        return Response(orjson.dumps(service.metadata), media_type=JSON)

    @app.get("/metrics", response_class=Response)
    async def metrics() -> Response:
        """Counters in Prometheus' text format: requests by status, rows, model calls."""
        return Response(_metrics_text(service), media_type="text/plain; version=0.0.4")

    return AccessLog(app, service, log)


def _handle_errors(app: FastAPI) -> None:
    """Every error in the service's one shape: a bug is a JSON 500, a 404 or 405 says what was asked."""

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> Response:
        """A bug in nnflow: a JSON 500 for the client; the traceback goes to the log (AccessLog)."""
        message = f"nnflow failed on this request ({type(error).__name__}: {error}); this is a bug, please report it."
        return _error(RequestError(500, "internal_error", message))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        """404, 405 and the like."""
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        answer = _error(RequestError(error.status_code, code, f"{request.method} {request.url.path}: {error.detail}."))
        answer.headers.update(error.headers or {})
        return answer


async def _predict(service: Service, request: Request) -> Response:
    if not service.is_ready:
        return _error(RequestError(503, "warming_up", "the model is warming up; retry in a moment."), retry=True)
    try:
        kind = media_type(request.headers.get("content-type"))
        body = await _read_limited(request, service.limits.max_body)
        table = read_body(body, kind, service.limits.max_rows)
        request.scope["nnflow.rows"] = len(table)
        x, notes = service.encoder.encode(table)
        scores = await service.batcher.predict(x) if len(table) else service.model.no_rows()
        document, answer_type = service.encoder.answer(table, scores, notes)
    except RequestError as error:
        return _error(error)
    if answer_type == JSON:
        return Response(orjson.dumps(document), media_type=JSON)
    return Response(document, media_type=answer_type, headers={"X-Nnflow-Notes": json.dumps(notes)})


async def _warm_up(service: Service, on_ready, on_failure, log, own_process: bool) -> None:
    assert service.ready is not None
    try:
        await asyncio.to_thread(service.model.warm_up, service.limits.max_batch)
        await asyncio.to_thread(_dry_run, service)
    except Exception as error:
        traceback.print_exc(file=log)
        if on_failure is not None:
            on_failure(error)
        return
    if own_process:
        # TensorFlow leaves ~400,000 objects for the collector to walk: a full collection took ~250 ms,
        # landing on whichever request triggered it. What exists now lives as long as the service.
        gc.collect()
        gc.freeze()
    service.ready.set()
    if on_ready is not None:
        on_ready()


def _dry_run(service: Service) -> None:
    """Encode and answer a row once, so the first request finds every path warm."""
    import numpy as np

    x = np.zeros((1, *service.model.input_shape), dtype="float32")
    scores = service.model(x)
    service.model.calls = 0  # /metrics counts requests' calls only
    service.encoder.predictions(scores)


async def _read_limited(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to be over `limit` bytes (--max-body)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _too_large(int(length), limit)
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(size, limit, at_least=True)
            chunks.append(chunk)
    except ClientDisconnect:
        raise RequestError(499, "client_gone", "the client closed the connection before the body ended.") from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(size: int, limit: int, at_least: bool = False) -> RequestError:
    return RequestError(
        413,
        "body_too_large",
        f"the body is {'at least ' if at_least else ''}{size:,} bytes; this service takes at most {limit:,} (--max-body). "
        "Split the rows over several requests.",
    )


def _error(error: RequestError, retry: bool = False) -> Response:
    headers = {"Retry-After": "1"} if retry else None
    return Response(orjson.dumps(error.to_json()), status_code=error.status, media_type=JSON, headers=headers)


async def _send_error(send, error: RequestError) -> None:
    body = orjson.dumps(error.to_json())
    headers = [
        (b"content-type", JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _shutdown_when_cancelled(receive):
    """The lifespan's receive, read as a shutdown when a forced stop (a second Ctrl-C) cancels it:
    Starlette would otherwise log the cancellation as a failed shutdown, with its traceback."""

    async def receive_or_shutdown():
        try:
            return await receive()
        except asyncio.CancelledError:
            return {"type": "lifespan.shutdown"}

    return receive_or_shutdown


class AccessLog:
    """ASGI middleware: one line per request on `log` (method, path, status, rows, milliseconds)."""

    def __init__(self, app: FastAPI, service: Service, log):
        self.app, self.service, self.log = app, service, log

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            return await self.app(scope, _shutdown_when_cancelled(receive), send)
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 0  # no answer started yet
        logged = False

        async def send_status(message):  # the line is written before the answer's last bytes leave
            nonlocal status, logged
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body") and not logged:
                logged = True
                self._record(scope, status, time.perf_counter() - start)
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except asyncio.CancelledError:
            # Stopped before it finished (the drain timed out, a second Ctrl-C): said, not a traceback.
            if not status:
                status = 503
                with contextlib.suppress(Exception):
                    await _send_error(send, RequestError(503, "stopping", STOPPING))
        except Exception:
            # A bug in nnflow: the client got a JSON 500 (internal_error); the log gets the traceback, once.
            status = status or 500
            traceback.print_exc(file=self.log)
        finally:
            if not logged:
                self._record(scope, status, time.perf_counter() - start)

    def _record(self, scope, status: int, seconds: float) -> None:
        service = self.service
        rows = scope.get("nnflow.rows")
        service.statuses[status] += 1
        service.seconds += seconds
        if rows is not None and status == 200:
            service.rows += rows
        client = scope.get("client")
        who = f"{client[0]}:{client[1]}" if client else "-"
        shown = "-" if rows is None else str(rows)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with contextlib.suppress(OSError, ValueError):  # a closed or full stderr never fails a request
            self.log.write(
                f"{stamp} {who} {scope['method']} {scope['path']} {status} rows={shown} {seconds * 1000:.2f}ms\n"
            )


def _metrics_text(service: Service) -> str:
    lines = [
        "# HELP nnflow_requests_total Requests answered, by HTTP status.",
        "# TYPE nnflow_requests_total counter",
        *(f'nnflow_requests_total{{status="{status}"}} {count}' for status, count in sorted(service.statuses.items())),
        "# HELP nnflow_rows_total Rows predicted in successful requests.",
        "# TYPE nnflow_rows_total counter",
        f"nnflow_rows_total {service.rows}",
        "# HELP nnflow_model_calls_total Calls of the compiled model; concurrent requests share one.",
        "# TYPE nnflow_model_calls_total counter",
        f"nnflow_model_calls_total {service.model.calls}",
        "# HELP nnflow_request_seconds_total Time spent answering requests.",
        "# TYPE nnflow_request_seconds_total counter",
        f"nnflow_request_seconds_total {service.seconds:.6f}",
        "# HELP nnflow_ready 1 once the model is warmed up.",
        "# TYPE nnflow_ready gauge",
        f"nnflow_ready {int(service.is_ready)}",
    ]
    return "\n".join(lines) + "\n"
