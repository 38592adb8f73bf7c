"""How a section of the file is declared: each field once, with its check, default and description.

The accepted keys, the defaults, the checks of a fixed section and its JSON Schema
(`nnflow schema`) are all derived from a `Section`, so they cannot drift apart.
A check is called as `check(found, value, path)`; it reports through the collector
and returns the checked value, or `INVALID`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..catalog import did_you_mean
from ..yamlio import KeyPath
from .problems import ProblemCollector, boolean, describe, expect_mapping, integer, is_int_or_float, unknown_keys


class _Marker:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


REQUIRED = _Marker("REQUIRED")  # a field without a default: the file must give it
OPTIONAL = _Marker("OPTIONAL")  # a field the file may leave out, without a default
DERIVED = _Marker("DERIVED")  # a default computed when loading (the name: the file's stem)
INVALID = _Marker("INVALID")  # what a check returns after reporting a problem

Check = Callable[[ProblemCollector, Any, KeyPath], Any]


@dataclass(frozen=True)
class Integer:
    """An integer in [minimum, maximum]."""

    minimum: int | None
    maximum: int | None
    what: str

    def __call__(self, found: ProblemCollector, value: Any, path: KeyPath) -> Any:
        checked = integer(found, value, path, minimum=self.minimum, maximum=self.maximum, what=self.what)
        return INVALID if checked is None else checked

    def json_schema(self) -> dict:
        bounds = {"minimum": self.minimum, "maximum": self.maximum}
        return {"type": "integer", **{key: bound for key, bound in bounds.items() if bound is not None}}


@dataclass(frozen=True)
class Boolean:
    def __call__(self, found: ProblemCollector, value: Any, path: KeyPath) -> Any:
        return INVALID if boolean(found, value, path) is None else value

    def json_schema(self) -> dict:
        return {"type": "boolean"}


@dataclass(frozen=True)
class Choice:
    """One of a few values, compared with their type (`1` is not `true`)."""

    options: tuple
    expected: str  # how a message names the options
    suggest: bool = False  # "did you mean" for a misspelt string

    def __call__(self, found: ProblemCollector, value: Any, path: KeyPath) -> Any:
        if any(type(value) is type(option) and value == option for option in self.options):
            return value
        hint = (
            did_you_mean(value, [str(option) for option in self.options])
            if self.suggest and isinstance(value, str)
            else None
        )
        found.report(path, f"expected {self.expected}; received {describe(value)}. {hint or ''}".rstrip())
        return INVALID

    def json_schema(self) -> dict:
        return {"enum": list(self.options)}


@dataclass(frozen=True)
class Number:
    """A number above `above` and at most `maximum`."""

    above: float
    maximum: float
    what: str

    def __call__(self, found: ProblemCollector, value: Any, path: KeyPath) -> Any:
        if is_int_or_float(value) and self.above < value <= self.maximum:
            return value
        found.report(path, f"expected {self.what}; received {describe(value)}.")
        return INVALID

    def json_schema(self) -> dict:
        return {"type": "number", "exclusiveMinimum": self.above, "maximum": self.maximum}


@dataclass(frozen=True)
class Custom:
    """A check written as a function, with the JSON Schema of what it accepts (built when asked)."""

    check: Check
    schema: Callable[[], dict]

    def __call__(self, found: ProblemCollector, value: Any, path: KeyPath) -> Any:
        return self.check(found, value, path)

    def json_schema(self) -> dict:
        return self.schema()


@dataclass(frozen=True)
class CheckedBySection:
    """A field whose check needs other fields (`layers`, `expect`): its section's function checks it.

    Declared here for its JSON Schema and its place among the keys.
    """

    schema: Callable[[], dict]

    def json_schema(self) -> dict:
        return self.schema()


@dataclass(frozen=True)
class Field:
    """One key of a section: its check, its default (or REQUIRED), what it means."""

    name: str
    check: Any  # Integer, Boolean, Choice, Number, Custom, CheckedBySection or a Section
    default: Any = REQUIRED
    description: str = ""
    missing: str = ""  # the message when a REQUIRED field is absent

    @property
    def has_default(self) -> bool:
        return not isinstance(self.default, _Marker)

    def json_schema(self) -> dict:
        schema = dict(self.check.json_schema())
        if self.has_default:
            schema["default"] = self.default
        if self.description:
            schema["description"] = self.description
        return schema


@dataclass(frozen=True)
class Section:
    """A mapping of declared fields: `data:`, `compile:`, `fit:`, `fit.diagnostics:`."""

    title: str  # as messages name it: "`fit`"
    fields: tuple[Field, ...]
    description: str = ""
    _by_name: Mapping[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {item.name: item for item in self.fields})

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(item.name for item in self.fields)

    @property
    def defaults(self) -> dict:
        return {item.name: item.default for item in self.fields if item.has_default}

    def field(self, name: str) -> Field:
        return self._by_name[name]

    def check(
        self, found: ProblemCollector, value: Any, path: KeyPath, *, after: Mapping[str, Callable] | None = None
    ) -> tuple[dict | None, Any]:
        """Check each field in order; `after[name](merged, checked)` runs right after field `name`.

        Returns (the checked values, or None after a problem; the section with its defaults).
        """
        if not expect_mapping(found, value, path, self.title):
            return None, value
        unknown_keys(found, value, self.keys, path, self.title)
        merged = {**copy.deepcopy(self.defaults), **value}
        checked: dict[str, Any] = {}
        for item in self.fields:
            if item.name not in merged:
                if item.default is REQUIRED:
                    found.report(path, item.missing)
                    checked[item.name] = INVALID
            else:
                checked[item.name] = item.check(found, merged[item.name], path + (item.name,))
            if after and item.name in after:
                after[item.name](merged, checked)
        valid = all(checked_value is not INVALID for checked_value in checked.values())
        return (checked if valid else None), merged

    def __call__(self, found: ProblemCollector, value: Any, path: KeyPath) -> Any:
        """As a field of another section: the section with its defaults, or INVALID."""
        checked, merged = self.check(found, value, path)
        return INVALID if checked is None else merged

    def json_schema(self) -> dict:
        schema: dict[str, Any] = {"type": "object", "additionalProperties": False}
        required = [item.name for item in self.fields if item.default is REQUIRED]
        if required:
            schema["required"] = required
        schema["properties"] = {item.name: item.json_schema() for item in self.fields}
        if self.description:
            schema["description"] = self.description
        return schema
