"""Pruning (issue 14): `Progress.should_prune` stops a run after an epoch; the run ends as a
completed one does, marked `pruned`. And trainings repeated in one process (a sweep's warm
worker) give a fresh process's numbers.

Trainings run in-process on iris with few epochs; one test starts a second interpreter.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import CONFIGS, DATA, ROOT
from nnflow.cli import cli
from nnflow.workflows import Progress, train

RUN_FILES = {"run.json", "experiment.yaml", "preprocessing.json", "history.csv", "metrics.json", "model.keras"}
GATED = ["fit.epochs=5", "expect={val_loss: '< 100'}"]  # a gate that passes: its value is recorded


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def read_history(run_dir: Path) -> list[dict]:
    with open(run_dir / "history.csv", newline="") as stream:
        return list(csv.DictReader(stream))


def history_epochs(run_dir: Path) -> list[int]:
    return [int(row["epoch"]) for row in read_history(run_dir)]


class PruneAt:
    """should_prune that says yes after `epoch`; it records what it saw, and when it was asked."""

    def __init__(self, epoch: int | None, run_dir: Path):
        self.epoch, self.run_dir = epoch, run_dir
        self.calls: list[str] = []
        self.rows: list[dict] = []
        self.checkpointed: list[int] = []

    def on_epoch(self, row: dict, epochs: int) -> None:
        self.calls.append(f"on_epoch {row['epoch']}")

    def __call__(self, row: dict) -> bool:
        from nnflow.runs import load_checkpoint

        self.calls.append(f"should_prune {row['epoch']}")
        self.rows.append(dict(row))
        self.checkpointed.append(load_checkpoint(self.run_dir).state["epochs_completed"])
        return row["epoch"] == self.epoch

    def progress(self) -> Progress:
        return Progress(on_epoch=self.on_epoch, should_prune=self)


@pytest.fixture(scope="module")
def pruned(tmp_path_factory):
    """iris, 5 epochs configured, pruned after epoch 2, in runs/iris-mlp/ (for `nnflow runs`)."""
    root = tmp_path_factory.mktemp("pruning")
    run_dir = root / "runs" / "iris-mlp" / "2026-01-01_00-00-00"
    hook = PruneAt(2, run_dir)
    result = train(CONFIGS / "iris.yaml", GATED, out=run_dir, progress=hook.progress())
    return result, hook


def test_a_run_pruned_at_epoch_2_of_5_ends_as_a_complete_folder(pruned):
    result, hook = pruned
    run_dir = result.run_dir
    assert {path.name for path in run_dir.iterdir()} == RUN_FILES  # no checkpoint, no lock file left
    assert history_epochs(run_dir) == [1, 2]
    info = read_json(run_dir / "run.json")
    assert info["status"] == "pruned" and info["pruned_at_epoch"] == 2
    assert info["epochs"] == {"configured": 5, "completed": 2}
    assert [gate["metric"] for gate in info["gates"]] == ["val_loss"] and info["gates"][0]["passed"]
    metrics = read_json(run_dir / "metrics.json")
    assert {"loss", "val_loss", "test_loss", "test_accuracy"} <= set(metrics)
    assert metrics == result.metrics

    assert result.status == "pruned" and result.epochs_completed == 2 and result.stopped_early
    document = result.to_json()
    assert document["status"] == "pruned" and document["epochs"] == {"configured": 5, "completed": 2}
    assert document["ok"] and document["stopped_early"]


def test_should_prune_is_asked_after_the_checkpoint_and_on_epoch_with_the_history_row(pruned):
    _, hook = pruned
    assert hook.calls == ["on_epoch 1", "should_prune 1", "on_epoch 2", "should_prune 2"]
    assert hook.checkpointed == [1, 2]  # each epoch's checkpoint was written before it was asked
    assert [row["epoch"] for row in hook.rows] == [1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(hook.rows[0])


def test_runs_and_compare_show_a_pruned_run(pruned, monkeypatch):
    result, _ = pruned
    monkeypatch.chdir(result.run_dir.parents[2])
    listing = invoke("runs")
    assert listing.exit_code == 0, listing.output
    line = next(line for line in listing.stdout.splitlines() if "2026-01-01_00-00-00" in line)
    assert line.split()[1:4] == ["pruned", "2/5", "ok"]
    data = json.loads(invoke("runs", "--json").stdout)
    assert [run["status"] for run in data["runs"]] == ["pruned"]

    comparison = invoke("compare", result.run_dir, result.run_dir)
    assert comparison.exit_code == 0, comparison.output
    assert f"A = {result.run_dir} (pruned)" in comparison.stdout


def test_resuming_a_pruned_run_is_refused(pruned):
    result, _ = pruned
    before = (result.run_dir / "run.json").read_bytes()
    refused = invoke("train", "--resume", result.run_dir)
    assert refused.exit_code == 2
    assert "was pruned by a sweep after epoch 2" in refused.stderr and "nothing to resume" in refused.stderr
    assert (result.run_dir / "run.json").read_bytes() == before


def test_evaluate_predict_and_report_a_pruned_run(pruned, tmp_path):
    from nnflow.workflows import evaluate, predict, report

    result, _ = pruned
    evaluated = evaluate(result.run_dir, output=tmp_path / "evaluation.json")
    assert evaluated.metrics["accuracy"] == result.metrics["test_accuracy"]
    predicted = predict(result.run_dir, DATA / "iris.csv", tmp_path / "predictions.csv")
    assert predicted.rows == 150
    page = report(result.run_dir, tmp_path / "report.html")
    assert "pruned" in page.output.read_text() and "metrics" in page.sections


def test_a_pruned_run_stopped_before_it_finished_resumes_to_the_same_pruned_run(pruned, tmp_path, monkeypatch):
    """Ctrl-C after the pruning epoch (in the final evaluation): --resume only finishes it, pruned."""
    from nnflow.workflows import train_steps

    reference, _ = pruned
    evaluate_for_real = train_steps.final_metrics

    def interrupted(*args, **kwargs):
        monkeypatch.setattr(train_steps, "final_metrics", evaluate_for_real)
        raise KeyboardInterrupt

    monkeypatch.setattr(train_steps, "final_metrics", interrupted)
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(CONFIGS / "iris.yaml", GATED, out=run_dir, progress=PruneAt(2, run_dir).progress())
    assert read_json(run_dir / "run.json")["status"] == "interrupted"

    hook = PruneAt(2, run_dir)
    resumed = train(resume=run_dir, progress=hook.progress())
    assert hook.calls == []  # no epoch trained again
    info = read_json(run_dir / "run.json")
    assert info["status"] == "pruned" and info["pruned_at_epoch"] == 2 and resumed.status == "pruned"
    assert history_epochs(run_dir) == [1, 2] and resumed.metrics == reference.metrics
    assert {path.name for path in run_dir.iterdir()} == RUN_FILES


def test_should_prune_that_never_says_yes_changes_nothing(tmp_path):
    hook = PruneAt(None, tmp_path / "asked")
    asked = train(CONFIGS / "iris.yaml", ["fit.epochs=3"], out=tmp_path / "asked", progress=hook.progress())
    plain = train(CONFIGS / "iris.yaml", ["fit.epochs=3"], out=tmp_path / "plain")
    info = read_json(asked.run_dir / "run.json")
    assert info["status"] == "completed" and "pruned_at_epoch" not in info
    assert asked.status == "completed" and asked.to_json()["status"] == "completed"
    assert hook.calls[-1] == "should_prune 3" and history_epochs(asked.run_dir) == [1, 2, 3]
    assert (asked.run_dir / "metrics.json").read_bytes() == (plain.run_dir / "metrics.json").read_bytes()


def test_an_error_in_should_prune_fails_the_run_and_propagates(tmp_path):
    def broken(row: dict) -> bool:
        raise RuntimeError("the study's storage is gone")

    with pytest.raises(RuntimeError, match="the study's storage is gone"):
        train(CONFIGS / "iris.yaml", ["fit.epochs=3"], out=tmp_path / "run", progress=Progress(should_prune=broken))
    info = read_json(tmp_path / "run" / "run.json")
    assert info["status"] == "failed" and "the study's storage is gone" in info["error"]
    assert "pruned_at_epoch" not in info and not (tmp_path / "run" / "model.keras").exists()


@pytest.mark.parametrize(
    "changes, problem",
    [
        ({"status": "pruned"}, "`pruned_at_epoch` is missing"),
        ({"status": "pruned", "pruned_at_epoch": 0}, "`pruned_at_epoch` must be the epoch a pruned run stopped after"),
        ({"status": "completed", "pruned_at_epoch": "2"}, "`pruned_at_epoch` must be"),
    ],
)
def test_run_json_of_a_pruned_run_is_checked(tmp_path, changes, problem):
    from nnflow.errors import DamagedRunError
    from nnflow.runs import read_run_info

    info = {
        "name": "iris-mlp",
        "status": "pruned",
        "pruned_at_epoch": 2,
        "started": "2026-01-01T00:00:00+00:00",
        "seed": 42,
        "data": {},
        "epochs": {"configured": 5, "completed": 2},
    }
    (tmp_path / "run.json").write_text(json.dumps(info))
    assert read_run_info(tmp_path)["pruned_at_epoch"] == 2
    (tmp_path / "run.json").write_text(
        json.dumps({key: value for key, value in info.items() if key != "pruned_at_epoch"} | changes)
    )
    with pytest.raises(DamagedRunError, match=problem):
        read_run_info(tmp_path)


# ---------------------------------------------------------------------------
# Trainings repeated in one process

REPEATED = ["fit.epochs=3", "expect={}", "seed=11"]

FRESH_PROCESS = """
import sys
from nnflow.workflows import train
train(sys.argv[1], sys.argv[3:], out=sys.argv[2])
"""


def saved_model(run_dir: Path) -> tuple[dict, list]:
    """model.keras's config (without the ids of Python objects) and its weights."""
    import keras

    with zipfile.ZipFile(run_dir / "model.keras") as archive:
        text = archive.read("config.json").decode()
    config = json.loads(text, object_hook=lambda item: {k: v for k, v in item.items() if k != "shared_object_id"})
    weights = [array.tolist() for array in keras.saving.load_model(run_dir / "model.keras").get_weights()]
    return config, weights


