"""Reading experiment files: YAML that can hold plain data and nothing else.

Stricter than `yaml.safe_load`: no tags beyond the core ones, no duplicate keys,
a budget on alias expansion (billion laughs), on nesting and on file size, and
YAML 1.2 scalars (`1e-3` is a number, `no` and `on` are strings). Every value
keeps the line and column it came from so later errors can point at it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, Problem
from .fileio import NotReadable, TooLarge, read_bounded

MAX_FILE_BYTES = 1_000_000
MAX_DEPTH = 50
MAX_NODES = 100_000  # after alias expansion

KeyPath = tuple  # of str | int

_CORE = "tag:yaml.org,2002:"
_ALLOWED_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "seq", "map")}


class _CoreResolver(yaml.resolver.BaseResolver):
    """The YAML 1.2 core schema, instead of PyYAML's YAML 1.1 one."""


_CoreResolver.add_implicit_resolver(
    _CORE + "bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_CoreResolver.add_implicit_resolver(
    _CORE + "int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_CoreResolver.add_implicit_resolver(
    _CORE + "float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_CoreResolver.add_implicit_resolver(
    _CORE + "null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)


class _Loader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    _CoreResolver,
):
    def __init__(self, stream: str):
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _CoreResolver.__init__(self)


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
        size_text = f"{size:,} bytes" if size > MAX_FILE_BYTES else f"over {MAX_FILE_BYTES:,} bytes"  # it may grow as we read
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
                f"{source}:{line}: the file is not UTF-8 text (byte {error.start}). "
                "Save it as UTF-8."
            )
    else:
        text = raw
    if "\x00" in text:
        raise ConfigError(f"{source}: the file contains NUL bytes; it is not a text file.")
    if not _has_content(text):
        raise ConfigError(
            f"{source}: the file is empty. An experiment file needs at least a `layers:` "
            "list and a `compile:` section; see configs/ for examples."
        )
    _check_characters(text, source)
    _check_tabs(text, source)
    _check_depth(text, source)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as error:
        raise ConfigError(_yaml_problem(error, source)) from None
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


class _Dumper(
    yaml.emitter.Emitter,
    yaml.serializer.Serializer,
    yaml.representer.SafeRepresenter,
    yaml.resolver.Resolver,
):
    """PyYAML's safe dumper, quoting every string that YAML 1.1 *or* 1.2 would read as something else."""

    def __init__(self, stream, **options):
        yaml.emitter.Emitter.__init__(
            self, stream, canonical=None, indent=None, width=options.get("width"),
            allow_unicode=options.get("allow_unicode"), line_break=None,
        )
        yaml.serializer.Serializer.__init__(self, encoding=None, explicit_start=None, explicit_end=None, version=None, tags=None)
        yaml.representer.SafeRepresenter.__init__(self, default_style=None, default_flow_style=False, sort_keys=False)
        yaml.resolver.Resolver.__init__(self)

    def ignore_aliases(self, data) -> bool:
        return True  # a file a person reads: every value written out, no `&id001`

    def resolve(self, kind, value, implicit):
        tag = super().resolve(kind, value, implicit)  # YAML 1.1, as other tools read the file
        if kind is yaml.ScalarNode and implicit[0]:
            core = _CORE_RESOLVER.resolve(kind, value, implicit)  # YAML 1.2, as nnflow reads it
            if core != _CORE + "str":
                return core
        return tag


def _represent_str(dumper: _Dumper, data: str) -> yaml.ScalarNode:
    # PyYAML writes NEL and the Unicode line separators raw in a plain or single-quoted
    # scalar, where a reader folds them into a space; double quotes escape them.
    style = '"' if any(c in data for c in "\x85\u2028\u2029") else None
    return dumper.represent_scalar(_CORE + "str", data, style=style)


_Dumper.add_representer(str, _represent_str)
_CORE_RESOLVER = _CoreResolver()


def dump_yaml(data: Any, *, comment: str = "") -> str:
    """YAML text that `parse_yaml` (and any YAML 1.1 reader) reads back as `data`.

    `yaml.safe_dump` writes strings such as `1e3` or `0o17` unquoted, which YAML 1.2 reads
    as numbers. `comment` becomes leading `# ` lines; line breaks inside it cannot end the comment.
    """
    lines = re.split("\r\n|[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]", comment) if comment else []
    header = "".join(f"# {line}\n" for line in lines)
    return header + yaml.dump(data, Dumper=_Dumper, allow_unicode=True, width=100)


def _has_content(text: str) -> bool:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and stripped not in ("---", "..."):
            return True
    return False


