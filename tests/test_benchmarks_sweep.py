"""benchmarks/sweep_speed.py builds the right commands and judges its targets right (no side is run).

The harness is imported, never run: no subprocess, no TensorFlow. What it would start is checked:
the 12 grid points, the `nnflow sweep` command, the 12 `nnflow train` commands, their threads; then
its arithmetic (ratios, targets, the floor) and its check that every side did the same job.
"""

from __future__ import annotations

import ast
import itertools
import os
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import sweep_speed  # noqa: E402

UNITS = ["8", "16", "32", "64"]
RATES = ["0.003", "0.01", "0.03"]


def test_the_grid_is_units_by_learning_rate_in_the_sweeps_order():
    points = sweep_speed.grid_points()
    assert points == [
        {"layers.0.units": units, "compile.optimizer.Adam.learning_rate": rate}
        for units, rate in itertools.product(UNITS, RATES)
    ]
    assert len({tuple(p.values()) for p in points}) == 12


def test_the_sweep_command_names_the_config_the_grid_two_jobs_and_json(tmp_path):
    command = sweep_speed.sweep_command(tmp_path / "sweep")
    at = command.index("sweep")
    assert command[:at] == sweep_speed.nnflow_command()
    assert command[at:] == [
        "sweep",
        str(BENCHMARKS / "configs" / "sweep_iris.yaml"),
        "--grid",
        "layers.0.units=8,16,32,64",
        "--grid",
        "compile.optimizer.Adam.learning_rate=0.003,0.01,0.03",
        "--jobs",
        "2",
        "--out",
        str(tmp_path / "sweep"),
        "--json",
    ]


def test_one_quiet_train_command_per_grid_point_each_into_its_own_folder(tmp_path):
    commands = sweep_speed.train_commands(tmp_path)
    assert len(commands) == 12
    for number, (command, (units, rate)) in enumerate(zip(commands, itertools.product(UNITS, RATES)), start=1):
        at = command.index("train")
        assert command[:at] == sweep_speed.nnflow_command()
        assert command[at:] == [
            "train",
            str(BENCHMARKS / "configs" / "sweep_iris.yaml"),
            "--set",
            f"layers.0.units={units}",
            "--set",
            f"compile.optimizer.Adam.learning_rate={rate}",
            "--out",
            str(tmp_path / f"{number:02d}"),
            "--quiet",
        ]
    assert not any(tmp_path.iterdir())  # built, not run