@pytest.mark.slow
def test_a_warm_process_trains_again_as_a_fresh_process_does(tmp_path):
    """Two runs of one file and seed in this process (fresh_session before each), and one in a new
    interpreter: the same metrics, history, weights and saved model (layer and optimizer names too)."""
    from nnflow.training import fresh_session

    runs = []
    for name in ("first", "second"):
        fresh_session()
        runs.append(train(CONFIGS / "iris.yaml", REPEATED, out=tmp_path / name).run_dir)
    subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, CONFIGS / "iris.yaml", tmp_path / "fresh", *REPEATED],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    runs.append(tmp_path / "fresh")

    first, *others = runs
    for other in others:
        assert (other / "metrics.json").read_bytes() == (first / "metrics.json").read_bytes()
        assert [row | {"seconds": ""} for row in read_history(other)] == [
            row | {"seconds": ""} for row in read_history(first)
        ]
        assert saved_model(other) == saved_model(first)
    config, _ = saved_model(first)
    assert config["config"]["layers"][0]["config"]["name"] == "input_layer"  # not input_layer_1: names start over


@pytest.mark.parametrize(("seconds", "expected"), [(0.0, [1, 2, 3, 4, 5]), (3600.0, [1, 5])])
def test_checkpoint_seconds_spaces_the_checkpoints(tmp_path, monkeypatch, seconds, expected):
    """A sweep's worker checkpoints when the time has come, and after the last epoch; `train`, every epoch."""
    from nnflow.runs import record

    saved: list[int] = []
    original = record.RunRecord.save_epoch

    def save_epoch(self, model, state, arrays, history, gradients):
        saved.append(state["epochs_completed"])
        original(self, model, state, arrays, history, gradients)

    monkeypatch.setattr(record.RunRecord, "save_epoch", save_epoch)
    result = train(CONFIGS / "iris.yaml", GATED, out=tmp_path / "run", progress=Progress(checkpoint_seconds=seconds))
    assert saved == expected and result.status == "completed" and result.epochs_completed == 5


def test_a_run_checkpointed_sparsely_resumes_from_its_last_checkpoint(tmp_path):
    """Interrupted between checkpoints: run.json and history.csv say the checkpoint's epoch, and --resume
    goes on from there to the run an uninterrupted one gives."""

    class StopAt:
        def __init__(self) -> None:
            self.seen = 0

        def __call__(self, row: dict, epochs: int) -> None:
            self.seen = row["epoch"]
            if row["epoch"] == 4:
                raise KeyboardInterrupt

    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(CONFIGS / "iris.yaml", GATED, out=run, progress=Progress(on_epoch=StopAt(), checkpoint_seconds=3600.0))
    info = read_json(run / "run.json")
    assert info["status"] == "interrupted" and info["epochs"]["completed"] == 1 and history_epochs(run) == [1]
    resumed = train(resume=run)
    fresh = train(CONFIGS / "iris.yaml", GATED, out=tmp_path / "fresh")
    assert resumed.status == "completed" and history_epochs(run) == [1, 2, 3, 4, 5]
    assert (
        read_json(run / "metrics.json") == read_json(tmp_path / "fresh" / "metrics.json")
        and fresh.epochs_completed == 5
    )
