"""Generate `keras_catalog.json` from the installed Keras's own signatures.

The catalog lets `nnflow check` validate every Keras name and argument name in an
experiment file without importing TensorFlow. Regenerate it after upgrading Keras:

    python -m nnflow.catalog_build          # rewrites nnflow/keras_catalog.json

`tests/test_catalog.py` fails when the shipped catalog no longer matches the installed Keras.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
from pathlib import Path
from typing import Any

from .catalog import CATALOG_PATH  # the shipped catalog's one path

# Keyword arguments every layer accepts through `keras.layers.Layer.__init__(**kwargs)`.
LAYER_BASE_KWARGS = ["activity_regularizer", "trainable", "dtype", "autocast", "name"]

_RUNS_CODE = (
    "it would run Python code named in the file; nnflow files can only name Keras objects. "
    "Write the computation as built-in layers (for example `Activation`, `Rescaling`, `Reshape`)."
)
_SEVERAL_INPUTS = "it takes several inputs, and a Sequential model has a single chain of layers."

REFUSED = {
    "layer": {
        "Lambda": _RUNS_CODE,
        "TFSMLayer": "it loads and runs a TensorFlow SavedModel from disk, code nnflow cannot vet.",
        "JaxLayer": _RUNS_CODE,
        "FlaxLayer": _RUNS_CODE,
        "TorchModuleWrapper": _RUNS_CODE,
        "Layer": "it is the abstract base class; name a concrete layer such as `Dense`.",
        "Wrapper": "it is an abstract base class; use `Bidirectional` or `TimeDistributed`.",
        "InputLayer": "write `- Input: {shape: [...]}` as the first layer instead.",
        "RNN": "it takes a cell object; use `SimpleRNN`, `LSTM` or `GRU`.",
        "StackedRNNCells": "it takes cell objects; stack `LSTM` or `GRU` layers instead.",
        "SimpleRNNCell": "cells only work inside an RNN; use `SimpleRNN`.",
        "LSTMCell": "cells only work inside an RNN; use `LSTM`.",
        "GRUCell": "cells only work inside an RNN; use `GRU`.",
        "Pipeline": "list the layers one after another in `layers:` instead.",
        **{
            name: _SEVERAL_INPUTS
            for name in (
                "Add",
                "Average",
                "Concatenate",
                "Dot",
                "Maximum",
                "Minimum",
                "Multiply",
                "Subtract",
                "Attention",
                "AdditiveAttention",
                "MultiHeadAttention",
                "GroupQueryAttention",
            )
        },
    },
    "optimizer": {
        "Optimizer": "it is the abstract base class; name a concrete optimizer such as `Adam`.",
        "LossScaleOptimizer": "it wraps another optimizer object, which a file cannot express.",
        "MultiOptimizer": "it wraps other optimizer objects, which a file cannot express.",
        "OptimizerMap": "it wraps other optimizer objects, which a file cannot express.",
    },
    "loss": {
        "Loss": "it is the abstract base class; name a concrete loss such as `MeanSquaredError`.",
        "LossFunctionWrapper": "it wraps a Python function; name a built-in loss instead.",
    },
    "metric": {
        "Metric": "it is the abstract base class; name a concrete metric such as `AUC`.",
        "MeanMetricWrapper": "it wraps a Python function; name a built-in metric instead.",
        "Mean": "it averages arbitrary values, not predictions; name a metric such as `MeanAbsoluteError`.",
        "Sum": "it sums arbitrary values, not predictions; name a metric such as `MeanSquaredError`.",
    },
    "callback": {
        "BackupAndRestore": (
            "nnflow checkpoints every epoch itself, and `nnflow train --resume RUN` continues an "
            "interrupted run from its last epoch. (BackupAndRestore also deletes its folder when "
            "training ends.) Remove the callback."
        ),
        "Callback": "it is the abstract base class; name a concrete callback such as `EarlyStopping`.",
        "CallbackList": "nnflow manages the list of callbacks itself.",
        "History": "nnflow records the history itself (history.csv in the run folder).",
        "ProgbarLogger": "nnflow draws its own progress output (use -q for quiet).",
        "LambdaCallback": _RUNS_CODE,
        "LearningRateScheduler": (
            "it takes a Python function. Use a schedule instead: "
            "`optimizer: {Adam: {learning_rate: {ExponentialDecay: {...}}}}`, or `ReduceLROnPlateau`."
        ),
        "RemoteMonitor": "it sends training data over the network, which nnflow never does.",
        "OrbaxCheckpoint": "it needs the optional Orbax package; use `ModelCheckpoint`.",
    },
    "initializer": {"Initializer": "it is the abstract base class."},
    "regularizer": {"Regularizer": "it is the abstract base class."},
    "constraint": {"Constraint": "it is the abstract base class."},
    "schedule": {"LearningRateSchedule": "it is the abstract base class."},
}


def _json_default(value):
    """A signature default as JSON, or the marker that it is not plain data."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        items = [_json_default(item) for item in value]
        return None if any(item is _OPAQUE for item in items) else items
    return _OPAQUE


_OPAQUE = object()


def _params(cls, *, layer: bool) -> list[dict]:
    signature = inspect.signature(cls.__init__)
    params = []
    var_kwargs = False
    for parameter in list(signature.parameters.values())[1:]:
        if parameter.kind is parameter.VAR_KEYWORD:
            var_kwargs = True
            continue
        if parameter.kind is parameter.VAR_POSITIONAL:
            continue
        params.append(_param_entry(parameter))
    if layer and var_kwargs:
        known = {p["name"] for p in params}
        params += [
            {
                "name": name,
                "default": None if name != "trainable" and name != "autocast" else True,
                "keyword_only": True,
            }
            for name in LAYER_BASE_KWARGS
            if name not in known
        ]
    return params


