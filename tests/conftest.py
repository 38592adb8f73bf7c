"""Shared fixtures. Tests that need Keras import it lazily, so spec tests stay fast."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
DATA = ROOT / "data"


@pytest.fixture
def write(tmp_path):
    """Write a dedented YAML file into tmp_path and return its path."""

    def _write(text: str, name: str = "experiment.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write
