"""JSON Schema of the experiment file, for editors (YAML language servers). No TensorFlow.

Derived from the sections' field declarations (`nnflow.spec`): every key, default and
description is declared there once; the Keras names and arguments come from the shipped catalog.
"""

from __future__ import annotations

from typing import Any

from . import catalog
from .spec import EXPERIMENT
from .spec.keras_schema import definitions
from .version import __version__

SCHEMA_ID = "https://nnflow.dev/schema/experiment.json"


def json_schema() -> dict[str, Any]:
    """The whole format, with every Keras name and argument name from the shipped catalog."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "nnflow experiment",
        "description": f"nnflow {__version__} experiment file (Keras {catalog.keras_version()})",
        **EXPERIMENT.json_schema(),
        "$defs": definitions(),
    }
