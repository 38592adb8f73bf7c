"""uvicorn, run for nnflow: the port checked before the model loads and listened on once it has,
its signals handled here, and in-flight requests drained on SIGTERM.
"""

from __future__ import annotations

import contextlib
import errno
import signal
import socket
import threading

from ..errors import ConfigError, Problem

DRAIN_SECONDS = 30  # SIGTERM: requests in flight get this long to finish
BACKLOG = 2048


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket listening on host:port (0: a free port); exit 2 saying why when it cannot be had.

    Called once the model is loaded: nothing listens while a run could still be refused.
    """
    sock = _bound(host, port)
    try:
        sock.listen(BACKLOG)
    except OSError as error:
        sock.close()
        raise _listen_error(host, port, error) from None
    sock.set_inheritable(True)
    return sock


def check_free(host: str, port: int) -> None:
    """Exit 2 now if host:port cannot be had (a server listens on it, or it is no address of this machine).

    Bound and closed without listening, before the model loads; `listen` checks again after.
    """
    _bound(host, port).close()


def _bound(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise ConfigError(
            Problem(f"cannot listen on {host!r}: {error.strerror}. Give an address such as 127.0.0.1.", where="--host")
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart is not refused by TIME_WAIT
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise _listen_error(host, port, error) from None
    return sock


def _listen_error(host: str, port: int, error: OSError) -> ConfigError:
    if error.errno == errno.EADDRINUSE:
        return ConfigError(
            Problem(
                f"cannot listen on {host}:{port}: {error.strerror}; choose another --port, or --port 0 for a free one.",
                where="--port",
            )
        )
    where = "--port" if error.errno == errno.EACCES else "--host"
    return ConfigError(Problem(f"cannot listen on {host}:{port}: {error.strerror}.", where=where))


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def serve(server, sock: socket.socket) -> int | None:
    """Run `server` (make_server) on `sock` until SIGTERM or SIGINT; return the signal that stopped it.

    The first signal stops accepting connections and lets the requests in flight finish (at most
    DRAIN_SECONDS); a second SIGINT stops at once. None: stopped otherwise (`should_exit`).
    """
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
        backlog=BACKLOG,
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
