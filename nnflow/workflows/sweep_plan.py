"""What a sweep is, worked out once from the file, `sweep:` and the command line, by the command and
again, the same way, by each of its workers: the space, the sampler and pruner, the metric and its
direction, how many trials, the study, and the sweep folder."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, Problem
from ..spec import DEFAULT_TRIALS, PRUNERS, SAMPLERS, Spec, load_spec
from ..spec.experiment_file import NAME_PATTERN
from ..studies import GridValues, StudyPlan
from .sweep_grid import parse_grid
from .sweep_rank import higher_is_better

MARKER = "sweep.json"  # in the sweep folder: which study it belongs to


@dataclass(frozen=True)
class SweepOptions:
    """The command line of `nnflow sweep`, as the command and each of its workers read it."""

    config: str
    grids: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()
    trials: int | None = None
    sampler: str | None = None
    pruner: str | None = None
    metric: str | None = None
    storage: str | None = None
    study: str | None = None
    out: str | None = None
    jobs: int = 1
    mlflow: bool = False  # each trial logged to MLflow, nested under the sweep's parent run
    mlflow_models: str = "best"  # which trials log their model: "best" (at the end) or "all"
    mlflow_parent: str | None = None  # the sweep's parent MLflow run, found or made by the command

    def to_json(self) -> dict:
        return {**self.__dict__, "grids": list(self.grids), "overrides": list(self.overrides)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SweepOptions:
        return cls(**{**data, "grids": tuple(data["grids"]), "overrides": tuple(data["overrides"])})


@dataclass(frozen=True)
class SweepPlan:
    options: SweepOptions
    spec: Spec
    space: Mapping[str, Any]  # key -> IntRange | FloatRange | Choice | GridValues
    metric: str
    higher_is_better: bool
    trials: int
    max_failures: int
    sampler: str
    sampler_args: Mapping[str, Any]
    pruner: str
    pruner_args: Mapping[str, Any]
    study: StudyPlan
    folder: Path
    invalid: list[tuple[dict, ConfigError]] = field(default_factory=list)  # grid points the file refuses

    @property
    def grid(self) -> bool:
        return self.sampler == "grid"

    def sampler_for(self, number: int):
        """The sampler for trial `number`, seeded with the file's seed (and the number, so that two
        processes do not propose the same point; QMC's sequence needs one seed for all)."""
        from ..studies import make_sampler

        seed = self.spec.seed
        if seed is not None and self.sampler not in ("qmc", "grid"):
            seed += number
        return make_sampler(self.sampler, self.sampler_args, seed)

    def pruner_object(self):
        from ..studies import make_pruner

        return make_pruner(self.pruner, self.pruner_args)


def make_plan(options: SweepOptions, *, check_points: bool = True) -> SweepPlan:
    """The sweep, checked: exit 2 for the whole sweep when the experiment, `sweep:` or a flag is wrong."""
    _check_flags(options)
    spec = load_spec(options.config, options.overrides)  # the base experiment must be right
    if spec.data is None:
        raise ConfigError(
            Problem("`nnflow sweep` trains, so the file needs a `data:` section.", where=str(spec.source))
        )
    sweep = spec.sweep
    sampler = (
        "grid"
        if options.grids
        else _method(options.sampler, "--sampler", SAMPLERS) or (sweep.sampler if sweep else "tpe")
    )
    pruner = _method(options.pruner, "--pruner", PRUNERS) or (sweep.pruner if sweep else "none")
    space, points, invalid = _space(options, spec, sampler, check_points)
    metric = _metric(spec, options.metric or (sweep.metric if sweep else None))
    direction = sweep.direction if sweep and sweep.direction else None
    higher = direction == "maximize" if direction else higher_is_better(metric, spec)
    # --grid replaces the file's space, and with it the file's count: every point, unless --trials says fewer.
    trials = options.trials or (sweep.trials if sweep and not options.grids else None)
    trials = min(trials or len(points), len(points)) if sampler == "grid" else trials or DEFAULT_TRIALS
    study = StudyPlan(
        name=options.study or spec.name,
        direction="maximize" if higher else "minimize",
        fingerprint=fingerprint(options.config, options.overrides),
        space=space,
        grid_points=tuple(points),
        invalid_points=tuple((point, str(error)) for point, error in invalid),
    )
    return SweepPlan(
        options=options,
        spec=spec,
        space=space,
        metric=metric,
        higher_is_better=higher,
        trials=trials,
        max_failures=sweep.max_failures if sweep and sweep.max_failures is not None else trials,
        sampler=sampler,
        sampler_args=dict(sweep.sampler_args) if sweep and sampler == sweep.sampler else {},
        pruner=pruner,
        pruner_args=dict(sweep.pruner_args) if sweep and pruner == sweep.pruner else {},
        study=study,
        folder=_folder(spec.name, study.name, options.out),
        invalid=invalid,
    )


