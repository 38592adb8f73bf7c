"""Every file nnflow reads back from a run folder is checked (exit 6 naming it, never a traceback),
and no command writes over a file of a run folder (exit 2, before any work).

Two runs are trained once for the module; each test damages a copy.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import CONFIGS, DATA
from nnflow import runs, training
from nnflow.cli import cli
from nnflow.errors import ConfigError, DamagedRunError
from nnflow.workflows import Progress, list_runs, train


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(autouse=True)
def no_hang():
    """A read that blocks (a FIFO opened for reading) fails the test instead of hanging the suite."""

    def hung(signum, frame):
        raise TimeoutError("the command hung")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A completed run with every file: model, metrics, history, gradients, preprocessing, experiment."""
    out = tmp_path_factory.mktemp("finished") / "iris"
    return train(
        CONFIGS / "iris.yaml", ["fit.epochs=2", "expect={}", "fit.diagnostics.gradient_norms=true"], out=out
    ).run_dir


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> Path:
    """A run stopped after its second epoch, so it keeps its checkpoint (EarlyStopping's best weights, a CSV log)."""
    out = tmp_path_factory.mktemp("interrupted") / "iris"

    def stop(row, epochs):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    callbacks = "fit.callbacks=[{EarlyStopping: {monitor: val_loss, patience: 5, restore_best_weights: true}}, {CSVLogger: {filename: log.csv}}]"
    with pytest.raises(KeyboardInterrupt):
        train(
            CONFIGS / "iris.yaml", ["fit.epochs=5", "expect={}", callbacks], out=out, progress=Progress(on_epoch=stop)
        )
    assert (out / runs.CHECKPOINT_FILE).is_file()
    return out


