"""Spec -> a compiled `keras.Sequential`. The first module that touches Keras.

Keras's own errors at build time (say `Dropout: 1.5`, or a Conv2D on flat input)
come back as located `ConfigError`s, pointing at the layer in the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._tf import import_keras
from .errors import ConfigError, Problem
from .spec import KerasObject, Spec

_MODULES = {
    "layer": "layers",
    "optimizer": "optimizers",
    "loss": "losses",
    "metric": "metrics",
    "callback": "callbacks",
    "initializer": "initializers",
    "regularizer": "regularizers",
    "constraint": "constraints",
    "schedule": "optimizers.schedules",
}

_BY_NAME = ("loss", "metric", "activation")


def build_model(
    spec: Spec,
    *,
    input_shape: tuple | None = None,
    normalizer: Any = None,
    steps_per_execution: int | None = None,
):
    """Build and compile the `keras.Sequential` that `spec` describes.

    `input_shape` (without the batch axis) is used when the file names none: nnflow
    passes the data's feature count. `normalizer`, a Keras layer, goes first (the
    standardisation that `data.normalize` asks for). `steps_per_execution` resolves
    the file's `auto` (nnflow's training picks it from the data; 1 otherwise).
    """
    keras = import_keras()
    shape = spec.input_shape or input_shape
    if shape is None:
        raise ConfigError(
            Problem(
                "the model's input shape is unknown. Give it as the first item "
                "(`- Input: {shape: [4]}`), as `input_dim` on the first layer, or add a `data:` section "
                "so nnflow can count the feature columns.",
                path="layers",
                where=_where(spec, "layers"),
            )
        )
    if spec.seed is not None:
        keras.utils.set_random_seed(spec.seed)
    model = keras.Sequential(name=spec.name)
    model.add(keras.Input(shape=tuple(shape), **spec.input_options))
    if normalizer is not None:
        model.add(normalizer)
    names = _layer_names(spec, taken={"normalization"} if normalizer is not None else set())
    for layer_spec, name in zip(spec.layers, names):
        layer = _instantiate(keras, layer_spec, spec, name=name)
        try:
            model.add(layer)
        except Exception as error:  # shape mismatches, out-of-memory weights, bad dtypes
            raise _located(spec, layer_spec, f"Keras cannot add this layer: {_keras_message(error)}") from None
    compile_model(model, spec, steps_per_execution=steps_per_execution)
    return model


def normalization_layer(mean, variance, input_shape):
    """Keras's `Normalization` with statistics of the training split: per feature, for any input shape."""
    import numpy as np

    keras = import_keras()
    shape = tuple(input_shape)
    axis = -1 if len(shape) == 1 else tuple(range(1, len(shape) + 1))
    return keras.layers.Normalization(
        axis=axis,
        mean=np.asarray(mean, dtype="float32").reshape(shape),
        variance=np.asarray(variance, dtype="float32").reshape(shape),
        name="normalization",
    )


def compile_model(model, spec: Spec, *, steps_per_execution: int | None = None) -> None:
    """`model.compile` with the file's optimizer, loss, metrics and options."""
    keras = import_keras()
    settings = spec.compile
    optimizer = _instantiate(keras, settings.optimizer, spec)
    loss = _instantiate(keras, settings.loss, spec)
    metrics = [_instantiate(keras, metric, spec) for metric in settings.metrics]
    try:
        model.compile(
            optimizer=optimizer,
            loss=loss,
            metrics=metrics,
            steps_per_execution=steps_per_execution
            or (1 if settings.steps_per_execution == "auto" else settings.steps_per_execution),
            jit_compile=settings.jit_compile,
            run_eagerly=settings.run_eagerly,
        )
    except Exception as error:
        raise ConfigError(
            Problem(
                f"Keras refused to compile the model: {_keras_message(error)}",
                path="compile",
                where=_where(spec, "compile"),
            )
        ) from None


def callback_paths(spec: Spec, base_dir, *, every_path: bool = False, protected=()) -> list[KerasObject]:
    """The file's callbacks with their path arguments placed, each checked to stay where it belongs.

    A relative path (ModelCheckpoint's `filepath`, CSVLogger's `filename`, TensorBoard's
    `log_dir`) is joined to `base_dir`, the run folder, and must still be inside it once `..`
    and symbolic links are resolved (a link inside a resumed run's folder could point anywhere),
    without landing on a file nnflow keeps there (`run.json`, `history.csv`, ...). An absolute
    path is kept, for callbacks that only write (a shared TensorBoard folder), but never over one
    of the `protected` files (the experiment file, the data), nor inside another run's folder.
    With `every_path`, absolute paths are put inside `base_dir` too (a multi-worker run's other
    workers write into a scratch folder, never over the chief's files). Raises a located
    ConfigError (exit 2).
    """
    import dataclasses
    import os
    from pathlib import Path

    from .runs import enclosing_runs, is_nnflow_name
    from .spec import CALLBACK_PATH_ARGUMENTS

    base = Path(os.path.realpath(base_dir))
    protected = {os.path.realpath(path) for path in protected}
    placed = []
    for callback in spec.fit.callbacks:
        moved = {}
        for key, value in callback.args.items():
            if key not in CALLBACK_PATH_ARGUMENTS or not isinstance(value, str):
                continue

            def refuse(message: str, callback=callback, key=key) -> ConfigError:
                return _argument_problem(spec, callback, key, message)

            absolute = Path(value).is_absolute() and not every_path
            placed_path = Path(value) if absolute else base / (_inside(value) if every_path else Path(value))
            resolved = Path(os.path.realpath(placed_path))
            if absolute and str(resolved) in protected:
                raise refuse(
                    f"{callback.name} would write over {value}, which this run reads (the experiment file or its data); give it a path of its own."
                )
            if not absolute and (resolved == base or base not in resolved.parents):
                raise refuse(
                    f"{value!r} resolves to {resolved}, outside the run folder {base} (through `..` or a symbolic link). "
                    "Relative paths land inside the run folder; give an absolute path to write elsewhere."
                )
            if base in resolved.parents:
                first = resolved.relative_to(base).parts[0]
                if is_nnflow_name(first):
                    raise refuse(
                        f"{value!r} resolves to {resolved}: the run's own {first!r}, which nnflow writes. Give the callback a name of its own."
                    )
            others = [run for run in enclosing_runs(resolved) if run != base]
            if others:
                raise refuse(
                    f"{value!r} is inside the folder of another run, {others[0]}; a callback never writes into another run. Give it a path of its own."
                )
            if not absolute:
                moved[key] = str(placed_path)
        placed.append(dataclasses.replace(callback, args={**callback.args, **moved}) if moved else callback)
    return placed


