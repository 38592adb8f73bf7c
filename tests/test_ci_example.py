"""The documented CI example (examples/ci/) runs as written: its steps as a shell script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

SCRIPT = ROOT / "examples" / "ci" / "train-and-gate.sh"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_ci_example_trains_sweeps_and_gates(tmp_path):
    out = tmp_path / "ci-runs"
    summary = tmp_path / "github-summary.md"
    env = {
        **os.environ,
        "CONFIG": str(ROOT / "configs" / "iris.yaml"),
        "EPOCHS": "40",
        "OUT": str(out),
        "GITHUB_STEP_SUMMARY": str(summary),
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
    assert (out / "summary.md").read_text() == text
