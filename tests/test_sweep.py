"""`nnflow sweep`: a grid of runs in parallel processes, a leaderboard, failures and Ctrl-C."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import jsonschema
import pytest
from click.testing import CliRunner

from conftest import CONFIGS, ROOT
from nnflow.cli import cli
from nnflow.errors import ConfigError
from nnflow.workflows.sweep import higher_is_better, parse_grid


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_grid_values_split_on_top_level_commas_only():
    assert parse_grid(["fit.batch_size=8,16", "data.features=[a, b],[c]", "name='x,y',z"]) == {
        "fit.batch_size": ["8", "16"],
        "data.features": ["[a, b]", "[c]"],
        "name": ["'x,y'", "z"],
    }
    for bad in (["fit.epochs"], ["=1,2"], ["fit.epochs="], ["fit.epochs=,"], ["a=1", "a=2"]):
        with pytest.raises(ConfigError):
            parse_grid(bad)


def test_which_way_is_better():
    from nnflow import load_spec

    spec = load_spec(CONFIGS / "iris.yaml")
    assert higher_is_better("test_accuracy", spec) and not higher_is_better("val_loss", spec)
    assert not higher_is_better("val_mae", spec) and higher_is_better("auc", spec)


def test_a_parallel_sweep_ranks_members_and_reports_the_failing_one(tmp_path):
    """Two members train at once; one fails at its override (exit 2), another fails its data (exit 3)."""
    bad_data = tmp_path / "bad.csv"
    bad_data.write_text((ROOT / "tests" / "bad_data" / "stray_text" / "train.csv").read_text())
    result = invoke(
        "sweep",
        CONFIGS / "iris.yaml",
        "--out",
        tmp_path / "sweep",
        "--jobs",
        "2",
        "--json",
        "--set",
        "fit.epochs=3",
        "--set",
        "expect={}",
        "--grid",
        "compile.optimizer.Adam.learning_rate=0.01,0.05",
        "--grid",
        f"data.train=../data/iris.csv,{bad_data}",
    )
    assert result.exit_code == 3, result.output  # the worst member: bad data
    document = json.loads(result.stdout)
    jsonschema.validate(document, json.loads((ROOT / "docs" / "json" / "sweep.schema.json").read_text()))
    members = document["members"]
    assert document["metric"] == "val_loss" and document["order"] == "ascending"
    completed = [m for m in members if m["status"] == "completed"]
    failed = [m for m in members if m["status"] == "failed"]
    assert len(completed) == 2 and len(failed) == 2 and members[:2] == completed
    assert completed[0]["metric"] <= completed[1]["metric"]
    assert {m["exit_code"] for m in failed} == {3} and all("'1.5cm' is not a number" in m["error"] for m in failed)
    for member in completed:
        assert (
            json.loads((tmp_path / "sweep" / member["run"].split("/")[-1] / "run.json").read_text())["status"]
            == "completed"
        )
    with open(tmp_path / "sweep" / "leaderboard.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["rank"] for row in rows] == ["1", "2", "3", "4"] and rows[0]["status"] == "completed"
    assert "[01] started" in result.stderr and "did not succeed; exit 3 (the worst)" in result.stderr


def test_a_bad_override_fails_only_its_member(tmp_path):
    result = invoke(
        "sweep",
        CONFIGS / "iris.yaml",
        "--out",
        tmp_path / "s",
        "--set",
        "fit.epochs=1",
        "--set",
        "expect={}",
        "--grid",
        "fit.batch_size=16,0",
    )
    assert result.exit_code == 2
    assert "fit.batch_size: expected a positive integer; received 0." in result.stderr
    board = result.stdout
    assert "completed" in board and "failed (exit 2)" in board


def test_multi_worker_members_are_refused_before_they_run(tmp_path):
    result = invoke(
        "sweep",
        CONFIGS / "iris.yaml",
        "--out",
        tmp_path / "s",
        "--set",
        "expect={}",
        "--grid",
        "fit.distribute=multi_worker",
        "--grid",
        "fit.batch_size=16,32",
    )
    assert result.exit_code == 2
    assert result.stderr.count("multi_worker members would all claim the ports of one TF_CONFIG") == 2
    assert "failed (exit 2)" in result.stdout and "completed" not in result.stdout


def test_a_wrong_sweep_is_refused_before_anything_runs(tmp_path):
    result = invoke(
        "sweep", CONFIGS / "iris.yaml", "--out", tmp_path / "s", "--grid", "fit.epochs=1", "--metric", "val_auc"
    )
    assert result.exit_code == 2 and "'val_auc' is not a metric these runs report" in result.stderr
    assert not (tmp_path / "s").exists()
    assert invoke("sweep", CONFIGS / "tutorial.yaml", "--grid", "fit.epochs=1").exit_code == 2
    result = invoke(
        "sweep",
        CONFIGS / "iris.yaml",
        "--out",
        tmp_path / "s",
        "--grid",
        "fit.epochs=1",
        "--set",
        "data.test=0",
        "--set",
        "expect={}",
        "--metric",
        "test_loss",
    )
    assert result.exit_code == 2 and "'test_loss' is not a metric these runs report" in result.stderr


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_stopping_a_sweep_stops_every_member_and_keeps_finished_runs(tmp_path, stop):
    """Ctrl-C, or SIGTERM from a cancelled CI job: members stop cleanly, finished runs stay."""
    import threading

    sweep_dir = tmp_path / "sweep"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nnflow",
            "sweep",
            str(CONFIGS / "iris.yaml"),
            "--out",
            str(sweep_dir),
            "--jobs",
            "2",
            "--set",
            "expect={}",
            "--set",
            "fit.callbacks=[]",
            "--grid",
            "fit.epochs=1,2000,2000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stderr.readline, "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    try:
        # Wait until the short member has finished (the sweep said so) and a long one is training.
        while not (
            any(line.startswith("[01] completed") for line in lines)
            and (sweep_dir / "02-epochs=2000" / "checkpoint.npz").exists()
        ):
            assert process.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "the sweep did not get going"
            time.sleep(0.05)
        process.send_signal(stop)
        process.wait(timeout=120)
        reader.join(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    stderr = "".join(lines)
    # SIGTERM is exit 143 (128 + 15), after the same clean-up as Ctrl-C's 130.
    assert process.returncode == (130 if stop == signal.SIGINT else 143), stderr
    said = "Interrupted" if stop == signal.SIGINT else "Terminated (SIGTERM)"
    assert f"{said}: running members were stopped" in stderr and "Traceback" not in stderr
    assert json.loads((sweep_dir / "01-epochs=1" / "run.json").read_text())["status"] == "completed"
    assert json.loads((sweep_dir / "02-epochs=2000" / "run.json").read_text())["status"] == "interrupted"
    board = {m["member"]: m for m in json.loads((sweep_dir / "leaderboard.json").read_text())["members"]}
    assert board[1]["status"] == "completed" and board[2]["status"] == "interrupted"
    assert board[3]["status"] in ("interrupted", "not started")
    # No member is left running.
    leftovers = subprocess.run(["pgrep", "-f", str(sweep_dir)], capture_output=True, text=True).stdout.split()
    assert leftovers == []


@pytest.mark.parametrize("code", [130, 143, -signal.SIGTERM])
def test_a_member_stopped_before_its_run_folder_is_not_told_to_resume(tmp_path, code):
    from nnflow.workflows.sweep_members import Member
    from nnflow.workflows.sweep_members import collect_outcome as _collect

    (tmp_path / "logs").mkdir()
    member = Member(1, {"fit.epochs": "1"}, tmp_path / "01-epochs=1")
    _collect(member, code, 0.2)
    assert member.status == "interrupted" and "--resume" not in member.error and "no run to resume" in member.error

    member.folder.mkdir()
    (member.folder / "run.json").write_text(json.dumps({"status": "interrupted"}))
    _collect(member, code, 0.2)
    assert member.error == f"stopped; resume with nnflow train --resume {member.folder}"
