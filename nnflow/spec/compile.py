"""The `compile:` section: the arguments of `model.compile`."""

from __future__ import annotations

from typing import Any

from ..yamlio import KeyPath
from .experiment import CompileSpec
from .fields import INVALID, Boolean, Choice, Custom, Field, Section
from .keras_objects import keras_object
from .keras_schema import object_schema
from .problems import MAX_COUNT, ProblemCollector, describe, integer


def keras_object_check(kind: str):
    """A field holding one Keras object of `kind`."""

    def check(found: ProblemCollector, value: Any, path: KeyPath) -> Any:
        checked = keras_object(found, kind, value, path)
        return INVALID if checked is None else checked

    return Custom(check, lambda: object_schema(kind))


def check_metrics(found: ProblemCollector, value: Any, path: KeyPath) -> Any:
    """A list of metrics (or one), each reported under a name of its own."""
    raw_metrics = [value] if isinstance(value, (str, dict)) else value
    if not isinstance(raw_metrics, list):
        found.report(path, f"expected a list of metrics like [accuracy]; received {describe(raw_metrics)}.")
        return INVALID
    metrics = []
    seen: dict[str | None, int] = {}
    for index, item in enumerate(raw_metrics):
        metric = keras_object(found, "metric", item, path + (index,))
        if metric is None:
            continue
        if metric.output_name in seen:
            found.report(path + (index,), f"two metrics report as {metric.output_name!r}; give one a different `name`.")
        seen[metric.output_name] = index
        metrics.append(metric)
    if "loss" in seen:
        found.report(path + (seen["loss"],), "a metric cannot be named 'loss'; Keras reports the loss under that name.")
    return tuple(metrics) if len(metrics) == len(raw_metrics) else INVALID


def _metrics_schema() -> dict:
    return {"anyOf": [{"type": "array", "items": object_schema("metric")}, object_schema("metric")]}


def check_steps(found: ProblemCollector, value: Any, path: KeyPath) -> Any:
    if value == "auto":
        return value
    steps = integer(found, value, path, minimum=1, what="a positive integer or 'auto'")
    return INVALID if steps is None else steps


def _steps_schema() -> dict:
    return {"oneOf": [{"type": "integer", "minimum": 1, "maximum": MAX_COUNT}, {"const": "auto"}]}


COMPILE = Section(
    "`compile`",
    (
        Field("optimizer", keras_object_check("optimizer"), "rmsprop"),
        Field(
            "loss", keras_object_check("loss"),
            missing="missing `loss`, e.g. `loss: mse` for regression or `loss: sparse_categorical_crossentropy` for classes.",
        ),
        Field("metrics", Custom(check_metrics, _metrics_schema), []),
        Field(
            "steps_per_execution", Custom(check_steps, _steps_schema), "auto",
            "training steps per call into TensorFlow; auto: up to 32 (a whole epoch of a small table)",
        ),
        Field("jit_compile", Choice((True, False, "auto"), "true, false or 'auto'"), "auto"),
        Field("run_eagerly", Boolean(), False),
    ),
)  # fmt: skip

MISSING = "missing the `compile:` section; at least `compile: {loss: mse}`."


def check_compile(found: ProblemCollector, value: Any, path: KeyPath) -> tuple[CompileSpec | None, Any]:
    """The `compile:` section: (its CompileSpec, or None after a problem; the section resolved)."""
    checked, merged = COMPILE.check(found, value, path)
    if checked is None:
        return None, merged
    resolved = {
        **merged,
        "optimizer": checked["optimizer"].to_data(),
        "loss": checked["loss"].to_data(),
        "metrics": [metric.to_data() for metric in checked["metrics"]],
    }
    return CompileSpec(**checked), resolved
