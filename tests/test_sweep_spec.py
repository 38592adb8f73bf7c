"""The `sweep:` section (issue 14): checked by `nnflow check` with located, did-you-mean errors, each
candidate of the space judged as `--set` would be; its grid; `set_text`; the sampler and pruner
tables against Optuna's own signatures. No TensorFlow; only the last tests import Optuna.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import textwrap
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import CONFIGS
from nnflow.errors import ConfigError
from nnflow.overrides import parse_override
from nnflow.spec import (
    PRUNERS,
    SAMPLERS,
    Choice,
    FloatRange,
    IntRange,
    SweepSpec,
    check_candidate,
    load_spec,
    set_text,
    spec_from_text,
)
from nnflow.yamlio import load_yaml_file, parse_yaml

# Lines 1-6; the sweep's own keys start on line 7, column 3.
BASE = """\
layers:
  - Dense: {units: 16, input_dim: 4}
  - Dropout: 0.1
  - Dense: {units: 3, activation: softmax}
compile: {loss: sparse_categorical_crossentropy, optimizer: {Adam: {learning_rate: 0.01}}, metrics: [accuracy]}
sweep:
"""
SPACE = "space: {fit.epochs: [1, 2]}"


def with_sweep(body: str) -> str:
    return BASE + textwrap.indent(body, "  ") + "\n"


def the_problem(body: str, overrides=()) -> str:
    """The one problem `check` finds in the file with this `sweep:` body."""
    with pytest.raises(ConfigError) as caught:
        spec_from_text(with_sweep(body), overrides, source="x.yaml")
    assert len(caught.value.problems) == 1, str(caught.value)
    return str(caught.value.problems[0])


# ---------------------------------------------------------------------------
# Every problem is located: (the sweep's body, where, what is said)

SECTION = [
    ("trails: 5\n" + SPACE, "7:3 sweep.trails", "unknown key 'trails' in `sweep`. Did you mean 'trials'?"),
    ("trials: 5", "7:3 sweep", "`sweep` needs a `space:`"),
    (f"metric: val_acuracy\n{SPACE}", "7:11 sweep.metric", "'val_acuracy' is not a metric the runs report. Did you mean 'val_accuracy'"),
    (f"metric: 3\n{SPACE}", "7:11 sweep.metric", "expected a metric name"),
    (f"direction: maximise\n{SPACE}", "7:14 sweep.direction", "expected minimize, maximize or null; received the string 'maximise'. Did you mean 'maximize'?"),
    (f"trials: 0\n{SPACE}", "7:11 sweep.trials", "expected a positive integer; received 0."),
    (f"trials: 2.0\n{SPACE}", "7:11 sweep.trials", "received 2.0 (write it without the decimal point)"),
    (f"trials: true\n{SPACE}", "7:11 sweep.trials", "expected a positive integer; received the boolean true"),
    (f"max_failures: -1\n{SPACE}", "7:17 sweep.max_failures", "expected a non-negative integer; received -1."),
]  # fmt: skip

SPACE_FORM = [
    ("space: [1, 2]", "7:10 sweep.space", "`sweep.space` must be a mapping of keys"),
    ("space: {}", "7:10 sweep.space", "`sweep.space` is empty"),
    ("space:\n  fit.epochs: 3", "8:17 sweep.space.fit.epochs", "expected a list of candidates (`[16, 32]`) or a range"),
    ("space:\n  fit.epochs: []", "8:17 sweep.space.fit.epochs", "an empty list has no candidates"),
    ("space:\n  fit.epochs: [1, 2, 1]", "8:24 sweep.space.fit.epochs[2]", "the candidate 1 is listed twice."),
    ("space:\n  fit.epochs: {int: [8, 4]}", "8:23 sweep.space.fit.epochs.int", "the low end 8 is above the high end 4."),
    ("space:\n  layers.1.rate: {float: [0.0, 0.5], log: true}", "8:29 sweep.space.layers.1.rate.float[0]", "a log range needs a low end above 0; received 0.0."),
    ("space:\n  fit.epochs: {int: [1, 9], log: true, step: 2}", "8:48 sweep.space.fit.epochs.step", "a log range takes no step"),
    ("space:\n  fit.epochs: {int: [1, 8], step: 3}", "8:37 sweep.space.fit.epochs.step", "the step 3 does not divide the range from 1 to 8"),
    ("space:\n  layers.1.rate: {float: [0.0, 0.5], step: 0.3}", "8:46 sweep.space.layers.1.rate.step", "the step 0.3 does not divide"),
    ("space:\n  layers.1.rate: {float: [0.0, 0.5], step: 0}", "8:46 sweep.space.layers.1.rate.step", "expected a step above 0; received the number 0."),
    ("space:\n  fit.epochs: {int: [1, 3], step: 0}", "8:37 sweep.space.fit.epochs.step", "expected a positive integer step; received 0."),
    ("space:\n  fit.epochs: {int: [1.5, 3]}", "8:24 sweep.space.fit.epochs.int[0]", "expected an integer (an int range); received the number 1.5."),
    ("space:\n  fit.epochs: {int: [1.0, 3]}", "8:24 sweep.space.fit.epochs.int[0]", "received 1.0 (write it without the decimal point)"),
    ("space:\n  fit.epochs: {int: [true, 3]}", "8:24 sweep.space.fit.epochs.int[0]", "received the boolean true"),
    ("space:\n  layers.1.rate: {float: [0.0, .nan]}", "8:34 sweep.space.layers.1.rate.float[1]", "expected a finite number; received the number .nan."),
    ("space:\n  fit.epochs: {itn: [1, 3]}", "8:18 sweep.space.fit.epochs.itn", "unknown key 'itn' in a range. Did you mean 'int'?"),
    ("space:\n  fit.epochs: {int: [1, 3], lgo: true}", "8:31 sweep.space.fit.epochs.lgo", "unknown key 'lgo' in a range. Did you mean 'log'?"),
    ("space:\n  fit.epochs: {int: [1, 3], float: [1, 3]}", "8:17 sweep.space.fit.epochs", "a range is either `int: [low, high]` or `float: [low, high]`, not both."),
    ("space:\n  fit.epochs: {log: true}", "8:17 sweep.space.fit.epochs", "a range needs `int: [low, high]` or `float: [low, high]`"),
    ("space:\n  fit.epochs: {int: 3}", "8:23 sweep.space.fit.epochs.int", "expected [low, high]; received the number 3."),
    ("space:\n  fit.epochs: {int: [1, 2, 3]}", "8:23 sweep.space.fit.epochs.int", "expected [low, high]; received a list of 3."),
    ("space:\n  fit.epochs: {int: [1, 3], log: yes}", "8:36 sweep.space.fit.epochs.log", "expected true or false"),
    ("space:\n  sweep.trials: [1, 2]", "8:5 sweep.space.sweep.trials", "a sweep varies the experiment, not its own settings."),
    ("space:\n  fit..epochs: [1, 2]", "8:5 sweep.space.fit..epochs", "expected a `--set` key, like `fit.batch_size`"),
    ("space:\n  3: [1, 2]", "8:5 sweep.space.3", "3: unknown key '3' in the experiment file."),
]  # fmt: skip

# A space key and its candidates are judged by the file's own checks, moved to where the sweep writes them.
CANDIDATES = [
    ("space:\n  layers.0.unitz: {int: [8, 128], log: true}", "8:5 sweep.space.layers.0.unitz", "layers[0].Dense.unitz: Dense has no argument 'unitz'. Did you mean 'units'?"),
    ("space:\n  layers.5.units: [8, 16]", "8:5 sweep.space.layers.5.units", "index 5 is out of range: layers has 3 item(s)."),
    ("space:\n  fit.epoch: [1, 2]", "8:5 sweep.space.fit.epoch", "fit.epoch: unknown key 'epoch' in `fit`. Did you mean 'epochs'?"),
    ("space:\n  layers.0.units: {int: [0, 8]}", "8:28 sweep.space.layers.0.units.int[0]", "the low end 0 is refused: layers[0].Dense.units: expected a positive integer; received 0."),
    ("space:\n  layers.1.rate: {float: [0.0, 1.5]}", "8:34 sweep.space.layers.1.rate.float[1]", "the high end 1.5 is refused: layers[1].Dropout.rate: expected a rate in [0, 1)"),
    ("space:\n  fit.batch_size: [16, 0, 64]", "8:26 sweep.space.fit.batch_size[1]", "the candidate 0 is refused: fit.batch_size: expected a positive integer; received 0."),
    ("space:\n  compile.optimizer.Adam.learning_rate: {float: [-1.0, 0.1]}", "8:52 sweep.space.compile.optimizer.Adam.learning_rate.float[0]", "the low end -1.0 is refused"),
    ("space:\n  layers.0.activation: [relu, relux]", "8:33 sweep.space.layers.0.activation[1]", "the candidate relux is refused: layers[0].Dense.activation: unknown activation 'relux'"),
    ("space:\n  layers: [[Dense: 3], [Dens: 3]]", "8:26 sweep.space.layers[1]", "the candidate [{Dens: 3}] is refused: layers[0].Dens: unknown layer 'Dens'"),
    ("space:\n  layers.0.units: [1, 2]\n  layers.0.Dense.units: [3]", "9:5 sweep.space.layers.0.Dense.units", "sets the same key as `layers.0.units` sets (layers[0].Dense.units)"),
    ("space:\n  layers: [[Dense: 1]]\n  layers.0.units: [3]", "9:5 sweep.space.layers.0.units", "sets a key that overlaps what `layers` sets"),
]  # fmt: skip

METHODS = [
    (f"sampler: tpee\n{SPACE}", "7:12 sweep.sampler", "unknown sampler 'tpee'. Did you mean 'tpe'?"),
    (f"sampler: {{tpee: {{}}}}\n{SPACE}", "7:13 sweep.sampler.tpee", "unknown sampler 'tpee'. Did you mean 'tpe'?"),
    (f"sampler: [tpe]\n{SPACE}", "7:12 sweep.sampler", "expected a sampler name (tpe, random, grid, cmaes, qmc)"),
    (f"sampler: {{tpe: 3}}\n{SPACE}", "7:18 sweep.sampler.tpe", "the arguments of the tpe sampler must be a mapping"),
    (f"sampler: {{tpe: {{n_startup_trial: 3}}}}\n{SPACE}", "7:19 sweep.sampler.tpe.n_startup_trial", "unknown key 'n_startup_trial' in the arguments of the `tpe` sampler. Did you mean 'n_startup_trials'?"),
    (f"sampler: {{tpe: {{n_startup_trials: -1}}}}\n{SPACE}", "7:37 sweep.sampler.tpe.n_startup_trials", "expected a non-negative integer; received -1."),
    (f"sampler: {{tpe: {{multivariate: 1}}}}\n{SPACE}", "7:33 sweep.sampler.tpe.multivariate", "expected true or false; received the number 1."),
    (f"sampler: {{tpe: {{seed: 1}}}}\n{SPACE}", "7:19 sweep.sampler.tpe.seed", "`seed` cannot be given here: the sampler is seeded with the experiment's `seed`"),
    (f"sampler: {{random: {{seed: 1}}}}\n{SPACE}", "7:22 sweep.sampler.random.seed", "`seed` cannot be given here"),
    (f"sampler: {{tpe: {{prior_weight: 1.0}}}}\n{SPACE}", "7:19 sweep.sampler.tpe.prior_weight", "Optuna deprecates it since 4.9"),
    (f"sampler: {{tpe: {{group: true, multivariate: false}}}}\n{SPACE}", "7:26 sweep.sampler.tpe.group", "`group: true` needs the multivariate TPE"),
    (f"sampler: {{random: {{n_startup_trials: 3}}}}\n{SPACE}", "7:22 sweep.sampler.random.n_startup_trials", "unknown key 'n_startup_trials' in the arguments of the `random` sampler."),
    (f"sampler: {{grid: {{search_space: {{}}}}}}\n{SPACE}", "7:20 sweep.sampler.grid.search_space", "the grid is `sweep.space`"),
    (f"sampler: {{qmc: {{qmc_type: sobl}}}}\n{SPACE}", "7:29 sweep.sampler.qmc.qmc_type", "expected sobol or halton; received the string 'sobl'. Did you mean 'sobol'?"),
    (f"sampler: {{cmaes: {{popsize: 1}}}}\n{SPACE}", "7:30 sweep.sampler.cmaes.popsize", "expected an integer of at least 2; received 1."),
    (f"sampler: {{cmaes: {{sigma0: 0.1}}}}\n{SPACE}", "7:21 sweep.sampler.cmaes.sigma0", "Optuna deprecates it since 4.9"),
    (f"sampler: {{cmaes: {{lr_adapt: true, with_margin: true}}}}\n{SPACE}", "7:31 sweep.sampler.cmaes.lr_adapt", "`lr_adapt: true` cannot be combined"),
    (f"pruner: medain\n{SPACE}", "7:11 sweep.pruner", "unknown pruner 'medain'. Did you mean 'median'?"),
    (f"pruner: {{median: {{interval_steps: 0}}}}\n{SPACE}", "7:37 sweep.pruner.median.interval_steps", "expected an integer of at least 1; received 0."),
    (f"pruner: {{hyperband: {{max_resource: autp}}}}\n{SPACE}", "7:38 sweep.pruner.hyperband.max_resource", "expected `auto` or a positive integer (epochs); received the string 'autp'."),
    (f"pruner: {{hyperband: {{bootstrap_count: 2}}}}\n{SPACE}", "7:41 sweep.pruner.hyperband.bootstrap_count", "`bootstrap_count` above 0 needs `max_resource` as a number"),
    (f"pruner: {{successive_halving: {{reduction_factor: 1}}}}\n{SPACE}", "7:51 sweep.pruner.successive_halving.reduction_factor", "expected an integer of at least 2; received 1."),
    (f"pruner: {{none: {{n_startup_trials: 1}}}}\n{SPACE}", "7:19 sweep.pruner.none.n_startup_trials", "unknown key 'n_startup_trials' in the arguments of the `none` pruner."),
]  # fmt: skip

GRID = [
    ("sampler: grid\nspace: {layers.1.rate: {float: [0.0, 0.5]}}", "8:26 sweep.space.layers.1.rate", "the grid sampler tries every value of each entry: give this float range a `step`"),
    ("sampler: grid\nspace: {fit.epochs: {int: [1, 64], log: true}}", "8:23 sweep.space.fit.epochs", "a log range has no grid"),
    ("sampler: grid\nspace: {fit.epochs: {int: [1, 1000]}, fit.batch_size: {int: [1, 1000]}}", "8:10 sweep.space", "the grid has more than 100,000 points"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "where", "message"), SECTION + SPACE_FORM + CANDIDATES + METHODS + GRID)
def test_each_problem_is_located_with_what_to_do(body, where, message):
    problem = the_problem(body)
    assert problem.startswith(f"x.yaml:{where}: ") and message in problem, problem


def test_a_key_given_twice_is_refused_by_the_reader():
    with pytest.raises(ConfigError, match=r"x.yaml:9:5: duplicate key 'fit.epochs'"):
        spec_from_text(with_sweep("space:\n  fit.epochs: [1, 2]\n  fit.epochs: [3]"), source="x.yaml")


def test_every_problem_of_the_section_is_reported_at_once():
    body = "sampler: tpee\npruner: medain\nspace:\n  layers.0.unitz: [8]\n  fit.batch_size: [0, 16, 16]\n  fit.epochs: {itn: [1, 2]}"
    with pytest.raises(ConfigError) as caught:
        spec_from_text(with_sweep(body), source="x.yaml")
    assert [problem.where for problem in caught.value.problems] == [
        "x.yaml:7:12", "x.yaml:8:11", "x.yaml:10:5", "x.yaml:11:22", "x.yaml:11:29", "x.yaml:12:18",
    ]  # fmt: skip


def test_a_range_is_refused_at_each_end_that_lets_a_bad_value_through():
    with pytest.raises(ConfigError) as caught:
        spec_from_text(with_sweep("space:\n  fit.epochs: {float: [1, 3]}"), source="x.yaml")
    assert [(problem.where, problem.path) for problem in caught.value.problems] == [
        ("x.yaml:8:26", "sweep.space.fit.epochs.float[0]"),
        ("x.yaml:8:29", "sweep.space.fit.epochs.float[1]"),
    ]
    assert caught.value.problems[0].message == (
        "the low end 1.0 is refused: fit.epochs: expected a positive integer; received 1.0 (write it without the decimal point)."
    )


def test_a_value_inside_a_range_is_checked_when_its_ends_pass(monkeypatch):
    """The middle guards a rule that is not a bound: here, a made-up one that refuses 0.25 alone."""
    from nnflow.spec import sweep_space

    real = sweep_space.check_candidates.__globals__["set_text"]
    monkeypatch.setitem(
        sweep_space.check_candidates.__globals__,
        "set_text",
        lambda key, value: real(key, 2.0 if value == 0.25 else value),
    )
    problem = the_problem("space:\n  layers.1.rate: {float: [0.0, 0.5]}")
    assert problem.startswith("x.yaml:8:28 sweep.space.layers.1.rate.float: the value 0.25 of the range is refused: ")


def test_a_metric_of_a_split_the_data_lacks_is_refused():
    text = "data: {train: t.csv, target: y, validation: 0}\n" + with_sweep(f"metric: val_accuracy\n{SPACE}")
    with pytest.raises(ConfigError) as caught:
        spec_from_text(text, source="x.yaml")
    assert (
        str(caught.value)
        == "x.yaml:8:11 sweep.metric: 'val_accuracy' needs a validation split, but `data.validation` is 0."
    )


def test_a_candidate_that_loses_the_sweeps_metric_is_refused(tmp_path):
    data = "data: {train: t.csv, target: y}\n"
    body = "metric: val_loss\nspace: {data.validation: [0, 0.2]}"
    with pytest.raises(ConfigError) as caught:
        spec_from_text(data + with_sweep(body), source="x.yaml")
    (problem,) = caught.value.problems
    assert problem.where == "x.yaml:9:29" and problem.path == "sweep.space.data.validation[0]"
    assert "the candidate 0 is refused: the runs would not report 'val_loss', the sweep's `metric`." in problem.message


def test_a_candidate_is_judged_with_the_other_sections(tmp_path):
    """Cross-section checks hold for each candidate: a monitor needs the validation split."""
    text = "data: {train: t.csv, target: y}\n" + BASE.replace("sweep:", "fit: {callbacks: [EarlyStopping: {}]}\nsweep:")
    with pytest.raises(
        ConfigError, match=r"sweep.space.data.validation\[0\]: the candidate 0 is refused: fit.callbacks"
    ):
        spec_from_text(text + "  space: {data.validation: [0, 0.2]}\n", source="x.yaml")


def test_a_missing_optional_package_is_named(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "cmaes" else real(name, *a))
    problem = the_problem(f"sampler: cmaes\n{SPACE}")
    assert problem.startswith("x.yaml:7:12 sweep.sampler: the cmaes sampler needs the `cmaes` package")
    assert "pip install cmaes" in problem


# ---------------------------------------------------------------------------
# Good sections


def test_the_shipped_sweep_example():
    spec = load_spec(CONFIGS / "iris_sweep.yaml")
    assert spec.sweep == SweepSpec(
        metric="val_loss",
        direction=None,
        trials=12,
        max_failures=None,
        sampler="tpe",
        sampler_args={},
        pruner="median",
        pruner_args={},
        space={
            "layers.0.units": IntRange(4, 64, log=True),
            "layers.1.rate": FloatRange(0.0, 0.5),
            "compile.optimizer.Adam.learning_rate": FloatRange(1.0e-3, 0.1, log=True),
            "fit.batch_size": Choice((16, 32)),
        },
    )
    assert list(spec.sweep.space) == ["layers.0.units", "layers.1.rate", "compile.optimizer.Adam.learning_rate", "fit.batch_size"]  # fmt: skip
    assert not spec.fit.callbacks and spec.fit.epochs == 30


def test_defaults_and_arguments():
    body = (
        "sampler: {tpe: {n_startup_trials: 5, multivariate: true, group: true}}\n"
        "pruner: {hyperband: {min_resource: 2, max_resource: 30, bootstrap_count: 1}}\n"
        "direction: maximize\nmax_failures: 0\n" + SPACE
    )
    sweep = spec_from_text(with_sweep(body)).sweep
    assert (sweep.sampler, dict(sweep.sampler_args)) == ("tpe", {"n_startup_trials": 5, "multivariate": True, "group": True})  # fmt: skip
    assert (sweep.pruner, dict(sweep.pruner_args)) == ("hyperband", {"min_resource": 2, "max_resource": 30, "bootstrap_count": 1})  # fmt: skip
    assert (sweep.direction, sweep.max_failures, sweep.trials, sweep.metric) == ("maximize", 0, None, None)
    plain = spec_from_text(with_sweep("metric: null\ntrials: null\n" + SPACE)).sweep
    assert (plain.sampler, plain.sampler_args, plain.pruner, plain.pruner_args) == ("tpe", {}, "none", {})


@pytest.mark.parametrize(
    "body",
    [
        "space: {layers: [[Dense: 3], [Dense: 4, Dense: 3]]}",
        "space: {layers.0.Dense: [{units: 4}, {units: 8, activation: tanh}]}",
        "space: {layers.0.units: {int: [1, 9], step: 2}, layers.1.rate: {float: [0, 0.3], step: 0.1}}",
        "space: {compile.optimizer: [adam, sgd, {RMSprop: {rho: 0.8}}], fit.shuffle: [true, false]}",
        "space: {compile.optimizer.Adam.learning_rate: {float: [1.0e-5, 1.0], log: true}}",
        "space: {layers.0.units: {int: [7, 7]}, seed: [1, 2, 3]}",
        "sampler: {cmaes: {popsize: 4, with_margin: true}}\n" + SPACE,
        "sampler: {qmc: {qmc_type: halton, scramble: true}}\npruner: {successive_halving: {min_resource: 1, bootstrap_count: 2}}\n" + SPACE,
        "sampler: grid\npruner: {median: {n_startup_trials: 0, n_warmup_steps: 5, interval_steps: 2, n_min_trials: 3}}\n" + SPACE,
    ],
)  # fmt: skip
def test_check_accepts_good_sections(body):
    assert spec_from_text(with_sweep(body)).sweep is not None


def test_lists_and_mappings_are_candidates():
    text = "data: {train: t.csv, target: y}\n" + with_sweep(
        "space: {data.features: [[a, b], [a, c]], data.drop: [[], [c]]}"
    )
    space = spec_from_text(text).sweep.space
    assert space["data.features"] == Choice((["a", "b"], ["a", "c"])) and space["data.drop"] == Choice(([], ["c"]))


def test_train_ignores_the_section():
    """The experiment's every other value is what it is without `sweep:`."""
    with_section = load_spec(CONFIGS / "iris_sweep.yaml")
    text = (CONFIGS / "iris_sweep.yaml").read_text()
    without = spec_from_text(text[: text.index("\nsweep:")], source="x.yaml", base_dir=CONFIGS)
    assert dataclasses.replace(with_section, sweep=None, source=None) == without
    resolved = with_section.to_dict()
    assert resolved.pop("sweep")["space"]["fit.batch_size"] == [16, 32]
    assert resolved == {**without.to_dict(), "name": "iris-sweep"}