@pytest.fixture
def run(finished, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(finished, copy)
    (copy / "evaluation.json").write_text(
        json.dumps({"metrics": {"loss": 0.5}, "classification": None})
    )  # no evaluation from report
    return copy


# ---------------------------------------------------------------------------
# Ways to damage a file


def text(content: str):
    return lambda path: path.write_text(content)


def raw(content: bytes):
    return lambda path: path.write_bytes(content)


def edit(change):
    """Rewrite a JSON file through `change(document)`."""

    def damage(path):
        document = json.loads(path.read_text())
        change(document)
        path.write_text(json.dumps(document))

    return damage


def setting(**values):
    return edit(lambda document: document.update(values))


def dropping(*keys):
    def change(document):
        for key in keys:
            del document[key]

    return edit(change)


def fifo(path):
    path.unlink()
    os.mkfifo(path)


def folder(path):
    path.unlink()
    path.mkdir()


def link_loop(path):
    path.unlink()
    path.symlink_to(path.name)  # points at itself


def csv_edit(change):
    def damage(path):
        lines = path.read_text().splitlines()
        path.write_text("\n".join(change(lines)) + "\n")

    return damage


NOT_REGULAR = [
    ("fifo", fifo, "is a named pipe (FIFO), not a regular file"),
    ("folder", folder, "is a folder, not a regular file"),
    ("link-loop", link_loop, "a loop of symbolic links"),
]

RUN_JSON = [
    ("not-json", text('{"name": "iris-mlp", '), "run.json: not valid JSON"),
    ("empty", text(""), "run.json: not valid JSON"),
    ("not-utf8", raw(b'{"name": "\xff\xfe"}'), "run.json: not UTF-8 text"),
    ("a-list", text("[]"), "run.json: must be a JSON object (an nnflow run record); received a list"),
    ("data-list", setting(data=[]), "run.json: `data` must be a mapping of role -> {path, sha256}; received a list"),
    (
        "versions-list",
        setting(versions=["keras 3"]),
        "`versions` must be a mapping of package -> version text; received a list",
    ),
    ("seed-text", setting(seed="42"), "`seed` must be an integer; received the text '42'"),
    ("epochs-number", setting(epochs=3), "`epochs` must be a mapping {configured, completed}; received the number 3"),
    ("gates-not-records", setting(gates=[{"metric": "loss"}]), "`gates[0].condition` is missing"),
    ("format-text", setting(format="1"), "`format` must be a run format number (1 or more); received the text '1'"),
    ("no-name", dropping("name"), "`name` is missing"),
    ("no-status", dropping("status"), "`status` is missing"),
    ("no-data", dropping("data"), "`data` is missing"),
    ("no-epochs", dropping("epochs"), "`epochs` is missing"),
    ("no-sha256", edit(lambda info: info["data"]["train"].pop("sha256")), "`data.train.sha256` is missing"),
    (
        "data-entry-text",
        setting(data={"train": "iris.csv"}),
        "`data.train` must be a mapping {path, sha256}; received the text 'iris.csv'",
    ),
    ("no-completed", edit(lambda info: info["epochs"].pop("completed")), "`epochs.completed` is missing"),
    *NOT_REGULAR,
]

EVERY_READER = ("evaluate", "predict", "export", "report", "plot", "compare")


def command(name: str, run: Path, tmp_path: Path) -> list:
    return {
        "evaluate": ["evaluate", run],
        "predict": ["predict", run, "--input", DATA / "iris.csv", "--output", tmp_path / "p.csv"],
        "export": ["export", run, "--format", "tflite", "--output", tmp_path / "m.tflite"],
        "report": ["report", run, "--output", tmp_path / "r.html"],
        "plot": ["plot", run, "--output", tmp_path / "c.png"],
        "gradients": ["plot", run, "--gradients", "--output", tmp_path / "g.png"],
        "compare": ["compare", run, run],
    }[name]


def assert_damaged(result, fragment: str):
    assert result.exit_code == 6, result.output
    assert fragment in result.stderr, result.stderr
    assert "the run folder is damaged" in result.stderr and "Traceback" not in result.output


def snapshot(folder: Path) -> dict:
    return {
        p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()
    }


# ---------------------------------------------------------------------------
# run.json


@pytest.mark.parametrize(("case", "damage", "fragment"), RUN_JSON, ids=[case[0] for case in RUN_JSON])
def test_a_damaged_run_json_is_exit_6_for_every_command(run, tmp_path, case, damage, fragment):
    damage(run / "run.json")
    with pytest.raises(DamagedRunError, match="run.json"):
        runs.read_run_info(run)
    before = snapshot(run)
    for name in EVERY_READER:
        assert_damaged(invoke(*command(name, run, tmp_path)), fragment)
    assert snapshot(run) == before  # nothing written into the run, nothing marked
    assert not [p for p in tmp_path.iterdir() if p.name != "run"]  # no output made


@pytest.mark.parametrize(("case", "damage", "fragment"), RUN_JSON, ids=[case[0] for case in RUN_JSON])
def test_a_listing_shows_a_damaged_run_and_goes_on(finished, tmp_path, monkeypatch, case, damage, fragment):
    root = tmp_path / "runs" / "iris-mlp"
    for name in ("2026-01-01_00-00-00", "2026-01-02_00-00-00"):
        shutil.copytree(finished, root / name)
    damage(root / "2026-01-01_00-00-00" / "run.json")
    monkeypatch.chdir(tmp_path)
    rows = {row.folder.name: row for row in list_runs()}
    assert rows["2026-01-01_00-00-00"].status == "damaged" and fragment in rows["2026-01-01_00-00-00"].problem
    assert rows["2026-01-02_00-00-00"].status == "completed"
    result = invoke("runs")
    assert result.exit_code == 0, result.output
    assert "2026-01-01_00-00-00  damaged" in result.stdout and "2026-01-02_00-00-00  completed" in result.stdout
    document = json.loads(invoke("runs", "--json").stdout)
    damaged = [entry for entry in document["runs"] if entry["status"] == "damaged"]
    assert len(damaged) == 1 and fragment in damaged[0]["problem"]
    # runs/NAME picks the newest run that can be read; a damaged one sorts first.
    assert runs.find_run(root) == root / "2026-01-02_00-00-00"


def test_a_fifo_named_run_json_as_the_only_run_is_refused_at_once(tmp_path):
    (tmp_path / "runs" / "x").mkdir(parents=True)
    os.mkfifo(tmp_path / "runs" / "x" / "run.json")
    result = invoke("evaluate", tmp_path / "runs" / "x")
    assert_damaged(result, "run.json: is a named pipe (FIFO), not a regular file")
    assert_damaged(invoke("evaluate", tmp_path / "runs"), "is a named pipe (FIFO)")  # runs/NAME: the only candidate


def test_unknown_keys_and_statuses_are_accepted(run, tmp_path, monkeypatch):
    setting(status="archived", archived={"at": 2}, tracking_id="mlflow-123", format=1)(run / "run.json")
    info = runs.read_run_info(run)
    assert info["status"] == "archived" and info["tracking_id"] == "mlflow-123"
    (run / "metrics.json").write_text(json.dumps({"loss": 0.5, "val_loss": None, "a_later_metric": 3}))
    assert runs.read_metrics(run) == {"loss": 0.5, "val_loss": None, "a_later_metric": 3}
    setting(extra={"later": True})(run / "evaluation.json")
    assert runs.read_evaluation(run / "evaluation.json")["extra"] == {"later": True}
    setting(added_by_a_later_nnflow=[1, 2])(run / "preprocessing.json")
    result = invoke("predict", run, "--input", DATA / "iris.csv", "--output", tmp_path / "p.csv", "-q")
    assert result.exit_code == 0, result.output
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "x").mkdir(parents=True)
    shutil.move(str(run), tmp_path / "runs" / "x" / "run")
    assert [row.status for row in list_runs()] == ["archived"]


