"""uvicorn, run for nnflow: the socket bound first (so `--port 0` and a taken port are known before
the model loads) and listening only once uvicorn serves, its signals handled here, and in-flight
requests drained on SIGTERM.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading

from ..errors import ConfigError, Problem

DRAIN_SECONDS = 30  # SIGTERM: requests in flight get this long to finish


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port (0: a free port); exit 2 saying why when it cannot be had.

    Bound, not listening: the port is reserved (a taken port is said before the model loads) but
    refuses connections until uvicorn starts serving on it.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise ConfigError(
            Problem(f"cannot listen on {host!r}: {error.strerror}. Give an address such as 127.0.0.1.", where="--host")
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
    except OSError as error:
        sock.close()
        taken = "; choose another --port, or --port 0 for a free one" if error.errno in (98, 48) else ""
        raise ConfigError(
            Problem(f"cannot listen on {host}:{port}: {error.strerror}{taken}.", where="--port")
        ) from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def run(app, sock: socket.socket) -> int | None:
    """Serve `app` on `sock` until SIGTERM or SIGINT; return the signal that stopped it (None: none).

    The first signal stops accepting connections and lets the requests in flight finish (at most
    DRAIN_SECONDS); a second SIGINT stops at once.
    """
    server = make_server(app)
    server.run(sockets=[sock])
    return server.stopped_by


def make_server(app):
    """The uvicorn server for `app`: nnflow's access log instead of uvicorn's, quiet, draining on stop."""
    import uvicorn

    config = uvicorn.Config(
        app,
        log_config=None,
        log_level="warning",
        access_log=False,  # nnflow's own access log: one line per request, with rows and milliseconds
        server_header=False,
        timeout_graceful_shutdown=DRAIN_SECONDS,
        timeout_keep_alive=30,
        backlog=2048,
        lifespan="on",
    )
    return _server(config)


def _server(config):
    """A uvicorn.Server that records the signal that stopped it, instead of raising it again after."""
    import uvicorn

    class Server(uvicorn.Server):
        stopped_by: int | None = None

        @contextlib.contextmanager
        def capture_signals(self):
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

        def handle_exit(self, sig, frame):
            if self.stopped_by is None:
                self.stopped_by = sig
            super().handle_exit(sig, frame)

    return Server(config)
