"""The documented CI example (examples/ci/) runs as written: its steps as a shell script."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from nnflow.cli import cli

EXAMPLES = ROOT / "examples" / "ci"
SCRIPT = EXAMPLES / "train-and-gate.sh"
WORKFLOWS = sorted(EXAMPLES.glob("*.yml"))


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_ci_example_trains_sweeps_and_gates(tmp_path):
    out = tmp_path / "ci-runs"
    summary = tmp_path / "github-summary.md"
    baseline = tmp_path / "baseline" / "metrics.json"
    baseline.parent.mkdir()
    baseline.write_text(json.dumps({"test_accuracy": 0.5, "test_loss": 1.0}))
    env = {
        **os.environ,
        "CONFIG": str(ROOT / "configs" / "iris.yaml"),
        "EPOCHS": "40",
        "OUT": str(out),
        "GITHUB_STEP_SUMMARY": str(summary),
        "BASELINE": str(baseline),  # step 6: gated against "main's" metrics (a worse model: it passes)
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # this nnflow
    }
    completed = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    train = json.loads((out / "train.json").read_text())
    assert train["command"] == "train" and train["ok"]
    assert json.loads((out / "evaluate.json").read_text())["ok"]
    sweep = json.loads((out / "sweep.json").read_text())
    assert [m["status"] for m in sweep["members"]] == ["completed", "completed"]
    assert f"A = {out / 'train'} (completed)" in completed.stdout  # the compare step ran
    text = summary.read_text()
    assert text.count("### nnflow train: iris-mlp (✓ all gates passed)") == 1
    assert (
        "### nnflow evaluate: iris-mlp" in text
        and "### nnflow sweep: study iris-mlp, 2 of 2 trials finished (✓ exit 0)" in text
    )
    assert f"### nnflow compare: {out / 'train'} against {baseline} (✓ no regression)" in text
    assert (out / "summary.md").read_text() == text


def workflow(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def nnflow_commands(text: str) -> list[list[str]]:
    """The `nnflow ...` command lines of a shell script or a step's `run:` (continuation lines joined)."""
    lines = text.replace("\\\n", " ").splitlines()
    commands = [shlex.split(line.strip()) for line in lines if re.match(r"\s*nnflow ", line)]
    ends = {">", ">>", "|", "&&", "||", ";"}  # a redirection or the next command
    return [args[: next((i for i, token in enumerate(args) if token in ends), len(args))] for args in commands]


def parses(args: list[str]) -> None:
    """The command line is one nnflow accepts: the command, its options and their values (nothing runs)."""
    name, *rest = args[1:]
    command = cli.get_command(cli.make_context("nnflow", [name, *rest]), name)
    assert command is not None, f"no command {name!r}: {shlex.join(args)}"
    command.make_context(name, rest)  # a click.UsageError for an unknown option or a bad value


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_the_example_workflows_are_valid_and_call_nnflow_as_it_is(path):
    data = workflow(path)
    assert data["on"] and data["jobs"]
    runs = [step["run"] for job in data["jobs"].values() for step in job["steps"] if "run" in step]
    for step in (step for job in data["jobs"].values() for step in job["steps"]):
        assert ("run" in step) != ("uses" in step), step
    commands = [args for text in runs for args in nnflow_commands(text)]
    assert commands or any("train-and-gate.sh" in text for text in runs)
    for args in commands:
        parses(args)


def test_the_example_script_calls_nnflow_as_it_is():
    commands = nnflow_commands(SCRIPT.read_text(encoding="utf-8"))
    assert [args[1] for args in commands] == ["check", "train", "sweep", "evaluate", "compare", "compare"]
    for args in commands:
        parses(args)


def test_the_pull_request_gate_compares_with_mains_stored_metrics():
    data = workflow(EXAMPLES / "pull-request-gate.yml")
    assert data["on"] == {"push": {"branches": ["main"]}, "pull_request": None}
    steps = data["jobs"]["train-and-gate"]["steps"]
    upload = next(step for step in steps if step.get("uses", "").startswith("actions/upload-artifact") and "if" in step)
    assert upload["if"] == "github.event_name == 'push'"
    assert upload["with"] == {"name": "baseline-metrics", "path": "ci-runs/train/metrics.json", "retention-days": 90}
    download = next(step for step in steps if step.get("id") == "baseline")
    assert "gh run download" in download["run"] and "--name baseline-metrics --dir baseline" in download["run"]
    (gate,) = [args for step in steps if "run" in step for args in nnflow_commands(step["run"]) if args[1] == "compare"]
    assert gate[:5] == ["nnflow", "compare", "ci-runs/train", "--baseline", "baseline/metrics.json"]
    assert "--tolerance" in gate and "test_accuracy=0.02" in gate and "--summary" in gate
    train = next(args for step in steps if "run" in step for args in nnflow_commands(step["run"]) if args[1] == "train")
    assert train[train.index("--out") + 1] == "ci-runs/train"  # the candidate is the run this job trained
