"""`nnflow compare CANDIDATE --baseline BASE`: a run gated against a baseline (a run, a metrics.json, MLflow).

One real run is trained (3 epochs); each test copies it and writes the metrics (and `expect:`) it needs.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from conftest import CONFIGS, ROOT
from nnflow.cli import cli
from nnflow.errors import ConfigError
from nnflow.spec import Gate
from nnflow.workflows import (
    BaselineComparison,
    Tolerance,
    compare_to_baseline,
    metric_direction,
    parse_tolerance,
    parse_tolerances,
)

SCHEMA = json.loads((ROOT / "docs" / "json" / "compare.schema.json").read_text())


def invoke(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("baseline") / "trained"
    result = invoke("train", CONFIGS / "iris.yaml", "--set", "fit.epochs=3", "--out", out, "-q")
    assert result.exit_code in (0, 5), result.output  # three epochs may miss iris's gates
    return out


@pytest.fixture
def make_run(trained, tmp_path):
    """A copy of the trained run with these metrics (and this expect: section; None keeps iris's)."""

    def _make(name: str, metrics: dict, expect: dict | None = None) -> Path:
        folder = tmp_path / name
        shutil.copytree(trained, folder)
        (folder / "metrics.json").write_text(json.dumps(metrics))
        if expect is not None:
            text = (folder / "experiment.yaml").read_text()
            text = text[: text.index("\nexpect:\n") + 1]
            lines = [f"  {metric}: '{condition}'" for metric, condition in expect.items()]
            (folder / "experiment.yaml").write_text(text + ("expect:\n" + "\n".join(lines) + "\n" if expect else ""))
        return folder

    return _make


@pytest.fixture
def metrics_file(tmp_path):
    def _write(metrics, name: str = "metrics.json") -> Path:
        path = tmp_path / "baseline" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(metrics if isinstance(metrics, str) else json.dumps(metrics))
        return path

    return _write


def gate_error(result) -> str:
    assert result.exit_code == 5, result.output
    return result.stderr


# ---------------------------------------------------------------------------
# Regressions, tolerances, directions


def test_a_higher_is_better_metric_that_drops_beyond_the_tolerance_fails(make_run, metrics_file):
    candidate = make_run("pr", {"test_accuracy": 0.9, "val_loss": 0.3})
    base = metrics_file({"test_accuracy": 0.9333, "val_loss": 0.3})
    result = invoke("compare", candidate, "--baseline", base, "--tolerance", "test_accuracy=0.01")
    assert "test_accuracy regressed: 0.9333 on the baseline, 0.9000 here (-0.0333, tolerance 0.01)" in gate_error(
        result
    )
    assert "1 of 1 baseline gate(s) failed" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"candidate = {candidate} (completed)" and lines[1] == f"baseline  = {base} (metrics.json)"
    assert lines[3].split() == ["metric", "better", "baseline", "candidate", "delta", "tolerance"]
    assert lines[4].split() == ["test_accuracy", "higher", "0.9333", "0.9000", "-0.0333", "0.01", "✗"]
    assert "✗ 1 of 1 gated metric(s) failed against the baseline; gated by --tolerance." in result.stdout


def test_a_lower_is_better_metric_that_rises_beyond_the_tolerance_fails(make_run, metrics_file):
    candidate = make_run("pr", {"test_loss": 0.25})
    base = metrics_file({"test_loss": 0.2})
    result = invoke("compare", candidate, "--baseline", base, "--tolerance", "test_loss=0.01")
    assert (
        "test_loss regressed: 0.2000 on the baseline, 0.2500 here (+0.0500, tolerance 0.01; lower is better)"
        in gate_error(result)
    )
    # the same move the other way is an improvement
    improved = metrics_file({"test_loss": 0.3}, "improved.json")
    assert invoke("compare", candidate, "--baseline", improved, "--tolerance", "test_loss=0").exit_code == 0


@pytest.mark.parametrize(
    ("candidate_value", "tolerance", "code"),
    [
        (0.95, "0", 0),  # an improvement
        (0.9333, "0", 0),  # unchanged
        (0.9300, "0.01", 0),  # within
        (0.9233, "0.01", 0),  # exactly at the tolerance (0.9233 - 0.9333 is -0.010000000000000009 in floats)
        (0.9232, "0.01", 5),  # just past it
        (0.9147, "2%", 0),  # 2% of 0.9333 = 0.018666: within
        (0.9146, "2%", 5),  # past it
    ],
)
def test_within_and_exactly_at_the_tolerance_pass(make_run, metrics_file, candidate_value, tolerance, code):
    candidate = make_run("pr", {"test_accuracy": candidate_value})
    base = metrics_file({"test_accuracy": 0.9333})
    result = invoke("compare", candidate, "--baseline", base, "--tolerance", f"test_accuracy={tolerance}")
    assert result.exit_code == code, result.output


def test_a_relative_tolerance_is_a_share_of_the_baseline_value(make_run, metrics_file):
    candidate = make_run("pr", {"test_loss": 0.53})
    base = metrics_file({"test_loss": -0.5})  # |baseline|: a negative baseline still allows a positive amount
    result = invoke("compare", candidate, "--baseline", base, "--tolerance", "test_loss=5%", "--json")
    gate = json.loads(result.stdout)["baseline"]["gates"][0]
    assert gate["tolerance"] == pytest.approx(0.025) and gate["tolerance_text"] == "5%"
    assert "(+1.0300, tolerance 5% = 0.025; lower is better)" in gate_error(result)


def test_the_gated_metrics_default_to_the_candidates_expect_with_no_tolerance(make_run, metrics_file):
    candidate = make_run("pr", {"test_accuracy": 0.93, "val_loss": 0.31, "test_loss": 9.0})
    base = metrics_file({"test_accuracy": 0.93, "val_loss": 0.30, "test_loss": 0.1})
    result = invoke("compare", candidate, "--baseline", base, "--json")
    section = json.loads(result.stdout)["baseline"]
    assert section["gated_by"] == "expect" and [g["metric"] for g in section["gates"]] == ["test_accuracy", "val_loss"]
    assert [g["tolerance"] for g in section["gates"]] == [0, 0] and [g["passed"] for g in section["gates"]] == [
        True,
        False,
    ]
    assert "val_loss regressed: 0.3000 on the baseline, 0.3100 here" in gate_error(result)
    assert "test_loss" not in result.stderr  # not gated: iris's expect: has no test_loss


def test_the_direction_comes_from_the_expect_gate_before_the_name(make_run, metrics_file):
    # a gate `test_loss >= 0.1` says higher is better for this metric, whatever its name says
    candidate = make_run("pr", {"test_loss": 0.2, "test_auc": 0.5}, expect={"test_loss": ">= 0.1"})
    base = metrics_file({"test_loss": 0.3, "test_auc": 0.6})
    result = invoke("compare", candidate, "--baseline", base, "--tolerance", "test_loss=0", "--tolerance", "test_auc=0")
    assert "test_loss regressed: 0.3000 on the baseline, 0.2000 here (-0.1000, tolerance 0)" in gate_error(result)
    assert "test_auc regressed" in result.stderr  # from its name: higher is better


def test_an_equality_gate_fails_a_move_either_way_beyond_the_tolerance(make_run, metrics_file):
    base = metrics_file({"test_accuracy": 0.5})
    codes = {}
    for value in (0.52, 0.48, 0.505):
        candidate = make_run(f"pr-{value}", {"test_accuracy": value}, expect={"test_accuracy": "== 0.5"})
        result = invoke("compare", candidate, "--baseline", base, "--tolerance", "test_accuracy=0.01")
        codes[value] = result.exit_code
    assert codes == {0.52: 5, 0.48: 5, 0.505: 0}
    candidate = make_run("pr", {"test_accuracy": 0.48}, expect={"test_accuracy": "== 0.5"})
    result = invoke("compare", candidate, "--baseline", base, "--tolerance", "test_accuracy=0.01")
    assert (
        "test_accuracy changed: 0.5000 on the baseline, 0.4800 here (-0.0200, tolerance 0.01; an == gate: it must not move)"
        in gate_error(result)
    )


@pytest.mark.parametrize(
    ("metric", "direction"),
    [
        ("test_accuracy", "higher"),
        ("val_auc", "higher"),
        ("precision", "higher"),
        ("test_recall", "higher"),
        ("f1_score", "higher"),
        ("r2_score", "higher"),
        ("val_loss", "lower"),
        ("test_mean_squared_error", "lower"),
        ("mse", "lower"),
        ("test_mae", "lower"),
        ("mape", "lower"),
        ("msle", "lower"),
        ("val_sparse_categorical_crossentropy", "lower"),
        ("squared_hinge", "lower"),
        ("kl_divergence", "lower"),
        ("kld", "lower"),
        ("test_poisson", "lower"),
        ("logcosh", "lower"),
        ("huber", "lower"),
    ],
)
def test_the_direction_from_the_name(metric, direction):
    assert metric_direction(metric) == direction


@pytest.mark.parametrize(
    ("operator", "direction"), [(">=", "higher"), (">", "higher"), ("<=", "lower"), ("<", "lower"), ("==", "same")]
)
def test_the_direction_from_a_gate(operator, direction):
    assert metric_direction("test_loss", [Gate("test_accuracy", "<", 1), Gate("test_loss", operator, 0.5)]) == direction


# ---------------------------------------------------------------------------
# Metrics that one side lacks


def test_a_metric_the_baseline_lacks_fails_and_says_so(make_run, metrics_file):
    candidate = make_run("pr", {"test_accuracy": 0.9, "test_auc": 0.8})
    base = metrics_file({"test_accuracy": 0.9})
    result = invoke("compare", candidate, "--baseline", base, "--tolerance", "test_auc=0.01")
    assert f"the baseline ({base}) has no test_auc" in gate_error(result)


def test_a_metric_the_candidate_lacks_fails_and_says_so(make_run, metrics_file):
    candidate = make_run("pr", {"test_accuracy": 0.9})
    base = metrics_file({"test_accuracy": 0.9, "test_auc": 0.8})
    result = invoke("compare", candidate, "--baseline", base, "--tolerance", "test_auc=0.01")
    assert f"the candidate run ({candidate}) has no test_auc" in gate_error(result)


def test_a_metric_neither_side_has_suggests_a_name_and_a_null_one_is_missing(make_run, metrics_file):
    candidate = make_run("pr", {"test_accuracy": 0.9, "test_loss": 0.2})
    base = metrics_file({"test_accuracy": 0.9, "test_loss": None})
    result = invoke(
        "compare", candidate, "--baseline", base, "--tolerance", "test_acuracy=0", "--tolerance", "test_loss=0"
    )
    assert "nor the baseline" in gate_error(result) and "has test_acuracy; did you mean test_accuracy?" in result.stderr
    assert f"the baseline ({base}) has no test_loss (it is null: not a finite number)" in result.stderr


def test_a_candidate_that_did_not_finish_has_no_metrics(make_run, metrics_file):
    candidate = make_run("pr", {})
    (candidate / "metrics.json").unlink()
    info = json.loads((candidate / "run.json").read_text())
    (candidate / "run.json").write_text(json.dumps({**info, "status": "interrupted"}))
    result = invoke("compare", candidate, "--baseline", metrics_file({"test_accuracy": 0.9, "val_loss": 0.3}))
    assert f"the candidate run ({candidate}, status interrupted) has no test_accuracy" in gate_error(result)
    assert f"the candidate run ({candidate}, status interrupted) has no val_loss" in result.stderr


def test_nothing_to_gate_is_a_usage_error(make_run, metrics_file):
    candidate = make_run("pr", {"test_accuracy": 0.9}, expect={})
    result = invoke("compare", candidate, "--baseline", metrics_file({"test_accuracy": 0.9}))
    assert result.exit_code == 2
    assert (
        "has no expect: section. Pass --tolerance METRIC=DELTA" in result.stderr and "add an expect:" in result.stderr
    )


# ---------------------------------------------------------------------------
# The forms of BASE (and CANDIDATE)


def test_a_run_folder_baseline_also_lists_the_differences(make_run):
    candidate = make_run("pr", {"test_accuracy": 0.9, "val_loss": 0.3})
    base = make_run("main", {"test_accuracy": 0.95, "val_loss": 0.3}, expect={"test_accuracy": ">= 0.95"})
    result = invoke("compare", candidate, "--baseline", base, "--tolerance", "test_accuracy=0.1", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    jsonschema.validate(data, SCHEMA)
    assert data["baseline"]["kind"] == "run" and data["baseline"]["source"] == str(base)
    assert [row["run"] for row in data["runs"]] == [str(candidate), str(base)]
    assert data["differences"] == {
        "expect.test_accuracy": [">= 0.9", ">= 0.95"],
        "expect.val_loss": ["< 0.5", "(absent)"],
    }
    assert data["metrics"]["test_accuracy"] == [0.9, 0.95]
    text = invoke("compare", candidate, "--baseline", base, "--tolerance", "test_accuracy=0.1").stdout
    assert f"baseline  = {base} (run)" in text and "Differences in the experiment files:" in text


def test_runs_name_means_the_newest_run_on_either_side(trained, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for stamp, accuracy in (("2026-01-01_00-00-00", 0.5), ("2026-01-02_00-00-00", 0.9)):
        folder = tmp_path / "runs" / "iris-mlp" / stamp
        shutil.copytree(trained, folder)
        info = json.loads((folder / "run.json").read_text())
        (folder / "run.json").write_text(json.dumps({**info, "started": stamp}))
        (folder / "metrics.json").write_text(json.dumps({"test_accuracy": accuracy}))
    result = invoke(
        "compare", "runs/iris-mlp", "--baseline", "runs/iris-mlp", "--tolerance", "test_accuracy=0", "--json"
    )
    section = json.loads(result.stdout)["baseline"]
    assert section["source"] == section["candidate"] == str(Path("runs/iris-mlp/2026-01-02_00-00-00"))
    older = "runs/iris-mlp/2026-01-01_00-00-00"
    assert invoke("compare", older, "--baseline", "runs/iris-mlp", "--tolerance", "test_accuracy=0").exit_code == 5
    assert invoke("compare", "runs/iris-mlp", "--baseline", older, "--tolerance", "test_accuracy=0").exit_code == 0


def test_a_metrics_json_baseline_is_described_in_the_runs(make_run, metrics_file):
    candidate = make_run("pr", {"test_accuracy": 0.9, "loss": 0.3})
    base = metrics_file({"test_accuracy": 0.92, "auc": 0.7})
    result = invoke("compare", candidate, "--baseline", base, "--tolerance", "test_accuracy=0.01", "--json")
    data = json.loads(result.stdout)
    jsonschema.validate(data, SCHEMA)
    assert data["ok"] is False and data["command"] == "compare" and data["differences"] == {}
    assert data["runs"][1] == {
        "run": None,
        "kind": "metrics.json",
        "source": str(base),
        "metrics": {"test_accuracy": 0.92, "auc": 0.7},
    }
    assert data["metrics"] == {"test_accuracy": [0.9, 0.92], "loss": [0.3, None], "auc": [None, 0.7]}
    assert data["baseline"] == {
        "source": str(base),
        "kind": "metrics.json",
        "candidate": str(candidate),
        "gated_by": "--tolerance",
        "passed": False,
        "gates": [
            {
                "metric": "test_accuracy",
                "baseline": 0.92,
                "candidate": 0.9,
                "delta": pytest.approx(-0.02),
                "tolerance": 0.01,
                "tolerance_text": "0.01",
                "direction": "higher",
                "passed": False,
                "problem": "test_accuracy regressed: 0.9200 on the baseline, 0.9000 here (-0.0200, tolerance 0.01)",
            }
        ],
    }
    assert result.exit_code == 5 and result.stdout.count('"command"') == 1  # one document, then exit 5


def test_a_model_file_inside_a_run_is_that_run(make_run):
    candidate = make_run("pr", {"test_accuracy": 0.9})
    base = make_run("main", {"test_accuracy": 0.9})
    result = invoke(
        "compare", candidate, "--baseline", base / "model.keras", "--tolerance", "test_accuracy=0", "--json"
    )
    assert json.loads(result.stdout)["baseline"]["kind"] == "run"


def test_an_mlflow_baseline_needs_the_mlflow_flag(make_run):
    candidate = make_run("pr", {"test_accuracy": 0.9})
    result = invoke("compare", candidate, "--baseline", "runs:/0123abcd", "--tolerance", "test_accuracy=0")
    assert result.exit_code == 2 and "runs:/0123abcd is an MLflow run: add --mlflow" in result.stderr
    result = invoke("compare", candidate, "--baseline", "runs:/", "--mlflow", "--tolerance", "test_accuracy=0")
    assert result.exit_code == 2 and "names no run" in result.stderr
    result = invoke("compare", candidate, "--baseline", candidate, "--mlflow", "--tolerance", "test_accuracy=0")
    assert result.exit_code == 2 and "--mlflow: --mlflow reads a runs:/RUN_ID baseline" in result.stderr


def _tracking_written() -> bool:
    try:
        tracking = importlib.import_module("nnflow.tracking")
    except ImportError:
        return False
    return hasattr(tracking, "mlflow_run_metrics")


@pytest.mark.skipif(not _tracking_written(), reason="nnflow.tracking.mlflow_run_metrics is not written yet")
def test_an_mlflow_baseline_reads_the_runs_metrics(make_run, monkeypatch):
    import nnflow.tracking

    asked = []

    def mlflow_run_metrics(uri):
        asked.append(uri)
        return {"test_accuracy": 0.95}

    monkeypatch.setattr(nnflow.tracking, "mlflow_run_metrics", mlflow_run_metrics)
    candidate = make_run("pr", {"test_accuracy": 0.9})
    result = invoke(
        "compare", candidate, "--baseline", "runs:/0123abcd", "--mlflow", "--tolerance", "test_accuracy=0.01", "--json"
    )
    assert asked == ["runs:/0123abcd"] and result.exit_code == 5
    data = json.loads(result.stdout)
    assert data["baseline"]["kind"] == "mlflow" and data["runs"][1]["source"] == "runs:/0123abcd"


# ---------------------------------------------------------------------------
# Summaries


def test_the_summary_and_github_step_summary_get_the_table(make_run, metrics_file, tmp_path):
    candidate = make_run("pr", {"test_accuracy": 0.9, "test_loss": 0.2})
    base = metrics_file({"test_accuracy": 0.95, "test_loss": 0.2})
    github = tmp_path / "github.md"
    github.write_text("earlier step\n")
    result = invoke(
        "compare", candidate, "--baseline", base, "--tolerance", "test_accuracy=0.01", "--tolerance", "test_loss=2%",
        "--summary", tmp_path / "summary.md", env={"GITHUB_STEP_SUMMARY": str(github)},
    )  # fmt: skip
    assert result.exit_code == 5
    summary = (tmp_path / "summary.md").read_text()
    assert summary.splitlines() == [
        f"### nnflow compare: {candidate} against {base} (✗ 1 regression(s))",
        "",
        "| metric | better | baseline | candidate | delta | tolerance | |",
        "| --- | --- | ---: | ---: | ---: | ---: | :---: |",
        "| test_accuracy | higher | 0.9500 | 0.9000 | -0.0500 | 0.01 | ✗ |",
        "| test_loss | lower | 0.2000 | 0.2000 | +0.0000 | 2% = 0.004 | ✓ |",
        "",
        "- test_accuracy regressed: 0.9500 on the baseline, 0.9000 here (-0.0500, tolerance 0.01)",
        "",  # a blank line before the next step's section
    ]
    assert github.read_text() == "earlier step\n" + summary
    passing = invoke(
        "compare", candidate, "--baseline", base, "--tolerance", "test_accuracy=0.1", "--summary", tmp_path / "ok.md"
    )
    assert passing.exit_code == 0 and "(✓ no regression)" in (tmp_path / "ok.md").read_text()


# ---------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("test_accuracy", "a tolerance is METRIC=DELTA, like test_accuracy=0.01"),
        ("=0.1", "a tolerance is METRIC=DELTA"),
        ("test_accuracy=", "a tolerance is METRIC=DELTA"),
        ("test_accuracy=abc", "--tolerance test_accuracy=abc: the tolerance 'abc' is not a number"),
        ("test_accuracy=abc%", "--tolerance test_accuracy=abc%: the tolerance 'abc%' is not a number"),
        ("test_accuracy=-0.1", "--tolerance test_accuracy=-0.1: the tolerance '-0.1' is negative"),
        ("test_accuracy=nan", "the tolerance 'nan' is not a number"),
        ("test_accuracy=inf%", "the tolerance 'inf%' is not a number"),
    ],
)
def test_a_bad_tolerance_is_a_usage_error_naming_it(make_run, metrics_file, flag, message):
    candidate = make_run("pr", {"test_accuracy": 0.9})
    result = invoke("compare", candidate, "--baseline", metrics_file({"test_accuracy": 0.9}), "--tolerance", flag)
    assert result.exit_code == 2 and message in result.stderr, result.output


def test_a_metric_given_two_tolerances_is_a_usage_error():
    with pytest.raises(ConfigError, match="test_accuracy has two tolerances \\(0.01 and 2%\\); give one"):
        parse_tolerances(["test_accuracy=0.01", "test_accuracy=2%"])


def test_parse_tolerance():
    assert parse_tolerance(" test_loss = 5% ") == ("test_loss", Tolerance(0.05, True, "5%"))
    assert parse_tolerance("test_accuracy=0.01") == ("test_accuracy", Tolerance(0.01, False, "0.01"))
    assert Tolerance(0.05, True, "5%").allowed(-2.0) == pytest.approx(0.1)


@pytest.mark.parametrize("flag", [("--tolerance", "test_accuracy=0.1"), ("--mlflow",), ("--summary", "s.md")])
def test_baseline_flags_without_baseline_are_usage_errors(make_run, flag):
    runs = make_run("a", {"test_accuracy": 0.9}), make_run("b", {"test_accuracy": 0.9})
    result = invoke("compare", *runs, *flag)
    assert result.exit_code == 2 and f"{flag[0]}: needs --baseline" in result.stderr


def test_two_candidates_with_a_baseline_are_a_usage_error(make_run, metrics_file):
    runs = make_run("a", {"test_accuracy": 0.9}), make_run("b", {"test_accuracy": 0.9})
    result = invoke("compare", *runs, "--baseline", metrics_file({"test_accuracy": 0.9}), "--json")
    assert result.exit_code == 2 and "--baseline gates one CANDIDATE run; received 2" in result.stderr
    error = json.loads(result.stdout)  # under --json, the error is the document
    assert error["ok"] is False and error["exit_code"] == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not a JSON file (Expecting property name"),
        ("[1, 2]", "must be a JSON object of metric -> number; received a list"),
        (
            '{"test_accuracy": "high", "auc": true}',
            "test_accuracy: must be a number (or null); received the text 'high'",
        ),
        ('{"test_accuracy": "high", "auc": true}', "auc: must be a number (or null); received true"),
        ('{"command": "train", "ok": true, "metrics": {}}', "this is an nnflow --json document: pass the run folder"),
        (b"\xff\xfe", "not a JSON file"),
    ],
)
def test_a_malformed_metrics_file_is_a_usage_error_naming_it(make_run, tmp_path, content, message):
    base = tmp_path / "main-metrics.json"
    base.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = invoke(
        "compare", make_run("pr", {"test_accuracy": 0.9}), "--baseline", base, "--tolerance", "test_accuracy=0"
    )
    assert result.exit_code == 2, result.output
    assert f"--baseline {base}" in result.stderr and message in result.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_baseline_is_refused_without_blocking(make_run, tmp_path):
    os.mkfifo(tmp_path / "pipe.json")
    result = invoke("compare", make_run("pr", {"a": 1}), "--baseline", tmp_path / "pipe.json", "--tolerance", "a=0")
    assert result.exit_code == 2 and "named pipe (FIFO)" in result.stderr


