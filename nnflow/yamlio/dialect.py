"""The YAML dialect nnflow reads and writes: the 1.2 core schema, a loader and a dumper that use it,
and the checks of the raw text that come before parsing (characters, tabs, nesting).

`nnflow.yamlio` is the public face (`parse_yaml`, `load_yaml_file`, `dump_yaml`); this module is its engine room.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import yaml

from ..errors import ConfigError, Problem

MAX_DEPTH = 50


class YamlSyntaxError(ConfigError):
    """The text is not YAML at all (a parser or scanner error), as opposed to YAML that nnflow refuses."""


CORE = "tag:yaml.org,2002:"
ALLOWED_TAGS = {CORE + t for t in ("str", "int", "float", "bool", "null", "seq", "map")}


class CoreResolver(yaml.resolver.BaseResolver):
    """The YAML 1.2 core schema, instead of PyYAML's YAML 1.1 one."""


CoreResolver.add_implicit_resolver(CORE + "bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
CoreResolver.add_implicit_resolver(
    CORE + "int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
CoreResolver.add_implicit_resolver(
    CORE + "float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
CoreResolver.add_implicit_resolver(CORE + "null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])


class Loader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    CoreResolver,
):
    def __init__(self, stream: str):
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        CoreResolver.__init__(self)


class Dumper(
    yaml.emitter.Emitter,
    yaml.serializer.Serializer,
    yaml.representer.SafeRepresenter,
    yaml.resolver.Resolver,
):
    """PyYAML's safe dumper, quoting every string that YAML 1.1 *or* 1.2 would read as something else."""

    def __init__(self, stream, **options):
        yaml.emitter.Emitter.__init__(
            self,
            stream,
            canonical=None,
            indent=None,
            width=options.get("width"),
            allow_unicode=options.get("allow_unicode"),
            line_break=None,
        )
        yaml.serializer.Serializer.__init__(
            self, encoding=None, explicit_start=None, explicit_end=None, version=None, tags=None
        )
        yaml.representer.SafeRepresenter.__init__(self, default_style=None, default_flow_style=False, sort_keys=False)
        yaml.resolver.Resolver.__init__(self)

    def ignore_aliases(self, data) -> bool:
        return True  # a file a person reads: every value written out, no `&id001`

    def resolve(self, kind, value, implicit):
        tag = super().resolve(kind, value, implicit)  # YAML 1.1, as other tools read the file
        if kind is yaml.ScalarNode and implicit[0]:
            core = CORE_RESOLVER.resolve(kind, value, implicit)  # YAML 1.2, as nnflow reads it
            if core != CORE + "str":
                return core
        return tag


def _represent_str(dumper: Dumper, data: str) -> yaml.ScalarNode:
    # PyYAML writes NEL and the Unicode line separators raw in a plain or single-quoted
    # scalar, where a reader folds them into a space; double quotes escape them.
    style = '"' if any(c in data for c in "\x85\u2028\u2029") else None
    return dumper.represent_scalar(CORE + "str", data, style=style)


Dumper.add_representer(str, _represent_str)
CORE_RESOLVER = CoreResolver()


def dump_yaml(data: Any, *, comment: str = "") -> str:
    """YAML text that `parse_yaml` (and any YAML 1.1 reader) reads back as `data`.

    `yaml.safe_dump` writes strings such as `1e3` or `0o17` unquoted, which YAML 1.2 reads
    as numbers. `comment` becomes leading `# ` lines; line breaks inside it cannot end the comment.
    """
    lines = re.split("\r\n|[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]", comment) if comment else []
    header = "".join(f"# {line}\n" for line in lines)
    return header + yaml.dump(data, Dumper=Dumper, allow_unicode=True, width=100)


def has_content(text: str) -> bool:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and stripped not in ("---", "..."):
            return True
    return False


def check_characters(text: str, source: str) -> None:
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


def check_tabs(text: str, source: str) -> None:
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent and line.strip():
            column = indent.index("\t") + 1
            problems.append(
                Problem(
                    "a tab is used for indentation; YAML indents with spaces only. Replace the tab with spaces.",
                    where=f"{source}:{number}:{column}",
                )
            )
    if problems:
        raise ConfigError(problems, source)


def check_depth(text: str, source: str) -> None:
    """Refuse deep nesting before composing: PyYAML's composer is recursive."""
    loader = Loader(text)
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
                            where=f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source,
                        )
                    )
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.MarkedYAMLError as error:
        raise YamlSyntaxError(yaml_problem(error, source)) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from None
    finally:
        loader.dispose()


def yaml_problem(error: yaml.MarkedYAMLError, source: str) -> Problem:
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


BAD_CHARACTER = re.compile("[\0\ud800-\udfff]")