def _check_characters(text: str, source: str) -> None:
    """YAML allows only printable characters in a file (escapes in double quotes can name others)."""
    match = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if match is None:
        return
    start = match.start()
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    code = ord(match.group())
    name = unicodedata.name(match.group(), "a control character")
    raise ConfigError(
        Problem(
            f"the character U+{code:04X} ({name}) is not allowed in a YAML file; delete it "
            f"(inside a double-quoted string it can be written as the escape \\u{code:04x}).",
            where=f"{source}:{line}:{column}",
        )
    )


def _check_tabs(text: str, source: str) -> None:
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent and line.strip():
            column = indent.index("\t") + 1
            problems.append(
                Problem(
                    "a tab is used for indentation; YAML indents with spaces only. "
                    "Replace the tab with spaces.",
                    where=f"{source}:{number}:{column}",
                )
            )
    if problems:
        raise ConfigError(problems, source)


def _check_depth(text: str, source: str) -> None:
    """Refuse deep nesting before composing: PyYAML's composer is recursive."""
    loader = _Loader(text)
    depth = 0
    try:
        while True:
            event = loader.get_event() if loader.check_event() else None
            if event is None:
                break
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    raise ConfigError(
                        Problem(
                            f"nesting is deeper than {MAX_DEPTH} levels; an experiment file "
                            "never needs that. Flatten the structure.",
                            where=f"{source}:{mark.line + 1}:{mark.column + 1}",
                        )
                    )
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.MarkedYAMLError as error:
        raise ConfigError(_yaml_problem(error, source)) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from None
    finally:
        loader.dispose()


def _yaml_problem(error: yaml.MarkedYAMLError, source: str) -> Problem:
    mark = error.problem_mark or error.context_mark
    where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
    problem = error.problem or "invalid YAML"
    if "found character '\\t'" in problem:
        problem = "a tab character here is not allowed in YAML; use spaces"
    elif error.context and mark is error.problem_mark:
        problem = f"{problem} ({error.context}"
        if error.context_mark is not None:
            problem += f" at line {error.context_mark.line + 1}"
        problem += ")"
    if problem.startswith("found duplicate anchor"):
        problem = "an anchor name is used twice; give each anchor its own name"
    return Problem(f"YAML syntax error: {problem}", where=where)


_BAD_CHARACTER = re.compile("[\0\ud800-\udfff]")


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_CORE):] if tag.startswith(_CORE) else tag


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
        if node.tag not in _ALLOWED_TAGS:
            raise ConfigError(
                Problem(
                    f"the tag {_short_tag(node.tag)} is not allowed: nnflow files hold plain data only "
                    "(strings, numbers, booleans, null, lists, mappings) and never construct "
                    "Python objects. Remove the tag.",
                    where=self._where(node),
                )
            )
        kind = "map" if isinstance(node, yaml.MappingNode) else "seq" if isinstance(node, yaml.SequenceNode) else "scalar"
        if (node.tag in (_CORE + "map", _CORE + "seq") or kind != "scalar") and node.tag != _CORE + kind:
            what = {"map": "a mapping", "seq": "a list", "scalar": "a single value"}[kind]
            raise ConfigError(
                Problem(f"the tag {_short_tag(node.tag)} does not fit {what}; remove the tag.", where=self._where(node))
            )
        self.document.positions.setdefault(path, self._position(node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self._build(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
        return self._scalar(node)

    def _mapping(self, node: yaml.MappingNode, path: KeyPath, depth: int) -> dict:
        result: dict[str, Any] = {}
        first_seen: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(
                    Problem("a key must be a plain name, not a list or mapping.", where=self._where(key_node))
                )
            if key_node.tag not in _ALLOWED_TAGS:
                raise ConfigError(
                    Problem(f"the tag {_short_tag(key_node.tag)} is not allowed on a key.", where=self._where(key_node))
                )
            key = key_node.value
            self._check_characters(key_node)
            if key == "<<" and key_node.tag == _CORE + "str" and key_node.style is None:
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

    def _check_characters(self, node: yaml.ScalarNode) -> None:
        """Escapes in quoted strings (`"\\0"`, `"\\ud800"`) can make what no file name or text may hold."""
        match = _BAD_CHARACTER.search(node.value)
        if match:
            what = "a NUL character (\\0)" if match.group() == "\0" else f"a lone surrogate (\\u{ord(match.group()):04x}, half of a UTF-16 pair)"
            raise ConfigError(
                Problem(f"{what} is not allowed in a value or a key; remove the escape.", where=self._where(node))
            )

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        tag = node.tag[len(_CORE):]
        value = node.value
        self._check_characters(node)
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
            raise ConfigError(
                Problem(f"{value!r} is not a valid {tag}.", where=self._where(node))
            ) from None
        raise AssertionError(tag)  # _ALLOWED_TAGS guards this
