"""The `sweep:` section as validation builds it: the space of `--set` keys, the sampler, the pruner.

Nothing here checks (sweep_section.py and sweep_space.py do) and nothing imports Optuna: the
study layer (workflows) turns a `SweepSpec` into an Optuna study.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from ..yamlio.dialect import CORE, Dumper
from .sweep_methods import PRUNERS, SAMPLERS, Method

if TYPE_CHECKING:
    from fractions import Fraction

LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
DEFAULT_TRIALS = 20  # finished trials a search wants when neither sweep.trials nor --trials says (a grid: its size)
MAX_GRID_POINTS = 100_000  # a grid is listed in full (Optuna's GridSampler does too)

__all__ = [
    "MAX_GRID_POINTS",
    "PRUNERS",
    "SAMPLERS",
    "Choice",
    "Dimension",
    "FloatRange",
    "IntRange",
    "Method",
    "SweepSpec",
    "flow_text",
    "set_text",
]


@dataclass(frozen=True)
class IntRange:
    """`{int: [low, high], log: false, step: 1}`: the integers from low to high, both included."""

    low: int
    high: int
    log: bool = False
    step: int = 1

    @property
    def enumerable(self) -> bool:
        return not self.log  # a grid over a log range would be every integer, not what `log` asks for

    def values(self) -> list[int]:
        return list(range(self.low, self.high + 1, self.step))

    @property
    def size(self) -> int:
        return (self.high - self.low) // self.step + 1


@dataclass(frozen=True)
class FloatRange:
    """`{float: [low, high], log: false, step: null}`: the numbers from low to high, both included."""

    low: float
    high: float
    log: bool = False
    step: float | None = None

    @property
    def enumerable(self) -> bool:
        return self.step is not None and not self.log

    def values(self) -> list[float]:
        """low, low + step, ..., high; computed on the decimals as written, so 0.1 * 3 is 0.3."""
        if self.step is None:
            raise ValueError("a float range without a step has no list of values")
        low, step = exact(self.low), exact(self.step)
        return [float(low + index * step) for index in range(self.size)]

    @property
    def size(self) -> int:
        if self.step is None:
            raise ValueError("a float range without a step has no size")
        return int((exact(self.high) - exact(self.low)) / exact(self.step)) + 1


@dataclass(frozen=True)
class Choice:
    """A list of candidates: the values as the file writes them (scalars, lists, mappings)."""

    values: tuple

    @property
    def enumerable(self) -> bool:
        return True

    @property
    def size(self) -> int:
        return len(self.values)


Dimension = IntRange | FloatRange | Choice


def exact(number: float) -> Fraction:
    """A number as its shortest decimal (`0.1` -> 1/10), so steps divide as they read."""
    from fractions import Fraction  # here: only a step needs it, and `check` starts quicker without it

    return Fraction(repr(number)) if isinstance(number, float) else Fraction(number)


@dataclass(frozen=True)
class SweepSpec:
    """A validated `sweep:` section. Defaults the study layer derives are None here."""

    metric: str | None
    direction: str | None  # "minimize" | "maximize" | None: from the metric's gate or its name
    trials: int | None  # finished trials wanted; None: the grid's size for `grid`, else 20
    max_failures: int | None  # failed trials tolerated; None: as many as `trials`
    sampler: str  # a key of SAMPLERS
    sampler_args: Mapping[str, Any]  # as the file gives them; `seed` never (the file's `seed` is)
    pruner: str  # a key of PRUNERS
    pruner_args: Mapping[str, Any]
    space: Mapping[str, Dimension]  # `--set` key -> its dimension, in file order

    @property
    def grid_size(self) -> int | None:
        """The number of points of the space's grid; None when an entry cannot be enumerated."""
        if not all(dimension.enumerable for dimension in self.space.values()):
            return None
        return math.prod(dimension.size for dimension in self.space.values())

    def grid_points(self) -> list[dict[str, Any]]:
        """Every combination of the space's values, the first key varying slowest (file order)."""
        if self.grid_size is None:
            raise ValueError("the space has an entry that cannot be enumerated (a float range without a step, or log)")
        keys = list(self.space)
        columns = [list(_values(self.space[key])) for key in keys]
        return [dict(zip(keys, point)) for point in itertools.product(*columns)]


def _values(dimension: Dimension) -> list[Any]:
    return list(dimension.values) if isinstance(dimension, Choice) else list(dimension.values())


class _FlowDumper(Dumper):
    def __init__(self, stream, **options):
        super().__init__(stream, **options)
        self.default_flow_style = True


def _represent_str(dumper: _FlowDumper, data: str) -> yaml.ScalarNode:
    # Double quotes escape line breaks, so the text stays on one line.
    style = '"' if any(character in data for character in LINE_BREAKS) else None
    return dumper.represent_scalar(CORE + "str", data, style=style)


_FlowDumper.add_representer(str, _represent_str)


def flow_text(value: Any) -> str:
    """`value` as one line of YAML that reads back as exactly `value`: `[a, b]`, `'true'`, `0.001`."""
    # Written inside a list, so that even a scalar comes out in flow style, on one line, quoted
    # where YAML (1.1 or 1.2) would read it as something else; the brackets are then dropped.
    text = yaml.dump([value], Dumper=_FlowDumper, allow_unicode=True, width=math.inf)
    return text.strip()[1:-1]


def set_text(key: str, value: Any) -> str:
    """The `--set` text that gives `key` exactly `value`.

    >>> set_text("layers.0.units", 8), set_text("data.features", ["a", "b"]), set_text("x", "8")
    ('layers.0.units=8', 'data.features=[a, b]', "x='8'")
    """
    return f"{key}={flow_text(value)}"
