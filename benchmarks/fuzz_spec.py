"""Property-based fuzzing of the experiment file reader, `--set` and the validator.

Run it from the project root with the project's interpreter (it needs hypothesis,
a test dependency: `pip install -e .[test]`):

    .venv/bin/python benchmarks/fuzz_spec.py                   # 10,000 examples
    .venv/bin/python benchmarks/fuzz_spec.py --examples 500 --seed 1

Every example starts from a shipped experiment (configs/*.yaml, configs/lessons/*.yaml,
examples/, plus two examples of docs/experiment-file.md) and mutates it the ways users and attackers do:

- values changed to other types and extremes: huge integers (past int32, int64, 10**100),
  NaN, infinities, empty and blank strings, Unicode, line separators, path-like strings,
  lists and nested mappings;
- keys deleted, renamed (typos, other keys, Keras names, junk), values wrapped in a list
  or a `{Name: ...}` mapping, unwrapped, grafted from another file; Keras names swapped
  for other Keras names of any kind;
- then, on the YAML text: characters deleted and inserted, lines duplicated (duplicate
  keys), swapped and re-indented, tabs, anchors and aliases (and an alias bomb), tags
  (`!!python/object/apply`, `!!binary`, `!custom`), merge keys, directives, extra
  documents, deep nesting, CRLF, a BOM, invalid UTF-8 and NUL bytes;
- and a list of `--set KEY=VALUE` whose keys are drawn from the document's own key paths
  (list indexes, negative ones, Keras names in between, typos) and whose values are YAML
  snippets, well- and ill-formed.

The property: reading the bytes, applying the overrides and validating gives either a
`Spec` or a `ConfigError`, within a time limit, never any other exception; and a `Spec`'s
resolved file (`spec.to_dict()`, written with `yamlio.dump_yaml` as a run folder keeps
it) reads back and validates to the same resolved file.

It prints how many examples ran, how many gave a Spec, how many a ConfigError and how
many failed (another exception, a hang, or a resolved file that does not read back), with
the first few tracebacks and the input of each. Exit status 1 if any failed.
tests/test_fuzz.py runs the same generator for a few hundred examples.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import signal
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from nnflow import catalog
from nnflow.errors import ConfigError
from nnflow.spec import COMPILE_KEYS, DATA_KEYS, FIT_KEYS, SECTIONS, spec_from_document
from nnflow.yamlio import dump_yaml, parse_yaml

ROOT = Path(__file__).resolve().parent.parent
BASE_DIR = ROOT / "configs"  # where data paths of the seeds resolve; no file is read
TIME_LIMIT = 10.0  # seconds per example: past it, the example counts as a hang

# The format reference's two examples (docs/experiment-file.md), so the fuzzer has seeds even in a bare checkout.
_SPEC_EXAMPLES = [
    """\
layers:
  - Dense: {units: 4, input_dim: 3}
  - Activation: sigmoid
  - Dense: {units: 4}
  - Activation: sigmoid
compile: {optimizer: sgd, loss: mse}
""",
    """\
name: iris-mlp
seed: 42
data: {train: ../data/iris.csv, target: species, validation: 0.2, test: 0.1}
layers:
  - Input: {shape: [4]}
  - Dense: {units: 16, activation: relu, kernel_initializer: {GlorotUniform: {seed: 1}}}
  - Dropout: 0.1
  - Dense: {units: 3, activation: softmax}
compile:
  optimizer: {Adam: {learning_rate: {ExponentialDecay: {initial_learning_rate: 0.01, decay_steps: 10, decay_rate: 0.9}}}}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy, {AUC: {name: auc}}]
fit:
  batch_size: 16
  epochs: 100
  callbacks:
    - EarlyStopping: {monitor: val_loss, patience: 10, restore_best_weights: true}
    - CSVLogger: {filename: logs/train.csv}
    - ModelCheckpoint: {filepath: best.keras, save_best_only: true}
