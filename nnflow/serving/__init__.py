"""`nnflow serve`: a trained run behind HTTP (FastAPI on uvicorn), as strict as `predict` and fast.

- bodies.py: request bodies (JSON rows, JSON columns/data, CSV) read strictly into a `Table`.
- encoding.py: rows to model inputs and outputs to answers, without pandas, as predict does.
- model.py: the model as one compiled function, and the batcher that feeds it.
- describe.py: `/metadata` and `/predict`'s OpenAPI description, from the run's preprocessing.
- app.py: the FastAPI app and its access log (the only modules here that import FastAPI).
- server.py: the socket, uvicorn, signals and draining.

Importing this package imports neither FastAPI nor TensorFlow.
"""

from __future__ import annotations

import importlib.util

from ..errors import ConfigError, Problem

INSTALL = "pip install 'nnflow[serve]'"
PACKAGES = ("fastapi", "uvicorn", "orjson")


def require_serve() -> None:
    """Exit 2, naming the install command, when the `serve` extra is missing (checked without importing it)."""
    missing = [name for name in PACKAGES if _absent(name)]
    if missing:
        raise ConfigError(
            Problem(f"nnflow serve needs the `serve` extra ({', '.join(missing)} missing): {INSTALL}", where="serve")
        )


def _absent(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is None
    except ValueError:  # a module set to None in sys.modules: as good as absent
        return True
