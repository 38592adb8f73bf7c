"""The `expect:` section: gates on final metrics (`test_accuracy: ">= 0.9"`), and checking them."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..yamlio import KeyPath
from .cross import check_gate_metric
from .experiment import CompileSpec, DataSpec
from .problems import ProblemCollector, describe, expect_mapping, is_int_or_float, number

if TYPE_CHECKING:
    from .experiment import Spec

DESCRIPTION = 'CI gates on final metrics, e.g. test_accuracy: ">= 0.9"'
GATE_PATTERN = re.compile(r"^\s*(>=|<=|==|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")

_OPERATORS = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
}


@dataclass(frozen=True)
class Gate:
    """An `expect:` line: `test_accuracy: ">= 0.9"`."""

    metric: str
    operator: str
    threshold: float

    def holds(self, value: float | None) -> bool:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        return _OPERATORS[self.operator](value, self.threshold)

    @property
    def condition(self) -> str:
        return f"{self.operator} {self.threshold:g}"

    def __str__(self) -> str:
        return f"{self.metric} {self.condition}"


@dataclass(frozen=True)
class GateResult:
    """A gate judged against a run's metrics."""

    metric: str
    condition: str
    value: float | None
    passed: bool

    def __str__(self) -> str:
        shown = "not reported" if self.value is None else f"{self.value:.4g}"
        return f"{self.metric} = {shown}, expected {self.condition}"

    def to_json(self) -> dict:
        return {"metric": self.metric, "condition": self.condition, "value": self.value, "passed": self.passed}


def check_gates(spec: Spec, metrics: Mapping[str, Any]) -> tuple[GateResult, ...]:
    """Each `expect:` gate against the final metrics; a metric not reported fails its gate."""
    results = []
    for gate in spec.expect:
        value = metrics.get(gate.metric)
        results.append(GateResult(gate.metric, gate.condition, value, gate.holds(value)))
    return tuple(results)


def json_schema() -> dict:
    return {
        "type": "object",
        "description": DESCRIPTION,
        "additionalProperties": {"type": "string", "pattern": GATE_PATTERN.pattern},
    }


def check_expect(
    found: ProblemCollector, value: Any, path: KeyPath, compile_spec: CompileSpec | None, data_spec: DataSpec | None
) -> tuple[tuple, Any]:
    """The gates, and the section resolved (`metric: condition` as the gates read)."""
    if not expect_mapping(found, value, path, "`expect`"):
        return (), value
    gates = []
    for metric, condition in value.items():
        gate_path = path + (metric,)
        check_gate_metric(found, metric, gate_path, compile_spec, data_spec)
        checked = gate(found, metric, condition, gate_path)
        if checked is not None:
            gates.append(checked)
    return tuple(gates), {g.metric: g.condition for g in gates}


def gate(found: ProblemCollector, metric: str, condition: Any, path: KeyPath) -> Gate | None:
    """`">= 0.9"` -> Gate(metric, ">=", 0.9), or None after a problem."""
    if is_int_or_float(condition) or isinstance(condition, bool):
        shown = condition if isinstance(condition, bool) else number(condition)
        found.report(
            path, f'a gate is a comparison written as a string, like ">= {shown}"; received {describe(condition)}.'
        )
        return None
    if not isinstance(condition, str) or not (match := GATE_PATTERN.match(condition)):
        found.report(
            path,
            f'a gate is a comparison like ">= 0.9" or "< 0.5" (operators >=, <=, >, <, ==); received {describe(condition)}.',
        )
        return None
    threshold = float(match.group(2))
    if not math.isfinite(threshold):
        found.report(path, f"the threshold {match.group(2)[:40]!r} is too large to be a number; write a finite one.")
        return None
    return Gate(metric, match.group(1), threshold)
