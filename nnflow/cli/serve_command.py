"""The command that puts a trained run behind HTTP: serve."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys

import click

from ..errors import Terminated
from .group import cli, json_mode, json_option, run_argument, say

SIZE_UNITS = {"": 1, "B": 1, "KB": 1024, "KIB": 1024, "MB": 1024**2, "MIB": 1024**2, "GB": 1024**3, "GIB": 1024**3}


class ByteSize(click.ParamType):
    """`10MB`, `512KB`, `1GB` or a number of bytes; KB, MB, GB are powers of 1024."""

    name = "SIZE"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(value))
        unit = match.group(2).upper() if match else None
        if not match or unit not in SIZE_UNITS or float(match.group(1)) * SIZE_UNITS[unit] < 1:
            self.fail(f"{value!r} is not a size; write it like 10MB, 512KB or 1000000 (bytes).", param, ctx)
        return int(float(match.group(1)) * SIZE_UNITS[unit])


@cli.command("serve")
@run_argument
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on; 0.0.0.0 for every interface."
)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0 takes a free port.")
@click.option(
    "--max-batch",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Most rows in one model call when concurrent requests are batched together.",
)
@click.option(
    "--max-rows",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Most rows in one request (413 above).",
)
@click.option(
    "--max-body",
    type=ByteSize(),
    default="10MB",
    show_default=True,
    help="Largest request body (413 above); KB, MB, GB are powers of 1024.",
)
@json_option
def serve(run, host, port, max_batch, max_rows, max_body, as_json):
    """Serve a trained RUN's predictions over HTTP until SIGTERM or Ctrl-C.

    POST /predict takes JSON rows ({"rows": [{...}]}), JSON columns and data
    ({"columns": [...], "data": [[...]]}) or CSV, and answers in the same form with
    the columns `nnflow predict` writes. GET /health is 503 until the model is warmed
    up, then 200; GET /metadata describes the run; GET /metrics counts requests,
    rows and model calls; /docs and /openapi.json document the API.

    One access-log line per request goes to stderr. With --json, one line on stdout
    gives the URL once the service is ready. SIGTERM lets the requests in flight
    finish and exits 0; Ctrl-C does the same and exits 130. Needs the serve extra:
    pip install 'nnflow[serve]'.

    \b
    Examples:
        nnflow serve runs/iris-mlp
        nnflow serve runs/iris-mlp --port 0 --json
        curl -s localhost:8000/predict -H 'Content-Type: application/json' \\
            -d '{"rows": [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]}'
    """
    from .._tf import quiet_tensorflow
    from ..workflows.serve import serve as run_serve

    json_mode("serve", as_json)
    log = _access_log()

    ready = _ready_reporter(log, as_json)

    try:
        with quiet_tensorflow():  # TensorFlow's C++ chatter filtered out of stderr; the access log goes around it
            result = run_serve(
                run,
                host=host,
                port=port,
                max_batch=max_batch,
                max_rows=max_rows,
                max_body=max_body,
                on_ready=ready,
                log=log,
                own_process=True,
            )
    except Terminated:  # SIGTERM before serving (the model was loading): a stop asked for, not a failure
        say("Stopped (SIGTERM) before serving.", err=True)
        return
    finally:
        if log is not sys.stderr:
            with contextlib.suppress(OSError, ValueError):
                log.close()
    said = f"{result.requests:,} request(s), {result.rows:,} row(s) predicted"
    if result.stopped_by == "SIGINT":
        say(f"Interrupted: stopped after {said}.", err=True)
        sys.exit(128 + signal.SIGINT)
    say(f"Stopped{' (' + result.stopped_by + ')' if result.stopped_by else ''} after {said}.", err=True)


def _ready_reporter(log, as_json: bool):
    """What is said once the service is ready: a line on stderr, and with --json the URL on stdout."""

    def ready(url, run_dir):
        with contextlib.suppress(OSError, ValueError):  # a closed or broken stderr never stops the service
            log.write(
                f"Serving {run_dir} at {url} (POST /predict; GET /health, /metadata, /metrics, /docs). Ctrl-C to stop.\n"
            )
        if as_json:
            line = {"command": "serve", "format": 1, "ok": True, "url": url, "run": str(run_dir), "pid": os.getpid()}
            with contextlib.suppress(OSError, ValueError):
                click.echo(json.dumps(line))
                sys.stdout.flush()
        click.get_current_context().meta.pop("nnflow.json", None)  # past this, stdout carries nothing more

    return ready


def _access_log():
    """A line-buffered writer on the process's own stderr (fd 2 as it is now), else sys.stderr."""
    try:
        return open(os.dup(sys.stderr.fileno()), "w", buffering=1, encoding="utf-8", errors="replace")
    except (OSError, ValueError, AttributeError):  # no real fd 2 (a test runner's capture)
        return sys.stderr