def test_a_run_json_over_the_size_limit_is_damaged(run, monkeypatch):
    monkeypatch.setattr(runs.reading, "JSON_LIMIT", 100)
    assert_damaged(invoke("compare", run, run), "run.json: larger than 100 bytes")


def test_a_run_from_a_newer_nnflow_is_said_as_such_before_its_keys_are_read(run, tmp_path):
    (run / "run.json").write_text(json.dumps({"format": 99, "versions": {"nnflow": "9.0"}, "data": "a newer shape"}))
    result = invoke("report", run, "-o", tmp_path / "r.html")
    assert result.exit_code == 6 and "was written by nnflow 9.0 (run format 99)" in result.stderr


# ---------------------------------------------------------------------------
# The other run files, each with the commands that read it

OTHER_FILES = [
    # metrics.json: evaluate (its gates), report, compare, runs
    ("metrics.json", "not-json", text("{"), "metrics.json: not valid JSON", ("evaluate", "report", "compare")),
    (
        "metrics.json",
        "a-list",
        text("[1]"),
        "metrics.json: must be a JSON object (metric name -> number); received a list",
        ("evaluate", "report", "compare"),
    ),
    (
        "metrics.json",
        "text-value",
        setting(loss="low"),
        "metrics.json: `loss` must be a number (or null); received the text 'low'",
        ("evaluate", "report", "compare"),
    ),
    ("metrics.json", "fifo", fifo, "metrics.json: is a named pipe (FIFO)", ("evaluate", "report", "compare")),
    # preprocessing.json: evaluate, predict, export, report
    (
        "preprocessing.json",
        "not-json",
        text("{'task': 1}"),
        "preprocessing.json: not valid JSON",
        ("evaluate", "predict", "export", "report"),
    ),
    (
        "preprocessing.json",
        "a-list",
        text("[]"),
        "preprocessing.json: must be a JSON object (the run's encodings); received a list",
        ("predict", "report"),
    ),
    (
        "preprocessing.json",
        "no-target",
        dropping("target"),
        "preprocessing.json: `target` is missing",
        ("evaluate", "predict", "export", "report"),
    ),
    (
        "preprocessing.json",
        "shape-text",
        setting(input_shape="4"),
        "`input_shape` must be a list of positive sizes; received the text '4'",
        ("predict", "export"),
    ),
    (
        "preprocessing.json",
        "shape-wrong",
        setting(input_shape=[5]),
        "`input_shape` [5] does not hold the 4 numbers the feature columns give",
        ("predict", "report"),
    ),
    (
        "preprocessing.json",
        "unknown-task",
        setting(task="ranking"),
        "`task` must be 'classification' or 'regression'; received the text 'ranking'",
        ("predict",),
    ),
    (
        "preprocessing.json",
        "binary-of-3",
        setting(target_encoding="binary"),
        "a binary target has two classes; `class_names` lists 3",
        ("evaluate",),
    ),
    (
        "preprocessing.json",
        "short-mean",
        setting(mean=[0.0]),
        "`mean` must be a list of 4 numbers (one per input column) or null",
        ("predict",),
    ),
    (
        "preprocessing.json",
        "fifo",
        fifo,
        "preprocessing.json: is a named pipe (FIFO)",
        ("evaluate", "predict", "export", "report"),
    ),
    # experiment.yaml: evaluate, predict, export (the spec), compare (its keys), report (its text)
    (
        "experiment.yaml",
        "alias-bomb",
        text(
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8))
        ),
        "aliases expand to more than",
        ("evaluate", "predict", "export", "compare"),
    ),
    (
        "experiment.yaml",
        "python-tag",
        text("name: !!python/object/apply:os.system [echo hi]\n"),
        "the tag !!python/object/apply:os.system is not allowed",
        ("predict", "compare"),
    ),
    ("experiment.yaml", "not-a-mapping", text("- layers\n- compile\n"), "experiment.yaml: ", ("predict", "compare")),
    (
        "experiment.yaml",
        "not-a-spec",
        text("layers: 5\ncompile: {optimizer: adam, loss: mse}\n"),
        "experiment.yaml: it does not load",
        ("evaluate", "predict", "export"),
    ),
    ("experiment.yaml", "not-utf8", raw(b"name: \xff\n"), "not UTF-8", ("predict", "compare", "report")),
    ("experiment.yaml", "fifo", fifo, "experiment.yaml: ", ("evaluate", "predict", "export", "compare", "report")),
    # history.csv: plot, report
    (
        "history.csv",
        "no-epoch",
        csv_edit(lambda lines: [lines[0].replace("epoch,", "step,"), *lines[1:]]),
        "history.csv: no 'epoch' column in its header",
        ("plot", "report"),
    ),
    (
        "history.csv",
        "epoch-text",
        csv_edit(lambda lines: [lines[0], "one" + lines[1][1:], *lines[2:]]),
        "history.csv: line 2: `epoch` must be an epoch number (1 or more); received 'one'",
        ("plot", "report"),
    ),
    (
        "history.csv",
        "value-text",
        csv_edit(lambda lines: [lines[0], lines[1].replace(",0.", ",zero", 1), *lines[2:]]),
        "history.csv: line 2, column ",
        ("plot", "report"),
    ),
    (
        "history.csv",
        "ragged",
        csv_edit(lambda lines: [lines[0], lines[1] + ",1,2", *lines[2:]]),
        "history.csv: line 2 has",
        ("plot", "report"),
    ),
    (
        "history.csv",
        "nul",
        raw(b"epoch,loss\n1,0.5\x00\n"),
        "history.csv: line 2, column 'loss': '0.5\\x00' is not a number",
        ("plot", "report"),
    ),
    ("history.csv", "empty", text(""), "history.csv: empty", ("plot", "report")),
    ("history.csv", "fifo", fifo, "history.csv: is a named pipe (FIFO)", ("plot", "report")),
    # gradients.csv: plot --gradients, report
    (
        "gradients.csv",
        "no-norm",
        csv_edit(lambda lines: [lines[0].replace("norm", "size"), *lines[1:]]),
        "gradients.csv: no 'norm' column in its header",
        ("gradients", "report"),
    ),
    (
        "gradients.csv",
        "norm-text",
        csv_edit(lambda lines: [lines[0], lines[1].rsplit(",", 1)[0] + ",big", *lines[2:]]),
        "gradients.csv: line 2, column 'norm': 'big' is not a number",
        ("gradients", "report"),
    ),
    ("gradients.csv", "fifo", fifo, "gradients.csv: is a named pipe (FIFO)", ("gradients", "report")),
    # evaluation.json: report (its confusion matrix)
    ("evaluation.json", "not-json", text("nope"), "evaluation.json: not valid JSON", ("report",)),
    ("evaluation.json", "no-metrics", text("{}"), "evaluation.json: `metrics` is missing", ("report",)),
    (
        "evaluation.json",
        "matrix-not-square",
        text(json.dumps({"metrics": {}, "classification": {"classes": ["a", "b"], "confusion_matrix": [[1, 2]]}})),
        "`classification.confusion_matrix` must be a 2 x 2 table of counts",
        ("report",),
    ),
    ("evaluation.json", "fifo", fifo, "evaluation.json: is a named pipe (FIFO)", ("report",)),
]


