"""Reading experiment files: YAML that can hold plain data and nothing else.

Stricter than `yaml.safe_load`: no tags beyond the core ones, no duplicate keys,
a budget on alias expansion (billion laughs), on nesting and on file size, and
YAML 1.2 scalars (`1e-3` is a number, `no` and `on` are strings). Every value
keeps the line and column it came from so later errors can point at it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml

from ..errors import ConfigError, Problem
from ..fileio import NotReadable, TooLarge, read_bounded
from .dialect import (
    ALLOWED_TAGS,
    BAD_CHARACTER,
    CORE,
    MAX_DEPTH,
    Loader,
    YamlSyntaxError,
    check_characters,
    check_depth,
    check_tabs,
    has_content,
    yaml_problem,
)
from .dialect import dump_yaml as dump_yaml  # the public face: callers import it from here

MAX_FILE_BYTES = 1_000_000
MAX_NODES = 100_000  # after alias expansion

KeyPath = tuple[str | int, ...]  # ("layers", 2, "Dense", "units")


def render_path(path: KeyPath) -> str:
    """A key path as messages write it: `("layers", 2, "Dense", "units")` -> `layers[2].Dense.units`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


@dataclass
class Document:
    """A parsed file: plain Python data plus where each piece came from."""

    data: Any
    source: str
    positions: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    overridden: dict[KeyPath, str] = field(default_factory=dict)  # path -> "--set KEY=VALUE"

    def where(self, path: KeyPath, *, key: bool = False) -> str:
        """`file:line:col` of the value at `path` (or of its key), or of its nearest parent."""
        label = self.override_of(path)
        if label is not None:
            return label
        table = self.key_positions if key else self.positions
        probe = tuple(path)
        while probe:
            if probe not in self.positions and probe not in self.key_positions:
                for overridden, label in self.overridden.items():
                    if overridden[: len(probe)] == probe:
                        return label
            if probe in table:
                line, column = table[probe]
                return f"{self.source}:{line}:{column}"
            if not key and probe in self.key_positions:
                line, column = self.key_positions[probe]
                return f"{self.source}:{line}:{column}"
            probe = probe[:-1]
        if () in self.positions:
            line, column = self.positions[()]
            return f"{self.source}:{line}:{column}"
        return self.source

    def override_of(self, path: KeyPath) -> str | None:
        """The `--set KEY=VALUE` that set the value at `path`, or one of its parents, if any.

        An override replaces everything below the key it sets, so the file's positions
        there are stale: the most specific override wins.
        """
        path = tuple(path)
        for length in range(len(path), 0, -1):
            if path[:length] in self.overridden:
                return self.overridden[path[:length]]
        return None


def load_yaml_file(path: str | Path) -> Document:
    """Read and parse a YAML file nnflow reads (an experiment, a run's experiment.yaml).

    Only a regular file is opened (a FIFO or a device such as /dev/zero is refused at
    once, never read), and never more than MAX_FILE_BYTES of it, whatever `stat` says.
    The result holds plain data only: `load_yaml_file(path).data`.
    """
    path = Path(path)
    source = str(path)
    try:
        raw = read_bounded(path, MAX_FILE_BYTES)
    except TooLarge:
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        size_text = (
            f"{size:,} bytes" if size > MAX_FILE_BYTES else f"over {MAX_FILE_BYTES:,} bytes"
        )  # it may grow as we read
        raise ConfigError(
            f"{source}: the file is {size_text}; experiment files are limited to "
            f"{MAX_FILE_BYTES:,} bytes. Keep data in data files, not in the experiment."
        ) from None
    except NotReadable as error:
        raise ConfigError(f"{source}: {_unreadable(error.reason)}") from None
    return parse_yaml(raw, source)


def _unreadable(reason: str) -> str:
    if reason == "no such file":
        return "no such file. Check the path (it is relative to the current folder)."
    if reason.startswith("is a folder"):
        return "is a folder; expected an experiment file (.yaml)."
    if reason.startswith("is "):  # a FIFO, a device, a socket
        return f"{reason}; expected an experiment file (.yaml)."
    return f"cannot read it: {reason}."


def parse_yaml(raw: bytes | str, source: str = "<string>") -> Document:
    """Parse YAML text into a `Document`; every problem is a located `ConfigError`."""
    if isinstance(raw, bytes):
        if len(raw) > MAX_FILE_BYTES:
            raise ConfigError(f"{source}: larger than {MAX_FILE_BYTES:,} bytes.")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            line = raw[: error.start].count(b"\n") + 1
            raise ConfigError(
                f"{source}:{line}: the file is not UTF-8 text (byte {error.start}). Save it as UTF-8."
            ) from None
    else:
        text = raw
    if "\x00" in text:
        raise ConfigError(f"{source}: the file contains NUL bytes; it is not a text file.")
    if not has_content(text):
        raise ConfigError(
            f"{source}: the file is empty. An experiment file needs at least a `layers:` "
            "list and a `compile:` section; see configs/ for examples."
        )
    check_characters(text, source)
    check_tabs(text, source)
    check_depth(text, source)
    loader = Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as error:
        raise YamlSyntaxError(yaml_problem(error, source)) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from None
    except RecursionError:
        raise ConfigError(f"{source}: nesting is too deep (more than {MAX_DEPTH} levels).") from None
    finally:
        loader.dispose()
    document = Document(data=None, source=source)
    if node is None:
        raise ConfigError(f"{source}: the file holds no YAML document.")
    document.data = _Builder(document).build(node)
    return document


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(CORE) :] if tag.startswith(CORE) else tag