def _check_flags(options: SweepOptions) -> None:
    """What the command line alone can get wrong: before the file is read."""
    if options.mlflow_models not in ("best", "all"):
        raise ConfigError(
            Problem(f"--mlflow-models is best or all; received {options.mlflow_models!r}.", where="--mlflow-models")
        )
    if options.jobs < 1:
        raise ConfigError(Problem(f"--jobs must be at least 1; received {options.jobs}.", where="--jobs"))
    if options.trials is not None and options.trials < 1:
        raise ConfigError(Problem(f"--trials must be at least 1; received {options.trials}.", where="--trials"))
    if options.grids and options.sampler not in (None, "grid"):
        raise ConfigError(
            Problem(
                f"--grid tries exactly its values (the grid sampler); it cannot go with --sampler {options.sampler}.",
                where="--sampler",
            )
        )
    if options.study is not None and not (re.fullmatch(NAME_PATTERN, options.study) and len(options.study) <= 100):
        raise ConfigError(
            Problem(
                f"a study name may hold letters, digits, '.', '_' and '-' (it names the sweep folder), "
                f"at most 100 characters; received {options.study!r}.",
                where="--study",
            )
        )


def _space(options: SweepOptions, spec: Spec, sampler: str, check_points: bool):
    """The space (from --grid, else the file's), the grid's points, and the grid points the file refuses."""
    sweep = spec.sweep
    if options.grids:
        grid = parse_grid(options.grids)
        space: dict[str, Any] = {key: GridValues(tuple(values)) for key, values in grid.items()}
        points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
        if check_points:
            return space, *_checked_points(options.config, options.overrides, points)
        return space, points, []
    if sweep is None or not sweep.space:
        raise ConfigError(
            Problem(
                "nothing to sweep: add a `sweep:` section with a `space:` to the file (see docs/sweeps.md), "
                "or give the values on the command line: --grid KEY=V1,V2.",
                where=str(spec.source),
            )
        )
    if sampler == "grid" and sweep.grid_size is None:
        raise ConfigError(
            Problem(
                "the grid sampler tries every value, so each sweep.space entry must be a list, an int range, "
                "or a float range with a step; use another --sampler, or give the values with --grid.",
                where="--sampler",
            )
        )
    return dict(sweep.space), (sweep.grid_points() if sampler == "grid" else []), []


def _method(name: str | None, flag: str, table: Mapping[str, Any]) -> str | None:
    """A --sampler or --pruner name, checked against the names `sweep:` takes (its arguments come from the file)."""
    from ..catalog import did_you_mean

    if name is None or name in table:
        return name
    raise ConfigError(
        Problem(
            f"unknown {flag.removeprefix('--')} {name!r}; use one of {', '.join(table)}. {did_you_mean(name, list(table))}".rstrip(),
            where=flag,
        )
    )


def _metric(spec: Spec, metric: str | None) -> str:
    reported = spec.reported_metrics
    validation = spec.data is not None and spec.data.validation
    metric = metric or (spec.expect[0].metric if spec.expect else "val_loss" if validation else "loss")
    if metric not in reported:
        raise ConfigError(
            Problem(f"{metric!r} is not a metric these runs report ({', '.join(reported)}).", where="--metric")
        )
    return metric


def _checked_points(config: str, overrides: Iterable[str], points: list[dict]) -> tuple[list[dict], list]:
    """Each grid point as the file would take it: the refused ones are reported, the others run."""
    good, invalid = [], []
    for point in points:
        try:
            spec = load_spec(config, [*overrides, *(f"{key}={text}" for key, text in point.items())])
            if spec.fit.distribute == "multi_worker":
                raise ConfigError(
                    Problem(
                        "a sweep trains its trials on this machine, and multi_worker trials would all claim the "
                        "ports of one TF_CONFIG; sweep with fit.distribute none or mirrored.",
                        where="fit.distribute",
                    )
                )
        except ConfigError as error:
            invalid.append((point, error))
        else:
            good.append(point)
    return good, invalid


def fingerprint(config: str, overrides: Iterable[str]) -> str:
    """The experiment as written (with its --set values), but `sweep:`: the same on every machine."""
    from ..overrides import apply_overrides
    from ..yamlio import load_yaml_file

    document = load_yaml_file(config)
    apply_overrides(document, tuple(overrides))
    data = {key: value for key, value in document.data.items() if key != "sweep"}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=repr).encode()).hexdigest()[:16]


def _folder(name: str, study: str, out: str | None) -> Path:
    """`--out`, or `runs/NAME/sweep-STUDY`: no timestamp, so that the same command finds its study again."""
    from ..run_layout import RUNS_ROOT

    return Path(out) if out is not None else RUNS_ROOT / name / f"sweep-{study}"