@pytest.mark.parametrize(
    ("file", "case", "damage", "fragment", "commands"), OTHER_FILES, ids=[f"{c[0]}-{c[1]}" for c in OTHER_FILES]
)
def test_a_damaged_run_file_is_exit_6_for_every_command_that_reads_it(
    run, tmp_path, file, case, damage, fragment, commands
):
    damage(run / file)
    info = (run / "run.json").read_bytes()
    for name in commands:
        assert_damaged(invoke(*command(name, run, tmp_path)), fragment)
    assert (run / "run.json").read_bytes() == info
    assert not [p for p in tmp_path.iterdir() if p.name != "run"]  # no output made


@pytest.mark.parametrize(
    ("file", "reader"),
    [
        ("metrics.json", runs.read_metrics),
        ("preprocessing.json", runs.read_preprocessing),
        ("history.csv", runs.read_history),
        ("gradients.csv", runs.read_gradients),
        ("experiment.yaml", runs.read_experiment),
        ("experiment.yaml", runs.read_spec),
    ],
)
@pytest.mark.parametrize(("case", "damage", "fragment"), NOT_REGULAR, ids=[case[0] for case in NOT_REGULAR])
def test_every_reader_refuses_what_is_not_a_regular_file(run, file, reader, case, damage, fragment):
    damage(run / file)
    with pytest.raises(DamagedRunError, match=file.replace(".", r"\.")) as raised:
        reader(run)
    assert "the run folder is damaged" in str(raised.value)


def test_the_readers_give_what_the_run_wrote(finished):
    history = runs.read_history(finished)
    assert [row["epoch"] for row in history] == [1, 2] and all(isinstance(row["loss"], float) for row in history)
    gradients = runs.read_gradients(finished)
    assert gradients[0]["layer"] == "dense/kernel" and gradients[0]["epoch"] == 1
    metrics = runs.read_metrics(finished)
    assert set(metrics) >= {"loss", "val_loss", "test_loss"}
    preprocessing = runs.read_preprocessing(finished)
    assert preprocessing.to_json() == json.loads((finished / "preprocessing.json").read_text())
    assert runs.read_experiment(finished)["name"] == "iris-mlp"
    assert runs.read_metrics(finished / "nothing", optional=True) is None


def test_a_damaged_run_in_a_plot_of_several_names_the_file(run, finished, tmp_path):
    csv_edit(lambda lines: [lines[0].replace("epoch", "round"), *lines[1:]])(run / "history.csv")
    result = invoke("plot", finished, run, "-o", tmp_path / "both.png")
    assert_damaged(result, f"{run / 'history.csv'}: no 'epoch' column")