def test_overrides_reach_the_section():
    spec = load_spec(
        CONFIGS / "iris_sweep.yaml",
        ["sweep.trials=5", "sweep.sampler=random", "sweep.space.fit.epochs=[5, 10]", "sweep.space.fit.batch_size=[8]"],
    )
    assert (spec.sweep.trials, spec.sweep.sampler) == (5, "random")
    assert spec.sweep.space["fit.epochs"] == Choice((5, 10)) and spec.sweep.space["fit.batch_size"] == Choice((8,))
    assert list(spec.sweep.space)[-1] == "fit.epochs"
    with pytest.raises(ConfigError) as caught:
        load_spec(CONFIGS / "iris_sweep.yaml", ["sweep.space.fit.epochs=[0, 2]"])
    assert str(caught.value).startswith(
        "--set sweep.space.fit.epochs=[0, 2] sweep.space.fit.epochs[0]: the candidate 0 is refused: fit.epochs:"
    )


def test_a_run_folders_resolved_file_reads_back_with_its_sweep(tmp_path):
    from nnflow.yamlio import dump_yaml

    spec = load_spec(CONFIGS / "iris_sweep.yaml")
    resolved = spec.to_dict()
    (tmp_path / "experiment.yaml").write_text(dump_yaml(resolved))
    again = load_spec(tmp_path / "experiment.yaml")
    assert again.sweep == spec.sweep and again.to_dict() == resolved


