"""MLflow tracking: `--mlflow` on train, sweep and evaluate, `nnflow log`, against a real MLflow server.

One `mlflow server` (SQLite backend store, artifacts served from a temporary folder) is started on a
free 127.0.0.1 port for the module and stopped after it. What each test checks is read back from the
server with `MlflowClient`. Training happens in this process (iris, a few epochs).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import CONFIGS, DATA
from nnflow.cli import cli

pytestmark = pytest.mark.slow

QUICK = ["fit.epochs=6", "fit.callbacks=[]"]


def invoke(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """`mlflow server` on a free 127.0.0.1 port, its URL; stopped (and its process group gone) afterwards."""
    if importlib.util.find_spec("mlflow") is None:
        pytest.fail("these tests need MLflow: pip install -e '.[mlflow]' (make test installs it)")
    home = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--backend-store-uri",
        f"sqlite:///{home / 'mlflow.db'}",
        "--artifacts-destination",
        str(home / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    log = open(home / "server.log", "wb")  # noqa: SIM115 - open for the server's whole life
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=home, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {(home / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()
        log.close()


@pytest.fixture
def tracking(mlflow_server, monkeypatch):
    """The server as this test's tracking store, in an experiment of the test's own; its client."""
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", f"test-{time.monotonic_ns()}")
    return MlflowClient(mlflow_server)


def run_json(folder: Path) -> dict:
    return json.loads((folder / "run.json").read_text())


def logged_run(client, folder: Path):
    return client.get_run(run_json(folder)["tracking"]["mlflow"]["run_id"])


def runs_with_uuid(client, folder: Path) -> list:
    experiment = client.get_experiment_by_name(os.environ["MLFLOW_EXPERIMENT_NAME"])
    uuid = run_json(folder)["uuid"]
    return client.search_runs([experiment.experiment_id], filter_string=f"tags.`nnflow.run_uuid` = '{uuid}'")


@pytest.fixture(scope="module")
def trained(mlflow_server, tmp_path_factory):
    """One run trained with --mlflow (in this process), the experiment it went to."""
    folder = tmp_path_factory.mktemp("tracked") / "run"
    experiment = "tracked-iris"
    env = {"MLFLOW_TRACKING_URI": mlflow_server, "MLFLOW_EXPERIMENT_NAME": experiment}
    overrides = [item for value in QUICK for item in ("--set", value)]
    result = invoke("train", CONFIGS / "iris.yaml", *overrides, "--out", folder, "--mlflow", "-q", env=env)
    assert result.exit_code in (0, 5), result.output
    return folder


def test_a_trained_run_holds_params_epochs_final_metrics_tags_and_files(trained, mlflow_server):
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server)
    info = run_json(trained)
    assert info["tracking"]["mlflow"]["status"] == "logged"
    run = logged_run(client, trained)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "tracked-iris"
    # params: every key of the resolved experiment, as --set writes it (the drawn seed, the overrides)
    params = run.data.params
    assert params["fit.epochs"] == "6"
    assert params["seed"] == "42"
    assert params["layers.0.Dense.units"] == "16"
    assert params["compile.optimizer.Adam.learning_rate"] == "0.01"
    assert params["data.target"] == "species"
    # each epoch's history, step = epoch
    history = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert sorted({point.step for point in history}) == [1, 2, 3, 4, 5, 6]
    # the final metrics are the run's values, under expect:'s names
    metrics = json.loads((trained / "metrics.json").read_text())
    assert {key: run.data.metrics[key] for key in metrics} == pytest.approx(metrics)
    assert "test_accuracy" in run.data.metrics
    tags = run.data.tags
    assert tags["nnflow.run_uuid"] == info["uuid"]
    assert tags["nnflow.run_folder"] == str(trained.resolve())
    assert tags["nnflow.status"] == "completed"
    assert tags["nnflow.versions.keras"] == info["versions"]["keras"]
    assert tags["nnflow.versions.tensorflow"] == info["versions"]["tensorflow"]
    assert tags["nnflow.data.train.sha256"] == info["data"]["train"]["sha256"]
    assert tags["mlflow.source.git.commit"] == info["git"]["commit"]  # the repository holds configs/
    assert tags["nnflow.model"] == f"runs:/{run.info.run_id}/model"
    files = {entry.path for entry in client.list_artifacts(run.info.run_id)}
    assert {
        "experiment.yaml",
        "history.csv",
        "metrics.json",
        "preprocessing.json",
        "curves.png",
        "report.html",
    } <= files
    models = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    assert [model.name for model in models if model.source_run_id == run.info.run_id] == ["model"]


def test_the_logged_model_predicts_as_nnflow_predict_does(trained, mlflow_server, tmp_path, monkeypatch):
    import mlflow.pyfunc
    import pandas as pd

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    expected = tmp_path / "predictions.csv"
    assert invoke("predict", trained, "--input", DATA / "iris.csv", "-o", expected, "-q").exit_code == 0
    model = mlflow.pyfunc.load_model(f"runs:/{run_json(trained)['tracking']['mlflow']['run_id']}/model")
    rows = pd.read_csv(DATA / "iris.csv").drop(columns=["species"])
    answer = model.predict(rows)
    reference = pd.read_csv(expected)
    assert list(answer["predicted_species"]) == list(reference["predicted_species"])
    for column in ("probability_setosa", "probability_versicolor", "probability_virginica"):
        assert answer[column].to_numpy() == pytest.approx(reference[column].to_numpy(), abs=1e-6)
    schema = model.metadata.get_input_schema()
    assert schema.input_names() == ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def test_a_resumed_run_continues_its_mlflow_run(tracking, tmp_path):
    from nnflow.workflows import Progress, train
    from nnflow.workflows.tracking_live import MlflowTracker

    folder = tmp_path / "run"

    def stop(row, epochs):
        if row["epoch"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(CONFIGS / "iris.yaml", QUICK, out=folder, progress=Progress(on_epoch=stop), tracker=MlflowTracker())
    first = logged_run(tracking, folder)
    assert first.info.status == "KILLED"
    assert run_json(folder)["status"] == "interrupted"
    train(resume=folder, tracker=MlflowTracker())
    [run] = runs_with_uuid(tracking, folder)
    assert run.info.run_id == first.info.run_id
    assert run.info.status == "FINISHED"
    steps = [point.step for point in tracking.get_metric_history(run.info.run_id, "val_loss")]
    assert sorted(set(steps)) == [1, 2, 3, 4, 5, 6]
    assert all(steps.count(step) == 1 for step in range(1, 6))  # epochs 1-3 not sent again on resume
    final = json.loads((folder / "metrics.json").read_text())["val_loss"]
    assert run.data.metrics["val_loss"] == pytest.approx(final)  # at step 6, unless epoch 6 gave the same number


def test_nnflow_log_twice_makes_no_duplicates(tracking, tmp_path):
    folder = tmp_path / "run"
    overrides = [item for value in QUICK for item in ("--set", value)]
    assert invoke("train", CONFIGS / "iris.yaml", *overrides, "--out", folder, "-q").exit_code in (0, 5)
    assert "tracking" not in run_json(folder)
    first = invoke("log", folder, "--mlflow")
    assert first.exit_code == 0, first.output
    assert (
        "new, 30 epoch metric points, model" in first.output
    )  # 6 epochs x loss, accuracy, val_loss, val_accuracy, seconds
    again = invoke("log", folder, "--mlflow", "--json")
    assert again.exit_code == 0, again.output
    document = json.loads(again.output)
    assert document["runs"][0]["created"] is False and document["runs"][0]["points"] == 0
    [run] = runs_with_uuid(tracking, folder)
    assert len(tracking.get_metric_history(run.info.run_id, "loss")) == 7
    assert run_json(folder)["tracking"]["mlflow"]["run_id"] == run.info.run_id
    models = tracking.search_logged_models(experiment_ids=[run.info.experiment_id])
    assert len([model for model in models if model.source_run_id == run.info.run_id]) == 1


def test_a_sweep_is_a_parent_run_with_a_nested_run_per_trial(tracking, mlflow_server, tmp_path, monkeypatch):
    folder = tmp_path / "sweep"
    # a password in the URI (this server takes none) is never written down or shown
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.replace("http://", "http://nnflow:s3cret@"))
    result = invoke(
        "sweep",
        CONFIGS / "iris.yaml",
        "--set",
        "fit.epochs=4",
        "--grid",
        "layers.0.units=4,8",
        "--jobs",
        "1",
        "--out",
        folder,
        "--mlflow",
    )
    assert result.exit_code in (0, 5), result.output
    experiment = tracking.get_experiment_by_name(os.environ["MLFLOW_EXPERIMENT_NAME"])
    [parent] = tracking.search_runs([experiment.experiment_id], filter_string="tags.`nnflow.kind` = 'sweep'")
    trials = tracking.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert len(trials) == 2
    assert sorted(run.data.tags["nnflow.trial"] for run in trials) == ["1", "2"]
    board = json.loads((folder / "leaderboard.json").read_text())
    best = next(member for member in board["members"] if member["member"] == board["best"])
    with_model = [run for run in trials if "nnflow.model" in run.data.tags]
    assert [run.data.tags["nnflow.run_folder"] for run in with_model] == [str(Path(best["run"]).resolve())]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["nnflow.sweep.best_run"] == best["run"]
    # the study keeps the parent: the same command again (another machine) nests under it
    import optuna

    from nnflow.workflows.tracking_sweep import PARENT_ATTR

    study = optuna.load_study(
        study_name="iris-mlp",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(folder / "study.journal"))
        ),
    )
    assert study.user_attrs[PARENT_ATTR]["run_id"] == parent.info.run_id
    assert "s3cret" not in json.dumps(study.user_attrs) + result.output
    assert not [path for path in folder.rglob("*.json") if "s3cret" in path.read_text()]
    # nnflow log of the sweep folder finds the same parent and trials: nothing new
    again = invoke("log", folder, "--mlflow")
    assert again.exit_code == 0, again.output
    assert again.output.count("(up to date)") == 2 and parent.info.run_id in again.output
    after = tracking.search_runs([experiment.experiment_id])
    assert len(after) == 3


def test_evaluate_adds_its_metrics_to_the_runs_mlflow_run(trained, tracking):
    result = invoke("evaluate", trained, "--mlflow")
    assert result.exit_code in (0, 5), result.output
    assert (
        f"MLflow: the evaluation is logged to run {run_json(trained)['tracking']['mlflow']['run_id']}" in result.output
    )
    run = logged_run(tracking, trained)
    assert run.data.metrics["eval_test_accuracy"] == pytest.approx(run.data.metrics["test_accuracy"])
    assert "evaluations/evaluation.json" in {
        entry.path for entry in tracking.list_artifacts(run.info.run_id, "evaluations")
    }


def test_an_unreachable_server_is_a_warning_and_the_run_completes(tmp_path, monkeypatch):
    from nnflow.workflows import Progress, train
    from nnflow.workflows.tracking_live import MlflowTracker

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    notes: list[tuple[float, str]] = []
    started = time.monotonic()
    result = train(
        CONFIGS / "iris.yaml",
        QUICK,
        out=tmp_path / "run",
        progress=Progress(on_note=lambda note: notes.append((time.monotonic() - started, note))),
        tracker=MlflowTracker(),
    )
    warnings = [(at, note) for at, note in notes if "MLflow" in note]
    assert len(warnings) == 1 and warnings[0][0] < 15, notes
    assert (
        "cannot reach http://127.0.0.1:" in warnings[0][1]
        and f"nnflow log {tmp_path / 'run'} --mlflow" in warnings[0][1]
    )
    info = run_json(result.run_dir)
    assert info["status"] == "completed"
    assert info["tracking"]["mlflow"]["status"] == "failed"
    assert {"model.keras", "metrics.json", "history.csv"} <= {path.name for path in result.run_dir.iterdir()}


def test_nnflow_log_to_an_unreachable_server_is_exit_7(trained, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    result = invoke("log", trained, "--mlflow")
    assert result.exit_code == 7
    assert "could not be logged to MLflow" in result.output and "Connection refused" in result.output


def test_the_default_store_is_mlflow_db_in_the_current_folder(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.chdir(tmp_path)
    overrides = [item for value in QUICK for item in ("--set", value)]
    result = invoke("train", CONFIGS / "iris.yaml", *overrides, "--out", tmp_path / "run", "--mlflow", "-q")
    assert result.exit_code in (0, 5), result.output
    assert (tmp_path / "mlflow.db").is_file()
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("iris-mlp")  # the file's name
    [run] = client.search_runs([experiment.experiment_id])
    assert run.data.params["fit.epochs"] == "6" and run.info.status == "FINISHED"


def test_a_baseline_can_be_an_mlflow_run(trained, tracking, tmp_path):
    run_id = run_json(trained)["tracking"]["mlflow"]["run_id"]
    result = invoke(
        "compare", trained, "--baseline", f"runs:/{run_id}", "--mlflow", "--tolerance", "val_loss=0", "--json"
    )
    assert result.exit_code == 0, result.output
    gate = json.loads(result.output)["baseline"]["gates"][0]
    assert gate["metric"] == "val_loss" and gate["delta"] == pytest.approx(0.0, abs=1e-9)
    missing = invoke("compare", trained, "--baseline", "runs:/0123456789abcdef0123456789abcdef", "--mlflow")
    assert missing.exit_code == 2 and "no MLflow run" in missing.output


def test_without_the_extra_mlflow_is_exit_2_naming_the_install(tmp_path, monkeypatch):
    from nnflow.tracking import connect

    real = connect.importlib.util.find_spec
    monkeypatch.setattr(
        connect.importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a)
    )
    for args in (
        ["train", CONFIGS / "iris.yaml", "--out", tmp_path / "run", "--mlflow"],
        ["log", tmp_path, "--mlflow"],
        ["sweep", CONFIGS / "iris.yaml", "--grid", "fit.epochs=1", "--mlflow"],
    ):
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "pip install 'nnflow[mlflow]'" in result.output
    assert not (tmp_path / "run").exists()


def test_the_python_api_logs_with_mlflow_true(tracking, tmp_path):
    import nnflow

    result = nnflow.train(CONFIGS / "iris.yaml", QUICK, out=tmp_path / "run", mlflow=True)
    assert result.tracking["mlflow"]["status"] == "logged"
    [run] = runs_with_uuid(tracking, tmp_path / "run")
    assert run.info.run_id == result.tracking["mlflow"]["run_id"] == result.to_json()["tracking"]["mlflow"]["run_id"]


def test_a_resumed_trial_sends_no_epoch_twice(tracking, tmp_path):
    """Checkpoints every 100 s (as a sweep's worker spaces them): epochs after the last checkpoint are
    trained again on resume, and MLflow, which has them, does not get them again."""
    from nnflow.workflows import Progress, train
    from nnflow.workflows.tracking_live import MlflowTracker

    folder = tmp_path / "run"

    def stop(row, epochs):
        if row["epoch"] == 4:
            raise KeyboardInterrupt

    progress = Progress(on_epoch=stop, checkpoint_seconds=100)
    with pytest.raises(KeyboardInterrupt):
        train(CONFIGS / "iris.yaml", QUICK, out=folder, progress=progress, tracker=MlflowTracker())
    train(resume=folder, tracker=MlflowTracker())
    [run] = runs_with_uuid(tracking, folder)
    steps = [point.step for point in tracking.get_metric_history(run.info.run_id, "accuracy")]
    assert sorted(set(steps)) == [1, 2, 3, 4, 5, 6]
    assert all(steps.count(step) == 1 for step in range(1, 6)), steps


def test_nnflow_log_of_a_sweep_makes_its_parent_ends_it_and_logs_the_best_model(tracking, tmp_path):
    folder = tmp_path / "sweep"
    trained = invoke(
        "sweep", CONFIGS / "iris.yaml", "--set", "fit.epochs=3", "--grid", "layers.0.units=4,8", "--out", folder
    )
    assert trained.exit_code in (0, 5), trained.output
    result = invoke("log", folder, "--mlflow")
    assert result.exit_code == 0, result.output
    experiment = tracking.get_experiment_by_name(os.environ["MLFLOW_EXPERIMENT_NAME"])
    [parent] = tracking.search_runs([experiment.experiment_id], filter_string="tags.`nnflow.kind` = 'sweep'")
    assert parent.info.status == "FINISHED"
    board = json.loads((folder / "leaderboard.json").read_text())
    assert parent.data.metrics[f"best_{board['metric']}"] == pytest.approx(board["members"][0]["metric"])
    trials = tracking.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert len(trials) == 2
    assert len([run for run in trials if "nnflow.model" in run.data.tags]) == 1


def test_nnflow_log_of_a_sweep_to_an_unreachable_server_is_exit_7(tmp_path, monkeypatch):
    folder = tmp_path / "sweep"
    trained = invoke(
        "sweep", CONFIGS / "iris.yaml", "--set", "fit.epochs=2", "--grid", "layers.0.units=4", "--out", folder
    )
    assert trained.exit_code in (0, 5), trained.output
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    result = invoke("log", folder, "--mlflow")
    assert result.exit_code == 7, result.output
    assert "Connection refused" in result.output and "Traceback" not in result.output


def test_a_killed_run_is_logged_as_killed(trained, tracking, tmp_path):
    import uuid

    folder = tmp_path / "killed"
    shutil.copytree(trained, folder)
    info = run_json(folder)
    info.update(status="running", pid=2**22 + 17, host=socket.gethostname(), uuid=str(uuid.uuid4()))
    info.pop("tracking")
    (folder / "run.json").write_text(json.dumps(info))
    result = invoke("log", folder, "--mlflow")
    assert result.exit_code == 0, result.output
    [run] = runs_with_uuid(tracking, folder)
    assert run.info.status == "KILLED"


def test_evaluate_with_mlflow_down_warns_and_keeps_its_exit_code(trained, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    plain = invoke("evaluate", trained)
    result = invoke("evaluate", trained, "--mlflow")
    assert result.exit_code == plain.exit_code
    assert "warning: the evaluation could not be logged to MLflow: cannot reach" in result.output
