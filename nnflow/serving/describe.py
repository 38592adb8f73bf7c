"""What the service says about itself: `/metadata`, and `/predict`'s part of `/openapi.json`.

Both come from the run's preprocessing, so the documented features, types, categories and
output columns are the ones the service checks and writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..feature_encoding import Preprocessing
from ..scoring import PredictionColumns

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "examples": ["missing_feature", "not_a_number", "malformed_json"]},
                "message": {"type": "string"},
                "row": {"type": "integer", "description": "The row's position in the request, from 0."},
                "field": {"type": "string", "description": "The feature or key at fault."},
            },
        }
    },
}
ERRORS = {
    "400": "Empty or malformed body (JSON or CSV that cannot be read).",
    "413": "Body over --max-body, or more rows than --max-rows.",
    "415": "Content-Type other than application/json or text/csv.",
    "422": "Readable, but wrong: a missing feature, a value that is not a number, a missing value, a wrong shape.",
    "503": "Still warming up (Retry-After: 1).",
}


def features(preprocessing: Preprocessing) -> list[dict[str, Any]]:
    """Each feature with its type: `number`, `boolean` (true/false or 1/0) or `category` (with its values)."""
    described = []
    for name in preprocessing.feature_columns:
        if name in preprocessing.categories:
            described.append({"name": name, "type": "category", "categories": list(preprocessing.categories[name])})
        elif name in preprocessing.booleans:
            described.append({"name": name, "type": "boolean"})
        else:
            described.append({"name": name, "type": "number"})
    return described


def metadata(run_dir, info: dict, preprocessing: Preprocessing, limits, versions: dict[str, str]) -> dict:
    """The document `GET /metadata` answers."""
    outputs = PredictionColumns.of(preprocessing)
    return {
        "run": {
            "path": str(Path(run_dir).resolve()),
            "name": info.get("name"),
            "uuid": info.get("uuid"),
            "status": info.get("status"),
            "ended": info.get("ended"),
        },
        "task": preprocessing.task,
        "target": preprocessing.target,
        "features": features(preprocessing),
        "classes": preprocessing.class_names,
        "outputs": outputs.names,
        "limits": {"max_batch": limits.max_batch, "max_rows": limits.max_rows, "max_body": limits.max_body},
        "versions": versions,
    }


def _value_schema(feature: dict[str, Any]) -> dict[str, Any]:
    if feature["type"] == "number":
        return {"type": "number"}
    if feature["type"] == "boolean":
        return {"type": ["boolean", "number"]}
    return {
        "type": ["string", "number", "boolean"],
        "examples": feature["categories"][:5],
        "description": "Categories unseen in training are encoded as all zeros, with a note.",
    }


def predict_openapi(preprocessing: Preprocessing, limits) -> dict[str, Any]:
    """`openapi_extra` for POST /predict: the three request forms and the answers, from the run."""
    return {"requestBody": _request_body(preprocessing, limits), "responses": _responses(preprocessing)}


def _request_body(preprocessing: Preprocessing, limits) -> dict[str, Any]:
    described = features(preprocessing)
    names = [feature["name"] for feature in described]
    row = {
        "type": "object",
        "required": names,
        "properties": {feature["name"]: _value_schema(feature) for feature in described},
        "additionalProperties": True,
        "description": "Fields other than the features are carried through to the answer.",
    }
    rows_form = {
        "type": "object",
        "required": ["rows"],
        "properties": {"rows": {"type": "array", "items": row, "maxItems": limits.max_rows}},
        "additionalProperties": False,
    }
    columns_form = {
        "type": "object",
        "required": ["columns", "data"],
        "properties": {
            "columns": {"type": "array", "items": {"type": "string"}, "examples": [names]},
            "data": {"type": "array", "items": {"type": "array"}, "maxItems": limits.max_rows},
        },
        "additionalProperties": False,
    }
    return {
        "required": True,
        "content": {
            "application/json": {"schema": {"oneOf": [rows_form, columns_form]}},
            "text/csv": {"schema": {"type": "string", "description": f"A header line naming {', '.join(names)}."}},
        },
    }


def _responses(preprocessing: Preprocessing) -> dict[str, Any]:
    outputs = PredictionColumns.of(preprocessing)
    prediction = {"type": "object", "properties": {name: {} for name in outputs.names}, "additionalProperties": True}
    notes = {"type": "array", "items": {"type": "string"}}
    answers = [
        {
            "type": "object",
            "required": ["predictions", "notes"],
            "properties": {"predictions": {"type": "array", "items": prediction}, "notes": notes},
            "additionalProperties": False,
        },
        {
            "type": "object",
            "required": ["columns", "data", "notes"],
            "properties": {
                "columns": {"type": "array", "items": {"type": "string"}},
                "data": {"type": "array"},
                "notes": notes,
            },
            "additionalProperties": False,
        },
    ]
    return {
        "200": {
            "description": f"The request's rows with {', '.join(outputs.names)}, in the request's form.",
            "content": {"application/json": {"schema": {"oneOf": answers}}, "text/csv": {"schema": {"type": "string"}}},
            "headers": {
                "X-Nnflow-Notes": {
                    "description": "CSV answers: the notes, as a JSON list.",
                    "schema": {"type": "string"},
                }
            },
        },
        **{
            status: {"description": text, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
            for status, text in ERRORS.items()
        },
    }