def test_check_candidate_judges_overrides_without_changing_the_document():
    document = load_yaml_file(CONFIGS / "iris.yaml")
    before = repr(document.data)
    assert check_candidate(document, ["layers.0.units=8"], base_dir=CONFIGS, default_name="iris") == []
    (problem,) = check_candidate(document, ["layers.0.units=0"], base_dir=CONFIGS, default_name="iris")
    assert (problem.where, problem.path) == ("--set layers.0.units=0", "layers[0].Dense.units")
    assert repr(document.data) == before and not document.overridden


def test_a_sweep_adds_little_to_check():
    """Each candidate costs one check of the file (about half a millisecond), not a reload."""
    path = CONFIGS / "iris_sweep.yaml"
    document = load_yaml_file(path)
    start = time.perf_counter()
    for _ in range(20):
        check_candidate(document, ["layers.0.units=8"], base_dir=CONFIGS, default_name="iris_sweep")
    assert (time.perf_counter() - start) / 20 < 0.01


# ---------------------------------------------------------------------------
# The grid, and `set_text`


def test_grid_points_in_file_order():
    sweep = spec_from_text(
        with_sweep(
            "sampler: grid\nspace: {fit.epochs: {int: [1, 5], step: 2}, layers.1.rate: {float: [0.1, 0.3], step: 0.1}, fit.batch_size: [8, 16]}"
        )  # fmt: skip
    ).sweep
    assert sweep.grid_size == 18
    points = sweep.grid_points()
    assert len(points) == 18 and points[0] == {"fit.epochs": 1, "layers.1.rate": 0.1, "fit.batch_size": 8}
    assert points[1] == {"fit.epochs": 1, "layers.1.rate": 0.1, "fit.batch_size": 16}
    assert [point["layers.1.rate"] for point in points[:6:2]] == [0.1, 0.2, 0.3]  # 0.1 + 2 * 0.1 is 0.3 here
    assert points[-1] == {"fit.epochs": 5, "layers.1.rate": 0.3, "fit.batch_size": 16}


