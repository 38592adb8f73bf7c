"""`--set KEY=VALUE`: dotted-key overrides applied to the file before validation.

    fit.epochs=5                                  a plain key
    compile.optimizer.Adam.learning_rate=0.001    the optimizer becomes Adam, with this argument
    layers.0.units=32                             an index into `layers` addresses that layer's arguments
    layers.-1.Dense.activation=sigmoid            negative indexes count from the end
    sweep.space.fit.batch_size=[16, 32]           the rest of the key is one key of `sweep.space`

Values are read as YAML, so `5`, `1e-3`, `null`, `[]` and `adam` mean what they would in the file.
A value that is not YAML at all (`>= 0.9`, `[1, 2`) is read as the plain string it is written as,
and the file's checks judge it where it lands.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from . import catalog
from .catalog import UnknownName
from .errors import ConfigError, Problem
from .yamlio import Document, KeyPath, YamlSyntaxError, parse_yaml, render_path

# Places in the file that hold one Keras object: `name` or `{Name: args}`.
_OBJECT_SLOTS: dict[KeyPath, str] = {("compile", "optimizer"): "optimizer", ("compile", "loss"): "loss"}
_OBJECT_LISTS: dict[KeyPath, str] = {
    ("compile", "metrics"): "metric",
    ("fit", "callbacks"): "callback",
    ("layers",): "layer",
}
# Mappings whose keys are themselves dotted `--set` keys: `sweep.space.fit.batch_size=[16, 32]`
# sets the key `fit.batch_size` of `sweep.space`.
_DOTTED_KEYS: set[KeyPath] = {("sweep", "space")}


def parse_override(text: str) -> tuple[list[str], Any]:
    """`fit.epochs=5` -> (['fit', 'epochs'], 5); raises ConfigError naming the override."""
    label = f"--set {text}"
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(Problem("expected KEY=VALUE, like `fit.epochs=5`.", where=label))
    parts = key.split(".")
    if any(not part for part in parts):
        raise ConfigError(
            Problem(f"the key {key!r} has an empty part; write dotted keys like `fit.epochs`.", where=label)
        )
    if raw.strip() == "":
        raise ConfigError(Problem(f"no value after '='; to clear a key write `{key}=null`.", where=label))
    if raw.lstrip().startswith("#"):
        raise ConfigError(
            Problem(
                f"the value starts with '#', which YAML reads as a comment; quote it: `{key}='{raw.strip()}'`.",
                where=label,
            )
        )
    try:
        value = parse_yaml(raw, label).data
    except YamlSyntaxError:
        # `expect.test_accuracy=>= 0.9`: not YAML, so the text itself; the file's checks judge it.
        value = raw.strip()
    except ConfigError as error:
        raise ConfigError(Problem(f"the value is not valid YAML: {error.problems[0].message}", where=label)) from None
    return parts, value


def apply_overrides(document: Document, overrides: Iterable[str]) -> list[Problem]:
    """Apply each override to `document.data` in place, remembering where values came from.

    Returns the problems of the overrides that could not be applied, so that they are
    reported together with the file's own.
    """
    problems = []
    for text in overrides:
        try:
            parts, value = parse_override(text)
            created: list[KeyPath] = []
            path = _apply(document.data, parts, value, f"--set {text}", created=created)
        except ConfigError as error:
            problems.extend(error.problems)
            continue
        label = f"--set {text}"
        document.overridden = {p: w for p, w in document.overridden.items() if p[: len(path)] != path}
        for made in created + [path]:
            document.overridden[made] = label
    return problems


def _apply(
    node: Any, parts: list[str], value: Any, label: str, path: KeyPath = (), *, created: list[KeyPath]
) -> KeyPath:
    """Set `value` at `parts` below `node`; return the key path it landed on."""
    part, rest = parts[0], parts[1:]
    if isinstance(node, list):
        position = _index(part, node, path, label)
        here = path + (position,)
        if not rest:
            node[position] = value
            return here
        kind = _OBJECT_LISTS.get(path)
        if kind is None:
            return _apply(node[position], rest, value, label, here, created=created)
        node[position] = _as_object(node[position], rest[0], kind, label, here, created)
        return _into_object(node[position], rest, value, label, here, created)
    if not isinstance(node, dict):
        raise ConfigError(
            Problem(
                f"cannot set a key inside {_render(path) or 'the file'}: it is {type(node).__name__}, not a mapping.",
                where=label,
            )
        )
    here = path + (part,)
    if not rest:
        node[part] = value
        return here
    if here in _DOTTED_KEYS:
        if not isinstance(node.get(part), dict):
            node[part] = {}
            created.append(here)
        node[part][".".join(rest)] = value
        return here + (".".join(rest),)
    kind = _OBJECT_SLOTS.get(here)
    if kind is not None:
        node[part] = _as_object(node.get(part), rest[0], kind, label, here, created)
        return _into_object(node[part], rest, value, label, here, created)
    if node.get(part) is None:
        if re.fullmatch(r"-?\d+", rest[0]):
            raise ConfigError(
                Problem(
                    f"{_render(here)} is not set, so it has no item {rest[0]}; set the whole list, "
                    f"like `--set {'.'.join(map(str, here))}=[...]`.",
                    where=label,
                )
            )
        node[part] = {}
        created.append(here)
    return _apply(node[part], rest, value, label, here, created=created)


def _into_object(
    mapping: dict[str, Any], rest: list[str], value: Any, label: str, path: KeyPath, created: list[KeyPath]
) -> KeyPath:
    """Continue below a `{Name: args}` object; `rest` may start with the name itself."""
    ((name, _),) = mapping.items()
    if rest[0] == name:
        rest = rest[1:]
        if not rest:
            mapping[name] = value
            return path + (name,)
    return _apply(mapping[name], rest, value, label, path + (name,), created=created)


def _index(part: str, node: list[Any], path: KeyPath, label: str) -> int:
    try:
        position = int(part)
    except ValueError:
        raise ConfigError(
            Problem(
                f"{'.'.join(map(str, path))} is a list; address an item by its index, like `{'.'.join(map(str, path))}.0`.",
                where=label,
            )
        ) from None
    if not -len(node) <= position < len(node):
        raise ConfigError(
            Problem(
                f"index {position} is out of range: {'.'.join(map(str, path))} has {len(node)} item(s).", where=label
            )
        )
    return position % len(node)


def _as_object(
    current: Any, next_key: str, kind: str, label: str, path: KeyPath, created: list[KeyPath]
) -> dict[str, Any]:
    """Normalise a Keras object to `{Name: {args}}` so an override can reach an argument.

    For a layer, `next_key` is either the layer's own name or one of its arguments.
    For the other kinds, `next_key` names the object; a different object replaces the current one.
    """
    name, args = _split(current)
    if kind == "layer":
        if name is None:
            raise ConfigError(
                Problem(f"{_render(path)} is not a layer like `Dense: 4`; cannot set its arguments.", where=label)
            )
        return {name: _args_as_mapping(name, args, label, path)}
    if name is not None and _same_object(kind, name, next_key):
        return {next_key: _args_as_mapping_generic(args)}
    if name is not None and not _is_name(kind, next_key) and _has_argument(kind, name, next_key):
        # `compile.optimizer.learning_rate=...`: the user meant an argument of the current object.
        target = catalog.lookup(kind, name).target
        dotted = ".".join(map(str, path))
        raise ConfigError(
            Problem(
                f"{dotted} takes the {catalog.KIND_TITLES[kind]}'s name before its arguments: "
                f"write `--set {dotted}.{target}.{next_key}=...`.",
                where=label,
            )
        )
    created.append(path + (next_key,))
    return {next_key: {}}


def _split(value: Any) -> tuple[str | None, Any]:
    if isinstance(value, str):
        return value, {}
    if isinstance(value, dict) and len(value) == 1:
        ((name, args),) = value.items()
        return name, args
    return None, None


def _args_as_mapping(layer_name: str, args: Any, label: str, path: KeyPath) -> dict[str, Any]:
    if args is None:
        return {}
    if isinstance(args, dict):
        return args
    try:
        entry = catalog.lookup("layer", layer_name)
    except UnknownName as error:
        raise ConfigError(Problem(f"{_render(path)}: {error}", where=label)) from None
    positional = args if isinstance(args, list) else [args]
    if layer_name == "Input":
        return {"shape": args}
    return dict(zip(entry.positional_names, positional))


def _args_as_mapping_generic(args: Any) -> dict[str, Any]:
    return args if isinstance(args, dict) else {}


def _same_object(kind: str, a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return catalog.lookup(kind, a).target == catalog.lookup(kind, b).target
    except UnknownName:
        return False


def _is_name(kind: str, name: str) -> bool:
    try:
        catalog.lookup(kind, name)
        return True
    except UnknownName:
        return False


def _has_argument(kind: str, name: str, argument: str) -> bool:
    try:
        return catalog.lookup(kind, name).param(argument) is not None
    except UnknownName:
        return False


def _render(path: KeyPath) -> str:
    return render_path(path)


def dotted_items(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """A document as `--set` keys, the inverse of `--set`: `{fit: {epochs: 5}, layers: [{Dense: {units: 4}}]}`
    gives `fit.epochs: 5` and `layers.0.Dense.units: 4`. A list of plain values (`metrics: [accuracy]`) is one value."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from dotted_items(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and value and any(isinstance(item, (dict, list)) for item in value):
        for index, item in enumerate(value):
            yield from dotted_items(item, f"{prefix}.{index}")
    else:
        yield prefix, value