# ---------------------------------------------------------------------------
# checkpoint.npz


def stored_arrays(run_dir: Path) -> dict:
    with np.load(run_dir / runs.CHECKPOINT_FILE, allow_pickle=False) as stored:
        return {key: stored[key] for key in stored.files}


def rewrite(path: Path, change) -> None:
    arrays = stored_arrays(path.parent)
    change(arrays)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())


def state_edit(change):
    def on_arrays(arrays):
        state = json.loads(str(arrays["state"]))
        change(state)
        arrays["state"] = np.array(json.dumps(state))

    return lambda path: rewrite(path, on_arrays)


def array_edit(change):
    return lambda path: rewrite(path, change)


def zip_bomb(path):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("state.npy", b"\0" * (4 << 20))


CHECKPOINTS = [
    ("garbage", raw(b"not a zip file at all"), "not a readable checkpoint (BadZipFile"),
    ("truncated", lambda path: path.write_bytes(path.read_bytes()[:3000]), "not a readable checkpoint"),
    ("zip-bomb", zip_bomb, "expands to 4,194,304 bytes (a zip bomb?)"),
    (
        "object-array",
        array_edit(lambda a: a.update({"model.0": np.array([{"x": 1}], dtype=object)})),
        "not a readable checkpoint (ValueError: Object arrays",
    ),
    ("no-state", array_edit(lambda a: a.pop("state")), "holds no `state`"),
    ("state-not-json", array_edit(lambda a: a.update(state=np.array("{epochs"))), "its `state` is not valid JSON"),
    ("state-a-number", array_edit(lambda a: a.update(state=np.array([1.0, 2.0]))), "its `state` must be JSON text"),
    ("state-a-list", state_edit(lambda s: s.clear()), "`epochs_completed` is missing"),
    ("no-history", state_edit(lambda s: s.pop("history")), "`history` is missing"),
    ("no-callbacks", state_edit(lambda s: s.pop("callbacks")), "`callbacks` is missing"),
    (
        "epochs-text",
        state_edit(lambda s: s.update(epochs_completed="2")),
        "`epochs_completed` must be the number of epochs completed",
    ),
    ("history-short", state_edit(lambda s: s["history"].pop()), "its history does not hold epochs 1 to 2"),
    ("history-text", state_edit(lambda s: s["history"][0].update(loss="low")), "`history[0].loss` must be a number"),
    (
        "callback-state-text",
        state_edit(lambda s: s["callbacks"][0].update(wait="two")),
        "`callbacks[0].wait` must be a number, null or {arrays: N}",
    ),
    (
        "best-weights-missing",
        array_edit(lambda a: a.pop("callback0.best_weights.1")),
        "the array callback0.best_weights.1 of its callback state is missing",
    ),
    ("model-array-missing", array_edit(lambda a: a.pop("model.1")), "the array model.1 is missing"),
    (
        "text-array",
        array_edit(lambda a: a.update({"optimizer.0": np.array(["x"])})),
        "the array optimizer.0 holds <U1 values, not numbers",
    ),
    *NOT_REGULAR,
]


@pytest.fixture
def resumable(interrupted, tmp_path) -> Path:
    copy = tmp_path / "resumable"
    shutil.copytree(interrupted, copy)
    return copy


@pytest.mark.parametrize(("case", "damage", "fragment"), CHECKPOINTS, ids=[case[0] for case in CHECKPOINTS])
def test_a_damaged_checkpoint_is_refused_when_loaded(resumable, case, damage, fragment):
    damage(resumable / runs.CHECKPOINT_FILE)
    with pytest.raises(DamagedRunError) as raised:
        runs.load_checkpoint(resumable)
    message = str(raised.value)
    assert message.startswith(f"{resumable / runs.CHECKPOINT_FILE}: ") and fragment in message, message


def test_a_sound_checkpoint_loads_and_none_without_one(resumable, finished):
    state, arrays = runs.load_checkpoint(resumable)
    assert state["epochs_completed"] == 2 and [row["epoch"] for row in state["history"]] == [1, 2]
    assert "state" not in arrays and "model.0" in arrays
    assert runs.load_checkpoint(finished) is None  # a completed run keeps none


@pytest.fixture
def model(finished):
    """A model of the same experiment (iris.yaml), compiled as a resume builds it."""
    import keras

    return keras.saving.load_model(finished / "model.keras")


def weights_of(model) -> list:
    return [np.array(v.numpy()) for v in [*model.variables, *model.optimizer.variables]]


