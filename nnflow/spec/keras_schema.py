"""The JSON Schema of Keras objects (`optimizer:`, a layer), from the shipped catalog and the argument rules.

Each argument's schema is derived from the same tables `keras_objects` checks with (which
arguments are sizes, shapes, rates, nested objects), so an editor refuses what `check` refuses.
The kinds that nest (initializers, regularizers, constraints, schedules) are defined once, in
`$defs`, and referenced; a wrapped layer refers back to the `layers:` items.
"""

from __future__ import annotations

from typing import Any

from .. import catalog
from .callback_checks import CALLBACK_PATH_ARGUMENTS
from .keras_objects import (
    INPUT_ARGUMENTS,
    NESTED_KINDS,
    NUMBER_ARGUMENTS,
    POSITIVE_INT_ARGUMENTS,
    POSITIVE_NUMBER_ARGUMENTS,
    RATE_LAYERS,
    SHAPE_ARGUMENTS,
)
from .problems import MAX_COUNT, MAX_NAME_LENGTH, MAX_SEED

DEFINED_KINDS = ("initializer", "regularizer", "constraint", "schedule")
LAYER_REFERENCE = {"$ref": "#/properties/layers/items"}
_NULL = {"type": "null"}
_POSITIVE_COUNT = {"type": "integer", "minimum": 1, "maximum": MAX_COUNT}
_SHAPE = {"anyOf": [_POSITIVE_COUNT, {"type": "array", "minItems": 1, "items": {"anyOf": [_POSITIVE_COUNT, _NULL]}}]}


def definitions() -> dict:
    """`$defs` of the whole schema: each kind that other objects nest."""
    return {kind: object_schema(kind) for kind in DEFINED_KINDS}


def reference(kind: str) -> dict:
    return {"$ref": f"#/$defs/{kind}"}


def object_schema(kind: str, *, layer: bool = False) -> dict:
    """Every name of `kind`: bare (`adam`) or `{Name: {argument: value}}`, with its argument names."""
    variants: list[dict] = []
    bare = catalog.kind_names(kind)
    if bare:
        variants.append({"type": "string", "enum": bare})
    for name in catalog.object_names(kind):
        entry = catalog.lookup(kind, name)
        variants.append(
            {
                "type": "object",
                "properties": {name: _arguments_schema(entry, layer=layer)},
                "required": [name],
                "additionalProperties": False,
                "description": entry.summary,
            }
        )
    if layer:
        variants.append(_input_schema())
    return {"anyOf": variants}


def object_list_schema(kind: str) -> dict:
    return {"type": "array", "items": object_schema(kind)}


def _arguments_schema(entry: catalog.Entry, *, layer: bool) -> dict:
    properties = {p["name"]: argument_schema(entry, p) for p in entry.params}
    args: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    required = [p["name"] for p in entry.params if p.get("required")]
    if layer:
        if "input_dim" not in properties and "input_shape" not in properties:
            args["not"] = {"required": ["input_dim", "input_shape"], "description": "give one of them, not both"}
        properties.setdefault("input_dim", dict(_POSITIVE_COUNT, description="first layer only: the input width"))
        properties.setdefault("input_shape", dict(_SHAPE, description="first layer only: the input shape"))
        return {"anyOf": [dict(args, required=required) if required else args, *_positional_schemas(entry, properties)]}
    return dict(args, required=required) if required else {"anyOf": [args, _NULL]}


def _positional_schemas(entry: catalog.Entry, properties: dict) -> list[dict]:
    """A layer's arguments by position (`Dense: 4`, `Conv2D: [8, 3]`, `Flatten: null`), when that can give the required ones."""
    slots = entry.positional_names
    required = [p["name"] for p in entry.params if p.get("required")]
    if any(name not in slots for name in required):
        return []
    least = max((slots.index(name) + 1 for name in required), default=0)
    variants: list[dict] = []
    if least == 0:
        variants.append(_NULL)
    if slots and least <= 1:
        variants.append({"allOf": [{"not": {"type": ["object", "array", "null"]}}, properties[slots[0]]]})
    if slots:
        items = [properties[name] for name in slots]
        variants.append({"type": "array", "prefixItems": items, "minItems": least, "maxItems": len(slots)})
    return variants


def _input_schema() -> dict:
    arguments: dict[str, dict] = {name: {} for name in INPUT_ARGUMENTS} | {"shape": _SHAPE}
    shape_or_arguments = [
        _SHAPE,
        {"type": "object", "properties": arguments, "required": ["shape"], "additionalProperties": False},
    ]
    return {
        "type": "object",
        "properties": {"Input": {"anyOf": shape_or_arguments}},
        "required": ["Input"],
        "additionalProperties": False,
        "description": catalog.lookup("layer", "Input").summary,
    }


def argument_schema(entry: catalog.Entry, param: dict) -> dict:
    """What one argument accepts, rule for rule as `keras_objects.argument` checks it."""
    schema = _special_argument(entry, param["name"]) or _nested_argument(entry, param["name"])
    if schema is None:
        parts = [{"not": {"type": "object"}}, *_plain_argument(entry, param)]
        schema = parts[0] if len(parts) == 1 else {"allOf": parts}
    if "default" in param:
        schema = {**schema, "default": param["default"]}
    return schema


def _special_argument(entry: catalog.Entry, key: str) -> dict | None:
    if entry.kind == "callback" and key in CALLBACK_PATH_ARGUMENTS:
        return {"type": "string"}
    if key == "seed":
        return {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_SEED}
    if key == "name":
        name = {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH}
        if entry.kind == "layer":
            name["pattern"] = "^[^/]*$"
        return {"anyOf": [name, _NULL]}
    return None


def _nested_argument(entry: catalog.Entry, key: str) -> dict | None:
    if entry.kind == "layer" and key in ("layer", "backward_layer"):
        return {"anyOf": [LAYER_REFERENCE, _NULL]}
    if entry.kind == "optimizer" and key == "learning_rate":
        return {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, reference("schedule")]}
    if entry.kind != "layer":
        return None
    for pattern, kind in NESTED_KINDS:
        if pattern.fullmatch(key):
            if kind == "activation":
                return {"anyOf": [{"type": "string", "enum": catalog.kind_names("activation")}, _NULL]}
            return {"anyOf": [reference(kind), _NULL]}
    if key in POSITIVE_INT_ARGUMENTS:
        return _POSITIVE_COUNT
    if key == "rate" and entry.target in RATE_LAYERS:
        return {"type": "number", "minimum": 0, "exclusiveMaximum": 1}
    return None


def _plain_argument(entry: catalog.Entry, param: dict) -> list[dict]:
    key = param["name"]
    parts: list[dict] = []
    if key in SHAPE_ARGUMENTS:
        parts.append({"anyOf": [_SHAPE, _NULL]})
    if key in NUMBER_ARGUMENTS:
        parts.append({"type": ["number", "null"]})
    if key in POSITIVE_NUMBER_ARGUMENTS:
        parts.append({"exclusiveMinimum": 0})
    if entry.kind == "regularizer" and key in ("l1", "l2"):
        parts.append({"minimum": 0})
    if entry.target == "SGD" and key == "momentum":
        parts.append({"minimum": 0, "maximum": 1})
    if entry.target == "ReduceLROnPlateau" and key == "factor":
        parts.append({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1})
    if param.get("required"):
        parts.append({"not": {"type": "boolean"}})
    default = param.get("default")
    if isinstance(default, bool):
        parts.append({"type": ["boolean", "null"]})
    elif isinstance(default, (int, float)) and "default" in param:
        parts.append({"not": {"type": ["string", "boolean"]}})
    return parts