def test_each_member_process_gets_its_share_of_the_cores_as_the_sweep_gives_it():
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    env = sweep_speed.member_environment(jobs=2, members=12)
    assert env["TF_NUM_INTRAOP_THREADS"] == str(max(1, cores // 2))
    assert env["TF_CPP_MIN_LOG_LEVEL"] == "2"
    assert sweep_speed.member_environment(jobs=2, members=1)["TF_NUM_INTRAOP_THREADS"] == str(cores)


@pytest.mark.parametrize(
    ("sweep", "kerastuner", "per_member", "expected_ratios", "met"),
    [
        (10.0, 40.0, 25.0, (0.25, 0.4), (True, True)),  # exactly on both targets
        (10.5, 40.0, 25.0, (0.2625, 0.42), (False, False)),
        (9.0, 72.0, 20.0, (0.125, 0.45), (True, False)),
        (30.0, 60.0, 100.0, (0.5, 0.3), (False, True)),
    ],
)
def test_the_ratios_are_the_sweeps_median_over_each_other_side_and_the_targets_are_upper_bounds(
    sweep, kerastuner, per_member, expected_ratios, met
):
    ratios = sweep_speed.ratios({"sweep": sweep, "kerastuner": kerastuner, "per-member": per_member})
    assert ratios == pytest.approx({"kerastuner": expected_ratios[0], "per-member": expected_ratios[1]})
    assert sweep_speed.verdict(ratios) == {"kerastuner": met[0], "per-member": met[1]}


def test_a_side_that_ran_the_12_points_to_completion_passes_the_check_however_it_spells_them():
    points = [
        sweep_speed.point_key(int(units), rate) for units, rate in itertools.product(UNITS, ["3e-3", "0.010", 0.03])
    ]
    sweep_speed.check_job("side", ["cmd"], list(reversed(points)), completed=12)


@pytest.mark.parametrize(
    ("points", "completed", "why"),
    [
        (list(itertools.product(UNITS, RATES))[:11], 11, "a trial missing"),
        (list(itertools.product(UNITS, RATES)), 11, "a trial that did not complete"),
        ([*list(itertools.product(UNITS, RATES))[:11], ("8", "0.003")], 12, "a point twice, another never"),
        ([*list(itertools.product(UNITS, RATES))[:11], ("128", "0.03")], 12, "a point outside the grid"),
    ],
)
def test_a_side_that_did_another_job_stops_the_benchmark(points, completed, why, capsys):
    keys = [sweep_speed.point_key(units, rate) for units, rate in points]
    with pytest.raises(SystemExit) as stopped:
        sweep_speed.check_job("KerasTuner GridSearch", ["python", "x.py"], keys, completed)
    assert "benchmark aborted: KerasTuner GridSearch failed (not the same job" in str(stopped.value.code), why


def test_the_best_member_is_the_lowest_val_loss():
    members = [
        {"grid": {"u": "8"}, "val_loss": 0.3, "test_accuracy": 0.9},
        {"grid": {"u": "16"}, "val_loss": 0.1, "test_accuracy": 0.95},
        {"grid": {"u": "32"}, "val_loss": 0.2, "test_accuracy": 1.0},
    ]
    assert sweep_speed.best_of(members) == {"grid": {"u": "16"}, "val_loss": 0.1, "test_accuracy": 0.95}


def _members(fits):
    return [
        {"grid": {"layers.0.units": units, "compile.optimizer.Adam.learning_rate": rate}, "fit_seconds": fit}
        for (units, rate), fit in zip(itertools.product(UNITS, RATES), fits)
    ]


def test_the_floor_is_the_members_fit_seconds_shared_by_the_two_jobs():
    fits = [1.0 + i / 10 for i in range(12)]
    rounds = {"sweep": [{"members": _members(fits)}], "per-member": [{"members": _members([9.0] * 12)}]}
    floor = sweep_speed.floor_figures(rounds)
    assert floor["source"] == "sweep"
    assert floor["mean_fit_seconds"] == pytest.approx(1.55)
    assert floor["sum_fit_seconds"] == pytest.approx(18.6)
    assert floor["floor_seconds"] == pytest.approx(9.3)
    assert floor["fit_seconds"]["8 x 0.003"] == 1.0
    assert len(floor["fit_seconds"]) == 12


def test_the_floor_falls_back_to_the_per_member_runs_when_the_sweeps_runs_have_no_timing():
    rounds = {"sweep": [{"members": _members([None] * 12)}], "per-member": [{"members": _members([2.0] * 12)}]}
    floor = sweep_speed.floor_figures(rounds)
    assert (floor["source"], floor["mean_fit_seconds"], floor["floor_seconds"]) == ("per-member", 2.0, 12.0)


def test_without_keras_tuner_it_says_how_to_install_it_and_exits_2_before_running_anything(monkeypatch, capsys):
    real = sweep_speed.importlib.util.find_spec
    monkeypatch.setattr(
        sweep_speed.importlib.util, "find_spec", lambda name, *a: None if name == "keras_tuner" else real(name, *a)
    )
    monkeypatch.setattr(sweep_speed, "measure", lambda *a, **k: pytest.fail("a side was run"))
    assert sweep_speed.main([]) == 2
    assert "pip install -e '.[bench]'" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["sweep_speed.py", "_common.py"])
def test_the_harness_imports_only_the_standard_library(module):
    """Keras, TensorFlow and KerasTuner are only ever loaded by the sides' own processes."""
    tree = ast.parse((BENCHMARKS / module).read_text(encoding="utf-8"))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    tops = {name.split(".")[0] for name in names}
    assert tops - {"_common"} <= set(sys.stdlib_module_names), tops - set(sys.stdlib_module_names)


def test_a_members_fit_seconds_come_from_its_run_json_or_are_none(tmp_path):
    (tmp_path / "run.json").write_text('{"timing": {"fit_seconds": 1.25, "epochs": 60}}')
    assert sweep_speed.fit_seconds(str(tmp_path)) == 1.25
    assert sweep_speed.fit_seconds(str(tmp_path / "missing")) is None
    assert sweep_speed.fit_seconds(None) is None  # a member without a run folder


def _sweep_json_member(run, **changes):
    member = {
        "member": 1,
        "grid": {"layers.0.units": "8", "compile.optimizer.Adam.learning_rate": "0.01"},
        "status": "completed",
        "exit_code": 0,
        "metric": 0.2,
        "metrics": {"val_loss": 0.2, "test_accuracy": 0.9, "accuracy": 0.95},
        "run": str(run),
        "seconds": 3.5,
    }
    return member | changes


def test_a_member_of_the_sweeps_json_document_gives_its_point_outcome_scores_and_fit(tmp_path):
    (tmp_path / "run.json").write_text('{"timing": {"fit_seconds": 1.5}}')
    (tmp_path / "metrics.json").write_text('{"val_loss": 0.3, "test_accuracy": 0.8}')
    assert sweep_speed.sweep_member(_sweep_json_member(tmp_path)) == {
        "grid": {"layers.0.units": "8", "compile.optimizer.Adam.learning_rate": "0.01"},
        "completed": True,
        "val_loss": 0.2,
        "test_accuracy": 0.9,
        "fit_seconds": 1.5,
        "seconds": 3.5,
    }
    without_scores = sweep_speed.sweep_member(_sweep_json_member(tmp_path, metrics={"val_loss": 0.2}))
    assert (without_scores["val_loss"], without_scores["test_accuracy"]) == (0.3, 0.8)  # from metrics.json
    assert not sweep_speed.sweep_member(_sweep_json_member(tmp_path, status="failed", exit_code=3))["completed"]
    assert not sweep_speed.sweep_member(_sweep_json_member(tmp_path, exit_code=5))["completed"]  # a failed gate
