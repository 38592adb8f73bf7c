"""The problem collector, the limits on values, and the checks of plain values (integers, booleans, names).

Each check reports what is wrong through the collector and returns None; on a good value it
returns the value. Every message ends with what was received, described as the file writes it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ..catalog import did_you_mean
from ..errors import Problem
from ..yamlio import Document, KeyPath, render_path

MAX_SEED = 2**32 - 1  # numpy's limit, which keras.utils.set_random_seed inherits
MAX_JOIN_TIMEOUT = 86_400  # fit.join_timeout, seconds
MAX_COUNT = 2**31 - 1  # epochs, batch sizes, units, dimensions: TensorFlow's int32 sizes
MAX_INT64 = 2**63 - 1  # any other integer argument becomes a C long inside TensorFlow
MAX_NAME_LENGTH = 128  # `name` names a folder (file systems allow 255 bytes)

# Arguments where an infinity means something (no bound, no clipping); elsewhere it is refused.
INFINITY_ARGUMENTS = {
    "baseline",
    "initial_value_threshold",
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "max_value",
    "min_value",
}


class ProblemCollector:
    """Where every check reports: each problem located in the document, all reported together."""

    def __init__(self, document: Document):
        self.document = document
        self.problems: list[Problem] = []

    def report(self, path: KeyPath, message: str, *, key: bool = False, related: Iterable[KeyPath] = ()) -> None:
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


def describe(value: Any) -> str:
    """A value as a message names it: `the number 3`, `the string 'a'`, `a list of 2`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int) and abs(value) >= 10**30:
        return number(value)
    if isinstance(value, (int, float)):
        return f"the number {number(value)}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "a mapping" + (f" with keys {', '.join(map(str, list(value)[:4]))}" if value else " (empty)")
    return type(value).__name__


def number(value: int | float) -> str:
    """A number as the file would write it; an integer too long to print is described by its size."""
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if abs(value) >= 10**30:
        # str() of an integer over 4,300 digits raises; hexadecimal YAML can make one.
        digits = (
            str(len(str(abs(value))))
            if value.bit_length() < 10_000
            else f"about {int(value.bit_length() * math.log10(2)):,}"
        )
        return f"{'a negative' if value < 0 else 'an'} integer of {digits} digits"
    return repr(value)


def article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def is_int_or_float(value: Any) -> bool:
    """An int or a float as YAML reads them, and not a boolean (which Python counts as an int)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def unknown_keys(found: ProblemCollector, mapping: dict, allowed: Iterable[str], path: KeyPath, what: str) -> None:
    allowed = list(allowed)
    for key in mapping:
        if key not in allowed:
            hint = did_you_mean(key, allowed)
            found.report(
                path + (key,),
                f"unknown key {key!r} in {what}. {hint or 'Allowed: ' + ', '.join(allowed) + '.'}".rstrip(),
                key=True,
            )


def expect_mapping(found: ProblemCollector, value: Any, path: KeyPath, what: str) -> bool:
    if isinstance(value, dict):
        return True
    found.report(path, f"{what} must be a mapping of keys; received {describe(value)}.")
    return False


def integer(found: ProblemCollector, value: Any, path: KeyPath, *, minimum=None, maximum=MAX_COUNT, what="an integer"):
    """An integer in [minimum, maximum]; by default at most MAX_COUNT, what TensorFlow counts in."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer() and (maximum is None or abs(value) <= maximum):
            found.report(path, f"expected {what}; received {value!r} (write it without the decimal point).")
        else:
            found.report(path, f"expected {what}; received {describe(value)}.")
        return None
    if minimum is not None and value < minimum:
        found.report(path, f"expected {what}; received {number(value)}.")
        return None
    if maximum is not None and value > maximum:
        received = number(value) if abs(value) >= 10**30 else f"{value:,}"
        found.report(path, f"expected {what}; received {received}, more than the largest allowed, {maximum:,}.")
        return None
    return value


def boolean(found: ProblemCollector, value: Any, path: KeyPath):
    if not isinstance(value, bool):
        hint = (
            " (write true or false)"
            if isinstance(value, str) and value.lower() in ("yes", "no", "on", "off", "y", "n")
            else ""
        )
        found.report(path, f"expected true or false; received {describe(value)}{hint}.")
        return None
    return value


def string(found: ProblemCollector, value: Any, path: KeyPath, what: str = "a string"):
    if not isinstance(value, str) or not value:
        found.report(path, f"expected {what}; received {describe(value)}.")
        return None
    return value


def string_list(found: ProblemCollector, value: Any, path: KeyPath, what: str):
    if not isinstance(value, list):
        found.report(path, f"{what} must be a list of column names; received {describe(value)}.")
        return None
    names: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item:
            found.report(path + (index,), f"expected a column name; received {describe(item)}.")
        elif item in names:
            found.report(path + (index,), f"column {item!r} is listed twice.")
        else:
            names.append(item)
    return tuple(names)


def is_shape_like(value: Any) -> bool:
    """A positive size or a non-empty list of them (null for a variable size)."""

    def dimension(item):
        return item is None or (isinstance(item, int) and not isinstance(item, bool) and 0 < item <= MAX_COUNT)

    if isinstance(value, list):
        return bool(value) and all(dimension(item) for item in value)
    return dimension(value) and value is not None


def numbers_usable(found: ProblemCollector, key: str, value: Any, path: KeyPath) -> bool:
    """No NaN, no infinity (but where it means "no bound") and no integer past int64, in plain values.

    Keras takes these without a word and TensorFlow fails on them once training starts.
    Nested Keras objects (mappings) are checked as their own arguments.
    """
    if isinstance(value, list):
        return all([numbers_usable(found, key, item, path + (index,)) for index, item in enumerate(value)])
    if isinstance(value, float) and math.isnan(value):
        found.report(path, f"NaN (.nan) is not a value Keras can use for `{key}`; write a number.")
        return False
    if isinstance(value, float) and math.isinf(value) and key not in INFINITY_ARGUMENTS:
        found.report(path, f"expected a finite number for `{key}`; received {number(value)}.")
        return False
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT64:
        received = number(value) if abs(value) >= 10**30 else f"{value:,}"
        found.report(
            path,
            f"expected an integer that fits in 64 bits (at most {MAX_INT64:,} either side of 0); received {received}.",
        )
        return False
    return True
