"""`nnflow train`: real trainings on the tiny datasets, the run folder, determinism, resume.

Trainings run in-process (one TensorFlow import for the whole suite) with few epochs;
only the kill -9 test needs a second interpreter, because it kills one.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import CONFIGS, DATA, ROOT
from nnflow import load_spec
from nnflow.cli import cli
from nnflow.workflows import Progress, train

EXAMPLES = sorted(path.stem for path in CONFIGS.glob("*.yaml") if load_spec(path).data)
RUN_FILES = {"run.json", "experiment.yaml", "preprocessing.json", "history.csv", "metrics.json", "model.keras"}


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def read_history(run_dir: Path) -> list[dict]:
    with open(run_dir / "history.csv", newline="") as stream:
        return list(csv.DictReader(stream))


def test_every_example_with_data_is_covered():
    assert set(EXAMPLES) == {"breast_cancer", "diabetes", "digits_cnn", "iris", "iris_sweep", "tutorial_iris", "wine"}


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_trains_into_a_complete_run_folder(example, tmp_path):
    import keras

    from nnflow.preprocessing import prepare
    from nnflow.training import evaluation_dataset

    result = train(CONFIGS / f"{example}.yaml", ["fit.epochs=2"], out=tmp_path / "run")
    run_dir = result.run_dir
    assert {p.name for p in run_dir.iterdir()} == RUN_FILES

    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "completed" and info["epochs"] == {"configured": 2, "completed": 2}
    assert set(info["versions"]) >= {"nnflow", "keras", "tensorflow", "python"}
    assert len(info["data"]["train"]["sha256"]) == 64 and info["command"]
    assert info["started"] <= info["ended"] and info["duration_seconds"] > 0

    history = read_history(run_dir)
    assert [row["epoch"] for row in history] == ["1", "2"] and "loss" in history[0] and "val_loss" in history[0]

    spec = result.spec
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for name in spec.metric_names:
        assert {name, f"val_{name}", f"test_{name}"} <= set(metrics)
    assert [g["metric"] for g in info["gates"]] == [g.metric for g in spec.expect]

    # The resolved file trains the same experiment: overrides, defaults and seed are in it.
    resolved = load_spec(run_dir / "experiment.yaml")
    assert resolved.fit.epochs == 2 and resolved.seed == info["seed"] == (
        spec.seed if spec.seed is not None else info["seed"]
    )
    assert resolved.data.train == spec.data.train.resolve()

    # model.keras loads in safe mode and scores the test split as training reported.
    model = keras.saving.load_model(run_dir / "model.keras", safe_mode=True)
    prepared = prepare(resolved, resolved.seed)
    test = prepared.test
    scores = model.evaluate(evaluation_dataset(test.x, test.y, spec.fit.batch_size), return_dict=True, verbose=0)
    assert scores["loss"] == pytest.approx(metrics["test_loss"], rel=1e-5, abs=1e-6)
    preprocessing = json.loads((run_dir / "preprocessing.json").read_text())
    assert preprocessing == json.loads(json.dumps(prepared.preprocessing.to_json()))


def test_iris_as_written_passes_its_gates_and_prints_one_line_per_epoch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("train", CONFIGS / "iris.yaml")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("note: target 'species': 3 classes encoded as ids (setosa=0, versicolor=1, virginica=2).")
    epoch_lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert epoch_lines[0].startswith("epoch   1/100  loss ") and " val_loss " in epoch_lines[0]
    run_dir = next((tmp_path / "runs" / "iris-mlp").iterdir())
    assert len(epoch_lines) == len(read_history(run_dir))
    assert f"Run folder: runs/iris-mlp/{run_dir.name}" in out
    assert "  ok    test_accuracy >= 0.9" in out and "  ok    val_loss < 0.5" in out
    assert result.stderr == ""


def test_fit_is_train_and_quiet_prints_only_the_run_folder(tmp_path):
    assert invoke("fit", "--help").output == invoke("train", "--help").output.replace("cli train [", "cli fit [")
    result = invoke(
        "fit", CONFIGS / "iris.yaml", "--set", "fit.epochs=1", "--set", "expect={}", "--out", tmp_path / "r", "-q"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{tmp_path / 'r'}\n" and result.stderr == ""


def test_same_seed_same_metrics(tmp_path):
    first = train(CONFIGS / "iris.yaml", ["fit.epochs=5"], out=tmp_path / "a")
    second = train(CONFIGS / "iris.yaml", ["fit.epochs=5"], out=tmp_path / "b")
    assert (first.run_dir / "metrics.json").read_bytes() == (second.run_dir / "metrics.json").read_bytes()
    other = train(CONFIGS / "iris.yaml", ["fit.epochs=5", "seed=7"], out=tmp_path / "c")
    assert other.metrics != first.metrics


def test_a_null_seed_is_drawn_and_recorded(tmp_path):
    result = train(CONFIGS / "iris.yaml", ["fit.epochs=1", "seed=null", "expect={}"], out=tmp_path / "r")
    seed = json.loads((result.run_dir / "run.json").read_text())["seed"]
    assert isinstance(seed, int) and load_spec(result.run_dir / "experiment.yaml").seed == seed


RESUME_CASES = {
    # iris as written keeps its Dropout and EarlyStopping(restore_best_weights).
    "dropout and early stopping": (["fit.epochs=8"], 3),
    # Keras flips min_delta's sign itself; a CSVLogger must append, not start over.
    "plateau and csv log": (
        [
            "fit.epochs=5",
            "fit.callbacks=[{ReduceLROnPlateau: {monitor: loss, factor: 0.5, patience: 0, min_delta: 10}}, {CSVLogger: {filename: log.csv}}]",
        ],
        2,
    ),
    # 7 steps per epoch in executions of 3: one pipeline per epoch instead of one stream.
    "per-epoch pipeline": (["fit.epochs=4", "compile.steps_per_execution=3"], 2),
    # Gradient norms are recorded per epoch: the resumed run's gradients.csv is the reference's.
    "gradient norms": (["fit.epochs=4", "fit.diagnostics.gradient_norms=true"], 2),
    # Interrupted after the epoch EarlyStopping stopped at: resuming only finishes.
    "stopped early": (
        ["fit.epochs=60", "compile.optimizer.Adam.learning_rate=0.05", "fit.callbacks.0.EarlyStopping.patience=2"],
        "stop",
    ),
}


@pytest.mark.parametrize("case", RESUME_CASES)
def test_interrupted_run_resumes_to_the_same_result(case, tmp_path):
    """Interrupt after an epoch, resume: each epoch once in the history, and a bit-identical result."""
    overrides, interrupt_at = RESUME_CASES[case]
    overrides = [*overrides, "expect={}"]
    reference = train(CONFIGS / "iris.yaml", overrides, out=tmp_path / "reference")
    if interrupt_at == "stop":
        assert reference.stopped_early
        interrupt_at = reference.epochs_completed

    def interrupt(row, epochs):
        if row["epoch"] == interrupt_at:
            raise KeyboardInterrupt

    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(CONFIGS / "iris.yaml", overrides, out=run_dir, progress=Progress(on_epoch=interrupt))
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    assert not (run_dir / "model.keras").exists() and not (run_dir / "metrics.json").exists()
    assert [row["epoch"] for row in read_history(run_dir)] == [str(e) for e in range(1, interrupt_at + 1)]

    resumed = train(resume=run_dir)
    assert resumed.resumed_at == interrupt_at
    assert [r | {"seconds": ""} for r in read_history(run_dir)] == [
        r | {"seconds": ""} for r in read_history(reference.run_dir)
    ]
    assert resumed.metrics == reference.metrics
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "completed" and len(info["resumes"]) == 1
    assert not (run_dir / "checkpoint.npz").exists()
    if (reference.run_dir / "gradients.csv").exists():
        assert (run_dir / "gradients.csv").read_text() == (reference.run_dir / "gradients.csv").read_text()
    if (reference.run_dir / "log.csv").exists():
        assert (run_dir / "log.csv").read_text() == (reference.run_dir / "log.csv").read_text()


KILL_CONFIG = """
name: killed
data: {{train: {train}, target: species, validation: 0.2}}
layers:
  - Dense: {{units: 16, activation: relu}}
  - Dense: {{units: 3, activation: softmax}}