@pytest.mark.parametrize(
    ("case", "change", "fragment"),
    [
        (
            "wrong-shape",
            lambda a: a.update({"model.0": np.zeros((5, 16), "float32")}),
            "the array model.0 has shape [5, 16], but the model's ",
        ),
        (
            "last-wrong-shape",
            lambda a: a.update({"optimizer.9": np.zeros((4,), "float32")}),
            "the array optimizer.9 has shape [4], but the model's ",
        ),
        (
            "one-too-few",
            lambda a: a.pop("optimizer.9"),
            "it holds 9 optimizer arrays, but the run's model has 10 optimizer variables",
        ),
        (
            "one-too-many",
            lambda a: a.update({"model.5": np.zeros(3, "float32")}),
            "it holds 6 model arrays, but the run's model has 5 model variables",
        ),
    ],
)
def test_restore_weights_checks_every_array_before_assigning_any(resumable, model, case, change, fragment):
    state, arrays = runs.load_checkpoint(resumable)
    change(arrays)
    model.optimizer.build(model.trainable_variables)
    before = weights_of(model)
    with pytest.raises(DamagedRunError) as raised:
        runs.restore_weights(model, arrays, path=resumable / runs.CHECKPOINT_FILE)
    assert fragment in str(raised.value) and str(raised.value).startswith(str(resumable / runs.CHECKPOINT_FILE))
    assert all(np.array_equal(a, b) for a, b in zip(before, weights_of(model)))  # nothing was assigned


def test_restore_weights_puts_a_sound_checkpoint_back(resumable, model):
    state, arrays = runs.load_checkpoint(resumable)
    runs.restore_weights(model, arrays)
    assert np.array_equal(model.variables[0].numpy(), arrays["model.0"])


def callbacks_of(resumable: Path):
    import keras

    return [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True),
        keras.callbacks.CSVLogger(str(resumable / "log.csv")),
    ]


@pytest.mark.parametrize(
    ("case", "change", "fragment"),
    [
        (
            "fewer-callbacks",
            lambda cbs, states, arrays: cbs.pop(),
            "it holds the state of 2 callback(s), but the run's experiment has 1",
        ),
        (
            "swapped",
            lambda cbs, states, arrays: cbs.reverse(),
            "the state of callback 0 has 'wait', which CSVLogger does not keep",
        ),
        (
            "unknown-key",
            lambda cbs, states, arrays: states[0].update(secret=1),
            "the state of callback 0 has 'secret', which EarlyStopping does not keep",
        ),
        (
            "text-value",
            lambda cbs, states, arrays: states[0].update(wait="two"),
            "has 'wait' = the text 'two'; expected a number",
        ),
        (
            "best-weights-shape",
            lambda cbs, states, arrays: arrays.update({"callback0.best_weights.0": np.zeros((5, 16), "float32")}),
            "the best weights kept by callback 0 (EarlyStopping) do not fit the run's model",
        ),
        (
            "best-weights-missing",
            lambda cbs, states, arrays: arrays.pop("callback0.best_weights.3"),
            "the state of callback 0 (EarlyStopping) has a damaged 'best_weights'",
        ),
    ],
)
def test_restore_callbacks_refuses_states_that_do_not_fit(resumable, model, case, change, fragment):
    state, arrays = runs.load_checkpoint(resumable)
    callbacks = callbacks_of(resumable)
    log = (resumable / "log.csv").read_bytes()
    change(callbacks, state["callbacks"], arrays)
    with pytest.raises(DamagedRunError) as raised:
        training.restore_callbacks(
            callbacks,
            state["callbacks"],
            arrays,
            state["epochs_completed"],
            model=model,
            path=str(resumable / runs.CHECKPOINT_FILE),
        )
    assert fragment in str(raised.value), str(raised.value)
    assert (resumable / "log.csv").read_bytes() == log  # checked before anything was changed


def test_restore_callbacks_fits_a_sound_state_and_cuts_the_csv_log(resumable, model):
    state, arrays = runs.load_checkpoint(resumable)
    callbacks = callbacks_of(resumable)
    with open(resumable / "log.csv", "a") as stream:
        stream.write("2,0.9,0.1,0.9,0.1\n")  # an epoch the checkpoint does not have
    restore = training.restore_callbacks(callbacks, state["callbacks"], arrays, state["epochs_completed"], model=model)
    assert [line.split(",")[0] for line in (resumable / "log.csv").read_text().splitlines()] == ["epoch", "0", "1"]
    restore.on_train_begin()
    assert len(callbacks[0].best_weights) == 4 and callbacks[0].wait == state["callbacks"][0]["wait"]


@pytest.mark.parametrize(
    ("case", "damage", "fragment"),
    [
        *NOT_REGULAR,
        ("not-utf8", raw(b"epoch,loss\n0,\xff\n"), "not UTF-8 text"),
    ],
)
def test_a_csv_log_that_is_not_a_readable_file_is_damage(resumable, model, case, damage, fragment):
    state, arrays = runs.load_checkpoint(resumable)
    damage(resumable / "log.csv")
    with pytest.raises(DamagedRunError, match="log.csv") as raised:
        training.restore_callbacks(
            callbacks_of(resumable), state["callbacks"], arrays, state["epochs_completed"], model=model
        )
    assert fragment in str(raised.value)