def test_grid_size_is_none_when_an_entry_cannot_be_enumerated():
    space = {"a": Choice((1, 2)), "b": FloatRange(0.0, 1.0)}
    sweep = SweepSpec(None, None, None, None, "tpe", {}, "none", {}, space)
    assert sweep.grid_size is None
    with pytest.raises(ValueError, match="cannot be enumerated"):
        sweep.grid_points()
    assert dataclasses.replace(sweep, space={"a": IntRange(1, 10, log=True)}).grid_size is None
    assert dataclasses.replace(sweep, space={"a": IntRange(0, 10, step=5), "b": Choice(([1], {"x": 2}))}).grid_points() == [
        {"a": 0, "b": [1]}, {"a": 0, "b": {"x": 2}}, {"a": 5, "b": [1]}, {"a": 5, "b": {"x": 2}}, {"a": 10, "b": [1]}, {"a": 10, "b": {"x": 2}},
    ]  # fmt: skip


def test_set_text_examples():
    assert set_text("layers.0.units", 8) == "layers.0.units=8"
    assert set_text("data.features", ["a", "b"]) == "data.features=[a, b]"
    assert set_text("x", "8") == "x='8'" and set_text("x", "true") == "x='true'" and set_text("x", None) == "x=null"
    assert set_text("x", "#a") == "x='#a'" and set_text("x", "a\nb") == 'x="a\\nb"'
    assert (
        set_text("compile.optimizer", {"Adam": {"learning_rate": 0.001}})
        == "compile.optimizer={Adam: {learning_rate: 0.001}}"
    )


