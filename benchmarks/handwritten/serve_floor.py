"""The floor under `nnflow serve`: a minimal FastAPI app on uvicorn that does almost nothing per request.

    python benchmarks/handwritten/serve_floor.py --port 0

POST /predict takes nnflow's body, `{"rows": [{"sepal_length": 5.1, ...}, ...]}`, multiplies the
rows by a fixed 4x3 matrix with numpy and answers `{"predictions": [[a, b, c], ...]}`; GET /health
answers 200. No model, no validation, no batching, no access log: what is left is the cost of
HTTP, JSON and one small numpy product, which no server of a model can go under on this machine.
uvicorn uses httptools and uvloop when installed, and JSON goes through orjson when installed, as
nnflow's does. Once listening, it prints one JSON line on stdout with its URL (like `nnflow serve
--json`); SIGTERM stops it (exit 0). Used by benchmarks/serve_latency.py.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys

import numpy as np
import uvicorn
from fastapi import FastAPI, Request, Response

try:
    import orjson

    loads, dumps = orjson.loads, orjson.dumps
except ImportError:  # the standard library's, slower
    loads = json.loads

    def dumps(document) -> bytes:
        return json.dumps(document, separators=(",", ":")).encode()


FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
WEIGHTS = np.array(
    [[0.4, -0.1, -0.3], [0.9, -0.6, -0.3], [-1.2, 0.2, 1.0], [-0.8, -0.2, 1.0]], dtype=np.float32
)  # any fixed matrix will do

app = FastAPI()


@app.post("/predict")
async def predict(request: Request) -> Response:
    rows = loads(await request.body())["rows"]
    features = np.array([[row[name] for name in FEATURES] for row in rows], dtype=np.float32)
    return Response(dumps({"predictions": (features @ WEIGHTS).tolist()}), media_type="application/json")


@app.get("/health")
async def health() -> Response:
    return Response(b'{"ok":true}', media_type="application/json")


class Server(uvicorn.Server):
    """uvicorn's server, which says where it listens once it accepts connections."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            host, port = sockets[0].getsockname()[:2]
            line = {"command": "serve_floor", "ok": True, "url": f"http://{host}:{port}", "pid": os.getpid()}
            print(json.dumps(line), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 takes a free port")
    args = parser.parse_args()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, args.port))  # bound here, so that --port 0 is known before uvicorn starts
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    # uvicorn shuts down gracefully, then raises the signal again with the handler it found: exit 0, not -15.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(0))
    Server(config).run(sockets=[listener])


if __name__ == "__main__":
    main()
