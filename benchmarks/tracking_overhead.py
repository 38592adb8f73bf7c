"""What MLflow tracking costs: `nnflow train --mlflow` against a hand-written Keras script with
`mlflow.keras.autolog()`, and against `nnflow train` without tracking.

Run it from the project root with the project's interpreter (needs the mlflow extra):

    .venv/bin/python benchmarks/tracking_overhead.py              # table + ratios
    .venv/bin/python benchmarks/tracking_overhead.py --repeat 5
    .venv/bin/python benchmarks/tracking_overhead.py --json

The workload is benchmarks/train_tutorial.py's: iris, a 4-16-3 MLP, batch 16, 100 epochs,
validation 0.2. Three sides, each a whole process logging to its own fresh SQLite store (MLflow's
default, `sqlite:///.../mlflow.db`):

  autolog        `python benchmarks/handwritten/iris_keras_mlflow.py`: the Keras script with
                 `mlflow.keras.autolog()` inside `mlflow.start_run()`, as MLflow's guide shows
  nnflow-mlflow  `nnflow train benchmarks/configs/iris_tutorial.yaml --mlflow -q`: params, each
                 epoch, final metrics, tags, files, curves, report and the pyfunc model
  nnflow         the same without --mlflow (what tracking adds)

After one warm-up round the sides rotate for --repeat rounds. It reports each side's median wall
time, whether its MLflow run holds a model, and the ratios nnflow-mlflow / autolog and
nnflow-mlflow / nnflow. No target is set: it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import BENCHMARKS, HANDWRITTEN, bench_env, last_json_line, nnflow_command

CONFIG = BENCHMARKS / "configs" / "iris_tutorial.yaml"
SCRIPT = HANDWRITTEN / "iris_keras_mlflow.py"
SIDES = ("autolog", "nnflow-mlflow", "nnflow")


def run(side: str, folder: Path) -> dict:
    """One side, in `folder` (its own store): wall seconds, and what its MLflow run holds."""
    folder.mkdir(parents=True)
    env = dict(bench_env(), MLFLOW_TRACKING_URI=f"sqlite:///{folder / 'mlflow.db'}", MLFLOW_EXPERIMENT_NAME="bench")
    if side == "autolog":
        cmd = [sys.executable, str(SCRIPT)]
    else:
        cmd = [*nnflow_command(), "train", str(CONFIG), "--out", str(folder / "run"), "-q"]
        cmd += ["--mlflow"] if side == "nnflow-mlflow" else []
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{side} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = {"total": seconds, "model": None, "autolog_error": None}
    if side == "autolog":
        run_id = last_json_line(side, cmd, done.stdout)["run_id"]
        result["model"] = _has_model(folder, run_id)
        errors = [line for line in done.stderr.splitlines() if "error during keras autologging" in line]
        result["autolog_error"] = errors[0][-200:] if errors else None
    elif side == "nnflow-mlflow":
        run_id = json.loads((folder / "run" / "run.json").read_text())["tracking"]["mlflow"]["run_id"]
        result["model"] = _has_model(folder, run_id)
    return result


def _has_model(folder: Path, run_id: str) -> bool:
    """Whether the MLflow run holds a logged model (MLflow 3 keeps models beside the run)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    run_info = client.get_run(run_id).info
    models = client.search_logged_models(experiment_ids=[run_info.experiment_id])
    return any(model.source_run_id == run_id for model in models)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat", type=int, default=3, metavar="N", help="measured rounds after 1 warm-up (default 3)"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON document")
    args = parser.parse_args(argv)
    results: dict[str, list[dict]] = {side: [] for side in SIDES}
    with tempfile.TemporaryDirectory(prefix="nnflow-bench-tracking-") as tmp:
        for round_no in range(1 + args.repeat):
            order = SIDES[round_no % 3 :] + SIDES[: round_no % 3]
            for side in order:
                result = run(side, Path(tmp) / f"{round_no}-{side}")
                if round_no:
                    results[side].append(result)
                if not args.json:
                    label = "warm-up" if round_no == 0 else f"round {round_no}"
                    print(f"  {label}: {side:<14} {result['total']:6.2f} s", file=sys.stderr)
    medians = {side: statistics.median(r["total"] for r in runs) for side, runs in results.items()}
    ratios = {
        "nnflow-mlflow / autolog": medians["nnflow-mlflow"] / medians["autolog"],
        "nnflow-mlflow / nnflow": medians["nnflow-mlflow"] / medians["nnflow"],
    }
    if args.json:
        print(json.dumps({"seconds": medians, "ratios": ratios, "runs": results}, indent=2))
        return 0
    print(f"iris 4-16-3 MLP, 100 epochs, a fresh SQLite store per run; 1 warm-up + {args.repeat} rounds, rotating")
    print(f"{'whole process':<44} {'median (s)':>10}  model logged")
    names = {
        "autolog": "hand-written Keras + mlflow.keras.autolog()",
        "nnflow-mlflow": "nnflow train --mlflow",
        "nnflow": "nnflow train (no tracking)",
    }
    for side in SIDES:
        logged = results[side][0]["model"]
        shown = "-" if logged is None else ("yes" if all(r["model"] for r in results[side]) else "NO")
        print(f"{names[side]:<44} {medians[side]:>10.2f}  {shown}")
    error = next((r["autolog_error"] for r in results["autolog"] if r["autolog_error"]), None)
    if error:
        print(f"\nautolog reported: ...{error}")
    print()
    for name, ratio in ratios.items():
        print(f"ratio {name}: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