expect: {test_accuracy: ">= 0.9", val_loss: "< 0.5"}
""",
]


def seed_texts() -> list[tuple[str, str]]:
    """(name, text) of every shipped experiment and YAML example."""
    files = sorted(ROOT.glob("configs/*.yaml")) + sorted(ROOT.glob("configs/lessons/*.yaml"))
    files += sorted(p for p in ROOT.glob("examples/**/*") if p.suffix in (".yaml", ".yml"))
    seeds = [(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8")) for p in files]
    return seeds + [(f"SPEC example {i + 1} (docs/experiment-file.md)", text) for i, text in enumerate(_SPEC_EXAMPLES)]


SEEDS = seed_texts()
SEED_DATA = [parse_yaml(text, name).data for name, text in SEEDS]


@cache
def keras_names() -> tuple[str, ...]:
    """Every name of every kind in the catalog, refused ones included."""
    names: set[str] = {"Input"}
    for table in catalog.load_catalog()["kinds"].values():
        names |= set(table["objects"]) | set(table["ids"]) | set(table["refused"])
    return tuple(sorted(names))


@cache
def argument_names() -> tuple[str, ...]:
    names: set[str] = set()
    for table in catalog.load_catalog()["kinds"].values():
        for spec in table["objects"].values():
            names |= {param["name"] for param in spec.get("params", ())}
    return tuple(sorted(names))


KEYS = tuple(SECTIONS + DATA_KEYS + COMPILE_KEYS + FIT_KEYS + ("gradient_norms", "input_dim", "input_shape", "shape"))

# ---------------------------------------------------------------------------
# Values

EXTREME_NUMBERS = [
    0,
    -1,
    1,
    2**31 - 1,
    2**31,
    2**32,
    2**32 - 1,
    2**53 + 1,
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    2**64,
    10**30,
    -(10**30),
    10**100,
    math.nan,
    math.inf,
    -math.inf,
    1e308,
    -1e308,
    5e-324,
    -0.0,
    0.5,
    1.5,
    1e-12,
    0.999999,
]
EXTREME_STRINGS = [
    "",
    " ",
    "\t",
    "é",
    "名前",
    "😀",
    "\u2028",
    "\x85",
    "\u202e",
    "\x1b[31m",
    "\ufeff",
    "a\nb",
    "run\n",
    "x" * 300,
    "1e3",
    "0o17",
    "0x1F",
    ".nan",
    ".inf",
    "-.inf",
    "yes",
    "no",
    "on",
    "null",
    "~",
    "true",
    "-",
    "..",
    ".",
    "../x.csv",
    "../../..",
    "a/..",
    "a/../../b",
    "/tmp/nnflow-fuzz/x.csv",
    "~nosuchuser/x",
    "~/x",
    "a/b",
    "logs/",
    "x.keras",
    "x.weights.h5",
    "x.h5",
    "auto",
    "val_loss",
    "loss",
    "accuracy",
    "val_accuracy",
    "test_accuracy",
    ">= 0.9",
    "< 1e999",
    "== nan",
    ">=",
    "relu",
    "softmax",
    "my exp",
    "normalization",
    "a" * 129,
]
SCALARS = st.one_of(
    st.sampled_from(EXTREME_NUMBERS),
    st.sampled_from(EXTREME_STRINGS),
    st.sampled_from([None, True, False]),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(keras_names()),
)
MAP_KEYS = st.one_of(
    st.sampled_from(KEYS), st.sampled_from(keras_names()), st.sampled_from(argument_names()), st.text(max_size=8)
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(MAP_KEYS, children, max_size=4),
    max_leaves=8,
)

# ---------------------------------------------------------------------------
# Structural mutations of the parsed document


def key_paths(data: Any, path: tuple = ()) -> list[tuple]:
    """Every path into `data`, the root `()` first."""
    paths = [path]
    if isinstance(data, dict):
        for key, value in data.items():
            paths += key_paths(value, path + (key,))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            paths += key_paths(value, path + (index,))
    return paths


def _get(data: Any, path: tuple) -> Any:
    for part in path:
        data = data[part]
    return data


def _set(data: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    _get(data, path[:-1])[path[-1]] = value
    return data


def _typo(draw, word: str) -> str:
    if not word:
        return draw(st.text(max_size=3))
    i = draw(st.integers(0, len(word) - 1))
    kind = draw(st.sampled_from(["drop", "double", "case", "swap", "space"]))
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    if kind == "case":
        return word.swapcase()
    if kind == "space":
        return word[:i] + " " + word[i:]
    return word[:i] + word[i + 1 : i + 2] + word[i : i + 1] + word[i + 2 :]


def _mutate_once(draw, data: Any) -> Any:
    paths = key_paths(data)
    path = draw(st.sampled_from(paths))
    target = _get(data, path)
    op = draw(
        st.sampled_from(
            [
                "replace",
                "replace",
                "extreme",
                "delete",
                "rename",
                "swap_name",
                "wrap_list",
                "unwrap",
                "wrap_object",
                "graft",
                "duplicate",
            ]
        )
    )
    if op == "replace":
        return _set(data, path, draw(VALUES))
    if op == "extreme":
        pool = (
            EXTREME_NUMBERS
            if isinstance(target, (int, float))
            else EXTREME_STRINGS
            if isinstance(target, str)
            else EXTREME_NUMBERS + EXTREME_STRINGS
        )
        return _set(data, path, draw(st.sampled_from(pool)))
    if op == "delete" and path:
        parent = _get(data, path[:-1])
        del parent[path[-1]]
        return data
    if op == "rename" and path and isinstance(path[-1], str):
        parent = _get(data, path[:-1])
        new = draw(st.one_of(st.just(_typo(draw, path[-1])), MAP_KEYS))
        # Keep the order of the keys: a renamed key stays where it was.
        items = [(new if key == path[-1] else key, value) for key, value in parent.items()]
        parent.clear()
        parent.update(items)
        return data
    if op == "swap_name":
        names = keras_names()
        if isinstance(target, str):
            return _set(data, path, draw(st.sampled_from(names)))
        if isinstance(target, dict) and len(target) == 1:
            ((_, args),) = target.items()
            return _set(data, path, {draw(st.sampled_from(names)): args})
        return data
    if op == "wrap_list":
        return _set(data, path, [target])
    if op == "unwrap":
        if isinstance(target, list) and target:
            return _set(data, path, target[0])
        if isinstance(target, dict) and target:
            return _set(data, path, next(iter(target.values())))
        return data
    if op == "wrap_object":
        return _set(data, path, {draw(st.sampled_from(keras_names())): target})
    if op == "graft":
        donor = draw(st.sampled_from(SEED_DATA))
        return _set(data, path, copy.deepcopy(_get(donor, draw(st.sampled_from(key_paths(donor))))))
    if op == "duplicate" and isinstance(target, list) and target:
        target.append(copy.deepcopy(draw(st.sampled_from(target))))
        return data
    return data


def _serialise(draw, data: Any) -> str | None:
    style = draw(st.sampled_from(["nnflow", "block", "flow", "json"]))
    try:
        if style == "nnflow":
            return dump_yaml(data)
        if style == "json":
            return json.dumps(data, ensure_ascii=draw(st.booleans()))
        return yaml.safe_dump(data, default_flow_style=style == "flow", allow_unicode=True, sort_keys=False)
    except (ValueError, TypeError, yaml.YAMLError):
        return None  # a value no serialiser writes (an integer of over 4,300 digits)


# ---------------------------------------------------------------------------
# Text mutations

YAML_ALPHABET = ":-[]{},#&*!|>'\"%@`? \t\n\\" + "aAzZ019._/" + "é😀\u2028"
TAGS = [
    "!!python/object/apply:os.system ['true'] ",
    "!!python/name:os.system ",
    "!!str ",
    "!!int ",
    "!!float ",
    "!!bool ",
    "!!null ",
    "!!binary ",
    "!!set ",
    "!!omap ",
    "!!timestamp ",
    "!custom ",
    "!<tag:yaml.org,2002:str> ",
    "! ",
]
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"


def _lines(text: str) -> list[str]:
    return text.split("\n")


def _mutate_text(draw, text: str) -> str:
    op = draw(
        st.sampled_from(
            [
                "delete",
                "insert",
                "insert",
                "duplicate_line",
                "swap_lines",
                "indent",
                "dedent",
                "tab",
                "anchor",
                "alias",
                "tag",
                "document",
                "merge",
                "directive",
                "block_scalar",
                "comment",
                "crlf",
                "bomb",
                "deep",
                "long_line",
                "quote",
            ]
        )
    )
    lines = _lines(text)
    row = draw(st.integers(0, max(len(lines) - 1, 0)))
    position = draw(st.integers(0, len(text)))
    if op == "delete":
        end = draw(st.integers(position, min(len(text), position + 8)))
        return text[:position] + text[end:]
    if op == "insert":
        return text[:position] + draw(st.text(alphabet=YAML_ALPHABET, min_size=1, max_size=4)) + text[position:]
    if op == "duplicate_line":
        lines.insert(row, lines[row])
    elif op == "swap_lines" and len(lines) > 1:
        other = draw(st.integers(0, len(lines) - 1))
        lines[row], lines[other] = lines[other], lines[row]
    elif op == "indent":
        lines[row] = " " * draw(st.integers(1, 3)) + lines[row]
    elif op == "dedent":
        lines[row] = lines[row][draw(st.integers(1, 3)) :] if lines[row].startswith(" ") else lines[row]
    elif op == "tab":
        column = draw(st.integers(0, len(lines[row])))
        lines[row] = lines[row][:column] + "\t" + lines[row][column:]
    elif op in ("anchor", "alias", "tag"):
        line = lines[row]
        colon = line.find(": ")
        if colon < 0:
            return (
                text[:position]
                + {"anchor": "&a ", "alias": "*a", "tag": draw(st.sampled_from(TAGS))}[op]
                + text[position:]
            )
        insert = {
            "anchor": f"&{draw(st.sampled_from(['a', 'b', 'a1']))} ",
            "alias": "",
            "tag": draw(st.sampled_from(TAGS)),
        }[op]
        if op == "alias":
            lines[row] = line[: colon + 2] + draw(st.sampled_from(["*a", "*b", "*a1", "*nowhere"]))
        else:
            lines[row] = line[: colon + 2] + insert + line[colon + 2 :]
    elif op == "document":
        lines.insert(row, draw(st.sampled_from(["---", "...", "--- !!map", "--- |"])))
    elif op == "merge":
        lines.insert(row, draw(st.sampled_from(["<<: *a", "  <<: {a: 1}", "<<: [*a, *b]"])))
    elif op == "directive":
        lines.insert(
            0,
            draw(st.sampled_from(["%YAML 1.1", "%YAML 1.2", "%YAML 2.0", "%TAG ! tag:example.com,2000:", "%FOO bar"])),
        )
        lines.insert(1, "---")
    elif op == "block_scalar":
        lines.insert(row, draw(st.sampled_from(["description: |", "description: >-", "name: |+", "  text"])))
    elif op == "comment":
        lines[row] = lines[row] + draw(st.sampled_from([" # x", "#x", " #", " # é"]))
    elif op == "crlf":
        return text.replace("\n", "\r\n")
    elif op == "bomb":
        return BOMB + text
    elif op == "deep":
        depth = draw(st.integers(40, 120))
        return text + f"\ndeep: {'[' * depth}{']' * depth}\n"
    elif op == "long_line":
        return text + f"\ndescription: {'x' * draw(st.integers(1000, 20000))}\n"
    elif op == "quote":
        return (
            text[:position]
            + draw(st.sampled_from(["'", '"', '"\\', '"\\x', '"\\0"', '"\\ud800"', '"\\U0010FFFF"']))
            + text[position:]
        )
    return "\n".join(lines)


def _mutate_bytes(draw, raw: bytes) -> bytes:
    op = draw(st.sampled_from(["bom", "latin1", "nul", "utf16", "truncate"]))
    position = draw(st.integers(0, len(raw)))
    if op == "bom":
        return b"\xef\xbb\xbf" + raw
    if op == "latin1":
        return raw[:position] + b"\xe9\xff" + raw[position:]
    if op == "nul":
        return raw[:position] + b"\x00" + raw[position:]
    if op == "utf16":
        return raw.decode("utf-8", "replace").encode("utf-16")
    return raw[:position]


# ---------------------------------------------------------------------------
# Overrides

OVERRIDE_VALUES = [
    "",
    " ",
    "=",
    "[",
    "]",
    "{a: 1",
    "#x",
    "&a x",
    "*a",
    "!!python/object/apply:os.system ['true']",
    "1e999",
    "0x" + "f" * 300,
    "a: b: c",
    "- x",
    "|\n x",
    "'unterminated",
    "null",
    "[]",
    "{}",
    " x ",
    ".nan",
    "-.inf",
    "9223372036854775808",
    "[Dense: 0]",
    "{Adam: {learning_rate: .nan}}",
    "[{CSVLogger: {filename: ../x.csv}}]",
    "[BackupAndRestore]",
    "[TensorBoard]",
    "'run\\n'",
    '"a\\0b"',
    "a\u2028b",
    "é",
]


def _render_key(draw, path: tuple, data: Any) -> str:
    parts: list[str] = []
    node = data
    for part in path:
        if isinstance(part, int) and isinstance(node, list) and draw(st.integers(0, 4)) == 0:
            parts.append(str(part - len(node)))  # the same item, counted from the end
        else:
            parts.append(str(part))
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    if parts and draw(st.integers(0, 5)) == 0:
        parts.insert(draw(st.integers(0, len(parts))), draw(st.sampled_from(keras_names())))
    if parts and draw(st.integers(0, 5)) == 0:
        i = draw(st.integers(0, len(parts) - 1))
        parts[i] = _typo(draw, parts[i])
    return ".".join(parts)


def _override(draw, data: Any) -> str:
    shape = draw(st.sampled_from(["path", "path", "path", "text", "malformed"]))
    if shape == "malformed":
        return draw(
            st.sampled_from(
                [
                    "",
                    "=",
                    "=5",
                    "fit.epochs",
                    "fit..epochs=1",
                    ".fit=1",
                    "fit.=1",
                    "fit.epochs=",
                    "fit.epochs= # x",
                    "a" * 200 + "=1",
                ]
            )
        )
    if shape == "text":
        key = draw(st.text(max_size=10))
    else:
        key = _render_key(draw, draw(st.sampled_from(key_paths(data)[1:] or [("fit", "epochs")])), data)
    kind = draw(st.sampled_from(["json", "raw", "text"]))
    if kind == "json":
        value = json.dumps(draw(VALUES), ensure_ascii=False, default=str)
    elif kind == "raw":
        value = draw(st.sampled_from(OVERRIDE_VALUES))
    else:
        value = draw(st.text(max_size=10))
    return f"{key}={value}"


# ---------------------------------------------------------------------------
# Cases


@dataclass
class Case:
    raw: bytes | str
    overrides: list[str] = field(default_factory=list)
    default_name: str = "fuzz"

    def describe(self) -> str:
        text = self.raw if isinstance(self.raw, str) else repr(self.raw[:2000])
        if len(text) > 2000:
            text = text[:2000] + f"\n... ({len(text):,} characters in all)"
        sets = "".join(f" --set {o!r}" for o in self.overrides)
        return f"default name {self.default_name!r}{sets}\n--- file ---\n{text}\n--- end ---"


@st.composite
def cases(draw, *, structure: bool = True, text: bool = True, overrides: bool = True) -> Case:
    """A mutated shipped experiment, maybe with overrides."""
    index = draw(st.integers(0, len(SEEDS) - 1))
    data = copy.deepcopy(SEED_DATA[index])
    raw: bytes | str = SEEDS[index][1]
    if structure and draw(st.integers(0, 3)) > 0:
        for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3, 4]))):
            data = _mutate_once(draw, data)
        serialised = _serialise(draw, data)
        if serialised is not None:
            raw = serialised
    if text and draw(st.booleans()):
        for _ in range(draw(st.integers(1, 3))):
            raw = _mutate_text(draw, raw)
        if draw(st.integers(0, 15)) == 0:
            raw = _mutate_bytes(draw, raw.encode("utf-8", "surrogatepass"))
    sets = [_override(draw, data) for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 4])))] if overrides else []
    name = draw(st.sampled_from(["fuzz", "fuzz", "fuzz", "my exp", "x" * 200, "é", "run\n", ".hidden", "a.b", "-x"]))
    return Case(raw, sets, name)


# ---------------------------------------------------------------------------
# The property


class Hang(Exception):
    """An example ran past the time limit."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise Hang in the main thread after `seconds` (Unix); a no-op elsewhere."""
    if not hasattr(signal, "setitimer") or seconds <= 0:
        yield
        return

    def expire(signum, frame):
        raise Hang(f"no answer within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class ResolvedFileMismatch(AssertionError):
    """A valid experiment's resolved file does not read back as the same experiment."""


def run_case(case: Case, *, limit: float = TIME_LIMIT) -> str:
    """'spec' or 'config-error'; any other outcome raises (a bug in nnflow)."""
    with time_limit(limit):
        try:
            document = parse_yaml(case.raw, "fuzz.yaml")
            spec = spec_from_document(
                document, overrides=case.overrides, base_dir=BASE_DIR, default_name=case.default_name
            )
        except ConfigError as error:
            assert error.problems and all(isinstance(p.message, str) and p.message for p in error.problems), (
                error.problems
            )
            str(error)  # every message renders
            return "config-error"
        resolved = spec.to_dict()
        text = dump_yaml(resolved, comment="fuzz")
        try:
            again = spec_from_document(
                parse_yaml(text, "experiment.yaml"), base_dir=BASE_DIR, default_name=case.default_name
            )
        except ConfigError as error:
            raise ResolvedFileMismatch(f"the resolved file is refused:\n{error}\n--- resolved ---\n{text}") from None
        if again.to_dict() != resolved:
            raise ResolvedFileMismatch(f"the resolved file reads back differently:\n{again.to_dict()}\n!=\n{resolved}")
        return "spec"


# ---------------------------------------------------------------------------
# The benchmark


@dataclass
class Tally:
    outcomes: Counter = field(default_factory=Counter)
    failures: list[tuple[Case, str]] = field(default_factory=list)


def fuzz(examples: int, seed: int | None) -> tuple[Tally, float]:
    tally = Tally()

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=seed is None,
        phases=[Phase.generate],  # no shrinking: every failure is recorded, none stops the run
        suppress_health_check=list(HealthCheck),
    )
    @given(cases())
    def property_holds(case: Case) -> None:
        try:
            tally.outcomes[run_case(case)] += 1
        except Exception:  # noqa: BLE001 - every other exception is what this script looks for
            tally.outcomes["failed"] += 1
            tally.failures.append((case, traceback.format_exc()))

    if seed is not None:
        property_holds = hypothesis_seed(seed)(property_holds)
    started = time.perf_counter()
    property_holds()
    return tally, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=10_000, help="how many examples to run (default 10,000)")
    parser.add_argument(
        "--seed", type=int, default=None, help="a random seed; default: Hypothesis's fixed, derandomised sequence"
    )
    parser.add_argument("--show", type=int, default=5, help="how many failures to print in full (default 5)")
    options = parser.parse_args(argv)

    tally, seconds = fuzz(options.examples, options.seed)
    ran = sum(tally.outcomes.values())
    print(f"examples run:        {ran:,} in {seconds:.1f} s ({ran / max(seconds, 1e-9):,.0f} per second)")
    print(f"gave a Spec:         {tally.outcomes['spec']:,}")
    print(f"gave a ConfigError:  {tally.outcomes['config-error']:,}")
    print(f"unexpected:          {tally.outcomes['failed']:,}")
    for number, (case, trace) in enumerate(tally.failures[: options.show], start=1):
        print(f"\n=== unexpected {number} of {len(tally.failures)} ===\n{trace}\n{case.describe()}")
    return 1 if tally.failures else 0


if __name__ == "__main__":
    sys.exit(main())
