"""What a run folder gives MLflow (params, tags, metrics), and how tracking errors read: no MLflow, no TensorFlow."""

from __future__ import annotations

import pytest

from nnflow.errors import ConfigError
from nnflow.overrides import dotted_items
from nnflow.tracking import content
from nnflow.tracking.connect import Target, require_mlflow, short_error, shown_uri


def test_params_are_the_resolved_experiment_as_set_keys():
    document = {
        "name": "iris",
        "seed": 42,
        "layers": [{"Dense": {"units": 16, "activation": "relu"}}, {"Dropout": 0.1}],
        "compile": {"optimizer": {"Adam": {"learning_rate": 0.01}}, "metrics": ["accuracy"]},
        "fit": {"epochs": 5, "callbacks": []},
        "sweep": {"space": {"fit.batch_size": [16, 32]}},
    }
    params, truncated = content.params_of(document)
    assert params == {
        "name": "iris",
        "seed": "42",
        "layers.0.Dense.units": "16",
        "layers.0.Dense.activation": "relu",
        "layers.1.Dropout": "0.1",
        "compile.optimizer.Adam.learning_rate": "0.01",
        "compile.metrics": '["accuracy"]',
        "fit.epochs": "5",
        "fit.callbacks": "[]",
    }  # the search space is the sweep's, not a run's param
    assert truncated == ()


def test_every_param_key_is_one_set_accepts():
    from nnflow.spec import load_spec

    document = {"fit": {"epochs": 3}, "layers": [{"Dense": {"units": 4}}]}
    keys = dict(dotted_items(document))
    assert keys == {"fit.epochs": 3, "layers.0.Dense.units": 4}
    spec = load_spec("configs/iris.yaml", [f"{key}={value}" for key, value in keys.items()])
    assert spec.fit.epochs == 3


def test_a_value_too_long_for_mlflow_is_cut_with_a_note():
    params, truncated = content.params_of({"description": "x" * 10_000, "fit": {"epochs": 1}})
    assert truncated == ("description",)
    assert len(params["description"]) == content.MAX_PARAM_VALUE
    assert params["description"].endswith("[10000 characters; the whole value is in experiment.yaml]")
    assert params["fit.epochs"] == "1"


def run_info(**changes) -> dict:
    info = {
        "uuid": "6a0c4c36-0d2e-4d5b-8f43-2f1f6f0a3a11",
        "name": "iris-mlp",
        "status": "completed",
        "seed": 7,
        "started": "2026-11-27T08:00:21+01:00",
        "data": {"train": {"path": "/data/iris.csv", "sha256": "abc"}},
        "epochs": {"configured": 10, "completed": 10},
        "versions": {"nnflow": "0.1.0", "keras": "3.15.1", "tensorflow": "2.21.0", "numpy": "2.3"},
        "git": {"commit": "e4dc851", "dirty": False},
        "config": "configs/iris.yaml",
    }
    info.update(changes)
    return info


def test_tags_say_who_made_the_run_from_what(tmp_path):
    tags = content.tags_of(tmp_path, run_info())
    assert tags["nnflow.run_uuid"] == "6a0c4c36-0d2e-4d5b-8f43-2f1f6f0a3a11"
    assert tags["nnflow.run_folder"] == str(tmp_path.resolve())
    assert tags["nnflow.versions.keras"] == "3.15.1" and tags["nnflow.versions.tensorflow"] == "2.21.0"
    assert "nnflow.versions.numpy" not in tags
    assert tags["nnflow.data.train.sha256"] == "abc"
    assert tags["mlflow.source.git.commit"] == "e4dc851" and tags["nnflow.git.dirty"] == "false"
    assert tags["mlflow.source.name"] == "configs/iris.yaml"


def test_a_pruned_trial_is_finished_in_mlflow_and_tagged_pruned(tmp_path):
    info = run_info(status="pruned", pruned_at_epoch=4)
    tags = content.tags_of(tmp_path, info)
    assert tags["nnflow.status"] == "pruned" and tags["nnflow.pruned_at_epoch"] == "4"
    assert content.STATUSES["pruned"] == "FINISHED"
    assert content.STATUSES["failed"] == "FAILED" and content.STATUSES["interrupted"] == "KILLED"


def test_a_run_without_a_uuid_gets_the_same_one_every_time():
    old = run_info()
    del old["uuid"]
    assert content.run_uuid(old) == content.run_uuid(dict(old))
    assert content.run_uuid(old) != content.run_uuid({**old, "started": "2026-11-28T08:00:21+01:00"})


def test_epoch_metrics_are_each_number_of_each_epoch_at_its_step(tmp_path):
    run = content.RunContent(
        tmp_path,
        run_info(),
        "u",
        {},
        (),
        {},
        [{"epoch": 1, "loss": 0.9, "val_loss": float("nan")}, {"epoch": 2, "loss": 0.5, "val_loss": 0.6}],
        {},
    )
    assert run.epoch_metrics() == [("loss", 0.9, 1), ("loss", 0.5, 2), ("val_loss", 0.6, 2)]
    assert run.name == f"iris-mlp/{tmp_path.name}"


def test_git_commit_outside_a_work_tree_is_none(tmp_path):
    (tmp_path / "x.yaml").write_text("name: x\n")
    assert content.git_commit(tmp_path / "x.yaml") is None


def test_a_password_in_the_tracking_uri_is_never_shown():
    assert shown_uri("https://alice:s3cret@mlflow.example.com/") == "https://alice:***@mlflow.example.com/"
    assert shown_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"


def test_a_server_that_does_not_answer_reads_as_one_line():
    error = Exception(
        "API request to http://127.0.0.1:9/api/2.0/mlflow/experiments/get-by-name failed with exception "
        "HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with url: /x (Caused by "
        "NewConnectionError(\"HTTPConnection(host='127.0.0.1', port=9): Failed to establish a new connection: "
        '[Errno 111] Connection refused"))'
    )
    assert short_error(error) == "cannot reach http://127.0.0.1:9 (Connection refused)"
    assert short_error(Exception("x" * 1000)).endswith(" ...")


def test_the_target_comes_from_mlflows_own_variables(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "team")
    assert Target.from_environment() == Target("http://tracking:5000", "team")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME")
    assert Target.from_environment() == Target(None, None)


def test_a_missing_extra_names_the_install_command(monkeypatch):
    from nnflow.tracking import connect

    monkeypatch.setattr(connect.importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(ConfigError, match=r"pip install 'nnflow\[mlflow\]'"):
        require_mlflow()


def test_the_worst_exit_code_knows_every_documented_one():
    from nnflow.workflows.sweep_rank import worst

    assert worst([5, 7, 2]) == 7  # a full disk is worse than a bad file or a gate, and is not a bug (1)
    assert worst([5, 2]) == 2 and worst([0, 0]) == 0 and worst([130, 7]) == 130