def build_callbacks(spec: Spec, *, base_dir, every_path: bool = False, protected=()) -> list:
    """The `fit.callbacks` of the file as Keras callback objects, their paths placed by `callback_paths` in `base_dir`."""
    keras = import_keras()
    placed = callback_paths(spec, base_dir, every_path=every_path, protected=protected)
    callbacks = [
        _instantiate(keras, callback, spec) for callback in placed
    ]  # Keras's refusals first: no folder made for them
    _make_folders(spec, placed, base_dir)
    return callbacks


def _make_folders(spec: Spec, callbacks, base_dir) -> None:
    """The folders of the files callbacks write (CSVLogger does not make them): made inside the run
    folder; an absolute path's folder must exist already (a typo must not make folders anywhere).
    A file argument that names an existing folder, or a file that cannot be written, is refused."""
    import os
    from pathlib import Path

    base = Path(base_dir).resolve()
    for callback in callbacks:
        for key in ("filepath", "filename"):
            value = callback.args.get(key)
            if not isinstance(value, str):
                continue
            path, folder = Path(value), Path(value).parent
            problem = None
            if path.is_dir():
                problem = f"{value} is a folder; {callback.name} writes a file there. Give a file name"
            elif path.exists() and not os.access(path, os.W_OK):
                problem = f"{value} cannot be written (permission denied)"
            elif base in [folder.resolve(), *folder.resolve().parents]:
                folder.mkdir(parents=True, exist_ok=True)
            elif not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
                state = "is not writable" if folder.is_dir() else "does not exist"
                problem = f"{callback.name} writes {value}, but the folder {folder} {state}; make it first, or give a path inside the run folder"
            if problem:
                raise _argument_problem(spec, callback, key, problem + ".")


def _argument_problem(spec: Spec, obj: KerasObject, key: str, message: str) -> ConfigError:
    """A ConfigError located at one argument of a Keras object of the file (`fit.callbacks[0].CSVLogger.filename`)."""
    path = f"{obj.path}.{obj.name}.{key}"
    return ConfigError(Problem(message, path=path, where=spec.locations.get(path, _where(spec, obj.path))))


def _inside(path: str):
    """`path` as a relative path that stays inside whatever folder it is joined to."""
    from pathlib import Path

    return Path(*[part for part in Path(path).parts if part not in (Path(path).anchor, "..", ".")] or ["."])


def _layer_names(spec: Spec, taken: set[str]) -> list[str | None]:
    """Names for the layers the file leaves unnamed, counted in this model (`dense`, `dense_1`, ...).

    Keras counts its automatic names across the whole process, so the same file would name its
    layers differently in a notebook's second run; these names are the same every time.
    """
    from .catalog import snake_case

    taken = set(taken) | {layer.args["name"] for layer in spec.layers if isinstance(layer.args.get("name"), str)}
    counts: dict[str, int] = {}
    names: list[str | None] = []
    for layer in spec.layers:
        if "name" in layer.args or not layer.is_class:
            names.append(None)
            continue
        base = snake_case(layer.target)
        while True:
            count = counts.get(base, 0)
            counts[base] = count + 1
            name = base if count == 0 else f"{base}_{count}"
            if name not in taken:
                break
        taken.add(name)
        names.append(name)
    return names


def _instantiate(keras, obj: KerasObject, spec: Spec, *, name: str | None = None):
    if not obj.is_class or (obj.bare and obj.kind in _BY_NAME):
        # Keras resolves these names itself in compile(), names metrics after the string,
        # and picks binary/categorical/sparse for `accuracy` and `crossentropy`.
        return obj.name
    module = keras
    for part in _MODULES[obj.kind].split("."):
        module = getattr(module, part)
    cls = getattr(module, obj.target)
    kwargs = {key: _value(keras, value, spec) for key, value in obj.args.items()}
    if name is not None:
        kwargs["name"] = name
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except Exception as error:  # whatever Keras raises for the file's arguments is the file's problem
        raise _located(spec, obj, _keras_message(error)) from None


def _value(keras, value: Any, spec: Spec) -> Any:
    if isinstance(value, KerasObject):
        return _instantiate(keras, value, spec)
    if isinstance(value, list):
        return [_value(keras, item, spec) for item in value]
    if isinstance(value, Mapping):
        return {key: _value(keras, item, spec) for key, item in value.items()}
    return value


def _keras_message(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return " ".join(text.split())


def _located(spec: Spec, obj: KerasObject, message: str) -> ConfigError:
    path = f"{obj.path}.{obj.name}" if obj.is_class and obj.args else obj.path
    return ConfigError(Problem(message, path=path, where=_where(spec, obj.path)))


def _where(spec: Spec, path: str) -> str:
    return spec.locations.get(path, str(spec.source or ""))
