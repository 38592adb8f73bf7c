"""`sweep.sampler` and `sweep.pruner`: Optuna's samplers and pruners by name, each argument declared once.

Nothing here imports Optuna (`nnflow check` never does): the names, the Optuna class each builds
and the arguments a file may give are declared in SAMPLERS and PRUNERS, and
tests/test_sweep_spec.py compares them with Optuna's own signatures, so an upgrade that
adds, removes or renames an argument fails a test instead of a sweep.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..catalog import did_you_mean
from ..yamlio import KeyPath
from .fields import INVALID, OPTIONAL, Boolean, Custom, Field, Integer, Section
from .fields import Choice as OneOf
from .problems import MAX_COUNT, ProblemCollector, describe, integer

Conflicts = Callable[[Mapping[str, Any]], list[tuple[str, str]]]  # arguments -> [(argument, why)]


def _no_conflicts(arguments: Mapping[str, Any]) -> list[tuple[str, str]]:
    return []


@dataclass(frozen=True)
class Method:
    """A sampler or a pruner: the Optuna class it builds and the arguments a file may give it."""

    optuna_class: str  # "optuna.samplers.TPESampler"
    summary: str  # what it is for, in one line (docs, schema)
    arguments: Section
    refused: Mapping[str, str] = field(default_factory=dict)  # argument of the class -> why a file may not give it
    package: str | None = None  # a package Optuna needs for it, which nnflow does not install
    conflicts: Conflicts = _no_conflicts  # the combinations of arguments the class refuses

    @property
    def argument_names(self) -> tuple[str, ...]:
        return self.arguments.keys


def _count(minimum: int) -> Integer:
    return Integer(
        minimum, MAX_COUNT, "a non-negative integer" if minimum == 0 else f"an integer of at least {minimum}"
    )


def _check_auto_or_count(found: ProblemCollector, value: Any, path: KeyPath) -> Any:
    if value == "auto":
        return value
    checked = integer(found, value, path, minimum=1, what="`auto` or a positive integer (epochs)")
    return INVALID if checked is None else checked


_AUTO_OR_COUNT = Custom(
    _check_auto_or_count,
    lambda: {"anyOf": [{"const": "auto"}, {"type": "integer", "minimum": 1, "maximum": MAX_COUNT}]},
)

SEED = "the sampler is seeded with the experiment's `seed` (the top-level key), so that a sweep can be repeated"
DEPRECATED_4_9 = "Optuna deprecates it since 4.9 and removes it in 6.0"
FUNCTION = "it takes a Python function, which an experiment file cannot hold"
ONLY_A_WARNING = "it only switches one of Optuna's warnings"


def _tpe_conflicts(arguments: Mapping[str, Any]) -> list[tuple[str, str]]:
    if arguments.get("group") is True and arguments.get("multivariate") is False:
        return [("group", "`group: true` needs the multivariate TPE; remove `multivariate: false`.")]
    return []


def _cmaes_conflicts(arguments: Mapping[str, Any]) -> list[tuple[str, str]]:
    if arguments.get("lr_adapt") is True and (arguments.get("use_separable_cma") or arguments.get("with_margin")):
        return [("lr_adapt", "`lr_adapt: true` cannot be combined with `use_separable_cma` or `with_margin`.")]
    if arguments.get("use_separable_cma") is True and arguments.get("with_margin") is True:
        return [("with_margin", "`with_margin: true` cannot be combined with `use_separable_cma: true`.")]
    return []


def _bootstrap_conflicts(auto_argument: str, default: Any) -> Conflicts:
    def conflicts(arguments: Mapping[str, Any]) -> list[tuple[str, str]]:
        bootstrap = arguments.get("bootstrap_count", 0)
        if isinstance(bootstrap, int) and bootstrap > 0 and arguments.get(auto_argument, default) == "auto":
            return [("bootstrap_count", f"`bootstrap_count` above 0 needs `{auto_argument}` as a number, not `auto`.")]
        return []

    return conflicts


def _arguments(title: str, *fields: Field) -> Section:
    return Section(f"the arguments of the {title}", fields)


SAMPLERS: Mapping[str, Method] = MappingProxyType({
    "tpe": Method(
        "optuna.samplers.TPESampler",
        "Tree-structured Parzen Estimator: draws where good trials cluster (the default)",
        _arguments(
            "`tpe` sampler",
            Field("n_startup_trials", _count(0), OPTIONAL, "random trials before the model takes over (Optuna: 10)"),
            Field("n_ei_candidates", _count(1), OPTIONAL, "candidates scored for each draw (Optuna: 24)"),
            Field("multivariate", Boolean(), OPTIONAL, "model the parameters together rather than one by one"),
            Field("group", Boolean(), OPTIONAL, "multivariate TPE on each group of parameters that occur together"),
            Field("constant_liar", Boolean(), OPTIONAL, "parallel workers avoid the points running trials hold (Optuna: true)"),
        ),
        refused={
            "seed": SEED,
            "consider_prior": "Optuna deprecates it since 4.3 and removes it in 6.0",
            "prior_weight": DEPRECATED_4_9,
            "consider_magic_clip": DEPRECATED_4_9,
            "consider_endpoints": DEPRECATED_4_9,
            "gamma": FUNCTION,
            "weights": FUNCTION,
            "warn_independent_sampling": ONLY_A_WARNING,
            "constraints_func": FUNCTION,
        },
        conflicts=_tpe_conflicts,
    ),
    "random": Method(
        "optuna.samplers.RandomSampler", "independent uniform draws: a baseline", _arguments("`random` sampler"),
        refused={"seed": SEED},
    ),
    "grid": Method(
        "optuna.samplers.GridSampler",
        "every combination of the space once (each entry a list, an int range, or a float range with a step)",
        _arguments("`grid` sampler"),
        refused={"seed": SEED, "search_space": "the grid is `sweep.space`"},
    ),
    "cmaes": Method(
        "optuna.samplers.CmaEsSampler",
        "CMA-ES: adapts a Gaussian over the numeric ranges (lists are drawn at random)",
        _arguments(
            "`cmaes` sampler",
            Field("n_startup_trials", _count(0), OPTIONAL, "random trials before CMA-ES starts (Optuna: 1)"),
            Field("popsize", _count(2), OPTIONAL, "trials per generation (Optuna: from the number of parameters)"),
            Field("consider_pruned_trials", Boolean(), OPTIONAL, "learn from pruned trials too (with hyperband)"),
            Field("use_separable_cma", Boolean(), OPTIONAL, "a diagonal covariance: faster on separable problems"),
            Field("with_margin", Boolean(), OPTIONAL, "keeps integer and stepped ranges from collapsing to one value"),
            Field("lr_adapt", Boolean(), OPTIONAL, "adapts the learning rate, for noisy or multimodal problems"),
        ),
        refused={
            "seed": SEED,
            "x0": DEPRECATED_4_9,
            "sigma0": DEPRECATED_4_9,
            "restart_strategy": "Optuna ignores it since 4.4 and removes it in 6.0",
            "inc_popsize": "Optuna ignores it since 4.4 and removes it in 6.0",
            "independent_sampler": "it takes a sampler object; lists and first trials are drawn at random",
            "warn_independent_sampling": ONLY_A_WARNING,
            "source_trials": "it takes trials of another study",
        },
        package="cmaes",
        conflicts=_cmaes_conflicts,
    ),
    "qmc": Method(
        "optuna.samplers.QMCSampler",
        "quasi-Monte Carlo: low-discrepancy points that cover the ranges evenly",
        _arguments(
            "`qmc` sampler",
            Field("qmc_type", OneOf(("sobol", "halton"), "sobol or halton", suggest=True), OPTIONAL, "the sequence (Optuna: sobol)"),
            Field("scramble", Boolean(), OPTIONAL, "randomise the sequence, seeded with `seed` (Optuna: false)"),
        ),
        refused={
            "seed": SEED,
            "independent_sampler": "it takes a sampler object; lists are drawn at random",
            "warn_asynchronous_seeding": ONLY_A_WARNING,
            "warn_independent_sampling": ONLY_A_WARNING,
        },
        package="scipy",
    ),
})  # fmt: skip

PRUNERS: Mapping[str, Method] = MappingProxyType({
    "none": Method("optuna.pruners.NopPruner", "every trial trains all its epochs (the default)", _arguments("`none` pruner")),
    "median": Method(
        "optuna.pruners.MedianPruner",
        "stops a trial whose metric is worse than the median of earlier trials at the same epoch",
        _arguments(
            "`median` pruner",
            Field("n_startup_trials", _count(0), OPTIONAL, "trials that finish before any is pruned (Optuna: 5)"),
            Field("n_warmup_steps", _count(0), OPTIONAL, "epochs a trial runs before it can be pruned (Optuna: 0)"),
            Field("interval_steps", _count(1), OPTIONAL, "epochs between two pruning checks (Optuna: 1)"),
            Field("n_min_trials", _count(1), OPTIONAL, "trials that must have reached an epoch to compare at it (Optuna: 1)"),
        ),
    ),
    "hyperband": Method(
        "optuna.pruners.HyperbandPruner",
        "successive halving over several budgets at once",
        _arguments(
            "`hyperband` pruner",
            Field("min_resource", _count(1), OPTIONAL, "epochs every trial gets (Optuna: 1)"),
            Field("max_resource", _AUTO_OR_COUNT, OPTIONAL, "epochs of a full trial, or auto: from the first finished one (Optuna: auto)"),
            Field("reduction_factor", _count(2), OPTIONAL, "1/factor of the trials go on at each rung (Optuna: 3)"),
            Field("bootstrap_count", _count(0), OPTIONAL, "trials a rung needs before it prunes (Optuna: 0)"),
        ),
        conflicts=_bootstrap_conflicts("max_resource", "auto"),
    ),
    "successive_halving": Method(
        "optuna.pruners.SuccessiveHalvingPruner",
        "asynchronous successive halving: only the best 1/factor of the trials go on at each rung",
        _arguments(
            "`successive_halving` pruner",
            Field("min_resource", _AUTO_OR_COUNT, OPTIONAL, "epochs before the first rung, or auto (Optuna: auto)"),
            Field("reduction_factor", _count(2), OPTIONAL, "1/factor of the trials go on at each rung (Optuna: 4)"),
            Field("min_early_stopping_rate", _count(0), OPTIONAL, "rungs skipped at the start (Optuna: 0)"),
            Field("bootstrap_count", _count(0), OPTIONAL, "trials a rung needs before it prunes (Optuna: 0)"),
        ),
        conflicts=_bootstrap_conflicts("min_resource", "auto"),
    ),
})  # fmt: skip


def check_method(
    found: ProblemCollector, value: Any, path: KeyPath, table: Mapping[str, Method], kind: str
) -> tuple[str, Mapping[str, Any]] | Any:
    """`tpe` or `{tpe: {n_startup_trials: 5}}` -> ("tpe", {"n_startup_trials": 5}), or INVALID."""
    arguments: Any
    if isinstance(value, str):
        name, arguments, name_path = value, {}, path
    elif isinstance(value, dict) and len(value) == 1:
        ((name, arguments),) = value.items()
        name_path = path + (name,)
    else:
        found.report(
            path,
            f"expected a {kind} name ({', '.join(table)}) or `{{name: {{arguments}}}}`; received {describe(value)}.",
        )
        return INVALID
    if name not in table:
        hint = did_you_mean(name, list(table))
        found.report(
            name_path,
            f"unknown {kind} {name!r}. {hint or 'Known: ' + ', '.join(table) + '.'}".rstrip(),
            key=name_path != path,
        )
        return INVALID
    method = table[name]
    if arguments is None:
        arguments = {}
    checked = _check_arguments(found, method, arguments, name_path, kind, name)
    if method.package is not None and importlib.util.find_spec(method.package) is None:
        found.report(
            name_path,
            f"the {name} {kind} needs the `{method.package}` package, which is not installed here; "
            f"install it with `pip install {method.package}` (in the environment that runs nnflow), or choose another {kind}.",
            key=name_path != path,
        )
        return INVALID
    return INVALID if checked is None else (name, MappingProxyType(checked))


def _check_arguments(
    found: ProblemCollector, method: Method, arguments: Any, path: KeyPath, kind: str, name: str
) -> dict[str, Any] | None:
    """The arguments as the file gives them (no defaults added: Optuna's apply), or None after a problem."""
    if not isinstance(arguments, dict):
        found.report(path, f"the arguments of the {name} {kind} must be a mapping; received {describe(arguments)}.")
        return None
    valid = True
    for argument in arguments:
        if argument in method.refused:
            found.report(
                path + (argument,), f"`{argument}` cannot be given here: {method.refused[argument]}.", key=True
            )
            valid = False
    allowed = {key: item for key, item in arguments.items() if key not in method.refused}
    checked, _ = method.arguments.check(found, allowed, path)
    if checked is None:
        return None
    for argument, why in method.conflicts(allowed):
        found.report(path + (argument,), why)
        valid = False
    return dict(allowed) if valid else None


def method_schema(table: Mapping[str, Method]) -> dict:
    """A name, or `{name: {arguments}}` with one key."""
    with_arguments = [
        {
            "type": "object",
            "properties": {name: {"anyOf": [method.arguments.json_schema(), {"type": "null"}]}},
            "required": [name],
            "additionalProperties": False,
            "description": method.summary,
        }
        for name, method in table.items()
    ]
    return {"anyOf": [{"enum": list(table)}, *with_arguments]}


def method_data(name: str, arguments: Mapping[str, Any]) -> Any:
    """As the resolved file writes it: the bare name, or `{name: {arguments}}`."""
    return {name: dict(arguments)} if arguments else name
