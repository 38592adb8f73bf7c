"""The experiment file: YAML -> a validated, frozen `Spec`. Never imports TensorFlow.

Validation happens once, here. Every problem in the file is collected, located
(`file:line:col layers[2].Dense.units`) and reported together; everything after
this module works on a spec known to be valid.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from . import catalog
from .catalog import UnknownName, did_you_mean
from .errors import ConfigError, Problem
from .yamlio import Document, KeyPath, load_yaml_file, parse_yaml

REQUIRED = object()
MAX_SEED = 2**32 - 1  # numpy's limit, which keras.utils.set_random_seed inherits
MAX_JOIN_TIMEOUT = 86_400  # fit.join_timeout, seconds
MAX_COUNT = 2**31 - 1  # epochs, batch sizes, units, dimensions: TensorFlow's int32 sizes
MAX_INT64 = 2**63 - 1  # any other integer argument becomes a C long inside TensorFlow
MAX_NAME_LENGTH = 128  # `name` names a folder (file systems allow 255 bytes)

# Callback arguments that name a file or a folder. A relative one lands inside the run
# folder (builder.py joins it there); an absolute one is written where it says.
CALLBACK_PATH_ARGUMENTS = ("filepath", "filename", "log_dir", "backup_dir")


def path_escape(value: str) -> str | None:
    """Why a relative path does not stay strictly inside the run folder, or None if it does.

    Lexical only (symbolic links are the builder's concern, once the run folder exists):
    `..` that climbs above the folder, or a path that names the folder itself (`.`, `a/..`,
    the empty string). Absolute paths give None: they are allowed for callbacks that only write.

    >>> path_escape("logs/train.csv") is None
    True
    >>> path_escape("../x.csv")
    "its '..' goes above the run folder"
    """
    if "\0" in value:
        return "it holds a NUL character, which no file name may contain"
    if value.startswith("/"):
        return None
    from .runfiles import is_nnflow_name

    parts: list[str] = []
    for part in value.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return "its '..' goes above the run folder"
            parts.pop()
        else:
            parts.append(part)
    if not parts:
        return "it names the run folder itself, not a file or folder inside it"
    if is_nnflow_name(parts[0]):
        return f"it names {parts[0]!r}, which nnflow keeps in the run folder itself; give the callback a name of its own"
    return None

# ---------------------------------------------------------------------------
# The frozen spec


@dataclass(frozen=True)
class KerasObject:
    """A Keras object named in the file: `adam`, `{Adam: {learning_rate: 0.01}}`, a layer."""

    kind: str
    name: str  # as written in the file
    target: str  # the Keras class (or function, for string ids) it resolves to
    is_class: bool
    args: Mapping[str, Any]  # keyword arguments; nested Keras objects are KerasObjects
    path: str  # where it sits in the file, for error messages
    output_name: str | None = None  # metrics: the name Keras reports it under
    entry: catalog.Entry | None = field(default=None, compare=False, repr=False)
    bare: bool = False  # written as a bare name (`adam`), not `{Name: args}`

    def accepts(self, argument: str) -> bool:
        """Whether the Keras class itself has this argument."""
        return self.entry is not None and self.entry.param(argument) is not None

    def to_data(self) -> Any:
        """The object as the file would write it, in its explicit `{Name: {args}}` form."""
        if self.bare:
            return self.name
        return {self.name: {key: _to_data(value) for key, value in self.args.items()}}


def _to_data(value: Any) -> Any:
    if isinstance(value, KerasObject):
        return value.to_data()
    if isinstance(value, (list, tuple)):
        return [_to_data(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _to_data(item) for key, item in value.items()}
    return value


@dataclass(frozen=True)
class Gate:
    """An `expect:` line: `test_accuracy: ">= 0.9"`."""

    metric: str
    operator: str
    threshold: float

    def holds(self, value: float) -> bool:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        return _OPERATORS[self.operator](value, self.threshold)

    @property
    def condition(self) -> str:
        return f"{self.operator} {self.threshold:g}"

    def __str__(self) -> str:
        return f"{self.metric} {self.condition}"


_OPERATORS = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
}
GATE_PATTERN = re.compile(r"^\s*(>=|<=|==|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class DataSpec:
    train: Path
    target: str
    features: tuple[str, ...] | None
    drop: tuple[str, ...]
    validation: float | Path
    test: float | Path
    normalize: bool


@dataclass(frozen=True)
class CompileSpec:
    optimizer: KerasObject
    loss: KerasObject
    metrics: tuple[KerasObject, ...]
    steps_per_execution: int | str  # or "auto": nnflow picks it from the data when training
    jit_compile: bool | str
    run_eagerly: bool


@dataclass(frozen=True)
class FitSpec:
    batch_size: int
    epochs: int
    shuffle: bool
    callbacks: tuple[KerasObject, ...]
    gradient_norms: bool = False  # fit.diagnostics.gradient_norms: record them every epoch
    distribute: str = "none"  # none | mirrored | multi_worker (tf.distribute)
    join_timeout: float = 300.0  # multi_worker: seconds to wait for every worker to join


@dataclass(frozen=True)
class Spec:
    """A validated experiment. Build a model from it with `nnflow.build_model(spec)`."""

    name: str
    description: str
    seed: int | None
    data: DataSpec | None
    input_shape: tuple | None  # from `Input` or the first layer's input_dim/input_shape
    layers: tuple[KerasObject, ...]  # without the Input item
    compile: CompileSpec
    fit: FitSpec
    expect: tuple[Gate, ...]
    input_options: Mapping[str, Any] = field(default_factory=dict)  # Input's dtype, batch_size, sparse, name
    source: Path | None = None
    overrides: tuple[str, ...] = ()
    resolved: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    locations: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)  # key path -> file:line:col

    @property
    def metric_names(self) -> list[str]:
        """The names Keras will report: `loss` and each compiled metric."""
        return ["loss"] + [m.output_name for m in self.compile.metrics if m.output_name]

    def to_dict(self) -> dict:
        """The resolved experiment file (defaults and overrides applied), as plain data."""
        return _plain(self.resolved)


def _plain(value):
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


# ---------------------------------------------------------------------------
# Loading


def load_spec(path: str | Path, overrides: Iterable[str] = ()) -> Spec:
    """Read, override and validate an experiment file.

    >>> spec = load_spec("configs/iris.yaml", overrides=["fit.epochs=5"])

    Raises `ConfigError` listing every problem, each with `file:line:col` and key path.
    """
    path = Path(path)
    document = load_yaml_file(path)
    return spec_from_document(document, overrides=overrides, base_dir=path.parent, default_name=path.stem, source=path)


def spec_from_text(text: str, overrides: Iterable[str] = (), *, source: str = "<string>", base_dir: str | Path = ".") -> Spec:
    """Validate YAML text as an experiment (for tests and notebooks)."""
    document = parse_yaml(text, source)
    return spec_from_document(document, overrides=overrides, base_dir=Path(base_dir), default_name="experiment")


def _reading_order(problem: Problem) -> tuple:
    """Problems in the order of the file; those from `--set` last."""
    match = re.search(r":(\d+):(\d+)$", problem.where)
    return (0, int(match.group(1)), int(match.group(2))) if match else (1, 0, 0)


def spec_from_document(
    document: Document,
    *,
    overrides: Iterable[str] = (),
    base_dir: Path,
    default_name: str,
    source: Path | None = None,
) -> Spec:
    from .overrides import apply_overrides

    overrides = tuple(overrides)
    if not isinstance(document.data, dict):
        raise ConfigError(
            Problem(
                f"the file must be a mapping of sections (layers:, compile:, ...); "
                f"received {_describe(document.data)}.",
                where=document.where(()),
            )
        )
    override_problems = apply_overrides(document, overrides)
    validator = _Validator(document, base_dir=base_dir, default_name=default_name)
    spec = validator.run()
    validator.problems += override_problems
    if validator.problems:
        raise ConfigError(sorted(validator.problems, key=_reading_order), document.source)
    locations = {render_path(path): document.where(path) for path in document.positions}
    locations.update({render_path(path): label for path, label in document.overridden.items()})
    return Spec(**{**spec, "source": source, "overrides": overrides, "locations": MappingProxyType(locations)})


# ---------------------------------------------------------------------------
# Validation

SECTIONS = ("name", "description", "seed", "data", "layers", "compile", "fit", "expect")
DATA_KEYS = ("train", "target", "features", "drop", "validation", "test", "normalize")
COMPILE_KEYS = ("optimizer", "loss", "metrics", "steps_per_execution", "jit_compile", "run_eagerly")
FIT_KEYS = ("batch_size", "epochs", "shuffle", "callbacks", "diagnostics", "distribute", "join_timeout")
DISTRIBUTE_MODES = ("none", "mirrored", "multi_worker")
DIAGNOSTICS_KEYS = ("gradient_norms",)

DEFAULTS = {
    "seed": 0,
    "data": {"drop": [], "validation": 0.2, "test": 0, "normalize": True, "features": None},
    "compile": {"optimizer": "rmsprop", "metrics": [], "steps_per_execution": "auto", "jit_compile": "auto", "run_eagerly": False},
    "fit": {"batch_size": 32, "epochs": 1, "shuffle": True, "callbacks": [], "diagnostics": {"gradient_norms": False}, "distribute": "none", "join_timeout": 300},
}

# Argument names whose values are Keras objects themselves.
_NESTED_KINDS = (
    (re.compile(r"activation|recurrent_activation"), "activation"),
    (re.compile(r".*_initializer"), "initializer"),
    (re.compile(r".*_regularizer"), "regularizer"),
    (re.compile(r".*_constraint"), "constraint"),
)
_POSITIVE_INT_ARGS = {"units", "filters", "num_heads", "key_dim", "output_dim"}
_RATE_LAYERS = {"Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "AlphaDropout", "GaussianDropout"}
# Arguments whose meaning is the same in every Keras class that has them.
_SHAPE_ARGS = {"kernel_size", "strides", "pool_size", "target_shape", "dilation_rate", "dims", "size", "output_size"}
_NUMBER_ARGS = {
    "scale", "offset", "stddev", "l1", "l2", "momentum", "epsilon", "negative_slope", "alpha",
    # learning-rate schedules (required arguments, so the catalog has no default to type them by)
    "initial_learning_rate", "decay_steps", "decay_rate", "end_learning_rate", "power", "first_decay_steps",
    "warmup_steps", "warmup_target", "t_mul", "m_mul",
}
_POSITIVE_NUMBER_ARGS = {"decay_steps", "first_decay_steps"}
# Arguments Keras accepts only as a Python float (`isinstance(x, float)`): YAML's `1` is made 1.0.
_FLOAT_ARGS = {("optimizer", "learning_rate"), ("SGD", "momentum"), ("FBetaScore", "beta"), ("FBetaScore", "threshold"), ("F1Score", "threshold")}
_INPUT_ARGS = ("shape", "batch_size", "dtype", "sparse", "name")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # used with fullmatch: `$` would accept a final newline
# Arguments where an infinity means something (no bound, no clipping); elsewhere it is refused.
_INFINITY_ARGS = {"baseline", "initial_value_threshold", "clipnorm", "clipvalue", "global_clipnorm", "max_value", "min_value"}


def render_path(path: KeyPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int) and abs(value) >= 10**30:
        return _number(value)
    if isinstance(value, (int, float)):
        return f"the number {_number(value)}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "a mapping" + (f" with keys {', '.join(map(str, list(value)[:4]))}" if value else " (empty)")
    return type(value).__name__


def _number(value: int | float) -> str:
    """A number as the file would write it; an integer too long to print is described by its size."""
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if abs(value) >= 10**30:
        # str() of an integer over 4,300 digits raises; hexadecimal YAML can make one.
        digits = str(len(str(abs(value)))) if value.bit_length() < 10_000 else f"about {int(value.bit_length() * math.log10(2)):,}"
        return f"{'a negative' if value < 0 else 'an'} integer of {digits} digits"
    return repr(value)


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Validator:
    def __init__(self, document: Document, *, base_dir: Path, default_name: str):
        self.document = document
        self.base_dir = base_dir
        self.default_name = default_name
        self.problems: list[Problem] = []
        self.input_options: Mapping[str, Any] = MappingProxyType({})

    # -- reporting --------------------------------------------------------

    def problem(self, path: KeyPath, message: str, *, key: bool = False, related: Iterable[KeyPath] = ()) -> None:
        """Report a problem at `path`; `related` are the other keys of a conflict between two keys.

        When `path` itself came from the file but a related key was set by `--set`, the
        problem points at that `--set`: it is what changed.
        """
        where = self.document.where(path, key=key)
        if self.document.override_of(path) is None:
            for other in related:
                label = self.document.override_of(other)
                if label is not None:
                    where = label
                    break
        self.problems.append(Problem(message, path=render_path(path), where=where))

    def unknown_keys(self, mapping: dict, allowed: Iterable[str], path: KeyPath, what: str) -> None:
        allowed = list(allowed)
        for key in mapping:
            if key not in allowed:
                hint = did_you_mean(key, allowed)
                self.problem(
                    path + (key,),
                    f"unknown key {key!r} in {what}. {hint or 'Allowed: ' + ', '.join(allowed) + '.'}".rstrip(),
                    key=True,
                )

    def expect_mapping(self, value: Any, path: KeyPath, what: str) -> bool:
        if isinstance(value, dict):
            return True
        self.problem(path, f"{what} must be a mapping of keys; received {_describe(value)}.")
        return False

    # -- scalars ----------------------------------------------------------

    def integer(self, value, path, *, minimum=None, maximum=MAX_COUNT, what="an integer"):
        """An integer in [minimum, maximum]; by default at most MAX_COUNT, what TensorFlow counts in."""
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer() and (maximum is None or abs(value) <= maximum):
                self.problem(path, f"expected {what}; received {value!r} (write it without the decimal point).")
            else:
                self.problem(path, f"expected {what}; received {_describe(value)}.")
            return None
        if minimum is not None and value < minimum:
            self.problem(path, f"expected {what}; received {_number(value)}.")
            return None
        if maximum is not None and value > maximum:
            received = _number(value) if abs(value) >= 10**30 else f"{value:,}"
            self.problem(path, f"expected {what}; received {received}, more than the largest allowed, {maximum:,}.")
            return None
        return value

    def boolean(self, value, path):
        if not isinstance(value, bool):
            hint = " (write true or false)" if isinstance(value, str) and value.lower() in ("yes", "no", "on", "off", "y", "n") else ""
            self.problem(path, f"expected true or false; received {_describe(value)}{hint}.")
            return None
        return value

    def string(self, value, path, what="a string"):
        if not isinstance(value, str) or not value:
            self.problem(path, f"expected {what}; received {_describe(value)}.")
            return None
        return value

    def string_list(self, value, path, what):
        if not isinstance(value, list):
            self.problem(path, f"{what} must be a list of column names; received {_describe(value)}.")
            return None
        names = []
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item:
                self.problem(path + (index,), f"expected a column name; received {_describe(item)}.")
            elif item in names:
                self.problem(path + (index,), f"column {item!r} is listed twice.")
            else:
                names.append(item)
        return tuple(names)

    # -- the whole file ----------------------------------------------------

    def run(self) -> dict:
        data = self.document.data
        self.unknown_keys(data, SECTIONS, (), "the experiment file")
        resolved: dict[str, Any] = {}

        name = data.get("name", self.default_name)
        if "name" not in data:
            self.derived_name(name)
        elif self.string(name, ("name",), "a name") and not _NAME_RE.fullmatch(name):
            self.problem(("name",), f"a name may hold letters, digits, '.', '_' and '-' (it names the run folder); received {name!r}.")
        elif isinstance(name, str) and len(name) > MAX_NAME_LENGTH:
            self.problem(("name",), f"a name is at most {MAX_NAME_LENGTH} characters (it names the run folder); received {len(name):,}.")
        resolved["name"] = name
        description = data.get("description", "")
        if description != "":
            self.string(description, ("description",))
        resolved["description"] = description
        seed = data.get("seed", DEFAULTS["seed"])
        if seed is not None:
            seed = self.integer(seed, ("seed",), minimum=0, maximum=None, what="a non-negative integer, or null to draw one")
            if seed is not None and seed > MAX_SEED:
                self.problem(("seed",), f"expected a seed below 2**32 ({MAX_SEED + 1:,}); received {_number(seed)}.")
                seed = None
        resolved["seed"] = seed

        data_spec = None
        if "data" in data:
            data_spec, resolved["data"] = self.data_section(data["data"], ("data",))

        if "layers" not in data:
            self.problem((), "missing the `layers:` list: the model's layers, in order, e.g. `- Dense: {units: 4}`.")
            layers, input_shape = (), None
        else:
            layers, input_shape, resolved["layers"] = self.layers_section(data["layers"], ("layers",))

        if "compile" not in data:
            self.problem((), "missing the `compile:` section; at least `compile: {loss: mse}`.")
            compile_spec = None
        else:
            compile_spec, resolved["compile"] = self.compile_section(data["compile"], ("compile",))

        fit_spec, resolved["fit"] = self.fit_section(data.get("fit", {}), ("fit",))

        expect = ()
        if "expect" in data:
            expect, resolved["expect"] = self.expect_section(data["expect"], ("expect",), compile_spec, data_spec)
        self.cross_checks(data_spec, fit_spec, compile_spec)

        return {
            "name": name,
            "description": description if isinstance(description, str) else "",
            "seed": seed,
            "data": data_spec,
            "input_shape": input_shape,
            "input_options": self.input_options,
            "layers": layers,
            "compile": compile_spec,
            "fit": fit_spec,
            "expect": expect,
            "resolved": resolved,
        }

    def derived_name(self, name: str) -> None:
        """The default name is the file's stem: say so when the stem cannot name a run."""
        if _NAME_RE.fullmatch(name) and len(name) <= MAX_NAME_LENGTH:
            return
        if _NAME_RE.fullmatch(name):
            why = f"is longer than {MAX_NAME_LENGTH} characters"
        else:
            why = "holds characters other than letters, digits, '.', '_' and '-'"
        suggestion = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")[:MAX_NAME_LENGTH].rstrip("-._") or "experiment"
        if not suggestion[0].isalnum():
            suggestion = "experiment"
        self.problems.append(
            Problem(
                f"the file has no `name:`, so the run is named after the file name, {name!r}, which {why} "
                f"(the name becomes the run folder). Add a line `name: {suggestion}` to the file, or rename the file.",
                path="name",
                where=self.document.source,
            )
        )

    # -- data -------------------------------------------------------------

    def data_section(self, value, path):
        if not self.expect_mapping(value, path, "`data`"):
            return None, value
        self.unknown_keys(value, DATA_KEYS, path, "`data`")
        merged = {**DEFAULTS["data"], **value}
        ok = True
        train = value.get("train", REQUIRED)
        if train is REQUIRED:
            self.problem(path, "missing `train`: the path of the training data (CSV or Parquet), relative to this file.")
            ok = False
        elif self.string(train, path + ("train",), "a file path") is None or self._path(train, path + ("train",)) is None:
            ok = False
        target = value.get("target", REQUIRED)
        if target is REQUIRED:
            self.problem(path, "missing `target`: the name of the column to predict.")
            ok = False
        elif self.string(target, path + ("target",), "a column name") is None:
            ok = False
        features = merged["features"]
        if features is not None:
            features = self.string_list(features, path + ("features",), "`features`")
            if features is not None and not features:
                self.problem(path + ("features",), "`features` is empty; list the input columns, or leave it out to use all other columns.")
            if features and isinstance(target, str) and target in features:
                self.problem(path + ("features",), f"the target {target!r} is also listed as a feature; that would leak the answer.", related=[path + ("target",)])
        drop = self.string_list(merged["drop"], path + ("drop",), "`drop`") or ()
        if isinstance(target, str) and target in drop:
            self.problem(path + ("drop",), f"the target {target!r} cannot be dropped.", related=[path + ("target",)])
        if features and drop:
            for column in set(features) & set(drop):
                self.problem(path + ("drop",), f"column {column!r} is both a feature and dropped; keep it in one list.", related=[path + ("features",)])
        validation = self.split(merged["validation"], path + ("validation",))
        test = self.split(merged["test"], path + ("test",))
        if _is_number(validation) and _is_number(test) and validation + test >= 1:
            self.problem(path + ("validation",), f"validation ({validation}) and test ({test}) together take all of train; leave some rows to train on.", related=[path + ("test",)])
        normalize = self.boolean(merged["normalize"], path + ("normalize",))
        resolved = {**merged}
        if not ok or validation is None or test is None or normalize is None:
            return None, resolved
        return (
            DataSpec(
                train=self._path(train, path + ("train",)),
                target=target,
                features=features,
                drop=drop,
                validation=validation,
                test=test,
                normalize=normalize,
            ),
            resolved,
        )

    def _path(self, text: str, path: KeyPath) -> Path | None:
        try:
            file = Path(text).expanduser()
        except RuntimeError:  # `~user/...` for a user this machine does not have
            self.problem(path, f"cannot expand {text.split('/')[0]!r} in {text!r}: no such user's home folder.")
            return None
        return file if file.is_absolute() else (self.base_dir / file)

    def split(self, value, path):
        if _is_number(value):
            if not 0 <= value < 1:
                self.problem(path, f"expected a fraction of train in [0, 1), or a file path; received {_number(value)}.")
                return None
            return float(value)
        if isinstance(value, str) and value:
            return self._path(value, path)
        self.problem(path, f"expected a fraction of train in [0, 1), or a file path; received {_describe(value)}.")
        return None

    # -- layers -----------------------------------------------------------

    def layers_section(self, value, path):
        if not isinstance(value, list):
            self.problem(path, f"`layers` must be a list, one item per layer (`- Dense: 4`); received {_describe(value)}.")
            return (), None, value
        if not value:
            self.problem(path, "`layers` is empty; a model needs at least one layer.")
            return (), None, value
        layers: list[KerasObject] = []
        input_shape = None
        input_from = None
        input_options: dict[str, Any] = {}
        item_paths: list[KeyPath] = []
        for index, item in enumerate(value):
            item_path = path + (index,)
            layer = self.keras_object("layer", item, item_path)
            if layer is None:
                continue
            if layer.target == "Input":
                if index != 0:
                    self.problem(item_path, "`Input` must be the first item of `layers`.")
                    continue
                shape = layer.args.get("shape")
                input_shape = self.shape(shape, item_path + (layer.name, "shape"))
                input_from = f"{render_path(item_path)}.Input.shape"
                input_options = {k: v for k, v in layer.args.items() if k != "shape"}
                continue
            shape_args = [a for a in ("input_dim", "input_shape") if a in layer.args and not layer.accepts(a)]
            if shape_args:
                first_layer = index == 0 or (index == 1 and input_from is not None)
                if len(shape_args) == 2:
                    self.problem(
                        item_path + (layer.name,), "give either `input_dim` or `input_shape`, not both.",
                        related=[item_path + (layer.name, arg) for arg in shape_args],
                    )
                elif not first_layer:
                    self.problem(item_path + (layer.name, shape_args[0]), f"only the first layer can set `{shape_args[0]}`; it gives the model's input shape.")
                elif input_from is not None:
                    self.problem(
                        item_path + (layer.name, shape_args[0]),
                        f"the input shape is given twice: by {input_from} and by {render_path(item_path)}.{layer.name}.{shape_args[0]}; keep one.",
                        related=[path + (0,)],
                    )
                else:
                    arg = shape_args[0]
                    raw = layer.args[arg]
                    if arg == "input_dim":
                        dim = self.integer(raw, item_path + (layer.name, arg), minimum=1, what="a positive integer")
                        input_shape = (dim,) if dim is not None else None
                    else:
                        input_shape = self.shape(raw, item_path + (layer.name, arg))
                    input_from = f"{render_path(item_path)}.{layer.name}.{arg}"
                args = {k: v for k, v in layer.args.items() if k not in shape_args}
                layer = dataclasses.replace(layer, args=MappingProxyType(args))
            layers.append(layer)
            item_paths.append(item_path)
        self.layer_names(layers, item_paths)
        resolved = []
        if input_shape is not None:
            resolved.append({"Input": {"shape": list(input_shape), **input_options}})
        resolved += [layer.to_data() for layer in layers]
        if not layers and not self.problems:
            self.problem(path, "`layers` holds only an `Input`; add at least one layer after it.")
        self.input_options = MappingProxyType(input_options)
        return tuple(layers), input_shape, resolved

    def layer_names(self, layers: list[KerasObject], item_paths: list[KeyPath]) -> None:
        """Names given to layers must be unique: Keras refuses a model whose layers share one."""
        seen: dict[str, str] = {}
        normalizes = isinstance(self.document.data.get("data"), dict) and self.document.data["data"].get("normalize", True) is not False
        for layer, item_path in zip(layers, item_paths):
            name = layer.args.get("name")
            if not isinstance(name, str):
                continue
            name_path = item_path + (layer.name, "name")
            if name in seen:
                self.problem(name_path, f"two layers are named {name!r} ({seen[name]} and {layer.path}); Keras needs each layer's name to be unique.")
            elif name == "normalization" and "data" in self.document.data and normalizes:
                self.problem(
                    name_path,
                    "the name 'normalization' is taken by the layer nnflow adds to standardise the features "
                    "(data.normalize); give this layer another name.",
                    related=[("data", "normalize")],
                )
            seen.setdefault(name, layer.path)

    def shape(self, value, path):
        if _is_number(value) and isinstance(value, int):
            value = [value]
        if not isinstance(value, list) or not value or not all(
            v is None or (isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_COUNT) for v in value
        ):
            self.problem(path, f"expected a shape: a list of positive integers (null for a variable size), like [8, 8, 1]; received {_describe(value)}.")
            return None
        return tuple(value)

    # -- Keras objects ----------------------------------------------------

    def keras_object(self, kind: str, value: Any, path: KeyPath) -> KerasObject | None:
        """`name`, or `{Name: args}` (layers: also `{Name: scalar}` and `{Name: [positional]}`)."""
        title = catalog.KIND_TITLES[kind]
        if isinstance(value, str):
            name, raw_args, args_given = value, None, False
        elif isinstance(value, dict) and len(value) == 1:
            (name, raw_args), = value.items()
            args_given = True
        elif isinstance(value, dict):
            keys = ", ".join(map(str, value)) or "none"
            example = "`- Dense: {units: 4}`" if kind == "layer" else "`{Adam: {learning_rate: 0.01}}`"
            self.problem(path, f"{_article(title)} {title} is one name, or a mapping of one name to its arguments like {example}; received keys {keys}.")
            return None
        else:
            self.problem(path, f"expected {_article(title)} {title} name or `{{Name: arguments}}`; received {_describe(value)}.")
            return None
        try:
            entry = catalog.lookup(kind, name)
        except UnknownName as error:
            self.problem(path + ((name,) if args_given else ()), str(error), key=args_given)
            return None
        name_path = path + (name,) if args_given else path
        if kind == "callback" and entry.target == "TensorBoard" and not _package_installed("tensorboard"):
            self.problem(
                name_path,
                "the TensorBoard callback needs the `tensorboard` package, which is not installed here; "
                "install it with `pip install tensorboard` (in the environment that runs nnflow), or remove the callback.",
                key=args_given,
            )
            return None
        if not entry.is_class:
            if args_given and raw_args not in (None, {}):
                self.problem(
                    name_path,
                    f"{name!r} is {_article(title)} {title} function and takes no arguments; to pass arguments name its class "
                    f"(see {catalog.KIND_MODULES[kind]}).",
                )
                return None
            return KerasObject(
                kind, name, entry.target, False, MappingProxyType({}), render_path(path),
                output_name=name if kind == "metric" else None, bare=not args_given,
            )
        args = self.arguments(entry, raw_args, name_path)
        if args is None:
            return None
        if kind == "callback" and not self.callback(entry, args, name_path):
            return None
        output_name = None
        if kind == "metric":
            # Keras names a metric given as a string after the string itself.
            output_name = name if not args_given else (args.get("name") or entry.output_name or catalog.snake_case(entry.target))
        return KerasObject(kind, name, entry.target, True, MappingProxyType(args), render_path(path), output_name, entry, bare=not args_given)

    def arguments(self, entry: catalog.Entry, raw: Any, path: KeyPath) -> dict | None:
        kind = entry.kind
        names = entry.param_names
        if kind == "layer" and entry.target != "Input" and entry.param("input_dim") is None:
            names = names + ["input_dim", "input_shape"]
        if raw is None:
            raw = {}
        if entry.target == "Input" and not isinstance(raw, dict):
            raw = {"shape": raw}  # `Input: [8, 8, 1]` and `Input: 4` are the shape
        if isinstance(raw, dict):
            given = dict(raw)
        elif kind != "layer":
            self.problem(path, f"the arguments of {entry.name!r} must be a mapping like `{{{entry.name}: {{argument: value}}}}`; received {_describe(raw)}.")
            return None
        else:
            positional = raw if isinstance(raw, list) else [raw]
            slots = entry.positional_names
            if len(positional) > len(slots):
                self.problem(
                    path,
                    f"{entry.name} takes at most {len(slots)} positional argument(s) ({', '.join(slots) or 'none'}); "
                    f"received {len(positional)}. Name them, e.g. `{entry.name}: {{{slots[0] if slots else 'name'}: ...}}`.",
                )
                return None
            given = dict(zip(slots, positional))
        ok = True
        if entry.target == "Input":
            names = list(_INPUT_ARGS)
        for key in given:
            if key not in names:
                hint = did_you_mean(key, names)
                self.problem(
                    path + (key,),
                    f"{entry.name} has no argument {key!r}. {hint or 'Its arguments: ' + ', '.join(names) + '.'}".rstrip(),
                    key=True,
                )
                ok = False
        typo_targets = {hint for key in given if key not in names for hint in catalog.close_matches(key, names)}
        for param in entry.params:
            if param.get("required") and param["name"] not in given:
                ok = False
                if param["name"] not in typo_targets:  # already reported with "did you mean"
                    self.problem(path, f"{entry.name} needs `{param['name']}`; received {', '.join(given) or 'no arguments'}.")
        if entry.target == "Input" and "shape" not in given:
            self.problem(path, "Input needs `shape`, e.g. `- Input: {shape: [4]}`.")
            ok = False
        args = {}
        for key, value in given.items():
            if key not in names:
                continue
            checked = self.argument(entry, key, value, path + (key,))
            if checked is _INVALID:
                ok = False
            else:
                args[key] = checked
        return args if ok else None

    def argument(self, entry: catalog.Entry, key: str, value: Any, path: KeyPath) -> Any:
        if not self.numbers_usable(key, value, path):
            return _INVALID
        if entry.kind == "callback" and key in CALLBACK_PATH_ARGUMENTS:
            return value if self.callback_path(entry, key, value, path) else _INVALID
        if key == "seed" and value is not None:
            seed = self.integer(value, path, minimum=0, maximum=MAX_SEED, what="a seed: an integer from 0 to 2**32 - 1, or null")
            return _INVALID if seed is None else seed
        if key == "name" and value is not None:
            if entry.kind == "layer" and (not isinstance(value, str) or not value or "/" in value or len(value) > MAX_NAME_LENGTH):
                self.problem(path, f"a layer's name is a non-empty string without '/', at most {MAX_NAME_LENGTH} characters; received {_describe(value)}.")
                return _INVALID
            if not isinstance(value, str) or not value or len(value) > MAX_NAME_LENGTH:
                self.problem(path, f"a name is a non-empty string of at most {MAX_NAME_LENGTH} characters; received {_describe(value)}.")
                return _INVALID
        if entry.kind == "layer" and key in ("layer", "backward_layer") and value is not None:
            nested = self.keras_object("layer", value, path)
            return _INVALID if nested is None else nested
        if entry.kind == "optimizer" and key == "learning_rate" and isinstance(value, (dict, str)):
            nested = self.keras_object("schedule", value, path)
            return _INVALID if nested is None else nested
        if entry.kind in ("layer",):
            for pattern, kind in _NESTED_KINDS:
                if pattern.fullmatch(key) and value is not None:
                    if kind == "activation":
                        if not isinstance(value, str):
                            self.problem(path, f"expected an activation name such as 'relu' or 'sigmoid'; received {_describe(value)}.")
                            return _INVALID
                        try:
                            catalog.lookup("activation", value)
                        except UnknownName as error:
                            self.problem(path, str(error))
                            return _INVALID
                        return value
                    nested = self.keras_object(kind, value, path)
                    return _INVALID if nested is None else nested
            if key in _POSITIVE_INT_ARGS and self.integer(value, path, minimum=1, what="a positive integer") is None:
                return _INVALID
            if key == "rate" and entry.target in _RATE_LAYERS:
                if not _is_number(value) or not 0 <= value < 1:
                    self.problem(path, f"expected a rate in [0, 1) (the fraction of inputs to drop); received {_describe(value)}.")
                    return _INVALID
        if isinstance(value, dict):
            self.problem(path, f"{entry.name}.{key} takes a plain value, not a mapping; received {_describe(value)}.")
            return _INVALID
        if key in _SHAPE_ARGS and value is not None and not _is_shape_like(value):
            self.problem(path, f"expected a positive integer or a list of them, like 3 or [3, 3]; received {_describe(value)}.")
            return _INVALID
        if key in _NUMBER_ARGS and value is not None and not _is_number(value):
            self.problem(path, f"expected a number; received {_describe(value)}.")
            return _INVALID
        if entry.kind == "optimizer" and key == "learning_rate" and not (_is_number(value) and value > 0):
            if _is_number(value):
                self.problem(path, f"expected a positive learning rate; received {_number(value)}.")
            else:
                self.problem(path, f"expected a positive learning rate, or a schedule like `{{ExponentialDecay: {{...}}}}`; received {_describe(value)}.")
            return _INVALID
        if key in _POSITIVE_NUMBER_ARGS and _is_number(value) and value <= 0:
            self.problem(path, f"expected a positive number; received {_number(value)}.")
            return _INVALID
        if entry.kind == "regularizer" and key in ("l1", "l2") and _is_number(value) and value < 0:
            self.problem(path, f"expected a non-negative regularization factor; received {_number(value)}.")
            return _INVALID
        if entry.target == "SGD" and key == "momentum" and _is_number(value) and not 0 <= value <= 1:
            self.problem(path, f"expected a momentum between 0 and 1; received {_number(value)}.")
            return _INVALID
        if ((entry.kind, key) in _FLOAT_ARGS or (entry.target, key) in _FLOAT_ARGS) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if entry.target == "ReduceLROnPlateau" and key == "factor" and not (_is_number(value) and 0 < value < 1):
            self.problem(path, f"expected a factor between 0 and 1 (the learning rate is multiplied by it); received {_describe(value)}.")
            return _INVALID
        param = entry.param(key)
        if param is not None and param.get("required") and isinstance(value, bool):
            self.problem(path, f"{entry.name}.{key} needs a value, not {str(value).lower()}; received {_describe(value)}.")
            return _INVALID
        if param is not None and value is not None and "default" in param:
            default = param["default"]
            expected = None
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    expected = "true or false"
            elif _is_number(default):
                # Numeric arguments often take lists too (`axis: [1, 2]`, `profile_batch: [2, 5]`).
                if isinstance(value, (str, bool)):
                    expected = "a number" + (" or a list of numbers" if not isinstance(value, bool) else "")
            if expected:
                self.problem(path, f"expected {expected}; received {_describe(value)}.")
                return _INVALID
        return value

    def numbers_usable(self, key: str, value: Any, path: KeyPath) -> bool:
        """No NaN, no infinity (but where it means "no bound") and no integer past int64, in plain values.

        Keras takes these without a word and TensorFlow fails on them once training starts.
        Nested Keras objects (mappings) are checked as their own arguments.
        """
        if isinstance(value, list):
            return all([self.numbers_usable(key, item, path + (index,)) for index, item in enumerate(value)])
        if isinstance(value, float) and math.isnan(value):
            self.problem(path, f"NaN (.nan) is not a value Keras can use for `{key}`; write a number.")
            return False
        if isinstance(value, float) and math.isinf(value) and key not in _INFINITY_ARGS:
            self.problem(path, f"expected a finite number for `{key}`; received {_number(value)}.")
            return False
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT64:
            self.problem(path, f"expected an integer that fits in 64 bits (at most {MAX_INT64:,} either side of 0); received {_number(value) if abs(value) >= 10**30 else f'{value:,}'}.")
            return False
        return True

    def callback_path(self, entry: catalog.Entry, key: str, value: Any, path: KeyPath) -> bool:
        """A callback's file or folder argument: relative paths land inside the run folder, and stay there."""
        if not isinstance(value, str):
            self.problem(path, f"{entry.name}.{key} is a path: expected a string like 'logs/train.csv'; received {_describe(value)}.")
            return False
        reason = path_escape(value)
        if reason is not None:
            self.problem(
                path,
                f"{value!r}: {reason}. A relative path lands inside the run folder (write a path below it, like "
                f"{_EXAMPLE_PATHS.get(key, 'logs/file')!r}); to write elsewhere, give an absolute path.",
            )
            return False
        return True

    def callback(self, entry: catalog.Entry, args: dict, path: KeyPath) -> bool:
        """What Keras would refuse only once training starts, checked on the callback's whole arguments."""
        ok = True
        if entry.target == "ModelCheckpoint" and isinstance(args.get("filepath"), str):
            weights_only = args.get("save_weights_only") is True
            endings = (".weights.h5",) if weights_only else (".keras", ".h5")
            filepath = args["filepath"]
            if not filepath.endswith(endings):
                self.problem(
                    path + ("filepath",),
                    f"ModelCheckpoint's filepath must end in {' or '.join(endings)}"
                    + (" when save_weights_only is true" if weights_only else " (the Keras model format)")
                    + f"; received {filepath!r}.",
                )
                ok = False
        return ok

    # -- compile ------------------------------------------------------------

    def compile_section(self, value, path):
        if not self.expect_mapping(value, path, "`compile`"):
            return None, value
        self.unknown_keys(value, COMPILE_KEYS, path, "`compile`")
        merged = {**DEFAULTS["compile"], **value}
        optimizer = self.keras_object("optimizer", merged["optimizer"], path + ("optimizer",))
        loss = None
        if "loss" not in value:
            self.problem(path, "missing `loss`, e.g. `loss: mse` for regression or `loss: sparse_categorical_crossentropy` for classes.")
        else:
            loss = self.keras_object("loss", value["loss"], path + ("loss",))
        metrics = []
        raw_metrics = merged["metrics"]
        if isinstance(raw_metrics, (str, dict)):
            raw_metrics = [raw_metrics]
        if not isinstance(raw_metrics, list):
            self.problem(path + ("metrics",), f"expected a list of metrics like [accuracy]; received {_describe(raw_metrics)}.")
            raw_metrics = []
        seen: dict[str, int] = {}
        for index, item in enumerate(raw_metrics):
            metric = self.keras_object("metric", item, path + ("metrics", index))
            if metric is None:
                continue
            if metric.output_name in seen:
                self.problem(path + ("metrics", index), f"two metrics report as {metric.output_name!r}; give one a different `name`.")
            seen[metric.output_name] = index
            metrics.append(metric)
        if "loss" in seen:
            self.problem(path + ("metrics", seen["loss"]), "a metric cannot be named 'loss'; Keras reports the loss under that name.")
        steps = merged["steps_per_execution"]
        if steps != "auto":
            steps = self.integer(steps, path + ("steps_per_execution",), minimum=1, what="a positive integer or 'auto'")
        jit = merged["jit_compile"]
        if jit != "auto" and not isinstance(jit, bool):
            self.problem(path + ("jit_compile",), f"expected true, false or 'auto'; received {_describe(jit)}.")
        eager = self.boolean(merged["run_eagerly"], path + ("run_eagerly",))
        resolved = {
            **merged,
            "optimizer": optimizer.to_data() if optimizer else merged["optimizer"],
            "loss": loss.to_data() if loss else value.get("loss"),
            "metrics": [m.to_data() for m in metrics],
        }
        if optimizer is None or loss is None or len(metrics) != len(raw_metrics) or steps is None or eager is None:
            return None, resolved
        return CompileSpec(optimizer, loss, tuple(metrics), steps, jit, eager), resolved

    # -- fit ----------------------------------------------------------------

    def fit_section(self, value, path):
        if not self.expect_mapping(value, path, "`fit`"):
            return None, value
        self.unknown_keys(value, FIT_KEYS, path, "`fit`")
        merged = {**DEFAULTS["fit"], **value}
        batch_size = self.integer(merged["batch_size"], path + ("batch_size",), minimum=1, what="a positive integer")
        epochs = self.integer(merged["epochs"], path + ("epochs",), minimum=1, what="a positive integer")
        shuffle = self.boolean(merged["shuffle"], path + ("shuffle",))
        callbacks = []
        raw = merged["callbacks"]
        if not isinstance(raw, list):
            self.problem(path + ("callbacks",), f"expected a list of callbacks; received {_describe(raw)}.")
            raw = []
        for index, item in enumerate(raw):
            callback = self.keras_object("callback", item, path + ("callbacks", index))
            if callback is not None:
                callbacks.append(callback)
        diagnostics = merged["diagnostics"]
        gradient_norms = False
        if self.expect_mapping(diagnostics, path + ("diagnostics",), "`fit.diagnostics`"):
            self.unknown_keys(diagnostics, DIAGNOSTICS_KEYS, path + ("diagnostics",), "`fit.diagnostics`")
            diagnostics = {**DEFAULTS["fit"]["diagnostics"], **diagnostics}
            gradient_norms = self.boolean(diagnostics["gradient_norms"], path + ("diagnostics", "gradient_norms"))
        distribute = merged["distribute"]
        if distribute not in DISTRIBUTE_MODES:
            hint = did_you_mean(distribute, list(DISTRIBUTE_MODES)) if isinstance(distribute, str) else None
            self.problem(path + ("distribute",), f"expected one of {', '.join(DISTRIBUTE_MODES)}; received {_describe(distribute)}. {hint or ''}".rstrip())
            distribute = None
        join_timeout = merged["join_timeout"]
        if not _is_number(join_timeout) or not 0 < join_timeout <= MAX_JOIN_TIMEOUT:
            self.problem(path + ("join_timeout",), f"expected a number of seconds above 0 and at most {MAX_JOIN_TIMEOUT:,} (a day); received {_describe(join_timeout)}.")
            join_timeout = None
        resolved = {**merged, "diagnostics": diagnostics, "callbacks": [c.to_data() for c in callbacks] if len(callbacks) == len(raw) else raw}
        if None in (batch_size, epochs, shuffle, gradient_norms, distribute, join_timeout) or len(callbacks) != len(raw):
            return None, resolved
        return FitSpec(batch_size, epochs, shuffle, tuple(callbacks), gradient_norms, distribute, float(join_timeout)), resolved

    # -- expect -------------------------------------------------------------

    def expect_section(self, value, path, compile_spec, data_spec):
        if not self.expect_mapping(value, path, "`expect`"):
            return (), value
        gates = []
        known = None
        if compile_spec is not None:
            known = ["loss"] + [m.output_name for m in compile_spec.metrics]
        for metric, condition in value.items():
            gate_path = path + (metric,)
            base, prefix = metric, ""
            for candidate in ("val_", "test_"):
                if metric.startswith(candidate):
                    prefix, base = candidate, metric[len(candidate):]
            if known is not None and base not in known:
                names = [p + k for p in ("", "val_", "test_") for k in known]
                hint = did_you_mean(metric, names)
                self.problem(
                    gate_path,
                    f"{metric!r} is not a metric this run reports. {hint or 'It reports: ' + ', '.join(names) + '.'}"
                    + ("" if hint or base in known else " Add the metric to `compile.metrics` to gate on it."),
                    key=True,
                )
            elif data_spec is not None and prefix == "val_" and data_spec.validation == 0:
                self.problem(gate_path, f"{metric!r} needs a validation split, but `data.validation` is 0.", key=True, related=[("data", "validation")])
            elif data_spec is not None and prefix == "test_" and data_spec.test == 0:
                self.problem(gate_path, f"{metric!r} needs a test split; set `data.test` to a fraction (0.2) or a file.", key=True, related=[("data", "test")])
            gate = self.gate(metric, condition, gate_path)
            if gate is not None:
                gates.append(gate)
        return tuple(gates), {g.metric: g.condition for g in gates}

    def gate(self, metric, condition, path):
        if _is_number(condition) or isinstance(condition, bool):
            self.problem(path, f"a gate is a comparison written as a string, like \">= {condition if isinstance(condition, bool) else _number(condition)}\"; received {_describe(condition)}.")
            return None
        if not isinstance(condition, str) or not (match := GATE_PATTERN.match(condition)):
            self.problem(path, f"a gate is a comparison like \">= 0.9\" or \"< 0.5\" (operators >=, <=, >, <, ==); received {_describe(condition)}.")
            return None
        threshold = float(match.group(2))
        if not math.isfinite(threshold):
            self.problem(path, f"the threshold {match.group(2)[:40]!r} is too large to be a number; write a finite one.")
            return None
        return Gate(metric, match.group(1), threshold)

    # -- across sections ----------------------------------------------------

    def cross_checks(self, data_spec, fit_spec, compile_spec):
        if fit_spec is None:
            return
        no_validation = data_spec is not None and data_spec.validation == 0
        for index, callback in enumerate(fit_spec.callbacks):
            monitor = callback.args.get("monitor")
            if monitor is None:
                param = callback.entry.param("monitor") if callback.entry else None
                monitor = param.get("default") if param else None
            if not isinstance(monitor, str):
                continue
            path = ("fit", "callbacks", index, callback.name, "monitor")
            if monitor.startswith("val_") and no_validation:
                self.problem(path, f"{callback.name} monitors {monitor!r}, but `data.validation` is 0; set a validation split or monitor {monitor[4:]!r}.", related=[("data", "validation")])
            elif compile_spec is not None:
                base = monitor[4:] if monitor.startswith("val_") else monitor
                known = ["loss"] + [m.output_name for m in compile_spec.metrics]
                if base not in known:
                    names = [p + k for p in ("", "val_") for k in known]
                    hint = did_you_mean(monitor, names)
                    self.problem(path, f"{callback.name} monitors {monitor!r}, which this run does not report. {hint or 'It reports: ' + ', '.join(names) + '.'}")


_INVALID = object()
_EXAMPLE_PATHS = {"filepath": "checkpoints/best.keras", "filename": "logs/train.csv", "log_dir": "tensorboard", "backup_dir": "backup"}


def _package_installed(name: str) -> bool:
    """Whether a top-level package can be imported, without importing it."""
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _is_shape_like(value: Any) -> bool:
    def dimension(item):
        return item is None or (isinstance(item, int) and not isinstance(item, bool) and 0 < item <= MAX_COUNT)

    if isinstance(value, list):
        return bool(value) and all(dimension(item) for item in value)
    return dimension(value) and value is not None
