"""The `layers:` section: a keras.Sequential in order, and the model's input shape."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..yamlio import KeyPath, render_path
from .experiment import KerasObject
from .keras_objects import keras_object
from .keras_schema import object_schema
from .problems import ProblemCollector, describe, integer, is_int_or_float, is_shape_like

DESCRIPTION = "a keras.Sequential, in this order"
MISSING = "missing the `layers:` list: the model's layers, in order, e.g. `- Dense: {units: 4}`."


def json_schema() -> dict:
    return {"type": "array", "minItems": 1, "items": object_schema("layer", layer=True), "description": DESCRIPTION}


@dataclass
class Layers:
    """What `layers:` gives: the layers without `Input`, the input shape, and where it came from."""

    layers: list[KerasObject] = field(default_factory=list)
    item_paths: list[KeyPath] = field(default_factory=list)
    input_shape: tuple | None = None
    input_from: str | None = None  # the key that gave the input shape, for messages
    input_options: dict[str, Any] = field(default_factory=dict)


def check_layers(found: ProblemCollector, value: Any, path: KeyPath) -> tuple[tuple, tuple | None, Any, Any]:
    """(the layers, the input shape, Input's other arguments, the resolved list)."""
    if not isinstance(value, list):
        found.report(path, f"`layers` must be a list, one item per layer (`- Dense: 4`); received {describe(value)}.")
        return (), None, MappingProxyType({}), value
    if not value:
        found.report(path, "`layers` is empty; a model needs at least one layer.")
        return (), None, MappingProxyType({}), value
    model = Layers()
    for index, item in enumerate(value):
        item_path = path + (index,)
        layer = keras_object(found, "layer", item, item_path)
        if layer is None:
            continue
        if layer.target == "Input":
            _input_item(found, model, layer, index, item_path)
            continue
        layer = _shape_arguments(found, model, layer, index, item_path, path)
        model.layers.append(layer)
        model.item_paths.append(item_path)
    _layer_names(found, model)
    resolved = []
    if model.input_shape is not None:
        resolved.append({"Input": {"shape": list(model.input_shape), **model.input_options}})
    resolved += [layer.to_data() for layer in model.layers]
    if not model.layers and not found.problems:
        found.report(path, "`layers` holds only an `Input`; add at least one layer after it.")
    return tuple(model.layers), model.input_shape, MappingProxyType(model.input_options), resolved


def _input_item(found: ProblemCollector, model: Layers, layer: KerasObject, index: int, item_path: KeyPath) -> None:
    if index != 0:
        found.report(item_path, "`Input` must be the first item of `layers`.")
        return
    model.input_shape = check_shape(found, layer.args.get("shape"), item_path + (layer.name, "shape"))
    model.input_from = f"{render_path(item_path)}.Input.shape"
    model.input_options = {k: v for k, v in layer.args.items() if k != "shape"}


def _shape_arguments(
    found, model: Layers, layer: KerasObject, index: int, item_path: KeyPath, path: KeyPath
) -> KerasObject:
    """`input_dim` / `input_shape` on a layer whose class lacks them: the model's input shape."""
    shape_args = [a for a in ("input_dim", "input_shape") if a in layer.args and not layer.accepts(a)]
    if not shape_args:
        return layer
    first_layer = index == 0 or (index == 1 and model.input_from is not None)
    arg = shape_args[0]
    if len(shape_args) == 2:
        found.report(
            item_path + (layer.name,), "give either `input_dim` or `input_shape`, not both.",
            related=[item_path + (layer.name, arg) for arg in shape_args],
        )  # fmt: skip
    elif not first_layer:
        found.report(
            item_path + (layer.name, arg), f"only the first layer can set `{arg}`; it gives the model's input shape."
        )
    elif model.input_from is not None:
        found.report(
            item_path + (layer.name, arg),
            f"the input shape is given twice: by {model.input_from} and by {render_path(item_path)}.{layer.name}.{arg}; keep one.",
            related=[path + (0,)],
        )
    else:
        raw = layer.args[arg]
        if arg == "input_dim":
            dim = integer(found, raw, item_path + (layer.name, arg), minimum=1, what="a positive integer")
            model.input_shape = (dim,) if dim is not None else None
        else:
            model.input_shape = check_shape(found, raw, item_path + (layer.name, arg))
        model.input_from = f"{render_path(item_path)}.{layer.name}.{arg}"
    args = {k: v for k, v in layer.args.items() if k not in shape_args}
    return dataclasses.replace(layer, args=MappingProxyType(args))


def _layer_names(found: ProblemCollector, model: Layers) -> None:
    """Names given to layers must be unique: Keras refuses a model whose layers share one."""
    seen: dict[str, str] = {}
    data = found.document.data.get("data")
    normalizes = isinstance(data, dict) and data.get("normalize", True) is not False
    for layer, item_path in zip(model.layers, model.item_paths):
        name = layer.args.get("name")
        if not isinstance(name, str):
            continue
        name_path = item_path + (layer.name, "name")
        if name in seen:
            found.report(
                name_path,
                f"two layers are named {name!r} ({seen[name]} and {layer.path}); Keras needs each layer's name to be unique.",
            )
        elif name == "normalization" and "data" in found.document.data and normalizes:
            found.report(
                name_path,
                "the name 'normalization' is taken by the layer nnflow adds to standardise the features "
                "(data.normalize); give this layer another name.",
                related=[("data", "normalize")],
            )
        seen.setdefault(name, layer.path)


def check_shape(found: ProblemCollector, value: Any, path: KeyPath) -> tuple | None:
    """A model input's shape: a list of sizes (a single size is a list of one), as `is_shape_like` judges them."""
    if is_int_or_float(value) and isinstance(value, int):
        value = [value]
    if not isinstance(value, list) or not is_shape_like(value):
        found.report(
            path,
            f"expected a shape: a list of positive integers (null for a variable size), like [8, 8, 1]; received {describe(value)}.",
        )
        return None
    return tuple(value)
