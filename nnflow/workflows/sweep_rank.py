"""Which way a sweep's metric is better, and which trial outcome is the worst (it decides the exit code)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..errors import (
    ConfigError,
    DataError,
    GateError,
    NnflowError,
    OutputError,
    TrainingError,
    UnsafeModelError,
    interrupt_exit_code,
)

BUG = NnflowError.exit_code
GATE_FAILED = GateError.exit_code
INTERRUPTED = interrupt_exit_code(KeyboardInterrupt())
# The worst outcome first: a bug, an interruption, an output that could not be written (a full
# disk), a failed training, bad data, a refused model, a bad experiment, and last a gate that did not hold.
SEVERITY = (
    BUG,
    INTERRUPTED,
    OutputError.exit_code,
    TrainingError.exit_code,
    DataError.exit_code,
    UnsafeModelError.exit_code,
    ConfigError.exit_code,
    GATE_FAILED,
)
LOWER_IS_BETTER = re.compile(
    r"(loss|error|mae|mse|mape|msle|hinge|crossentropy|divergence|poisson|logcosh|log_cosh|kld|huber)$"
)


def higher_is_better(metric: str, spec) -> bool:
    """From the metric's gate when it has one (`>=` means higher is better), else from its name."""
    for gate in spec.expect:
        if gate.metric == metric:
            return gate.operator in (">=", ">")
    return not LOWER_IS_BETTER.search(metric.removeprefix("val_").removeprefix("test_"))


def worst(codes: Iterable[int]) -> int:
    """The worst of some exit codes (0 when there are none, or all are 0)."""
    found = {code if code > 0 else BUG for code in codes if code}
    return next((code for code in SEVERITY if code in found), BUG if found else 0)
