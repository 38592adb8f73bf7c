"""`serve`: one trained run behind HTTP until SIGTERM or Ctrl-C.

A port that is taken is said (exit 2) before the model loads. The model is loaded through
predict's safe loading before anything listens: an unsafe or damaged run is refused (exit 6)
with the port never opened.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import UnsafeModelError
from .trained_run import load_run


@dataclass(frozen=True)
class ServeResult:
    run_dir: Path
    url: str
    stopped_by: str | None  # "SIGTERM", "SIGINT" or None
    requests: int
    rows: int


def serve(
    run,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_batch: int = 256,
    max_rows: int = 10_000,
    max_body: int = 10 * 1024 * 1024,
    on_ready: Callable[[str, Path], None] | None = None,
    log=None,
    own_process: bool = False,
) -> ServeResult:
    """Serve `run`'s predictions on http://host:port until a signal; `on_ready(url, run_dir)` once warm.

    `own_process`: the process exists to serve (`nnflow serve`), so process-wide tuning is allowed.
    """
    from ..serving import require_serve, server

    require_serve()
    server.check_free(host, port)  # a taken port is said now, not after the model has loaded
    trained = load_run(run)
    service = _service(trained, max_batch, max_rows, max_body)
    from ..serving.app import build_app

    sock = server.listen(host, port)  # only now: an unsafe or damaged run never opened the port
    failures: list[BaseException] = []
    try:
        url = server.url_of(sock)

        def failed(error: BaseException) -> None:  # warm-up could not run the model: stop, and say why below
            failures.append(error)
            uvicorn_server.should_exit = True

        ready = (lambda: on_ready(url, trained.run_dir)) if on_ready is not None else None
        app = build_app(service, on_ready=ready, on_failure=failed, log=log or sys.stderr, own_process=own_process)
        uvicorn_server = server.make_server(app)
        stopped_by = server.serve(uvicorn_server, sock)
    finally:
        sock.close()
    if failures:
        raise UnsafeModelError(
            f"{trained.run_dir}: the model loaded but could not run ({type(failures[0]).__name__}: {failures[0]}); "
            "nothing was served."
        )
    return ServeResult(
        trained.run_dir,
        url,
        signal.Signals(stopped_by).name if stopped_by is not None else None,
        sum(service.statuses.values()),
        service.rows,
    )


def _service(trained, max_batch: int, max_rows: int, max_body: int):
    from ..serving.app import Limits, Service
    from ..serving.describe import metadata
    from ..serving.encoding import RowEncoder
    from ..serving.model import CompiledModel

    limits = Limits(max_batch=max_batch, max_rows=max_rows, max_body=max_body)
    return Service(
        CompiledModel(trained.model, trained.preprocessing.input_shape),
        RowEncoder(trained.preprocessing),
        limits,
        metadata(trained.run_dir, trained.info, trained.preprocessing, limits, _versions()),
    )


def _versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    from ..version import __version__

    return {"nnflow": __version__, "keras": keras.__version__, "tensorflow": tf.__version__}
