"""Helpers shared by the training benchmarks (standard library only).

The harnesses never import Keras or TensorFlow themselves: every side of a
comparison runs in its own fresh interpreter, started with subprocess.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
HANDWRITTEN = BENCHMARKS / "handwritten"


def bench_env() -> dict[str, str]:
    """The environment of every side: ours, with TensorFlow's log chatter off."""
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")


def nnflow_command() -> list[str]:
    """The `nnflow` script next to sys.executable, else `python -m nnflow`."""
    found = shutil.which("nnflow", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "nnflow"]


def run_side(name: str, cmd: list[str]) -> tuple[float, str]:
    """Run one side as a whole process; return (wall seconds, stdout).

    If it fails, stop the benchmark (exit status 1) and show the command and
    the tail of its output: timing a crashing side is meaningless.
    """
    start = time.perf_counter()
    proc = subprocess.run(cmd, check=False, env=bench_env(), cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        fail(name, f"exit code {proc.returncode}", cmd, proc.stdout, proc.stderr)
    return elapsed, proc.stdout


def fail(name: str, what: str, cmd: list[str], stdout: str = "", stderr: str = "") -> NoReturn:
    """Stop the benchmark because side `name` went wrong."""
    lines = [f"benchmark aborted: {name} failed ({what})", f"  command: {shlex.join(cmd)}"]
    if stdout.strip():
        lines.append("  stdout (tail):\n" + indent(stdout.strip()[-2000:]))
    if stderr.strip():
        lines.append("  stderr (tail):\n" + indent(stderr.strip()[-3000:]))
    sys.exit("\n".join(lines))


def indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def last_json_line(name: str, cmd: list[str], stdout: str) -> dict:
    """The JSON object a hand-written script prints as its last stdout line."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                break
    fail(name, "no JSON result line on stdout", cmd, stdout)


def read_run(name: str, cmd: list[str], run_dir: Path) -> tuple[dict, dict]:
    """(run.json "timing", metrics.json) of an nnflow run folder."""
    try:
        timing = json.loads((run_dir / "run.json").read_text())["timing"]
        metrics = json.loads((run_dir / "metrics.json").read_text())
        for key in ("fit_seconds", "train_rows", "epochs", "rows_per_second"):
            float(timing[key])
        float(metrics["val_accuracy"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        fail(name, f"unexpected run folder {run_dir}: {type(error).__name__}: {error}", cmd)
    return timing, metrics
