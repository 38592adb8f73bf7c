"""nnflow: the Keras workflow (build, compile, fit, evaluate, predict) from a YAML experiment file.

    >>> import nnflow
    >>> spec = nnflow.load_spec("configs/iris.yaml", overrides=["fit.epochs=5"])
    >>> model = nnflow.build_model(spec)      # a compiled keras.Sequential
    >>> result = nnflow.train("configs/iris.yaml", overrides=["fit.epochs=5"])
    >>> result.run_dir, result.metrics["test_accuracy"]

Importing this package is cheap: Keras and TensorFlow load only when a model is built.
"""

from __future__ import annotations

from .errors import ConfigError, DataError, GateError, NnflowError, TrainingError, UnsafeModelError  # noqa: E402
from .spec import Spec, load_spec  # noqa: E402
from .version import __version__  # noqa: F401  (the public nnflow.__version__)


def build_model(spec: Spec, *, input_shape: tuple | None = None):
    """Build and compile the `keras.Sequential` that `spec` describes.

    `input_shape` (without the batch axis) is needed only when the file gives none
    (no `Input` item and no `input_dim` on the first layer). Keras's own build errors
    are raised as located `ConfigError`s.
    """
    from .builder import build_model as _build
    from .library_scope import kept

    with kept():  # a file's `seed` seeds the build, not the caller's process
        return _build(spec, input_shape=input_shape)


def train(config=None, overrides=(), *, out=None, resume=None, mlflow=False):
    """Train an experiment file into a run folder (or continue one with `resume=RUN`).

    Returns a `TrainResult` (`run_dir`, `metrics`, `gates`, `failed_gates`, ...). Raises
    `DataError` (bad data), `TrainingError` (NaN loss) or `ConfigError`; a failing gate is
    reported in the result, not raised.

    Returns (or raises) leaving the process as it was: global seeds, op determinism,
    umask, fd 2 and Keras's functions are put back (`library_scope.kept`).

    With `mlflow=True` the run is also logged to MLflow (`MLFLOW_TRACKING_URI`, else ./mlflow.db),
    as `nnflow train --mlflow` does; `result.tracking` says where (docs/tracking.md).
    """
    from .library_scope import kept
    from .workflows import train as _train

    tracker = None
    if mlflow:
        from .tracking import require_mlflow
        from .workflows.tracking_live import MlflowTracker

        require_mlflow("mlflow=True")
        tracker = MlflowTracker()
    with kept():
        return _train(config, overrides, out=out, resume=resume, tracker=tracker)


__all__ = [
    "ConfigError",
    "DataError",
    "GateError",
    "NnflowError",
    "Spec",
    "TrainingError",
    "UnsafeModelError",
    "__version__",
    "build_model",
    "load_spec",
    "train",
]
