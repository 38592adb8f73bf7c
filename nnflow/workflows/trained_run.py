"""A trained run's model, loaded safely with what it needs (evaluate, predict, export); output checks they share."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import ConfigError, Problem, UnsafeModelError
from ..spec import Spec


class TrainedRun(NamedTuple):
    """A finished run, its model loaded safely and compiled from the run's own experiment."""

    run_dir: Path
    info: dict  # run.json, checked
    spec: Spec
    preprocessing: Any  # preprocessing.Preprocessing
    model: Any  # keras.Model


def load_run(run) -> TrainedRun:
    """A finished run with its model loaded safely.

    The model file is checked before anything else of the run is read; the model is then
    compiled from the run's own experiment file and must fit its preprocessing. Every run
    file is checked as it is read: a damaged one is a DamagedRunError (exit 6).
    """
    from .. import runs
    from ..builder import compile_model
    from ..modelfile import load_model

    run_dir, info, model_path = runs.open_run(run)
    model = load_model(model_path)  # checked before Keras sees it; nothing else of a refused run is read
    spec = runs.read_spec(run_dir)
    preprocessing = runs.read_preprocessing(run_dir)
    _check_model_fits(model, preprocessing, model_path)
    compile_model(model, spec)
    return TrainedRun(run_dir, info, spec, preprocessing, model)


def _check_model_fits(model, preprocessing, model_path: Path) -> None:
    """The model takes what the preprocessing makes and outputs what the target needs."""
    inputs = list(model.input_shape[1:]) if isinstance(model.input_shape, tuple) else None
    outputs = model.output_shape[1:] if isinstance(model.output_shape, tuple) else None
    wanted_out = [len(preprocessing.class_names)] if preprocessing.target_encoding in ("sparse", "onehot") else [1]
    if inputs != list(preprocessing.input_shape) or list(outputs or ()) != wanted_out:
        raise UnsafeModelError(
            f"{model_path} does not fit this run's preprocessing.json: the model takes {inputs} and gives {list(outputs or ())}, "
            f"the run's data gives {list(preprocessing.input_shape)} and needs {wanted_out}. Was the model file replaced?"
        )


def check_suffix(path: Path, suffixes: tuple[str, ...], message: str) -> None:
    if path.suffix.lower() not in suffixes:
        raise ConfigError(Problem(f"{path}: {message}.", where="--output"))


def check_not_same(output: Path, other: Path, message: str) -> None:
    same = output.resolve() == other.resolve()
    if not same and output.exists() and other.exists():
        same = os.path.samefile(output, other)
    if same:
        raise ConfigError(Problem(f"{output} {message}", where="--output"))