compile: {{optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}}
fit: {{batch_size: 2, epochs: 40}}
"""


def test_kill_9_then_resume(tmp_path):
    """A run killed with SIGKILL leaves only complete files, and --resume finishes it."""
    config = tmp_path / "killed.yaml"
    config.write_text(KILL_CONFIG.format(train=DATA / "iris.csv"))
    run_dir = tmp_path / "run"
    # Without TF_CPP_MIN_LOG_LEVEL: nnflow itself must keep TensorFlow's C++ start-up noise out of stderr.
    env = {**{k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "nnflow", "train", str(config), "--out", str(run_dir), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    deadline = time.monotonic() + 120
    try:
        while not ((run_dir / "history.csv").exists() and len(read_history(run_dir)) >= 3):
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "training did not get going"
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert process.stderr.read().decode() == ""

    # Whatever is there is complete: every file parses; nothing claims the run finished.
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"
    assert not (run_dir / "model.keras").exists() and not (run_dir / "metrics.json").exists()
    with np.load(run_dir / "checkpoint.npz") as checkpoint:
        completed = json.loads(str(checkpoint["state"]))["epochs_completed"]
    history = [int(row["epoch"]) for row in read_history(run_dir)]
    # The checkpoint is written first, then history.csv: a kill between them leaves history one behind.
    assert completed >= 3 and history == list(range(1, len(history) + 1)) and len(history) in (completed - 1, completed)

    result = invoke("train", "--resume", run_dir, "-q")
    assert result.exit_code == 0, result.output
    assert [int(row["epoch"]) for row in read_history(run_dir)] == list(range(1, 41))
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "completed" and info["epochs"]["completed"] == 40
    assert not list(run_dir.glob(".*"))  # no temporary files left behind

    reference = train(config, out=tmp_path / "reference")
    assert json.loads((run_dir / "metrics.json").read_text()) == reference.metrics


def test_resume_refuses_finished_changed_or_live_runs(tmp_path):
    data = tmp_path / "iris.csv"
    shutil.copy(DATA / "iris.csv", data)
    config = tmp_path / "iris.yaml"
    config.write_text((CONFIGS / "iris.yaml").read_text().replace("../data/iris.csv", "iris.csv"))
    done = train(config, ["fit.epochs=1", "expect={}"], out=tmp_path / "done").run_dir

    result = invoke("train", "--resume", done)
    assert result.exit_code == 2 and "finished training already; there is nothing to resume" in result.stderr

    info = json.loads((done / "run.json").read_text())
    trainer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "nnflow", "train"])
    try:
        (done / "run.json").write_text(json.dumps({**info, "status": "running", "pid": trainer.pid}))
        result = invoke("train", "--resume", done)
        assert result.exit_code == 2 and f"is still being trained by process {trainer.pid}" in result.stderr
    finally:
        trainer.kill()
        trainer.wait()
    unrelated = os.getppid()  # alive, but not nnflow: a pid reused after the trainer died
    (done / "run.json").write_text(json.dumps({**info, "status": "running", "pid": unrelated}))
    assert "still being trained" not in invoke("train", "--resume", done).stderr

    (done / "run.json").write_text(json.dumps({**info, "status": "interrupted"}))
    data.write_text(data.read_text().replace("5.1,3.5", "5.2,3.5", 1))
    result = invoke("train", "--resume", done)
    assert result.exit_code == 3 and "the train data changed since" in result.stderr

    (done / "run.json").write_text(json.dumps({**info, "status": "failed", "error": "the loss became NaN"}))
    result = invoke("train", "--resume", done)
    assert result.exit_code == 2 and "failed (the loss became NaN); resuming would repeat it" in result.stderr

    assert invoke("train", "--resume", done, "--set", "fit.epochs=3").exit_code == 2
    assert invoke("train", config, "--resume", done).exit_code == 2
    result = invoke("train")
    assert result.exit_code == 2 and "missing CONFIG" in result.stderr


def test_resume_runs_name_means_the_newest_run(tmp_path, monkeypatch):
    from nnflow.runs import find_run

    monkeypatch.chdir(tmp_path)
    for stamp, started in (
        ("2026-01-02_00-00-00", "2026-01-02T00:00:00"),
        ("2026-01-01_00-00-00", "2026-01-01T00:00:00"),
    ):
        folder = tmp_path / "runs" / "iris" / stamp
        folder.mkdir(parents=True)
        (folder / "run.json").write_text(json.dumps({"started": started}))
    assert find_run("runs/iris") == Path("runs/iris/2026-01-02_00-00-00")
    assert find_run("runs/iris/2026-01-01_00-00-00") == Path("runs/iris/2026-01-01_00-00-00")
    result = invoke("train", "--resume", "runs/nothing")
    assert result.exit_code == 2 and "runs/nothing: no such run folder" in result.stderr


def test_nan_loss_exits_4_and_marks_the_run_failed(tmp_path):
    result = invoke(
        "train",
        CONFIGS / "diabetes.yaml",
        "--out",
        tmp_path / "r",
        "-q",
        "--set",
        "data.normalize=false",
        "--set",
        "compile.optimizer.SGD.learning_rate=1.0",
        "--set",
        "fit.epochs=3",
    )
    assert result.exit_code == 4, result.output
    assert "the loss became NaN or infinite in epoch 1" in result.stderr
    assert "--set compile.optimizer.SGD.learning_rate=0.1" in result.stderr and "Traceback" not in result.output
    info = json.loads((tmp_path / "r" / "run.json").read_text())
    assert info["status"] == "failed" and "NaN" in info["error"]
    assert not (tmp_path / "r" / "model.keras").exists()
    assert len(read_history(tmp_path / "r")) == 1


def test_failing_gate_exits_5_naming_it_with_its_value(tmp_path):
    result = invoke(
        "train",
        CONFIGS / "iris.yaml",
        "--out",
        tmp_path / "r",
        "--set",
        "fit.epochs=1",
        "--set",
        "expect.val_loss=< 0.0001",
    )
    assert result.exit_code == 5, result.output
    val_loss = json.loads((tmp_path / "r" / "metrics.json").read_text())["val_loss"]
    assert result.stderr.startswith("Error: ") and " expect: gate(s) failed: " in result.stderr
    assert f"val_loss = {val_loss:.4g}, expected < 0.0001" in result.stderr
    assert "FAIL  val_loss < 0.0001" in result.stdout
    info = json.loads((tmp_path / "r" / "run.json").read_text())
    assert info["status"] == "completed" and not all(g["passed"] for g in info["gates"])
    assert (tmp_path / "r" / "model.keras").exists()


def test_out_must_be_a_new_or_empty_folder(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    result = invoke("train", CONFIGS / "iris.yaml", "--out", tmp_path / "taken")
    assert result.exit_code == 2 and "already exists and is not an empty folder" in result.stderr
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("afile/run", "cannot make {out}: {tmp}/afile is a file, not a folder."),
        ("afile", "Invalid value for '--out': Directory '{out}' is a file."),
    ],
)
def test_out_that_cannot_be_made_is_refused_before_training(tmp_path, out, message):
    (tmp_path / "afile").write_text("mine")
    result = invoke("train", CONFIGS / "iris.yaml", "--out", tmp_path / out)
    assert result.exit_code == 2 and message.format(out=tmp_path / out, tmp=tmp_path) in result.stderr
    assert result.stdout == ""  # refused before reading data or importing TensorFlow: no notes either


def test_train_needs_a_data_section():
    result = invoke("train", CONFIGS / "tutorial.yaml")
    assert result.exit_code == 2 and "`nnflow train` needs a `data:` section" in result.stderr


def test_callback_files_go_inside_the_run_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = train(
        CONFIGS / "iris.yaml",
        ["fit.epochs=2", "expect={}", "fit.callbacks=[{CSVLogger: {filename: keras_log.csv}}]"],
        out="r",
    )
    assert (result.run_dir / "keras_log.csv").exists() and not (tmp_path / "keras_log.csv").exists()


def test_the_python_api_trains_and_reports_gates_without_raising(tmp_path):
    import nnflow

    result = nnflow.train(CONFIGS / "iris.yaml", ["fit.epochs=1", "expect.val_loss=< 0.0001"], out=tmp_path / "r")
    assert result.run_dir == tmp_path / "r" and (result.run_dir / "model.keras").exists()
    assert "val_loss" in [gate.metric for gate in result.failed_gates]
