"""Keras objects named in the file (`adam`, `{Dense: {units: 4}}`), checked against the shipped catalog.

Names resolve through `catalog.lookup` ("did you mean ...?"); arguments are checked against
the Keras signature and against what Keras would refuse only once training starts.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any

from .. import catalog
from ..catalog import UnknownName, did_you_mean
from ..yamlio import KeyPath, render_path
from .callback_checks import CALLBACK_PATH_ARGUMENTS, callback_arguments, callback_available, callback_path
from .experiment import KerasObject
from .fields import INVALID
from .problems import (
    MAX_NAME_LENGTH,
    MAX_SEED,
    ProblemCollector,
    article,
    describe,
    integer,
    is_int_or_float,
    is_shape_like,
    number,
    numbers_usable,
)

INPUT_ARGUMENTS = ("shape", "batch_size", "dtype", "sparse", "name")

# Argument names whose values are Keras objects themselves.
NESTED_KINDS = (
    (re.compile(r"activation|recurrent_activation"), "activation"),
    (re.compile(r".*_initializer"), "initializer"),
    (re.compile(r".*_regularizer"), "regularizer"),
    (re.compile(r".*_constraint"), "constraint"),
)
POSITIVE_INT_ARGUMENTS = {"units", "filters", "num_heads", "key_dim", "output_dim"}
RATE_LAYERS = {
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "AlphaDropout",
    "GaussianDropout",
}
# Arguments whose meaning is the same in every Keras class that has them.
SHAPE_ARGUMENTS = {
    "kernel_size",
    "strides",
    "pool_size",
    "target_shape",
    "dilation_rate",
    "dims",
    "size",
    "output_size",
}
NUMBER_ARGUMENTS = {
    "scale", "offset", "stddev", "l1", "l2", "momentum", "epsilon", "negative_slope", "alpha",
    # learning-rate schedules (required arguments, so the catalog has no default to type them by)
    "initial_learning_rate", "decay_steps", "decay_rate", "end_learning_rate", "power", "first_decay_steps",
    "warmup_steps", "warmup_target", "t_mul", "m_mul",
}  # fmt: skip
POSITIVE_NUMBER_ARGUMENTS = {"decay_steps", "first_decay_steps"}
# Arguments Keras accepts only as a Python float (`isinstance(x, float)`): YAML's `1` is made 1.0.
_FLOAT_ARGS = {
    ("optimizer", "learning_rate"),
    ("SGD", "momentum"),
    ("FBetaScore", "beta"),
    ("FBetaScore", "threshold"),
    ("F1Score", "threshold"),
}
_UNDECIDED = object()  # an argument check that leaves the value to the next one


def keras_object(found: ProblemCollector, kind: str, value: Any, path: KeyPath) -> KerasObject | None:
    """`name`, or `{Name: args}` (layers: also `{Name: scalar}` and `{Name: [positional]}`)."""
    title = catalog.KIND_TITLES[kind]
    if isinstance(value, str):
        name, raw_args, args_given = value, None, False
    elif isinstance(value, dict) and len(value) == 1:
        ((name, raw_args),) = value.items()
        args_given = True
    elif isinstance(value, dict):
        keys = ", ".join(map(str, value)) or "none"
        example = "`- Dense: {units: 4}`" if kind == "layer" else "`{Adam: {learning_rate: 0.01}}`"
        found.report(
            path,
            f"{article(title)} {title} is one name, or a mapping of one name to its arguments like {example}; received keys {keys}.",
        )
        return None
    else:
        found.report(
            path, f"expected {article(title)} {title} name or `{{Name: arguments}}`; received {describe(value)}."
        )
        return None
    try:
        entry = catalog.lookup(kind, name)
    except UnknownName as error:
        found.report(path + ((name,) if args_given else ()), str(error), key=args_given)
        return None
    name_path = path + (name,) if args_given else path
    if not callback_available(found, entry, name_path, args_given):
        return None
    if not entry.is_class:
        return _function_object(found, entry, name, raw_args, args_given, path, name_path)
    args = arguments(found, entry, raw_args, name_path)
    if args is None:
        return None
    if kind == "callback" and not callback_arguments(found, entry, args, name_path):
        return None
    output_name = None
    if kind == "metric":
        # Keras names a metric given as a string after the string itself.
        output_name = (
            name if not args_given else (args.get("name") or entry.output_name or catalog.snake_case(entry.target))
        )
    return KerasObject(
        kind,
        name,
        entry.target,
        True,
        MappingProxyType(args),
        render_path(path),
        output_name,
        entry,
        bare=not args_given,
    )


def _function_object(found, entry, name, raw_args, args_given, path, name_path) -> KerasObject | None:
    """A string id that names a function (`mse`, `relu`): it takes no arguments."""
    kind = entry.kind
    title = catalog.KIND_TITLES[kind]
    if args_given and raw_args not in (None, {}):
        found.report(
            name_path,
            f"{name!r} is {article(title)} {title} function and takes no arguments; to pass arguments name its class "
            f"(see {catalog.KIND_MODULES[kind]}).",
        )
        return None
    return KerasObject(
        kind, name, entry.target, False, MappingProxyType({}), render_path(path),
        output_name=name if kind == "metric" else None, bare=not args_given,
    )  # fmt: skip


def arguments(found: ProblemCollector, entry: catalog.Entry, raw: Any, path: KeyPath) -> dict | None:
    """The object's arguments as a mapping, each checked; None after a problem."""
    names = _argument_names(entry)
    given = _given_arguments(found, entry, raw, path)
    if given is None:
        return None
    ok = True
    for key in given:
        if key not in names:
            hint = did_you_mean(key, names)
            found.report(
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
                found.report(
                    path, f"{entry.name} needs `{param['name']}`; received {', '.join(given) or 'no arguments'}."
                )
    if entry.target == "Input" and "shape" not in given:
        found.report(path, "Input needs `shape`, e.g. `- Input: {shape: [4]}`.")
        ok = False
    args = {}
    for key, value in given.items():
        if key not in names:
            continue
        checked = argument(found, entry, key, value, path + (key,))
        if checked is INVALID:
            ok = False
        else:
            args[key] = checked
    return args if ok else None


def _argument_names(entry: catalog.Entry) -> list[str]:
    if entry.target == "Input":
        return list(INPUT_ARGUMENTS)
    names = entry.param_names
    if entry.kind == "layer" and entry.param("input_dim") is None:
        names = names + ["input_dim", "input_shape"]
    return names


def _given_arguments(found: ProblemCollector, entry: catalog.Entry, raw: Any, path: KeyPath) -> dict | None:
    """`{argument: value}`, or a layer's positional arguments (`Dense: 4`, `Conv2D: [8, 3]`) named."""
    if raw is None:
        raw = {}
    if entry.target == "Input" and not isinstance(raw, dict):
        raw = {"shape": raw}  # `Input: [8, 8, 1]` and `Input: 4` are the shape
    if isinstance(raw, dict):
        return dict(raw)
    if entry.kind != "layer":
        found.report(
            path,
            f"the arguments of {entry.name!r} must be a mapping like `{{{entry.name}: {{argument: value}}}}`; received {describe(raw)}.",
        )
        return None
    positional = raw if isinstance(raw, list) else [raw]
    slots = entry.positional_names
    if len(positional) > len(slots):
        found.report(
            path,
            f"{entry.name} takes at most {len(slots)} positional argument(s) ({', '.join(slots) or 'none'}); "
            f"received {len(positional)}. Name them, e.g. `{entry.name}: {{{slots[0] if slots else 'name'}: ...}}`.",
        )
        return None
    return dict(zip(slots, positional))


def argument(found: ProblemCollector, entry: catalog.Entry, key: str, value: Any, path: KeyPath) -> Any:
    """One argument: its checked value (nested Keras objects resolved), or INVALID."""
    for check in (_special_argument, _nested_argument, _plain_argument):
        checked = check(found, entry, key, value, path)
        if checked is not _UNDECIDED:
            return checked
    return _as_keras_expects(found, entry, key, value, path)


def _special_argument(found, entry, key, value, path) -> Any:
    """Numbers Keras cannot use, callback paths, seeds and names."""
    if not numbers_usable(found, key, value, path):
        return INVALID
    if entry.kind == "callback" and key in CALLBACK_PATH_ARGUMENTS:
        return value if callback_path(found, entry, key, value, path) else INVALID
    if key == "seed" and value is not None:
        seed = integer(
            found, value, path, minimum=0, maximum=MAX_SEED, what="a seed: an integer from 0 to 2**32 - 1, or null"
        )
        return INVALID if seed is None else seed
    if key == "name" and value is not None:
        if entry.kind == "layer" and (
            not isinstance(value, str) or not value or "/" in value or len(value) > MAX_NAME_LENGTH
        ):
            found.report(
                path,
                f"a layer's name is a non-empty string without '/', at most {MAX_NAME_LENGTH} characters; received {describe(value)}.",
            )
            return INVALID
        if not isinstance(value, str) or not value or len(value) > MAX_NAME_LENGTH:
            found.report(
                path,
                f"a name is a non-empty string of at most {MAX_NAME_LENGTH} characters; received {describe(value)}.",
            )
            return INVALID
    return _UNDECIDED


def _nested_argument(found, entry, key, value, path) -> Any:
    """Arguments that are Keras objects (a wrapped layer, a schedule, an initializer), and layer sizes."""
    if entry.kind == "layer" and key in ("layer", "backward_layer") and value is not None:
        return _or_invalid(keras_object(found, "layer", value, path))
    if entry.kind == "optimizer" and key == "learning_rate" and isinstance(value, (dict, str)):
        return _or_invalid(keras_object(found, "schedule", value, path))
    if entry.kind != "layer":
        return _UNDECIDED
    for pattern, kind in NESTED_KINDS:
        if pattern.fullmatch(key) and value is not None:
            if kind == "activation":
                return _activation(found, value, path)
            return _or_invalid(keras_object(found, kind, value, path))
    if key in POSITIVE_INT_ARGUMENTS and integer(found, value, path, minimum=1, what="a positive integer") is None:
        return INVALID
    if key == "rate" and entry.target in RATE_LAYERS and (not is_int_or_float(value) or not 0 <= value < 1):
        found.report(path, f"expected a rate in [0, 1) (the fraction of inputs to drop); received {describe(value)}.")
        return INVALID
    return _UNDECIDED


def _or_invalid(nested: KerasObject | None) -> Any:
    return INVALID if nested is None else nested


def _activation(found: ProblemCollector, value: Any, path: KeyPath) -> Any:
    if not isinstance(value, str):
        found.report(path, f"expected an activation name such as 'relu' or 'sigmoid'; received {describe(value)}.")
        return INVALID
    try:
        catalog.lookup("activation", value)
    except UnknownName as error:
        found.report(path, str(error))
        return INVALID
    return value


def _plain_argument(found, entry, key, value, path) -> Any:
    """Plain values whose meaning nnflow knows: shapes, numbers, rates, factors."""
    if isinstance(value, dict):
        found.report(path, f"{entry.name}.{key} takes a plain value, not a mapping; received {describe(value)}.")
        return INVALID
    if key in SHAPE_ARGUMENTS and value is not None and not is_shape_like(value):
        found.report(
            path, f"expected a positive integer or a list of them, like 3 or [3, 3]; received {describe(value)}."
        )
        return INVALID
    if key in NUMBER_ARGUMENTS and value is not None and not is_int_or_float(value):
        found.report(path, f"expected a number; received {describe(value)}.")
        return INVALID
    if entry.kind == "optimizer" and key == "learning_rate" and not (is_int_or_float(value) and value > 0):
        if is_int_or_float(value):
            found.report(path, f"expected a positive learning rate; received {number(value)}.")
        else:
            found.report(
                path,
                f"expected a positive learning rate, or a schedule like `{{ExponentialDecay: {{...}}}}`; received {describe(value)}.",
            )
        return INVALID
    if key in POSITIVE_NUMBER_ARGUMENTS and is_int_or_float(value) and value <= 0:
        found.report(path, f"expected a positive number; received {number(value)}.")
        return INVALID
    if entry.kind == "regularizer" and key in ("l1", "l2") and is_int_or_float(value) and value < 0:
        found.report(path, f"expected a non-negative regularization factor; received {number(value)}.")
        return INVALID
    if entry.target == "SGD" and key == "momentum" and is_int_or_float(value) and not 0 <= value <= 1:
        found.report(path, f"expected a momentum between 0 and 1; received {number(value)}.")
        return INVALID
    return _UNDECIDED


def _as_keras_expects(found, entry, key, value, path) -> Any:
    """The value in the type Keras takes (1 -> 1.0 where it wants a float), judged by the catalog's default."""
    if (
        ((entry.kind, key) in _FLOAT_ARGS or (entry.target, key) in _FLOAT_ARGS)
        and isinstance(value, int)
        and not isinstance(value, bool)
    ):
        value = float(value)
    if entry.target == "ReduceLROnPlateau" and key == "factor" and not (is_int_or_float(value) and 0 < value < 1):
        found.report(
            path,
            f"expected a factor between 0 and 1 (the learning rate is multiplied by it); received {describe(value)}.",
        )
        return INVALID
    param = entry.param(key)
    if param is not None and param.get("required") and isinstance(value, bool):
        found.report(path, f"{entry.name}.{key} needs a value, not {str(value).lower()}; received {describe(value)}.")
        return INVALID
    if param is not None and value is not None and "default" in param:
        default = param["default"]
        expected = None
        if isinstance(default, bool):
            if not isinstance(value, bool):
                expected = "true or false"
        elif is_int_or_float(default):
            # Numeric arguments often take lists too (`axis: [1, 2]`, `profile_batch: [2, 5]`).
            if isinstance(value, (str, bool)):
                expected = "a number" + (" or a list of numbers" if not isinstance(value, bool) else "")
        if expected:
            found.report(path, f"expected {expected}; received {describe(value)}.")
            return INVALID
    return value
