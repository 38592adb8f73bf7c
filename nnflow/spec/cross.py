"""Checks across sections: a gate or a callback's `monitor` names a metric the run reports."""

from __future__ import annotations

from ..catalog import did_you_mean
from ..yamlio import KeyPath
from .experiment import CompileSpec, DataSpec, FitSpec, reported_metric_names
from .problems import ProblemCollector


def check_gate_metric(
    found: ProblemCollector, metric: str, path: KeyPath, compile_spec: CompileSpec | None, data_spec: DataSpec | None
) -> None:
    """An `expect:` key is a metric of `compile:`, on a split that `data:` has."""
    base, prefix = metric, ""
    for candidate in ("val_", "test_"):
        if metric.startswith(candidate):
            prefix, base = candidate, metric[len(candidate) :]
    known = compile_spec.metric_names if compile_spec is not None else None
    if known is not None and base not in known:
        names = reported_metric_names(known, None)  # every split: the hint names them all
        hint = did_you_mean(metric, names)
        found.report(
            path,
            f"{metric!r} is not a metric this run reports. {hint or 'It reports: ' + ', '.join(names) + '.'}"
            + ("" if hint or base in known else " Add the metric to `compile.metrics` to gate on it."),
            key=True,
        )
    elif data_spec is not None and prefix == "val_" and data_spec.validation == 0:
        found.report(
            path,
            f"{metric!r} needs a validation split, but `data.validation` is 0.",
            key=True,
            related=[("data", "validation")],
        )
    elif data_spec is not None and prefix == "test_" and data_spec.test == 0:
        found.report(
            path,
            f"{metric!r} needs a test split; set `data.test` to a fraction (0.2) or a file.",
            key=True,
            related=[("data", "test")],
        )


def check_monitors(
    found: ProblemCollector, data_spec: DataSpec | None, fit_spec: FitSpec | None, compile_spec: CompileSpec | None
) -> None:
    """A callback's `monitor` (given, or its Keras default) is a metric of the training or validation split."""
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
            found.report(
                path,
                f"{callback.name} monitors {monitor!r}, but `data.validation` is 0; set a validation split or monitor {monitor[4:]!r}.",
                related=[("data", "validation")],
            )
        elif compile_spec is not None:
            base = monitor[4:] if monitor.startswith("val_") else monitor
            known = compile_spec.metric_names
            if base not in known:
                names = reported_metric_names(known, None, splits=("train", "validation"))
                hint = did_you_mean(monitor, names)
                found.report(
                    path,
                    f"{callback.name} monitors {monitor!r}, which this run does not report. {hint or 'It reports: ' + ', '.join(names) + '.'}",
                )