CHARACTERS = st.characters(
    blacklist_characters="\x00", blacklist_categories=("Cs",)
)  # NULs and lone surrogates: refused in any YAML nnflow reads
YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(alphabet=CHARACTERS),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(CHARACTERS, max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


@given(YAML_VALUES)
@settings(max_examples=300, deadline=None)
def test_set_text_round_trips_through_overrides(value):
    text = set_text("fit.epochs", value)
    assert "\n" not in text
    parts, back = parse_override(text)
    assert parts == ["fit", "epochs"]
    assert back == value and _types(back) == _types(value)


def _types(value):
    if isinstance(value, list):
        return [_types(item) for item in value]
    if isinstance(value, dict):
        return {key: _types(item) for key, item in value.items()}
    return type(value)


def test_set_text_reads_back_through_the_file_reader():
    value = {"a": [1, 2.5, "x y", None, True, "1e3"]}
    assert parse_yaml(set_text("k", value).partition("=")[2]).data == value


# ---------------------------------------------------------------------------
# The declared tables against Optuna itself (this part imports Optuna, never TensorFlow)


def _optuna_class(method):
    import importlib

    module, _, name = method.optuna_class.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize(
    ("kind", "name"), [("sampler", name) for name in SAMPLERS] + [("pruner", name) for name in PRUNERS]
)
def test_every_argument_matches_optunas_signature(kind, name):
    """Declared and refused arguments together are exactly the class's: an upgrade that changes them fails here."""
    method = (SAMPLERS if kind == "sampler" else PRUNERS)[name]
    parameters = set(inspect.signature(_optuna_class(method)).parameters)
    declared = set(method.argument_names)
    assert not declared & set(method.refused)
    assert declared | set(method.refused) == parameters, (
        f"declared but not Optuna's: {sorted(declared - parameters)}; "
        f"Optuna's but not declared: {sorted(parameters - declared - set(method.refused))}"
    )
    if kind == "sampler":
        assert "seed" in method.refused  # the file's `seed` seeds it


@pytest.mark.parametrize(
    ("kind", "name"), [("sampler", name) for name in SAMPLERS] + [("pruner", name) for name in PRUNERS]
)
def test_what_check_accepts_optuna_accepts(kind, name):
    """Each argument at the edge `check` allows, and of the type it allows, builds the Optuna object."""
    import warnings

    from nnflow.spec.fields import Boolean, Custom, Integer
    from nnflow.spec.fields import Choice as OneOf

    method = (SAMPLERS if kind == "sampler" else PRUNERS)[name]
    edge = {}
    for field in method.arguments.fields:
        check = field.check
        if isinstance(check, Integer):
            edge[field.name] = check.minimum
        elif isinstance(check, Boolean):
            edge[field.name] = field.name not in ("use_separable_cma", "lr_adapt")  # exclusive of with_margin
        elif isinstance(check, OneOf):
            edge[field.name] = check.options[-1]
        else:
            assert isinstance(check, Custom)
            edge[field.name] = 1  # `auto` or a positive integer
    assert method.conflicts(edge) == []
    extra = {"search_space": {"x": [1, 2]}} if name == "grid" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental arguments warn
        _optuna_class(method)(**edge, **extra, **({"seed": 1} if kind == "sampler" else {}))


def test_optunas_refusals_are_checks_here():
    """The combinations Optuna raises on are the ones `conflicts` reports."""
    import warnings

    import optuna

    pairs = [
        (SAMPLERS["tpe"], optuna.samplers.TPESampler, {"group": True, "multivariate": False}),
        (SAMPLERS["cmaes"], optuna.samplers.CmaEsSampler, {"lr_adapt": True, "with_margin": True}),
        (SAMPLERS["cmaes"], optuna.samplers.CmaEsSampler, {"use_separable_cma": True, "with_margin": True}),
        (PRUNERS["hyperband"], optuna.pruners.HyperbandPruner, {"bootstrap_count": 1}),
        (PRUNERS["successive_halving"], optuna.pruners.SuccessiveHalvingPruner, {"bootstrap_count": 1}),
    ]
    for method, optuna_class, arguments in pairs:
        assert method.conflicts(arguments), arguments
        with pytest.raises(ValueError), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental arguments warn before the refusal
            optuna_class(**arguments)


def test_sweep_spec_values_are_what_optuna_takes():
    """Ranges fit Optuna's distributions as they are."""
    import optuna

    spec = load_spec(CONFIGS / "iris_sweep.yaml").sweep
    for dimension in spec.space.values():
        if isinstance(dimension, IntRange):
            optuna.distributions.IntDistribution(dimension.low, dimension.high, log=dimension.log, step=dimension.step)
        elif isinstance(dimension, FloatRange):
            optuna.distributions.FloatDistribution(
                dimension.low, dimension.high, log=dimension.log, step=dimension.step
            )
    assert math.isclose(spec.space["compile.optimizer.Adam.learning_rate"].low, 1e-3)
    with pytest.raises(TypeError):
        spec.space["fit.epochs"] = Choice((1,))  # type: ignore[index]  (a read-only mapping)


# ---------------------------------------------------------------------------
# Whatever the section holds, `check` answers with a Spec or with located problems, never a crash

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.sampled_from(["tpe", "auto", "grid", ""])
GOOD_ENTRIES = st.sampled_from(
    [[16, 32], {"int": [1, 8]}, {"float": [0.0, 0.5], "step": 0.25}, {"int": [2, 64], "log": True}]
)
RANGES = st.fixed_dictionaries(
    {"int": st.lists(st.integers(-3, 300) | st.floats(), max_size=3)},
    optional={"log": SCALARS, "step": SCALARS, "itn": SCALARS},
) | st.fixed_dictionaries(
    {"float": st.lists(st.integers(-3, 3) | st.floats(-1, 2), max_size=3)},
    optional={"log": st.booleans(), "step": SCALARS},
)
ENTRIES = GOOD_ENTRIES | st.lists(SCALARS | st.lists(SCALARS, max_size=2), max_size=3) | RANGES | SCALARS
GOOD_KEYS = st.sampled_from(["layers.0.units", "fit.batch_size", "fit.epochs"])
KEYS = GOOD_KEYS | st.sampled_from(
    ["layers.1.rate", "layers.9.units", "fit.epoch", "data.validation", "sweep.trials", "a..b"]
)
ARGUMENTS = st.dictionaries(st.sampled_from(["seed", "n_startup_trials", "max_resource", "group", "qmc_type", "x"]), SCALARS, max_size=2)  # fmt: skip
METHOD = st.sampled_from([*SAMPLERS, *PRUNERS, "tpee"]) | st.dictionaries(st.sampled_from([*SAMPLERS, *PRUNERS]), st.none() | ARGUMENTS, max_size=2)  # fmt: skip
SECTIONS = st.fixed_dictionaries(
    {
        "space": st.dictionaries(GOOD_KEYS, GOOD_ENTRIES, min_size=1)
        | st.dictionaries(KEYS, ENTRIES, max_size=3)
        | SCALARS
    },
    optional={
        "sampler": METHOD,
        "pruner": METHOD,
        "metric": st.sampled_from(["val_loss", "loss", "val_acc", None]) | SCALARS,
        "direction": st.sampled_from(["minimize", "maximize", "max"]) | SCALARS,
        "trials": st.integers(0, 5) | SCALARS,
        "max_failures": st.integers(-1, 5) | SCALARS,
    },
)


@given(SECTIONS)
@settings(max_examples=200, deadline=None)
def test_any_section_is_judged_without_a_crash(section):
    from nnflow.yamlio import dump_yaml

    text = BASE.replace("sweep:\n", "") + dump_yaml({"sweep": section})
    try:
        spec = spec_from_text(text)
    except ConfigError as error:
        assert all(problem.where for problem in error.problems)
    else:
        assert spec.sweep is not None and spec.sweep.space


def test_check_says_what_the_sweep_will_search():
    from click.testing import CliRunner

    from nnflow.cli import cli

    result = CliRunner().invoke(cli, ["check", str(CONFIGS / "iris_sweep.yaml")])
    assert result.exit_code == 0 and result.stdout.rstrip().endswith(
        "; sweep: tpe over 4 keys, median pruner, 12 trials"
    )
