"""Reading a run folder's files back: regular files only, bounded, and checked against the shape nnflow writes.

Damage is a `DamagedRunError` (exit 6) that names the file and what is wrong with it;
unknown extra keys and statuses are accepted, for the features that add them later.
Standard library only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .. import fileio
from ..errors import DamagedRunError

JSON_LIMIT = 64 << 20  # more than nnflow ever writes in a run's JSON files (vocabularies, confusion matrices)
CSV_LIMIT = 256 << 20  # history.csv and gradients.csv: a row per epoch (per weight)
EXPERIMENT_LIMIT = 1_000_000  # yamlio.MAX_FILE_BYTES: what an experiment file may be


def damaged(path: str | Path, problem: str) -> DamagedRunError:
    """`RUN/run.json: `data` must be ...; received a list; the run folder is damaged.`"""
    return DamagedRunError(f"{path}: {problem}; the run folder is damaged.")


def describe(value: Any) -> str:
    """What a JSON value is, for `received ...`: `a list`, `the text 'abc'`, `null`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the text {value[:40]!r}" + (" ..." if len(value) > 40 else "")
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


# ---------------------------------------------------------------------------
# Reading: regular files only, bounded


def read_bytes(path: str | Path, limit: int) -> bytes:
    """The bytes of a run file; a FIFO, a device, a missing or oversized file is damage."""
    try:
        return fileio.read_bounded(path, limit)
    except fileio.TooLarge:
        raise damaged(path, f"larger than {limit:,} bytes, far more than nnflow writes there") from None
    except fileio.NotReadable as error:
        raise damaged(path, error.reason) from None


def read_text(path: str | Path, limit: int) -> str:
    try:
        return read_bytes(path, limit).decode("utf-8")
    except UnicodeDecodeError as error:
        raise damaged(path, f"not UTF-8 text (byte {error.start})") from None


def read_json_file(path: str | Path, limit: int | None = None) -> Any:
    """A JSON document of a run folder, parsed; not JSON is damage."""
    text = read_text(path, limit or JSON_LIMIT)
    try:
        return json.loads(text)
    except ValueError as error:
        raise damaged(path, f"not valid JSON ({error})") from None
    except RecursionError:
        raise damaged(path, "not valid JSON (nested too deeply)") from None


def present(path: str | Path) -> bool:
    """Whether anything is at `path`: a broken link or a FIFO is there (and damaged), not absent."""
    return os.path.lexists(path)


# ---------------------------------------------------------------------------
# Checking shapes


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_count(value) -> bool:
    return is_int(value) and value >= 0


def is_json_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_json_number_or_null(value) -> bool:
    return value is None or is_json_number(value)


def is_text(value) -> bool:
    return isinstance(value, str)


def is_text_or_null(value) -> bool:
    return value is None or isinstance(value, str)


def is_bool(value) -> bool:
    return isinstance(value, bool)


class Shape:
    """Checks one document's keys, raising at the first that is wrong (naming the file and the key)."""

    def __init__(self, path: str | Path, document: Any, what: str):
        self.path = path
        if not isinstance(document, dict):
            raise damaged(path, f"must be a JSON object ({what}); received {describe(document)}")
        self.document = document

    def fail(self, key: str, expected: str, value: Any) -> DamagedRunError:
        return damaged(self.path, f"`{key}` must be {expected}; received {describe(value)}")

    def key(self, key: str, test: Callable[[Any], bool], expected: str, *, required: bool = False) -> None:
        if key not in self.document:
            if required:
                raise damaged(self.path, f"`{key}` is missing (it should be {expected})")
            return
        value = self.document[key]
        if not test(value):
            raise self.fail(key, expected, value)

    def mapping(self, key: str, test: Callable[[Any], bool], expected: str, *, required: bool = False) -> None:
        """`key` holds a mapping whose every value passes `test`."""
        self.key(key, lambda value: isinstance(value, dict), expected, required=required)
        for name, value in (self.document.get(key) or {}).items():
            if not test(value):
                raise self.fail(f"{key}.{name}", expected.split(" -> ", 1)[-1], value)

    def records(
        self,
        key: str,
        fields: Mapping[str, tuple[Callable[[Any], bool], str]],
        expected: str,
        *,
        required: bool = False,
    ) -> None:
        """`key` holds a list of mappings, each with `fields` (name -> (test, expected))."""
        self.key(key, lambda value: isinstance(value, list), expected, required=required)
        for index, record in enumerate(self.document.get(key) or []):
            if not isinstance(record, dict):
                raise self.fail(f"{key}[{index}]", "a mapping", record)
            self.within(f"{key}[{index}]", record, fields)

    def within(self, where: str, record: dict, fields: Mapping[str, tuple[Callable[[Any], bool], str]]) -> None:
        """The mapping at `where` has each of `fields` (name -> (test, expected)); other keys are accepted."""
        for name, (test, what) in fields.items():
            if name not in record:
                raise damaged(self.path, f"`{where}.{name}` is missing (it should be {what})")
            if not test(record[name]):
                raise self.fail(f"{where}.{name}", what, record[name])


GATE_FIELDS = {
    "metric": (is_text, "a metric name"),
    "condition": (is_text, "a condition such as '>= 0.9'"),
    "value": (is_json_number_or_null, "a number or null"),
    "passed": (is_bool, "true or false"),
}