def test_a_baseline_that_is_not_there_or_not_a_run(make_run, tmp_path):
    candidate = make_run("pr", {"test_accuracy": 0.9})
    result = invoke("compare", candidate, "--baseline", "", "--tolerance", "test_accuracy=0")
    assert result.exit_code == 2 and "--baseline: BASE is empty" in result.stderr
    result = invoke("compare", candidate, "--baseline", tmp_path / "nothing", "--tolerance", "test_accuracy=0")
    assert result.exit_code == 2 and "nothing: no such file or folder. BASE is a run folder, runs/NAME" in result.stderr
    (tmp_path / "empty").mkdir()
    result = invoke("compare", candidate, "--baseline", tmp_path / "empty", "--tolerance", "test_accuracy=0")
    assert (
        result.exit_code == 2 and "--baseline: " in result.stderr and "not a run folder (no run.json)" in result.stderr
    )


@pytest.mark.parametrize("side", ["candidate", "baseline"])
def test_a_damaged_run_on_either_side_is_refused(make_run, side):
    runs = {"candidate": make_run("pr", {"test_accuracy": 0.9}), "baseline": make_run("main", {"test_accuracy": 0.9})}
    (runs[side] / "metrics.json").write_text("{")
    result = invoke("compare", runs["candidate"], "--baseline", runs["baseline"], "--tolerance", "test_accuracy=0")
    assert result.exit_code == 6 and "metrics.json: not valid JSON" in result.stderr
    assert "Traceback" not in result.output


