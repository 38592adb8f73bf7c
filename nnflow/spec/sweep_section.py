"""The `sweep:` section: its keys declared once (check, default, description), checked, and its JSON Schema.

`nnflow train` ignores the section: it is validated with the file, and `nnflow sweep` uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ..catalog import did_you_mean
from ..yamlio import KeyPath
from .experiment import reported_metric_names
from .fields import INVALID, REQUIRED, Custom, Field, Integer, Section
from .fields import Choice as OneOf
from .problems import MAX_COUNT, ProblemCollector, describe, expect_mapping, string
from .sweep import MAX_GRID_POINTS, SweepSpec
from .sweep_methods import PRUNERS, SAMPLERS, check_method, method_data, method_schema
from .sweep_space import CandidateCheck, check_candidates, check_dimension

DESCRIPTION = "an Optuna sweep over `--set` keys (`nnflow sweep`); `nnflow train` ignores it"
DIRECTIONS = ("minimize", "maximize")


def _nullable(check: Integer) -> Custom:
    def nullable(found: ProblemCollector, value: Any, path: KeyPath) -> Any:
        return None if value is None else check(found, value, path)

    return Custom(nullable, lambda: {"anyOf": [check.json_schema(), {"type": "null"}]})


def _check_metric(found: ProblemCollector, value: Any, path: KeyPath) -> Any:
    if value is None:
        return None
    return INVALID if string(found, value, path, "a metric name, like val_loss") is None else value


def _check_space(found: ProblemCollector, value: Any, path: KeyPath) -> Any:
    """`--set` key -> dimension, in file order; INVALID after a problem."""
    if not expect_mapping(found, value, path, "`sweep.space`"):
        return INVALID
    if not value:
        found.report(path, "`sweep.space` is empty: name at least one `--set` key and the values it takes.")
        return INVALID
    problems_before = len(found.problems)
    space = {}
    for key, entry in value.items():
        if not _is_key(key) and isinstance(key, str) and key.split(".")[0] == "sweep":
            found.report(path + (key,), "a sweep varies the experiment, not its own settings.", key=True)
        elif not _is_key(key):
            found.report(
                path + (key,), f"expected a `--set` key, like `fit.batch_size`; received {describe(key)}.", key=True
            )
        else:
            dimension = check_dimension(found, entry, path + (key,))
            if dimension is not None:
                space[key] = dimension
    return space if len(found.problems) == problems_before else INVALID


def _is_key(key: Any) -> bool:
    """A `--set` key of the experiment: dotted parts, none empty, outside `sweep`."""
    return isinstance(key, str) and all(key.split(".")) and key.split(".")[0] != "sweep"


def _space_schema() -> dict:
    def range_schema(kind: str, bound: dict, step: dict) -> dict:
        return {
            "type": "object",
            "properties": {
                kind: {"type": "array", "items": bound, "minItems": 2, "maxItems": 2},
                "log": {"type": "boolean"},
                "step": step,
            },
            "required": [kind],
            "additionalProperties": False,
        }

    dimension = {
        "anyOf": [
            {"type": "array", "minItems": 1, "description": "candidates, drawn as a category"},
            range_schema("int", {"type": "integer"}, {"type": "integer", "minimum": 1}),
            range_schema("float", {"type": "number"}, {"type": "number", "exclusiveMinimum": 0}),
        ]
    }
    return {"type": "object", "minProperties": 1, "propertyNames": {"not": {"pattern": "^sweep(\\.|$)"}}, "additionalProperties": dimension}  # fmt: skip


SWEEP = Section(
    "`sweep`",
    (
        Field("metric", Custom(_check_metric, lambda: {"type": ["string", "null"]}), None,
              "the metric to optimise, one the runs report; null: the first `expect:` key, else val_loss"),
        Field("direction", OneOf((*DIRECTIONS, None), "minimize, maximize or null", suggest=True), None,
              "null: from the metric's gate, else from its name (a loss or an error is minimised)"),
        Field("trials", _nullable(Integer(1, MAX_COUNT, "a positive integer")), None,
              "finished trials wanted (completed and pruned); null: the grid's size for `grid`, else 20"),
        Field("max_failures", _nullable(Integer(0, MAX_COUNT, "a non-negative integer")), None,
              "failed trials tolerated before the sweep stops; null: as many as `trials`"),
        Field("sampler", Custom(lambda found, value, path: check_method(found, value, path, SAMPLERS, "sampler"),
                                lambda: method_schema(SAMPLERS)), "tpe",
              "how trials are drawn: " + ", ".join(SAMPLERS) + "; arguments as {tpe: {n_startup_trials: 5}}"),
        Field("pruner", Custom(lambda found, value, path: check_method(found, value, path, PRUNERS, "pruner"),
                               lambda: method_schema(PRUNERS)), "none",
              "how unpromising trials stop early: " + ", ".join(PRUNERS)),
        Field("space", Custom(_check_space, _space_schema), REQUIRED,
              "`--set` key -> a list of candidates, {int: [low, high]} or {float: [low, high]} (log, step)",
              missing="`sweep` needs a `space:`: the `--set` keys to vary, each with its candidates or range."),
    ),
    DESCRIPTION,
)  # fmt: skip


def json_schema() -> dict:
    return SWEEP.json_schema()


def check_sweep(
    found: ProblemCollector, value: Any, path: KeyPath, experiment: Mapping[str, Any], check: CandidateCheck
) -> tuple[SweepSpec | None, Any]:
    """The `sweep:` section: (its SweepSpec, or None after a problem; the section resolved).

    `experiment` holds the other sections' checked values; `check` judges the file with `--set` texts.
    """
    problems_before = len(found.problems)
    fields: dict[str, Any] = {}
    checked, merged = SWEEP.check(found, value, path, after={"space": lambda _, values: fields.update(values)})
    if not isinstance(merged, dict):
        return None, merged
    metric = fields.get("metric")
    if isinstance(metric, str) and not _metric_reported(found, metric, path + ("metric",), experiment):
        metric = INVALID
    space = fields.get("space", INVALID)
    if space is INVALID:
        space = _valid_entries(found, merged.get("space"), path + ("space",))
    if fields.get("sampler", INVALID) is not INVALID and fields["sampler"][0] == "grid":
        _check_grid(found, space, path + ("space",))
    check_candidates(found, space, path + ("space",), check, metric if isinstance(metric, str) else None)
    if checked is None or metric is INVALID or len(found.problems) > problems_before:
        return None, merged
    (sampler, sampler_args), (pruner, pruner_args) = checked["sampler"], checked["pruner"]
    spec = SweepSpec(
        metric=checked["metric"],
        direction=checked["direction"],
        trials=checked["trials"],
        max_failures=checked["max_failures"],
        sampler=sampler,
        sampler_args=sampler_args,
        pruner=pruner,
        pruner_args=pruner_args,
        space=MappingProxyType(space),
    )
    resolved = {**merged, "sampler": method_data(sampler, sampler_args), "pruner": method_data(pruner, pruner_args)}
    return spec, resolved


def _valid_entries(found: ProblemCollector, space: Any, path: KeyPath) -> dict[str, Any]:
    """The good entries of a space that has bad ones, so that their candidates are checked too."""
    if not isinstance(space, dict):
        return {}
    quiet = ProblemCollector(found.document)  # the bad entries' problems are reported already
    entries = {key: check_dimension(quiet, entry, path + (key,)) for key, entry in space.items() if _is_key(key)}
    return {key: dimension for key, dimension in entries.items() if dimension is not None}


def _metric_reported(found: ProblemCollector, metric: str, path: KeyPath, experiment: Mapping[str, Any]) -> bool:
    compile_spec = experiment.get("compile")
    if compile_spec is None:
        return True  # `compile:` has problems of its own; the metric is judged once it is valid
    reported = reported_metric_names(compile_spec.metric_names, experiment.get("data"))
    if metric in reported:
        return True
    for prefix, split in (("val_", "validation"), ("test_", "test")):
        if metric.startswith(prefix) and metric[len(prefix) :] in compile_spec.metric_names:
            found.report(path, f"{metric!r} needs a {split} split, but `data.{split}` is 0.", related=[("data", split)])
            return False
    hint = did_you_mean(metric, reported)
    found.report(
        path, f"{metric!r} is not a metric the runs report. {hint or 'They report: ' + ', '.join(reported) + '.'}"
    )
    return False


def _check_grid(found: ProblemCollector, space: Mapping[str, Any], path: KeyPath) -> None:
    """The grid sampler lists every point: each entry is a list, an int range, or a float range with a step."""
    for key, dimension in space.items():
        if dimension.enumerable:
            continue
        if dimension.log:
            why = "a log range has no grid; list the values instead (`[8, 16, 32, 64]`)"
        else:
            why = "give this float range a `step`, or list its values"
        found.report(path + (key,), f"the grid sampler tries every value of each entry: {why}.")
    enumerable = [dimension for dimension in space.values() if dimension.enumerable]
    size = 1
    for dimension in enumerable:
        size *= dimension.size
        if size > MAX_GRID_POINTS:
            found.report(
                path, f"the grid has more than {MAX_GRID_POINTS:,} points; use fewer values, or another sampler."
            )
            return
