"""JSON Schema of the experiment file, for editors (YAML language servers). No TensorFlow."""

from __future__ import annotations

from typing import Any

from . import __version__, catalog
from .spec import DEFAULTS, DISTRIBUTE_MODES, GATE_PATTERN, MAX_COUNT, MAX_JOIN_TIMEOUT, MAX_NAME_LENGTH, MAX_SEED

SCHEMA_ID = "https://nnflow.dev/schema/experiment.json"


def _object_schema(kind: str, *, layer: bool = False) -> dict:
    names = catalog.object_names(kind)
    variants: list[dict] = []
    bare = catalog.kind_names(kind)
    if bare:
        variants.append({"type": "string", "enum": bare})
    for name in names:
        entry = catalog.lookup(kind, name)
        args = {"type": "object", "properties": {p["name"]: _param_schema(p) for p in entry.params}, "additionalProperties": False}
        required = [p["name"] for p in entry.params if p.get("required")]
        if layer:
            args["properties"].setdefault("input_dim", {"type": "integer", "minimum": 1, "description": "first layer only: the input width"})
            args["properties"].setdefault("input_shape", {"type": "array", "description": "first layer only: the input shape"})
            value: dict = {"anyOf": [dict(args, required=required) if required else args, {"type": ["number", "string", "array", "boolean", "null"]}]}
        else:
            value = dict(args, required=required) if required else {"anyOf": [args, {"type": "null"}]}
        variants.append(
            {
                "type": "object",
                "properties": {name: value},
                "required": [name],
                "additionalProperties": False,
                "description": entry.summary,
            }
        )
    if layer:
        input_entry = catalog.lookup("layer", "Input")
        variants.append(
            {
                "type": "object",
                "properties": {"Input": {"anyOf": [{"type": "array"}, {"type": "integer"}, {"type": "object", "properties": {k: {} for k in ("shape", "batch_size", "dtype", "sparse", "name")}, "additionalProperties": False}]}},
                "required": ["Input"],
                "additionalProperties": False,
                "description": input_entry.summary,
            }
        )
    return {"anyOf": variants}


def _param_schema(param: dict) -> dict:
    schema: dict[str, Any] = {}
    if "default" in param:
        schema["default"] = param["default"]
        default = param["default"]
        if isinstance(default, bool):
            schema["type"] = ["boolean", "null"]
    return schema


def _split_schema(description: str) -> dict:
    return {
        "description": description,
        "anyOf": [{"type": "number", "minimum": 0, "exclusiveMaximum": 1}, {"type": "string"}],
    }


def json_schema() -> dict:
    """The whole format, with every Keras name and argument name from the shipped catalog."""
    data = {
        "type": "object",
        "additionalProperties": False,
        "required": ["train", "target"],
        "properties": {
            "train": {"type": "string", "description": "CSV (.csv .tsv .csv.gz) or Parquet file, relative to the experiment file"},
            "target": {"type": "string", "description": "the column to predict"},
            "features": {"type": ["array", "null"], "items": {"type": "string"}, "description": "input columns; default: all other columns"},
            "drop": {"type": "array", "items": {"type": "string"}, "default": [], "description": "columns to ignore"},
            "validation": _split_schema("fraction of train for validation (stratified for classes), a file, or 0") | {"default": DEFAULTS["data"]["validation"]},
            "test": _split_schema("fraction of train held out for testing, or a file") | {"default": 0},
            "normalize": {"type": "boolean", "default": True, "description": "standardise numeric features inside the model"},
        },
    }
    compile_section = {
        "type": "object",
        "additionalProperties": False,
        "required": ["loss"],
        "properties": {
            "optimizer": _object_schema("optimizer") | {"default": DEFAULTS["compile"]["optimizer"]},
            "loss": _object_schema("loss"),
            "metrics": {"anyOf": [{"type": "array", "items": _object_schema("metric")}, _object_schema("metric")], "default": []},
            "steps_per_execution": {
                "oneOf": [{"type": "integer", "minimum": 1, "maximum": MAX_COUNT}, {"const": "auto"}],
                "default": "auto",
                "description": "training steps per call into TensorFlow; auto: up to 32 (a whole epoch of a small table)",
            },
            "jit_compile": {"enum": [True, False, "auto"], "default": "auto"},
            "run_eagerly": {"type": "boolean", "default": False},
        },
    }
    fit_section = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "batch_size": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT, "default": DEFAULTS["fit"]["batch_size"]},
            "epochs": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT, "default": DEFAULTS["fit"]["epochs"]},
            "shuffle": {"type": "boolean", "default": True},
            "callbacks": {"type": "array", "items": _object_schema("callback"), "default": []},
            "diagnostics": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "gradient_norms": {
                        "type": "boolean",
                        "default": False,
                        "description": "record each weight's gradient norm every epoch (gradients.csv)",
                    },
                },
            },
            "distribute": {
                "enum": list(DISTRIBUTE_MODES),
                "default": DEFAULTS["fit"]["distribute"],
                "description": "tf.distribute strategy: mirrored (local GPUs) or multi_worker (TF_CONFIG)",
            },
            "join_timeout": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": MAX_JOIN_TIMEOUT,
                "default": DEFAULTS["fit"]["join_timeout"],
                "description": "multi_worker: seconds every worker waits for the others to join before it gives up (exit 4)",
            },
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "nnflow experiment",
        "description": f"nnflow {__version__} experiment file (Keras {catalog.keras_version()})",
        "type": "object",
        "additionalProperties": False,
        "required": ["layers", "compile"],
        "properties": {
            "name": {
                "type": "string",
                # `(?!\n)`: in Python's re (which jsonschema uses) `$` also matches before a final newline.
                "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]*$(?!\n)",
                "maxLength": MAX_NAME_LENGTH,
                "description": "names the run folder; default: the file's stem",
            },
            "description": {"type": "string"},
            "seed": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_SEED, "default": 0, "description": "null draws one and records it"},
            "data": data,
            "layers": {"type": "array", "minItems": 1, "items": _object_schema("layer", layer=True), "description": "a keras.Sequential, in this order"},
            "compile": compile_section,
            "fit": fit_section,
            "expect": {
                "type": "object",
                "description": "CI gates on final metrics, e.g. test_accuracy: \">= 0.9\"",
                "additionalProperties": {"type": "string", "pattern": GATE_PATTERN.pattern},
            },
        },
    }
