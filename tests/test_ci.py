"""For CI pipelines: --json documents (validated against docs/json/), step summaries, runs, compare,
and every exit code (docs/experiment-file.md) from the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from conftest import CONFIGS, ROOT
from nnflow.cli import cli

SCHEMAS = ROOT / "docs" / "json"


def invoke(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


def document(result, shape: str) -> dict:
    """The one JSON document on stdout, checked against its documented shape."""
    data = json.loads(result.stdout)  # fails if there is anything but one document
    jsonschema.validate(data, json.loads((SCHEMAS / f"{shape}.schema.json").read_text()))
    return data


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("ci")
    runs = []
    for index, rate in enumerate((0.01, 0.05)):
        out = root / "runs" / "iris-mlp" / f"2026-01-0{index + 1}_00-00-00"
        result = invoke(
            "train",
            CONFIGS / "iris.yaml",
            "--set",
            "fit.epochs=3",
            "--set",
            f"compile.optimizer.Adam.learning_rate={rate}",
            "--out",
            out,
            "-q",
        )
        assert result.exit_code in (0, 5), result.output
        runs.append(out)
    return runs


def test_check_and_compile_json(tmp_path):
    data = document(invoke("check", CONFIGS / "iris.yaml", "--json"), "check")
    assert data["command"] == "check" and data["ok"] and data["metrics"] == ["loss", "accuracy"]
    data = document(invoke("compile", CONFIGS / "tutorial.yaml", "--json"), "compile")
    assert data["total_params"] == 36


def test_train_json_is_the_only_thing_on_stdout_and_summaries_are_written(tmp_path):
    github = tmp_path / "github-summary.md"
    github.write_text("earlier step\n")
    result = invoke(
        "train",
        CONFIGS / "iris.yaml",
        "--set",
        "fit.epochs=2",
        "--out",
        tmp_path / "run",
        "--json",
        "--summary",
        tmp_path / "summary.md",
        env={"GITHUB_STEP_SUMMARY": str(github)},
    )
    assert result.exit_code == 5  # two epochs do not pass iris's gates
    data = document(result, "train")
    assert data["ok"] is False and [g["passed"] for g in data["gates"]] == [False, False]
    assert data["epochs"] == {"configured": 2, "completed": 2} and data["run"] == str(tmp_path / "run")
    assert "epoch 1/2" in result.stderr and "expect: gate(s) failed" in result.stderr
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("### nnflow train: iris-mlp (✗ 2 gate(s) failed)")
    assert "| test_accuracy >= 0.9 |" in summary and "| ✗ |" in summary
    assert github.read_text() == "earlier step\n" + summary


def test_evaluate_json_and_summary(two_runs, tmp_path):
    result = invoke("evaluate", two_runs[1], "--json", "--summary", tmp_path / "s.md")
    data = document(result, "evaluate")
    assert data["rows"] == 15 and data["classification"]["classes"] == ["setosa", "versicolor", "virginica"]
    assert result.exit_code == (0 if data["ok"] else 5)
    assert "| class | precision | recall | F1 | support |" in (tmp_path / "s.md").read_text()


@pytest.mark.parametrize(
    ("args", "code", "kind"),
    [
        (["check", "nonexistent.yaml"], 2, "invalid experiment"),
        (["train", ROOT / "tests" / "bad_data" / "one_class" / "experiment.yaml"], 3, "data error"),
    ],
)
def test_errors_under_json_are_one_document_too(args, code, kind):
    result = invoke(*args, "--json")
    assert result.exit_code == code
    data = document(result, "error")
    assert data["ok"] is False and data["exit_code"] == code and data["error"]["kind"] == kind
    assert result.stderr.startswith("Error: ")


def test_runs_lists_them_with_status_and_key_metrics(two_runs, monkeypatch):
    monkeypatch.chdir(two_runs[0].parents[2])
    result = invoke("runs")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["run", "status", "epochs", "gates", "key", "metrics"]
    assert lines[1].startswith("runs/iris-mlp/2026-01-01_00-00-00  completed     3/3")
    assert "test_accuracy" in lines[1] and "val_loss" in lines[1]
    data = document(invoke("runs", "iris-mlp", "--json"), "runs")
    assert [Path(r["run"]).name for r in data["runs"]] == ["2026-01-01_00-00-00", "2026-01-02_00-00-00"]
    assert invoke("runs", "nothing").exit_code == 2


def test_compare_shows_metrics_and_the_differing_keys(two_runs):
    result = invoke("compare", *two_runs)
    assert result.exit_code == 0, result.output
    assert f"A = {two_runs[0]} (completed)" in result.stdout
    assert "compile.optimizer.Adam.learning_rate  0.01  0.05" in result.stdout
    data = document(invoke("compare", *two_runs, "--json"), "compare")
    assert data["differences"] == {"compile.optimizer.Adam.learning_rate": [0.01, 0.05]}
    assert len(data["metrics"]["test_accuracy"]) == 2
    assert invoke("compare", two_runs[0]).exit_code == 2


def test_compare_includes_expect_and_absent_keys(two_runs, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(two_runs[0], other)
    text = (other / "experiment.yaml").read_text().replace("  val_loss: < 0.5\n", "")
    (other / "experiment.yaml").write_text(text.replace("test_accuracy: '>= 0.9'", "test_accuracy: '>= 0.95'"))
    data = json.loads(invoke("compare", two_runs[0], other, "--json").stdout)
    assert data["differences"] == {
        "expect.test_accuracy": [">= 0.9", ">= 0.95"],
        "expect.val_loss": ["< 0.5", "(absent)"],
    }


def test_every_exit_code_from_the_command_line(two_runs, tmp_path, monkeypatch):
    assert invoke("check", CONFIGS / "iris.yaml").exit_code == 0
    assert invoke("check", CONFIGS / "iris.yaml", "--set", "fit.epoch=3").exit_code == 2
    assert invoke("train", ROOT / "tests" / "bad_data" / "stray_text" / "experiment.yaml").exit_code == 3
    nan = invoke(
        "train",
        CONFIGS / "diabetes.yaml",
        "--out",
        tmp_path / "nan",
        "-q",
        "--set",
        "data.normalize=false",
        "--set",
        "compile.optimizer.SGD.learning_rate=1.0",
        "--set",
        "fit.epochs=2",
    )
    assert nan.exit_code == 4
    hard = tmp_path / "hard"
    shutil.copytree(two_runs[1], hard)
    (hard / "experiment.yaml").write_text((hard / "experiment.yaml").read_text().replace("'>= 0.9'", "'>= 1.5'"))
    assert invoke("evaluate", hard).exit_code == 5
    (hard / "model.keras").write_bytes(b"not a model")
    assert invoke("evaluate", hard).exit_code == 6

    import nnflow.workflows

    def bug(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(nnflow.workflows, "check", bug)
    result = invoke("check", CONFIGS / "iris.yaml")
    assert result.exit_code == 1 and isinstance(result.exception, RuntimeError)  # a bug: the traceback is kept

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(nnflow.workflows, "check", ctrl_c)  # Ctrl-C before a command has anything to save
    result = invoke("check", CONFIGS / "iris.yaml")
    assert result.exit_code == 130 and "Interrupted." in result.stderr and "Aborted!" not in result.output


def test_a_summary_that_cannot_be_written_is_a_warning_not_a_failure(tmp_path):
    result = invoke(
        "train",
        CONFIGS / "iris.yaml",
        "--set",
        "fit.epochs=1",
        "--set",
        "expect={}",
        "--out",
        tmp_path / "r",
        "--json",
        "--summary",
        tmp_path / "no" / "such" / "dir" / "s.md",
    )
    assert result.exit_code == 0, result.output
    assert document(result, "train")["ok"] and "warning: cannot write the summary to" in result.stderr


def test_damaged_run_folders_are_listed_not_fatal(two_runs, tmp_path, monkeypatch):
    root = tmp_path / "runs" / "x"
    for name, files in {
        "bad-metrics": {"metrics.json": '{"loss": "abc"}'},
        "bad-gates": {"metrics.json": "{}"},
    }.items():
        (root / name).mkdir(parents=True)
        (root / name / "run.json").write_text(
            '{"status": "completed", "gates": 5}' if name == "bad-gates" else '{"gates": [{"passed": true}]}'
        )
        for file, text in files.items():
            (root / name / file).write_text(text)
    monkeypatch.chdir(tmp_path)
    result = invoke("runs")
    assert result.exit_code == 0, result.output
    assert "runs/x/bad-metrics" in result.stdout and "runs/x/bad-gates" in result.stdout
    assert "Damaged runs:" in result.stdout and "run.json: `name` is missing" in result.stdout
    result = invoke(
        "compare", root / "bad-metrics", root / "bad-gates"
    )  # damaged run files: exit 6, said, not a traceback
    assert result.exit_code == 6 and "run.json: `name` is missing" in result.stderr and "Traceback" not in result.output


def test_markdown_cells_cannot_break_a_table():
    from nnflow.render import _cell

    assert _cell("a|b\nc") == "a\\|b c"


def test_a_run_whose_process_died_is_listed_as_killed(tmp_path, monkeypatch):
    import socket
    import subprocess
    import sys

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    folder = tmp_path / "runs" / "x" / "2026-01-01_00-00-00"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(
        json.dumps(
            {
                "name": "x",
                "status": "running",
                "started": "2026-01-01T00:00:00+00:00",
                "seed": 0,
                "data": {},
                "epochs": {"configured": 1, "completed": 0},
                "host": socket.gethostname(),
                "pid": gone.pid,
            }
        )
    )
    monkeypatch.chdir(tmp_path)
    data = document(invoke("runs", "--json"), "runs")
    assert [run["status"] for run in data["runs"]] == ["killed"]