# ---------------------------------------------------------------------------
# Outputs: never over a file of a run folder; never a path that cannot be used


OUTPUT_COMMANDS = {  # command -> (its arguments before --output, an output of its own kind)
    "evaluate": (lambda run: ["evaluate", run], "evaluation.json"),
    "predict": (lambda run: ["predict", run, "--input", DATA / "iris.csv"], "predictions.csv"),
    "report": (lambda run: ["report", run], "report.html"),
    "plot": (lambda run: ["plot", run], "curves.png"),
    "export": (lambda run: ["export", run, "--format", "tflite"], "model.tflite"),
}


@pytest.fixture
def no_work(monkeypatch):
    """Loading a model or drawing a picture fails the test: the output must be refused before."""
    import nnflow.modelfile
    import nnflow.plots

    def work(*args, **kwargs):
        raise AssertionError("work was done before the output was checked")

    for module, name in (
        (nnflow.modelfile, "load_model"),
        (nnflow.plots, "learning_curves"),
        (nnflow.plots, "gradient_norms"),
    ):
        monkeypatch.setattr(module, name, work)


def refused(result, fragment: str):
    assert result.exit_code == 2, result.output
    assert "--output" in result.stderr and fragment in result.stderr, result.stderr


@pytest.mark.parametrize("name", OUTPUT_COMMANDS)
def test_no_command_writes_over_a_file_of_its_run(run, tmp_path, no_work, name):
    arguments, own = OUTPUT_COMMANDS[name]
    other = tmp_path / "other"
    shutil.copytree(run, other)
    (tmp_path / "alias").symlink_to(run)
    suffix = Path(own).suffix
    before, before_other = snapshot(run), snapshot(other)
    for file in ("history.csv", "metrics.json", "model.keras", "run.json", "experiment.yaml"):
        (tmp_path / f"link-{file}{suffix}").symlink_to(run / file)
    outputs = [
        *[
            tmp_path / f"link-{file}{suffix}" for file in ("history.csv", "metrics.json", "model.keras")
        ],  # a link to a run file
        other / own
        if name != "export"
        else other / "export" / own,  # the command's own output, in another run's folder
        run / "sub" / own,  # a folder inside the run
        run,  # the run folder itself
    ]
    not_own = {"evaluate": "metrics.json", "predict": "history.csv", "export": "model.tflite"}.get(
        name
    )  # report, plot: any .html, .png
    if not_own:
        outputs += [
            run / not_own,  # a file of the run
            run / "export" / ".." / not_own,  # `..` inside the run
            tmp_path / "alias" / not_own,  # through a link to the run folder
        ]
    for output in outputs:
        result = invoke(*arguments(run), "--output", output)
        assert result.exit_code == 2, (output, result.output)
        assert "--output" in result.stderr, result.stderr
    assert snapshot(run) == before and snapshot(other) == before_other


