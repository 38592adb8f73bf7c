"""`nnflow sweep`: an Optuna study trained by warm workers. Grids and searches, pruning, failures that
do not stop the study, a worker killed mid-trial, Ctrl-C, a study continued or finished, and two
sweep commands sharing one study (a journal file; a real PostgreSQL)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from conftest import CONFIGS, DATA, ROOT
from nnflow.cli import cli
from nnflow.errors import ConfigError
from nnflow.workflows.sweep import higher_is_better, parse_grid

pytestmark = pytest.mark.slow  # every sweep starts worker processes that import TensorFlow

SEARCH = f"""
name: search
seed: 3
data: {{train: {DATA / "iris.csv"}, target: species, validation: 0.2, test: 0.2}}
layers:
  - Dense: {{units: 8, activation: relu}}
  - Dense: {{units: 3, activation: softmax}}
compile: {{optimizer: {{Adam: {{learning_rate: 0.01}}}}, loss: sparse_categorical_crossentropy, metrics: [accuracy]}}
fit: {{batch_size: 16, epochs: 4}}
sweep:
  sampler: random
  trials: 3
  space:
    layers.0.units: {{int: [4, 32], log: true}}
    compile.optimizer.Adam.learning_rate: {{float: [0.001, 0.1], log: true}}
"""


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def board(folder: Path) -> dict:
    return json.loads((folder / "leaderboard.json").read_text())


def sweep_process(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "nnflow", "sweep", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def no_process_left(folder: Path) -> None:
    leftovers = subprocess.run(["pgrep", "-f", str(folder)], capture_output=True, text=True).stdout.split()
    assert leftovers == [], "a sweep worker was left running"


def test_grid_values_split_on_top_level_commas_only():
    assert parse_grid(["fit.batch_size=8,16", "data.features=[a, b],[c]", "name='x,y',z"]) == {
        "fit.batch_size": ["8", "16"],
        "data.features": ["[a, b]", "[c]"],
        "name": ["'x,y'", "z"],
    }
    for bad in (["fit.epochs"], ["=1,2"], ["fit.epochs="], ["fit.epochs=,"], ["a=1", "a=2"], ["a=1,1"]):
        with pytest.raises(ConfigError):
            parse_grid(bad)


def test_which_way_is_better():
    from nnflow import load_spec

    spec = load_spec(CONFIGS / "iris.yaml")
    assert higher_is_better("test_accuracy", spec) and not higher_is_better("val_loss", spec)
    assert not higher_is_better("val_mae", spec) and higher_is_better("auc", spec)


def test_a_grid_ranks_its_trials_and_failed_ones_do_not_stop_it(tmp_path):
    """Two warm workers; two grid points fail their data (exit 3): recorded, the others go on, and as
    the grid ran out before `trials` finished, the sweep exits with the worst trial's code."""
    bad_data = tmp_path / "bad.csv"
    bad_data.write_text((ROOT / "tests" / "bad_data" / "stray_text" / "train.csv").read_text())
    folder = tmp_path / "sweep"
    result = invoke(
        "sweep", CONFIGS / "iris.yaml", "--out", folder, "--jobs", 2, "--json",
        "--set", "fit.epochs=3", "--set", "expect={}",
        "--grid", "compile.optimizer.Adam.learning_rate=0.01,0.05",
        "--grid", f"data.train=../data/iris.csv,{bad_data}",
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    document = json.loads(result.stdout)
    jsonschema.validate(document, json.loads((ROOT / "docs" / "json" / "sweep.schema.json").read_text()))
    members = document["members"]
    assert document["metric"] == "val_loss" and document["order"] == "ascending" and document["sampler"] == "grid"
    assert document["trials"] == {"wanted": 4, "finished": 2, "completed": 2, "failed": 2}
    completed = [m for m in members if m["status"] == "completed"]
    failed = [m for m in members if m["status"] == "failed"]
    assert members[:2] == completed and completed[0]["metric"] <= completed[1]["metric"]
    assert document["best"] == completed[0]["member"]
    assert {m["exit_code"] for m in failed} == {3} and all("'1.5cm' is not a number" in m["error"] for m in failed)
    for member in completed:
        assert json.loads((Path(member["run"]) / "run.json").read_text())["status"] == "completed"
        assert member["params"]["compile.optimizer.Adam.learning_rate"] in ("0.01", "0.05")
    with open(folder / "leaderboard.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["rank"] for row in rows] == ["1", "2", "3", "4"] and rows[0]["status"] == "completed"
    assert "[01] started" in result.stderr and "2 failed; exit 3 (the worst trial's)" in result.stderr
    assert len(list((folder / "logs").glob("worker-*.log"))) == 2  # two warm workers, not a process per trial


def test_a_refused_grid_value_is_reported_first_and_the_other_points_run(tmp_path):
    result = invoke(
        "sweep", CONFIGS / "iris.yaml", "--out", tmp_path / "s",
        "--set", "fit.epochs=1", "--set", "expect={}", "--grid", "fit.batch_size=16,0",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "fit.batch_size: expected a positive integer; received 0." in result.stderr
    assert result.stderr.index("[--] failed (exit 2)") < result.stderr.index("[01] started")
    assert "completed" in result.stdout and "failed (exit 2)" in result.stdout


def test_multi_worker_trials_are_refused_before_they_run(tmp_path):
    result = invoke(
        "sweep", CONFIGS / "iris.yaml", "--out", tmp_path / "s", "--set", "expect={}",
        "--grid", "fit.distribute=multi_worker", "--grid", "fit.batch_size=16,32",
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.count("multi_worker trials would all claim the ports of one TF_CONFIG") == 2
    assert "completed" not in result.stdout


def test_a_wrong_sweep_is_refused_before_anything_runs(tmp_path, write):
    result = invoke(
        "sweep", CONFIGS / "iris.yaml", "--out", tmp_path / "s", "--grid", "fit.epochs=1", "--metric", "val_auc"
    )
    assert result.exit_code == 2 and "'val_auc' is not a metric these runs report" in result.stderr
    assert not (tmp_path / "s").exists()
    assert invoke("sweep", CONFIGS / "tutorial.yaml", "--grid", "fit.epochs=1").exit_code == 2
    result = invoke("sweep", CONFIGS / "iris.yaml", "--out", tmp_path / "s")
    assert result.exit_code == 2 and "nothing to sweep" in result.stderr
    result = invoke("sweep", write(SEARCH), "--grid", "fit.epochs=1,2", "--sampler", "tpe", "--out", tmp_path / "s")
    assert result.exit_code == 2 and "cannot go with --sampler tpe" in result.stderr
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    result = invoke("sweep", write(SEARCH), "--out", tmp_path / "taken")
    assert result.exit_code == 2 and "is not a sweep folder" in result.stderr
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    result = invoke("sweep", write(SEARCH), "--storage", "postgresql://x@127.0.0.1:1/none", "--out", tmp_path / "pg")
    assert result.exit_code == 2 and "cannot use the storage postgresql://x@127.0.0.1:1/none" in result.stderr
    assert "Traceback" not in result.output


def test_a_search_continues_its_study_and_a_finished_one_trains_nothing(tmp_path, write):
    config, folder = write(SEARCH), tmp_path / "sweep"
    first = invoke("sweep", config, "--out", folder, "--trials", 2, "--json")
    assert first.exit_code == 0, first.output
    assert board(folder)["trials"]["finished"] == 2
    # The same study, asked for more: it goes on from the two it has.
    more = invoke("sweep", config, "--out", folder, "--json")
    assert more.exit_code == 0, more.output
    document = json.loads(more.stdout)
    assert document["trials"]["finished"] == 3 and len(document["members"]) == 3
    runs = sorted(p.name for p in folder.iterdir() if (p / "run.json").exists())
    assert len(runs) == 3
    # Finished: nothing is trained, the leaderboard is printed.
    started = time.monotonic()
    again = invoke("sweep", config, "--out", folder)
    assert again.exit_code == 0 and "3 of 3 trials finished" in again.stdout and "started" not in again.stderr
    assert time.monotonic() - started < 15
    assert sorted(p.name for p in folder.iterdir() if (p / "run.json").exists()) == runs
    # Another experiment under the same study is refused.
    changed = invoke("sweep", config, "--out", folder, "--set", "fit.epochs=5")
    assert changed.exit_code == 2 and "belongs to another experiment" in changed.stderr


def test_a_tpe_search_with_the_median_pruner_prunes_some_trials(tmp_path, write):
    config = write(
        SEARCH.replace("sampler: random", "sampler: tpe\n  pruner: {median: {n_startup_trials: 2}}")
        .replace("trials: 3", "trials: 8")
        .replace("epochs: 4", "epochs: 12")
    )
    folder = tmp_path / "sweep"
    result = invoke("sweep", config, "--out", folder, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    pruned = [m for m in document["members"] if m["status"] == "pruned"]
    assert document["trials"]["finished"] == 8 and pruned, document["trials"]
    for member in pruned:  # stopped at an epoch, its folder complete
        info = json.loads((Path(member["run"]) / "run.json").read_text())
        assert info["status"] == "pruned" and info["pruned_at_epoch"] < 12
        assert (Path(member["run"]) / "metrics.json").exists()
    assert document["members"][0]["status"] == "completed"  # the best is a completed trial


def test_a_worker_killed_in_a_trial_is_replaced_and_its_trial_failed(tmp_path, write):
    config, folder = write(SEARCH.replace("epochs: 4", "epochs: 400")), tmp_path / "sweep"
    process = sweep_process(config, "--out", folder, "--trials", 2, "--set", "sweep.max_failures=1",
                            "--set", "fit.batch_size=4")  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not list(folder.glob("001-*/checkpoint.npz")):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1]
            time.sleep(0.1)
        worker = subprocess.run(["pgrep", "-f", f"sweep_worker.*{folder}"], capture_output=True, text=True)
        os.kill(int(worker.stdout.split()[0]), signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert "[01] failed (exit 1)" in stderr and "its worker was killed by SIGKILL (out of memory?)" in stderr
    members = {m["member"]: m for m in board(folder)["members"]}
    assert members[1]["status"] == "failed"
    assert len(list(folder.glob("logs/worker-*.log"))) >= 2  # replaced
    # The failure is recorded and does not count: two other trials finished, so the sweep succeeded.
    assert process.returncode == 0, stderr
    assert board(folder)["trials"]["finished"] == 2
    no_process_left(folder)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_stopping_a_sweep_stops_its_workers_and_the_next_run_continues_the_trials(tmp_path, write, stop):
    config, folder = write(SEARCH.replace("batch_size: 16", "batch_size: 4")), tmp_path / "sweep"
    grid = ("--jobs", 2, "--grid", "fit.epochs=2,300,301")
    process = sweep_process(config, "--out", folder, *grid)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stderr.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not (any(" completed " in line for line in lines) and list(folder.glob("*epochs=30*/checkpoint.npz"))):
            assert process.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.05)
        process.send_signal(stop)
        process.wait(timeout=120)
        reader.join(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    stderr = "".join(lines)
    assert process.returncode == (130 if stop == signal.SIGINT else 143), stderr
    said = "Interrupted" if stop == signal.SIGINT else "Terminated (SIGTERM)"
    assert f"{said}: the workers were stopped" in stderr and "Traceback" not in stderr
    no_process_left(folder)
    statuses = [m["status"] for m in board(folder)["members"]]
    # The short trial completed; a long one may have been finishing as the signal came. None failed.
    assert statuses.count("completed") >= 1 and "interrupted" in statuses, board(folder)["members"]
    assert "failed" not in statuses, board(folder)["members"]
    interrupted = [m for m in board(folder)["members"] if m["status"] == "interrupted" and m["run"]]
    run = Path(interrupted[0]["run"])
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    # Run again: the interrupted trials go on, each from its own run folder.
    again = invoke("sweep", config, "--out", folder, *grid)
    assert again.exit_code == 0, again.output
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["resumes"], info
    stopped = [m for m in board(folder)["members"] if m["status"] == "interrupted"]
    assert stopped and all(m["error"].startswith("continued as trial ") for m in stopped)
    assert board(folder)["trials"]["finished"] == 3


def _together(*commands: list) -> list[tuple[int, str, str]]:
    """Start the sweep commands at the same moment; wait for all of them."""
    processes = [sweep_process(*command) for command in commands]
    outcomes = []
    for process in processes:
        try:
            stdout, stderr = process.communicate(timeout=300)
        finally:
            if process.poll() is None:
                process.kill()
        outcomes.append((process.returncode, stdout, stderr))
    return outcomes


def _trained_once(folders: list[Path], wanted: int) -> None:
    """Between them, the commands trained `wanted` trials, each once, and each leaderboard lists them all."""
    runs = [run for folder in folders for run in folder.iterdir() if (run / "run.json").exists()]
    assert len(runs) == wanted and len({run.name for run in runs}) == wanted
    for folder in folders:
        members = board(folder)["members"]
        assert [m["status"] for m in members] == ["completed"] * wanted
        assert sorted(m["trial"] for m in members) == list(range(wanted))


def test_two_sweep_commands_at_once_share_one_journal_file(tmp_path, write):
    """The same command twice on one machine (or on machines sharing a disk): one study, no trial twice."""
    config, journal = write(SEARCH.replace("trials: 3", "trials: 4")), tmp_path / "shared.journal"
    first, second = tmp_path / "a", tmp_path / "b"
    outcomes = _together(
        [config, "--out", first, "--storage", journal, "--study", "shared"],
        [config, "--out", second, "--storage", journal, "--study", "shared"],
    )
    assert [code for code, _, _ in outcomes] == [0, 0], outcomes
    _trained_once([first, second], 4)
    assert "4 of 4 trials finished" in outcomes[0][1] and "4 of 4 trials finished" in outcomes[1][1]


def test_two_sweep_commands_at_once_share_one_study_on_postgresql(tmp_path, write, postgres_database):
    """Two machines starting the same grid at once on a fresh database: each point trained once."""
    config = write(SEARCH)
    grid = ["--grid", "layers.0.units=4,8", "--grid", "fit.batch_size=16,32"]
    first, second = tmp_path / "a", tmp_path / "b"
    outcomes = _together(
        [config, "--out", first, "--storage", postgres_database, "--study", "grid", *grid],
        [config, "--out", second, "--storage", postgres_database, "--study", "grid", *grid],
    )
    assert [code for code, _, _ in outcomes] == [0, 0], outcomes
    _trained_once([first, second], 4)
    assert f"Study grid ({postgres_database})" in outcomes[0][1]


def test_plot_draws_a_sweeps_study(tmp_path, write):
    folder = tmp_path / "sweep"
    assert invoke("sweep", write(SEARCH), "--out", folder).exit_code == 0
    result = invoke("plot", folder)
    assert result.exit_code == 0, result.output
    for name in ("optimization_history.png", "param_importances.png"):
        assert (folder / name).read_bytes().startswith(b"\x89PNG")
    assert invoke("plot", folder, "-o", tmp_path / "x.png").exit_code == 2


def test_the_gates_judge_the_best_trial_only(tmp_path, write):
    config = write(SEARCH + "expect: {val_loss: '< 0.000001'}\n")
    result = invoke("sweep", config, "--out", tmp_path / "s", "--grid", "fit.epochs=1,2")
    assert result.exit_code == 5, result.output
    assert "The best trial" in result.stderr and "misses its expect: gates (val_loss = " in result.stderr
    assert "completed (exit" not in result.stdout  # each trial completed; only the sweep's verdict uses the gates


def test_an_unknown_sampler_or_pruner_flag_is_refused_with_a_suggestion(tmp_path, write):
    result = invoke("sweep", write(SEARCH), "--sampler", "tpee", "--out", tmp_path / "s")
    assert (
        result.exit_code == 2 and "unknown sampler 'tpee'" in result.stderr and "Did you mean 'tpe'?" in result.stderr
    )
    result = invoke("sweep", write(SEARCH), "--pruner", "medain", "--out", tmp_path / "s")
    assert result.exit_code == 2 and "Did you mean 'median'?" in result.stderr
    assert not (tmp_path / "s").exists()


def test_workers_stop_when_their_sweep_is_killed(tmp_path, write):
    """The sweep itself SIGKILLed (no clean-up of its own): its workers stop, their runs interrupted."""
    config, folder = (
        write(SEARCH.replace("epochs: 4", "epochs: 400").replace("batch_size: 16", "batch_size: 4")),
        tmp_path / "s",
    )
    process = sweep_process(config, "--out", folder, "--trials", 1)
    try:
        deadline = time.monotonic() + 120
        while not list(folder.glob("001-*/checkpoint.npz")):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1]
            time.sleep(0.1)
        process.kill()
        process.wait()
        deadline = time.monotonic() + 60
        while subprocess.run(["pgrep", "-f", f"sweep_worker.*{folder}"], capture_output=True).returncode == 0:
            assert time.monotonic() < deadline, "the worker went on after its sweep was killed"
            time.sleep(0.2)
    finally:
        if process.poll() is None:
            process.kill()
    run = next(folder.glob("001-*"))
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
