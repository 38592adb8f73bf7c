"""The shipped catalog of Keras names and signatures; lookups without importing Keras."""

from __future__ import annotations

import difflib
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CATALOG_PATH = Path(__file__).with_name("keras_catalog.json")

KIND_TITLES = {
    "layer": "layer",
    "optimizer": "optimizer",
    "loss": "loss",
    "metric": "metric",
    "callback": "callback",
    "activation": "activation",
    "initializer": "initializer",
    "regularizer": "regularizer",
    "constraint": "constraint",
    "schedule": "learning-rate schedule",
}
KIND_MODULES = {
    "layer": "keras.layers",
    "optimizer": "keras.optimizers",
    "loss": "keras.losses",
    "metric": "keras.metrics",
    "callback": "keras.callbacks",
    "activation": "keras.activations",
    "initializer": "keras.initializers",
    "regularizer": "keras.regularizers",
    "constraint": "keras.constraints",
    "schedule": "keras.optimizers.schedules",
}


@functools.cache
def load_catalog() -> dict[str, Any]:
    with open(CATALOG_PATH, encoding="utf-8") as handle:
        catalog: dict[str, Any] = json.load(handle)
    return catalog


def keras_version() -> str:
    return str(load_catalog()["keras_version"])


@dataclass(frozen=True)
class Entry:
    """A Keras name resolved against the catalog."""

    kind: str
    name: str  # as written in the file
    target: str  # the class name, or the function name for string ids
    is_class: bool
    params: tuple[dict[str, Any], ...]  # name, required, default, keyword_only
    summary: str = ""
    output_name: str | None = None  # metrics: the name Keras reports

    def param(self, name: str) -> dict[str, Any] | None:
        return next((param for param in self.params if param["name"] == name), None)

    @property
    def param_names(self) -> list[str]:
        return [param["name"] for param in self.params]

    @property
    def positional_names(self) -> list[str]:
        return [param["name"] for param in self.params if not param.get("keyword_only")]


class UnknownName(LookupError):
    """A name that the catalog does not know, or refuses; `str()` is the user-facing reason."""


def kind_names(kind: str) -> list[str]:
    """Every name the file may use for `kind`, refused ones left out."""
    table = load_catalog()["kinds"][kind]
    return sorted(set(table["objects"]) | set(table["ids"]))


def object_names(kind: str) -> list[str]:
    """The classes the file may name for `kind` (`Adam`, `Dense`), refused ones left out."""
    return sorted(load_catalog()["kinds"][kind]["objects"])


def lookup(kind: str, name: str) -> Entry:
    """Resolve `name` as a `kind` (layer, loss, ...), or raise UnknownName with a suggestion."""
    table = load_catalog()["kinds"][kind]
    if kind == "layer" and name == "Input":
        spec = table["input"]
        return Entry(kind, name, "Input", True, tuple(spec["params"]), spec["summary"])
    if name in table["objects"]:
        spec = table["objects"][name]
        return Entry(
            kind,
            name,
            spec.get("same_as", name),
            True,
            tuple(spec["params"]),
            spec.get("summary", ""),
            spec.get("output_name"),
        )
    if name in table["ids"]:
        ident = table["ids"][name]
        if "object" in ident:
            target = ident["object"]
            spec = table["objects"][target]
            return Entry(
                kind, name, target, True, tuple(spec["params"]), spec.get("summary", ""), spec.get("output_name")
            )
        return Entry(kind, name, ident["function"], False, (), ident.get("note", ""))
    if name in table["refused"]:
        raise UnknownName(f"`{name}` is not allowed: {table['refused'][name]}")
    raise UnknownName(
        unknown_message(
            KIND_TITLES[kind], name, kind_names(kind) + (["Input"] if kind == "layer" else []), KIND_MODULES[kind]
        )
    )


def unknown_message(what: str, name: str, candidates: list[str], module: str | None = None) -> str:
    message = f"unknown {what} {name!r}"
    if module:
        message += f" (not a name in {module})"
    message += "."
    hint = did_you_mean(name, candidates)
    if hint:
        message += f" {hint}"
    return message


def did_you_mean(name: object, candidates: list[str]) -> str:
    """'Did you mean ...?' for the closest candidates, or '' when nothing is close."""
    matches = close_matches(name, candidates)
    return f"Did you mean {_quote_list(matches)}?" if matches else ""


def close_matches(name: object, candidates: list[str]) -> list[str]:
    """Up to three candidates close to `name`, case and separators ignored first."""
    if not isinstance(name, str):
        return []
    folded = _fold(name)
    by_fold: dict[str, list[str]] = {}
    for candidate in candidates:
        by_fold.setdefault(_fold(candidate), []).append(candidate)

    def best(group: list[str]) -> str:
        # Among spellings of one name (`adam`, `Adam`), prefer the one styled like the input.
        same_style = [c for c in group if c.islower() == name.islower() and ("_" in c) == ("_" in name)]
        return (same_style or [c for c in group if c.islower() == name.islower()] or group)[0]

    if folded in by_fold:
        return [best(by_fold[folded])]
    return [best(by_fold[c]) for c in difflib.get_close_matches(folded, list(by_fold), n=3, cutoff=0.75)]


def _fold(text: str) -> str:
    return re.sub(r"[_\-\s]", "", text.lower())


def _quote_list(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    if len(quoted) == 1:
        return quoted[0]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


def snake_case(name: str) -> str:
    """Keras's own `to_snake_case`, for a metric's default name."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
    return name