def test_the_run_folder_guard_says_what_may_be_written_where(run, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(run, other)
    with pytest.raises(ConfigError, match=r"in a run folder, predict writes only predictions\*\.csv/\.tsv/\.parquet"):
        runs.check_output(run / "history.csv", "predict", [run])
    with pytest.raises(ConfigError, match="predict writes nothing into the folder of another run"):
        runs.check_output(other / "predictions.csv", "predict", [run])
    (tmp_path / "link.csv").symlink_to(run / "history.csv")
    with pytest.raises(ConfigError, match=f"it resolves to {run / 'history.csv'}"):
        runs.check_output(tmp_path / "link.csv", "predict", [run])
    for command, output in (
        ("evaluate", "evaluation-new.json"),
        ("predict", "predictions-2.parquet"),
        ("report", "mine.html"),
        ("plot", "gradients.png"),
        ("export", "export/savedmodel"),
    ):
        assert runs.check_output(run / output, command, [run]) == run / output  # its own outputs, in its run
    assert runs.check_output(tmp_path / "anywhere" / "else.csv", "predict", [run]) == tmp_path / "anywhere" / "else.csv"


@pytest.mark.parametrize("name", OUTPUT_COMMANDS)
def test_an_output_under_a_regular_file_is_exit_2_before_any_work(run, tmp_path, no_work, name):
    arguments, own = OUTPUT_COMMANDS[name]
    (tmp_path / "file.txt").write_text("a file")
    refused(invoke(*arguments(run), "--output", tmp_path / "file.txt" / own), "file.txt is a file, not a folder")
    assert (tmp_path / "file.txt").read_text() == "a file"


@pytest.mark.parametrize("name", OUTPUT_COMMANDS)
def test_an_output_in_a_folder_that_cannot_be_written_is_exit_2_before_any_work(
    run, tmp_path, no_work, monkeypatch, name
):
    from nnflow import fileio

    arguments, own = OUTPUT_COMMANDS[name]
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    # As root every folder is writable; the check asks os.access, so it is told this one is not.
    monkeypatch.setattr(fileio.os, "access", lambda path, mode: Path(path) != locked and real_access(path, mode))
    refused(invoke(*arguments(run), "--output", locked / own), "is not writable")


@pytest.mark.parametrize("name", ["evaluate", "predict", "report", "plot"])
def test_an_output_that_is_a_folder_is_exit_2(run, tmp_path, no_work, name):
    from nnflow.workflows import evaluate, plot, predict, report

    arguments, own = OUTPUT_COMMANDS[name]
    (tmp_path / own).mkdir()
    call = {
        "evaluate": lambda: evaluate(run, output=tmp_path / own),
        "predict": lambda: predict(run, DATA / "iris.csv", tmp_path / own),
        "report": lambda: report(run, tmp_path / own),
        "plot": lambda: plot([run], tmp_path / own),
    }[name]
    with pytest.raises(ConfigError, match="is a folder; give a file name"):
        call()
    assert invoke(*arguments(run), "--output", tmp_path / own).exit_code == 2  # click or nnflow: either says it


def test_a_default_output_in_a_read_only_run_is_exit_2_naming_the_run(run, no_work, monkeypatch):
    from nnflow import fileio

    real_access = os.access
    monkeypatch.setattr(fileio.os, "access", lambda path, mode: Path(path) != run and real_access(path, mode))
    result = invoke("report", run)
    assert (
        result.exit_code == 2
        and "RUN" in result.stderr
        and "is not writable. Give an --output elsewhere." in result.stderr
    )


def test_export_refuses_an_extension_of_another_format(run, tmp_path, no_work):
    refused(
        invoke("export", run, "-f", "tflite", "-o", tmp_path / "x.onnx"),
        "a tflite export is a TensorFlow Lite flatbuffer; give a .tflite file",
    )
    refused(invoke("export", run, "-f", "onnx", "-o", tmp_path / "x.tflite"), "give a .onnx file")
    refused(
        invoke("export", run, "-f", "savedmodel", "-o", tmp_path / "x.keras"),
        "a savedmodel export is a folder; give a folder name",
    )


def test_own_outputs_in_the_own_run_are_written(run, tmp_path):
    before = snapshot(run)
    result = invoke("predict", run, "--input", DATA / "iris.csv", "--output", run / "predictions-new.csv", "-q")
    assert result.exit_code == 0, result.output
    result = invoke("evaluate", run, "--output", run / "evaluation-mine.json")
    assert result.exit_code == 0, result.output
    after = snapshot(run)
    assert {k: v for k, v in after.items() if k in before} == before
    assert set(after) - set(before) == {Path("predictions-new.csv"), Path("evaluation-mine.json")}


# ---------------------------------------------------------------------------
# `train --resume` on a damaged run: exit 6, and the run is left exactly as it was


RESUME_DAMAGE = [
    (
        "checkpoint: an array of the wrong shape",
        runs.CHECKPOINT_FILE,
        array_edit(lambda a: a.update({"model.2": np.zeros((5, 5), dtype="float32")})),
        "model.2",
    ),
    (
        "checkpoint: no callback state",
        runs.CHECKPOINT_FILE,
        state_edit(lambda s: s.pop("callbacks")),
        "`callbacks` is missing",
    ),
    (
        "checkpoint: callback state of another callback",
        runs.CHECKPOINT_FILE,
        state_edit(lambda s: s["callbacks"].append({"wait": 1})),
        "checkpoint.npz",
    ),
    (
        "checkpoint: truncated",
        runs.CHECKPOINT_FILE,
        lambda path: path.write_bytes(path.read_bytes()[:3000]),
        "not a readable checkpoint",
    ),
    ("run.json: not JSON", "run.json", raw(b"{status: interrupted"), "not valid JSON"),
    ("run.json: data a list", "run.json", setting(data=[]), "`data` must be a mapping"),
    ("run.json: versions a list", "run.json", setting(versions=["3.15"]), "`versions`"),
    ("run.json: no epochs", "run.json", dropping("epochs"), "`epochs` is missing"),
    (
        "experiment.yaml: an alias bomb",
        "experiment.yaml",
        raw(
            b"a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
            b"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
        ),
        "experiment.yaml",
    ),
    ("preprocessing.json: a list", "preprocessing.json", raw(b"[]"), "preprocessing.json"),
]


@pytest.mark.parametrize(("case", "file", "damage", "fragment"), RESUME_DAMAGE, ids=[case[0] for case in RESUME_DAMAGE])
def test_resuming_a_damaged_run_is_exit_6_and_changes_nothing(resumable, case, file, damage, fragment):
    damage(resumable / file)
    before = snapshot(resumable)
    result = invoke("train", "--resume", resumable)
    assert result.exit_code == 6, result.output
    assert fragment in result.stderr and "Traceback" not in result.output
    assert snapshot(resumable) == before  # the status, the checkpoint, the CSV log: all as they were