class _Builder:
    """Turns composed nodes into plain data, enforcing the rules PyYAML leaves to us."""

    def __init__(self, document: Document):
        self.document = document
        self.source = document.source
        self.nodes = 0

    def _where(self, node: yaml.Node) -> str:
        mark = node.start_mark
        return f"{self.source}:{mark.line + 1}:{mark.column + 1}"

    def _position(self, node: yaml.Node) -> tuple[int, int]:
        return (node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: yaml.Node) -> Any:
        return self._build(node, (), 0)

    def _build(self, node: yaml.Node, path: KeyPath, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            # The node itself sits at its anchor; the entry whose expansion ran over the
            # budget is the useful place to point at.
            where = self.document.where(path[:1], key=True) if path else self._where(node)
            raise ConfigError(
                Problem(
                    f"aliases expand to more than {MAX_NODES:,} values (a 'billion laughs' "
                    "file?). Write the values out, or use fewer nested aliases.",
                    path=str(path[0]) if path else "",
                    where=where,
                )
            )
        if depth > MAX_DEPTH:
            raise ConfigError(
                Problem(
                    f"nesting is deeper than {MAX_DEPTH} levels (through aliases).",
                    where=self._where(node),
                )
            )
        if node.tag not in ALLOWED_TAGS:
            raise ConfigError(
                Problem(
                    f"the tag {_short_tag(node.tag)} is not allowed: nnflow files hold plain data only "
                    "(strings, numbers, booleans, null, lists, mappings) and never construct "
                    "Python objects. Remove the tag.",
                    where=self._where(node),
                )
            )
        kind = (
            "map" if isinstance(node, yaml.MappingNode) else "seq" if isinstance(node, yaml.SequenceNode) else "scalar"
        )
        if (node.tag in (CORE + "map", CORE + "seq") or kind != "scalar") and node.tag != CORE + kind:
            what = {"map": "a mapping", "seq": "a list", "scalar": "a single value"}[kind]
            raise ConfigError(
                Problem(f"the tag {_short_tag(node.tag)} does not fit {what}; remove the tag.", where=self._where(node))
            )
        self.document.positions.setdefault(path, self._position(node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self._build(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
        return self._scalar(cast(yaml.ScalarNode, node))  # the composer makes only these three kinds

    def _mapping(self, node: yaml.MappingNode, path: KeyPath, depth: int) -> dict:
        result: dict[str, Any] = {}
        first_seen: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(
                    Problem("a key must be a plain name, not a list or mapping.", where=self._where(key_node))
                )
            if key_node.tag not in ALLOWED_TAGS:
                raise ConfigError(
                    Problem(f"the tag {_short_tag(key_node.tag)} is not allowed on a key.", where=self._where(key_node))
                )
            key = key_node.value
            self.check_characters(key_node)
            if key == "<<" and key_node.tag == CORE + "str" and key_node.style is None:
                raise ConfigError(
                    Problem(
                        "merge keys (`<<: *anchor`) are not supported; write the keys out.",
                        where=self._where(key_node),
                    )
                )
            if key in first_seen:
                first = first_seen[key].start_mark
                raise ConfigError(
                    Problem(
                        f"duplicate key {key!r}: it is also set at line {first.line + 1}. "
                        "YAML keeps only one of them; delete the other.",
                        where=self._where(key_node),
                    )
                )
            first_seen[key] = key_node
            self.document.key_positions.setdefault(path + (key,), self._position(key_node))
            result[key] = self._build(value_node, path + (key,), depth + 1)
        return result

    def check_characters(self, node: yaml.ScalarNode) -> None:
        """Escapes in quoted strings (`"\\0"`, `"\\ud800"`) can make what no file name or text may hold."""
        match = BAD_CHARACTER.search(node.value)
        if match:
            what = (
                "a NUL character (\\0)"
                if match.group() == "\0"
                else f"a lone surrogate (\\u{ord(match.group()):04x}, half of a UTF-16 pair)"
            )
            raise ConfigError(
                Problem(f"{what} is not allowed in a value or a key; remove the escape.", where=self._where(node))
            )

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        tag = node.tag[len(CORE) :]
        value = node.value
        self.check_characters(node)
        try:
            if tag == "str":
                return value
            if tag == "null":
                if value not in ("", "~", "null", "Null", "NULL"):
                    raise ValueError
                return None
            if tag == "bool":
                lowered = value.lower()
                if lowered not in ("true", "false"):
                    raise ValueError
                return lowered == "true"
            if tag == "int":
                if value.startswith(("0o", "0x")):
                    return int(value, 0)
                return int(value, 10)
            if tag == "float":
                lowered = value.lower()
                if lowered.endswith(".inf"):
                    return float("-inf") if lowered.startswith("-") else float("inf")
                if lowered == ".nan":
                    return float("nan")
                return float(value)
        except ValueError:
            raise ConfigError(Problem(f"{value!r} is not a valid {tag}.", where=self._where(node))) from None
        raise AssertionError(tag)  # ALLOWED_TAGS guards this
