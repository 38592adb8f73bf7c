"""Helpers shared by the benchmarks (standard library only).

The harnesses never import Keras or TensorFlow themselves: every side of a
comparison runs in its own fresh interpreter, started with subprocess.
"""

from __future__ import annotations

import json
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
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


# ---------------------------------------------------------------------------
# Prediction benchmarks (predict_speed.py, predict_memory.py)

PREDICT_DATA = BENCHMARKS / "_predict_data.py"  # run as a subprocess: it holds the big tables, not us
PREDICT_SCRIPT = HANDWRITTEN / "predict_keras.py"
PREDICT_VERSION = 1  # bump when _predict_data.py or PREDICT_CONFIG changes, so stale caches are not reused
PREDICT_TRAIN_ROWS = 50_000

PREDICT_CONFIG = """\
# Written by benchmarks/_common.py for the prediction benchmarks: the model of
# train_large.py, trained briefly on a small table.
name: predict-bench
seed: 0
data:
  train: {data}
  target: label
  validation: 0.2
  test: 0
  normalize: true
layers:
  - Dense: {{units: 64, activation: relu}}
  - Dense: {{units: 64, activation: relu}}
  - Dense: {{units: 1, activation: sigmoid}}
compile:
  optimizer: adam
  loss: binary_crossentropy
  metrics: [accuracy]
fit:
  batch_size: 256
  epochs: 2
"""


@dataclass
class Measured:
    """One side's whole process: wall seconds, stdout, and its own peak RSS."""

    seconds: float
    stdout: str
    max_rss_kib: int  # ru_maxrss of this child alone (Linux: KiB)


def run_measured(name: str, cmd: list[str]) -> Measured:
    """Like run_side, and also the child's peak resident set size.

    The child is started with Popen and reaped with os.wait4, whose rusage is
    the child's own: RUSAGE_CHILDREN would be the maximum over every child
    this process ever waited for. Its output goes to temporary files, so a
    chatty child can never block on a full pipe while we wait.

    Caveat (Linux): at exec, the kernel folds the parent's high-water RSS into
    the child's ru_maxrss, so a child never reports less than our own peak
    (see harness_peak_rss_kib). The harnesses therefore stay small: the big
    tables are only ever held by child processes.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=bench_env(), cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if proc.returncode < 0:
        number = -proc.returncode
        try:
            what = f"killed by signal {number} ({signal.Signals(number).name})"
        except ValueError:
            what = f"killed by signal {number}"
        if number == signal.SIGKILL:
            what += "; out of memory?"
        fail(name, what, cmd, stdout, stderr)
    if proc.returncode != 0:
        fail(name, f"exit code {proc.returncode}", cmd, stdout, stderr)
    return Measured(elapsed, stdout, usage.ru_maxrss)


def harness_peak_rss_kib() -> int:
    """This process's own peak RSS: a floor under every child's ru_maxrss (see run_measured)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def mb(kib: float) -> float:
    """KiB -> MB (10^6 bytes), the unit the prediction benchmarks print."""
    return kib * 1024 / 1e6


def megabytes(size: int) -> str:
    """A file size in MB (10^6 bytes), one decimal below 100 MB."""
    return f"{size / 1e6:,.1f} MB" if size < 100e6 else f"{size / 1e6:,.0f} MB"


def version_of(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def predict_run(cache_root: Path) -> tuple[Path, str]:
    """A small trained nnflow run folder for the prediction benchmarks (trained once, then cached).

    The key holds PREDICT_VERSION and the nnflow and Keras versions; delete the
    folder to retrain. The training table is train_large.py's (its generator
    and its cache), made by _predict_data.py in a child process.
    """
    key = f"predict-run-{PREDICT_TRAIN_ROWS}-v{PREDICT_VERSION}-nnflow{version_of('nnflow')}-keras{version_of('keras')}"
    folder = cache_root / key
    run_dir = folder / "run"
    if (run_dir / "model.keras").exists():  # nnflow writes model.keras last, once training succeeded
        return run_dir, "cached"
    start = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(PREDICT_DATA), "train", str(cache_root), str(PREDICT_TRAIN_ROWS)]
    _, stdout = run_side("training data generator", cmd)
    data = Path(stdout.strip().splitlines()[-1])
    config = folder / "predict.yaml"
    # Relative to the config file, as the spec says data paths are.
    config.write_text(PREDICT_CONFIG.format(data=json.dumps(os.path.relpath(data, folder))))
    shutil.rmtree(run_dir, ignore_errors=True)  # an earlier attempt that did not finish
    run_side("nnflow train", nnflow_command() + ["train", str(config), "--out", str(run_dir), "-q"])
    return run_dir, f"trained in {time.perf_counter() - start:.1f} s"


def predict_input(cache_root: Path, rows: int) -> tuple[Path, str]:
    """The cached CSV of `rows` rows to predict on (made by _predict_data.py if missing), and how it was got."""
    path = cache_root / f"predict-{rows}-v{PREDICT_VERSION}" / "input.csv"
    if path.exists():  # written last, atomically, after its labels
        return path, "cached"
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(PREDICT_DATA), "csv", str(path), str(rows)]
    _, stdout = run_side("CSV generator", cmd)
    seconds = last_json_line("CSV generator", cmd, stdout)["seconds"]
    return path, f"generated in {seconds:.1f} s"


def labels_of(csv: Path) -> Path:
    """The true labels saved beside a generated input CSV."""
    return csv.with_name(csv.name + ".labels.npy")


def nnflow_predict_command(run_dir: Path, csv: Path, output: Path) -> list[str]:
    return nnflow_command() + ["predict", str(run_dir), "--input", str(csv), "--output", str(output)]


def handwritten_predict_command(run_dir: Path, csv: Path, output: Path) -> list[str]:
    return [sys.executable, str(PREDICT_SCRIPT), str(run_dir), str(csv), str(output)]


def read_through(path: Path) -> None:
    """Read a file once, so that it sits in the OS page cache before anything is timed."""
    block = bytearray(1 << 20)  # reused: this process's RSS stays small (see run_measured)
    with open(path, "rb", buffering=0) as stream:
        while stream.readinto(block):
            pass


def data_lines(path: Path) -> int:
    """Lines of a CSV file after its header (no quoted newlines in our files)."""
    block = bytearray(1 << 20)
    lines = 0
    with open(path, "rb", buffering=0) as stream:
        while n := stream.readinto(block):
            lines += block.count(b"\n", 0, n)
    return lines - 1