def _summary(cls) -> str:
    doc = inspect.getdoc(cls) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ")[:200]


def _classes(module, base) -> dict:
    return {
        name: getattr(module, name)
        for name in dir(module)
        if not name.startswith("_")
        and inspect.isclass(getattr(module, name))
        and issubclass(getattr(module, name), base)
    }


def build_catalog() -> dict:
    """Read Keras's public objects and their signatures into a JSON-ready dict."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from keras.src import activations, constraints, initializers, losses, metrics, optimizers, regularizers

    kinds: dict[str, dict] = {}

    def add_kind(kind, classes, ids_dict=None, *, layer=False, name_of=None):
        kinds[kind] = _kind_entry(kind, classes, ids_dict, layer=layer, name_of=name_of)

    from keras.src.layers.layer import Layer

    add_kind("layer", _classes(keras.layers, Layer), layer=True)
    input_params = _params_of_function(keras.Input)
    kinds["layer"]["input"] = {
        "params": input_params,
        "summary": "The model's input: its shape without the batch axis.",
    }

    add_kind("optimizer", _classes(keras.optimizers, keras.optimizers.Optimizer), optimizers.ALL_OBJECTS_DICT)
    add_kind("loss", _classes(keras.losses, keras.losses.Loss), losses.ALL_OBJECTS_DICT)
    kinds["loss"]["ids"]["crossentropy"] = {
        "function": "crossentropy",
        "note": "binary, categorical or sparse, chosen from the data",
    }
    kinds["loss"]["ids"]["ce"] = {
        "function": "crossentropy",
        "note": "binary, categorical or sparse, chosen from the data",
    }

    add_kind("metric", _classes(keras.metrics, keras.metrics.Metric), metrics.ALL_OBJECTS_DICT, name_of=_metric_name)
    kinds["metric"]["ids"]["accuracy"] = {
        "function": "accuracy",
        "note": "binary, categorical or sparse, chosen from the data",
    }
    kinds["metric"]["ids"]["acc"] = {
        "function": "accuracy",
        "note": "binary, categorical or sparse, chosen from the data",
    }
    kinds["metric"]["ids"]["crossentropy"] = {"function": "crossentropy"}
    kinds["metric"]["ids"]["ce"] = {"function": "crossentropy"}
    add_kind("callback", _classes(keras.callbacks, keras.callbacks.Callback))
    add_kind("activation", {}, activations.ALL_OBJECTS_DICT)
    add_kind("initializer", _classes(keras.initializers, keras.initializers.Initializer), initializers.ALL_OBJECTS_DICT)
    add_kind("regularizer", _classes(keras.regularizers, keras.regularizers.Regularizer), regularizers.ALL_OBJECTS_DICT)
    add_kind("constraint", _classes(keras.constraints, keras.constraints.Constraint), constraints.ALL_OBJECTS_DICT)
    add_kind(
        "schedule",
        _classes(keras.optimizers.schedules, keras.optimizers.schedules.LearningRateSchedule),
    )
    return {"keras_version": keras.__version__, "kinds": kinds}


def _kind_entry(kind: str, classes: dict, ids_dict: dict | None, *, layer: bool, name_of=None) -> dict:
    """One kind of the catalog: its classes (arguments, summary), its string ids, what nnflow refuses."""
    refused = REFUSED.get(kind, {})
    objects = {}
    for name, cls in sorted(classes.items()):
        if name in refused:
            continue
        entry = {"params": _params(cls, layer=layer), "summary": _summary(cls)}
        if cls.__name__ != name:
            entry["same_as"] = cls.__name__
        if name_of is not None:
            entry["output_name"] = name_of(cls)
        objects[name] = entry
    ids = {}
    for identifier, value in sorted((ids_dict or {}).items()):
        if identifier in objects or identifier in refused:
            continue
        if inspect.isclass(value):
            target = value.__name__
            if target in objects:
                ids[identifier] = {"object": target}
        elif callable(value):
            ids[identifier] = {"function": value.__name__}
    return {"objects": objects, "ids": ids, "refused": dict(sorted(refused.items()))}


def _metric_name(cls) -> str | None:
    """The name Keras reports a metric class under, by default."""
    try:
        return cls().name
    except Exception:  # metrics with required arguments have no default name
        return None


def _params_of_function(function) -> list[dict]:
    return [_param_entry(parameter) for parameter in inspect.signature(function).parameters.values()]


def _param_entry(parameter: inspect.Parameter) -> dict:
    """One argument: its name, and whether it is required, its default, keyword-only."""
    entry: dict[str, Any] = {"name": parameter.name}
    if parameter.default is parameter.empty:
        entry["required"] = True
    else:
        default = _json_default(parameter.default)
        if default is not _OPAQUE:
            entry["default"] = default
    if parameter.kind is parameter.KEYWORD_ONLY:
        entry["keyword_only"] = True
    return entry


def render(catalog: dict) -> str:
    return json.dumps(catalog, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    target = Path(argv[0]) if argv else CATALOG_PATH
    from ._tf import quiet_tensorflow

    with quiet_tensorflow():
        text = render(build_catalog())
    temporary = target.with_suffix(".json.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, target)
    print(f"wrote {target} ({len(text):,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