def test_a_damaged_expect_section_of_the_candidate_is_refused(make_run, metrics_file):
    candidate = make_run("pr", {"test_accuracy": 0.9}, expect={"test_accuracy": "about 0.9"})
    result = invoke("compare", candidate, "--baseline", metrics_file({"test_accuracy": 0.9}))
    assert result.exit_code == 6 and "`expect.test_accuracy` is not a condition" in result.stderr


def test_the_run_comparison_is_unchanged(make_run):
    runs = make_run("a", {"test_accuracy": 0.9}), make_run("b", {"test_accuracy": 0.8})
    result = invoke("compare", *runs)
    assert result.exit_code == 0 and result.stdout.startswith(f"A = {runs[0]} (completed)\nB = {runs[1]} (completed)")
    data = json.loads(invoke("compare", *runs, "--json").stdout)
    jsonschema.validate(data, SCHEMA)
    assert set(data) == {"command", "format", "ok", "runs", "metrics", "differences"}


def test_the_library_returns_the_comparison(make_run, metrics_file):
    candidate = make_run("pr", {"test_accuracy": 0.9, "val_loss": 0.3})
    result = compare_to_baseline(candidate, metrics_file({"test_accuracy": 0.92}), {"test_accuracy": "5%"})
    assert isinstance(result, BaselineComparison) and result.passed
    (gate,) = result.gates
    assert gate.delta == pytest.approx(-0.02) and gate.allowed == pytest.approx(0.046) and gate.direction == "higher"
    with pytest.raises(ConfigError, match="--tolerance test_accuracy=x: the tolerance 'x' is not a number"):
        compare_to_baseline(candidate, metrics_file({}), {"test_accuracy": "x"})
