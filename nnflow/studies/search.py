"""A sweep as an Optuna study: the space as Optuna's distributions, the sampler and the pruner, and the
study itself, made once (with its grid points enqueued) and joined by every later process.

A study records what it searches: a fingerprint of the experiment (everything but `sweep:`) and the
space. A process that brings another experiment, or another space, under the same study name is
refused: mixing them would rank runs of different experiments against each other.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ConfigError, Problem
from ..spec import Choice, FloatRange, IntRange
from ..spec import set_text as spec_set_text
from .storage import Storage

FORMAT = 1  # of what nnflow records in a study's user attributes


@dataclass(frozen=True)
class GridValues:
    """A `--grid KEY=V1,V2` key: its values kept as the texts given, each one `--set KEY=TEXT`."""

    texts: tuple[str, ...]


Dimension = IntRange | FloatRange | Choice | GridValues


def encode(value: Any) -> Any:
    """A candidate as Optuna keeps it: scalars as they are, lists and mappings as their YAML text
    (Optuna's categorical choices must be scalars)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return spec_set_text("_", value).split("=", 1)[1]


def distribution(dimension: Dimension):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(dimension, IntRange):
        return IntDistribution(dimension.low, dimension.high, log=dimension.log, step=dimension.step)
    if isinstance(dimension, FloatRange):
        return FloatDistribution(dimension.low, dimension.high, log=dimension.log, step=dimension.step)
    if isinstance(dimension, GridValues):
        return CategoricalDistribution(list(dimension.texts))
    return CategoricalDistribution([encode(value) for value in dimension.values])


def suggest(trial, key: str, dimension: Dimension) -> Any:
    """The trial's value for `key` (an enqueued trial's own, else the sampler's)."""
    if isinstance(dimension, IntRange):
        return trial.suggest_int(key, dimension.low, dimension.high, step=dimension.step, log=dimension.log)
    if isinstance(dimension, FloatRange):
        return trial.suggest_float(key, dimension.low, dimension.high, step=dimension.step, log=dimension.log)
    return trial.suggest_categorical(key, distribution(dimension).choices)


def set_texts(space: Mapping[str, Dimension], params: Mapping[str, Any]) -> list[str]:
    """The trial's `--set KEY=VALUE` texts, in the space's order."""
    texts = []
    for key, dimension in space.items():
        value = params[key]
        if isinstance(dimension, GridValues):
            texts.append(f"{key}={value}")
        elif isinstance(dimension, Choice):
            texts.append(spec_set_text(key, next(v for v in dimension.values if encode(v) == value)))
        else:
            texts.append(spec_set_text(key, value))
    return texts


def describe_space(space: Mapping[str, Dimension]) -> str:
    """The space as a canonical text, recorded in the study and compared by every process that joins it."""
    from optuna.distributions import distribution_to_json

    return json.dumps(
        {key: json.loads(distribution_to_json(distribution(d))) for key, d in space.items()}, sort_keys=True
    )


def make_sampler(name: str, arguments: Mapping[str, Any], seed: int | None):
    """Optuna's sampler `name` (`grid` enqueues its points instead: see `open_study`)."""
    import optuna

    samplers = {
        "tpe": optuna.samplers.TPESampler,
        "random": optuna.samplers.RandomSampler,
        "cmaes": optuna.samplers.CmaEsSampler,
        "qmc": optuna.samplers.QMCSampler,
        "grid": optuna.samplers.RandomSampler,  # never asked: every grid point is enqueued
    }
    if name == "cmaes":
        _needs("cmaes", "the cmaes sampler")
    if name == "qmc":
        _needs("scipy", "the qmc sampler")
    return samplers[name](**dict(arguments), seed=seed)


def make_pruner(name: str, arguments: Mapping[str, Any]):
    import optuna

    pruners = {
        "none": optuna.pruners.NopPruner,
        "median": optuna.pruners.MedianPruner,
        "hyperband": optuna.pruners.HyperbandPruner,
        "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    }
    return pruners[name](**dict(arguments))


def _needs(module: str, what: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ConfigError(Problem(f"{what} needs the {module} package: pip install {module}.", where="sweep.sampler"))


@dataclass(frozen=True)
class StudyPlan:
    """What a study is: every process that makes or joins it brings the same."""

    name: str
    direction: Literal["minimize", "maximize"]
    fingerprint: str  # of the experiment, everything but `sweep:`
    space: Mapping[str, Dimension]
    grid_points: tuple[Mapping[str, Any], ...]  # enqueued once, when the study is made; () unless a grid
    invalid_points: tuple[tuple[Mapping[str, Any], str], ...] = ()  # grid points the file refuses, with why


def open_study(storage: Storage, plan: StudyPlan, sampler, pruner):
    """Make the study (under the storage's lock, so only one process does) or join it."""
    import optuna

    backend = storage.optuna()
    space_text = describe_space(plan.space)
    with storage.lock():
        try:
            study_id = backend.get_study_id_from_name(plan.name)
        except KeyError:
            study_id = None
        if study_id is None:
            study = optuna.create_study(
                storage=backend, study_name=plan.name, direction=plan.direction, sampler=sampler, pruner=pruner
            )
            study.set_user_attr("nnflow_format", FORMAT)
            study.set_user_attr("nnflow_experiment", plan.fingerprint)
            study.set_user_attr("nnflow_space", space_text)
            for params in plan.grid_points:
                study.enqueue_trial({key: encode(value) for key, value in params.items()})
            _record_invalid(study, plan)
            return study
    study = optuna.load_study(storage=backend, study_name=plan.name, sampler=sampler, pruner=pruner)
    _check_same(study, plan, space_text, storage)
    return study


def _record_invalid(study, plan: StudyPlan) -> None:
    """Grid points the file refuses are in the leaderboard as failed trials that never ran."""
    import optuna

    distributions = {key: distribution(d) for key, d in plan.space.items()}
    for params, error in plan.invalid_points:
        study.add_trial(
            optuna.trial.create_trial(
                state=optuna.trial.TrialState.FAIL,
                params={key: encode(value) for key, value in params.items()},
                distributions=distributions,
                user_attrs={"status": "failed", "exit_code": ConfigError.exit_code, "error": error, "invalid": True},
            )
        )


def _check_same(study, plan: StudyPlan, space_text: str, storage: Storage) -> None:
    attrs = study.user_attrs
    where = f"--study {plan.name}"
    if attrs.get("nnflow_format") is None:
        raise ConfigError(
            Problem(
                f"the study {plan.name!r} in {storage.display} was not made by nnflow sweep; choose another --study.",
                where=where,
            )
        )
    if attrs.get("nnflow_experiment") != plan.fingerprint:
        raise ConfigError(
            Problem(
                f"the study {plan.name!r} in {storage.display} belongs to another experiment (the file or its --set "
                "values differ, outside `sweep:`); a study ranks runs of one experiment. Run the same experiment, or "
                "name a new study with --study.",
                where=where,
            )
        )
    if attrs.get("nnflow_space") != space_text:
        raise ConfigError(
            Problem(
                f"the study {plan.name!r} in {storage.display} searches another space (sweep.space or --grid differ); "
                "run the same sweep, or name a new study with --study.",
                where=where,
            )
        )
    direction = study.direction.name.lower()
    if direction != plan.direction:
        raise ConfigError(
            Problem(
                f"the study {plan.name!r} {direction}s its metric, and this sweep would {plan.direction} it; "
                "name a new study with --study.",
                where=where,
            )
        )


def finite(value: Any) -> float | None:
    return (
        float(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        else None
    )
