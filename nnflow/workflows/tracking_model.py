"""A trained run as an MLflow pyfunc model: the whole run, not only its Keras network.

`mlflow.pyfunc.load_model("runs:/<id>/model").predict(frame)` takes the table's raw columns, as
`nnflow predict` does, and answers with the columns `predict` adds, with the same values:
`predicted_<target>` and, for classes, `probability_<class>` (MLflow hands the model only the
columns of its signature, so an input's other columns, such as ids, are not carried through). The run's preprocessing (scaling,
one-hot vocabularies) and class names travel with it: the artifact `run` holds the run's
model.keras, experiment.yaml, preprocessing.json and run.json, loaded through nnflow's safe loading.

This module imports MLflow: import it only to log or load such a model.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

import mlflow.pyfunc

MODEL_NAME = "model"  # runs:/<run_id>/model
RUN_FILES = ("model.keras", "experiment.yaml", "preprocessing.json", "run.json")
SOURCE = Path("model_input.parquet")  # how errors name the frame given to predict (a parquet name: no line numbers)

# MLflow advises type hints on predict (once a PythonModel is defined, whatever the filters say): the
# signature given at logging says what it takes. Defined while warnings are recorded, so none is shown.
with warnings.catch_warnings(record=True):

    class RunModel(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]  # (mlflow's lazy submodule)
        """nnflow's predictions for a DataFrame of raw feature columns."""

        def load_context(self, context):
            from .trained_run import load_run

            self.run = load_run(context.artifacts["run"])

        def predict(self, context, model_input, params=None):
            import pandas as pd

            from ..feature_encoding import UnseenCategories
            from ..scoring import score_frame

            frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
            return score_frame(
                self.run.model, self.run.preprocessing, frame.reset_index(drop=True), SOURCE, UnseenCategories()
            )


def log_run_model(run_id: str, folder: Path, tracking_uri: str) -> None:
    """Log the run in `folder` as the pyfunc model `model` of the MLflow run `run_id`: with a signature and an
    input example (a few rows of its training data, when the file is still there) and its pip requirements
    given, so that MLflow does not start a process to infer them."""
    from .. import runs

    info = runs.read_run_info(folder)
    preprocessing = runs.read_preprocessing(folder)
    example = _input_example(info, preprocessing)
    with tempfile.TemporaryDirectory(prefix="nnflow-model-") as scratch:
        bundle = Path(scratch) / "run"
        bundle.mkdir()
        for name in RUN_FILES:
            shutil.copy2(folder / name, bundle / name)
        arguments = {
            "name": MODEL_NAME,
            "python_model": RunModel(),
            "artifacts": {"run": str(bundle)},
            "signature": _signature(preprocessing),
            "input_example": example,
            "pip_requirements": requirements(info),
        }
        failures: list[BaseException] = []
        # In a thread of its own: MLflow's active run is per thread, so a caller's own active run
        # (a notebook's) neither blocks this one nor is ended by it.
        thread = threading.Thread(
            target=_log_model, args=(run_id, tracking_uri, arguments, failures), name="nnflow-mlflow-model"
        )
        thread.start()
        thread.join()
        if failures:
            raise failures[0]


def _log_model(run_id: str, tracking_uri: str, arguments: dict, failures: list[BaseException]) -> None:
    """`mlflow.pyfunc.log_model` into the run `run_id`, MLflow's process-wide settings put back after."""
    from mlflow.tracking import fluent
    from mlflow.tracking._tracking_service import utils

    environment = os.environ.get("MLFLOW_TRACKING_URI")
    previous_uri = getattr(utils, "_tracking_uri", None)  # set_tracking_uri()'s own (None: not called)
    previous_experiment = getattr(fluent, "_active_experiment_id", None)
    mlflow.set_tracking_uri(tracking_uri)
    fluent._active_experiment_id = None  # a caller's set_experiment() must not refuse this run's own experiment
    try:
        with _quiet_mlflow(), mlflow.start_run(run_id=run_id):
            mlflow.pyfunc.log_model(**arguments)
    except BaseException as error:  # raised again in the caller's thread
        failures.append(error)
    finally:
        fluent._active_experiment_id = previous_experiment
        mlflow.set_tracking_uri(previous_uri)  # type: ignore[arg-type]  # None unsets the variable it wrote
        if environment is not None:
            os.environ["MLFLOW_TRACKING_URI"] = environment


@contextlib.contextmanager
def _quiet_mlflow():
    """Without MLflow's advice on pickled models and type hints: the model is nnflow's, loaded by nnflow's code."""
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        logger.setLevel(level)


def requirements(info: dict) -> list[str]:
    """The packages the model needs, pinned to the versions it was trained with."""
    versions = info.get("versions", {})
    packages = [("nnflow", "nnflow"), ("tensorflow", "tensorflow"), ("keras", "keras"), ("pandas", "pandas")]
    pinned = [f"{name}=={versions[key]}" for name, key in packages if versions.get(key)]
    return [*pinned, f"mlflow=={mlflow.__version__}"]


def _signature(preprocessing: Any) -> Any:
    """Inputs: each feature column (text for a category, a number otherwise); outputs: what predict adds."""
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, Schema, TensorSpec

    from ..scoring import PredictionColumns

    inputs: list[ColSpec | TensorSpec] = [
        ColSpec("string" if column in preprocessing.categories else "double", column)
        for column in preprocessing.feature_columns
    ]
    columns = PredictionColumns.of(preprocessing)
    predicted_type = "double" if preprocessing.task == "regression" else _class_type(preprocessing.class_names)
    outputs: list[ColSpec | TensorSpec] = [
        ColSpec(predicted_type, columns.predicted),
        *(ColSpec("double", name) for name in columns.probabilities),
    ]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


def _class_type(class_names: list | None) -> str:
    names = class_names or []
    if names and all(isinstance(name, bool) for name in names):
        return "boolean"
    if names and all(isinstance(name, int) and not isinstance(name, bool) for name in names):
        return "long"
    return "string"


def _input_example(info: dict, preprocessing: Any) -> Any:
    """Five rows of the run's training data, its feature columns only; None when the file is gone or changed."""
    from ..data import iter_table
    from ..runs import changed_data_file

    entry = info.get("data", {}).get("train")
    if not entry or changed_data_file(info) is not None:
        return None
    chunk = next(
        iter_table(
            Path(entry["path"]),
            5,
            parsed_columns=preprocessing.feature_columns,
            text_columns=list(preprocessing.categories),
        )
    )
    return chunk[list(preprocessing.feature_columns)].reset_index(drop=True)
