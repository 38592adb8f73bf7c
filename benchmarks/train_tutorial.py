"""Tutorial-sized training: `nnflow train` against a hand-written Keras script.

Run it from the project root with the project's interpreter:

    .venv/bin/python benchmarks/train_tutorial.py              # table + ratio
    .venv/bin/python benchmarks/train_tutorial.py --repeat 5
    .venv/bin/python benchmarks/train_tutorial.py --json       # JSON document

The workload is the Keras tutorial one: iris (data/iris.csv, 150 rows), a
4-16-3 MLP (Dense 16 relu, Dense 3 softmax) with the features standardised
inside the model, Adam, sparse_categorical_crossentropy, accuracy, batch 16,
100 epochs, 20% held out for validation. Two sides, each a whole process:

  handwritten  `python benchmarks/handwritten/iris_keras.py`: pandas, numpy,
               model.fit(..., validation_split=0.2), as the Keras guides show
  nnflow       `nnflow train benchmarks/configs/iris_tutorial.yaml --out TMP -q`

What it measures: the wall-clock time (time.perf_counter) of each whole
process, start-up and `import keras` included, because for a workload this
small that is most of what a user waits for. Both sides use the same
interpreter (sys.executable) and environment, with TF_CPP_MIN_LOG_LEVEL=2.
After one warm-up round, the sides alternate for --repeat rounds (default 3),
the order flipping every round (h n, n h, h n, ...) so machine drift hits both
equally. It reports min and median per side, where the time went (the
hand-written script reports its import/prep/fit seconds; nnflow's fit seconds
come from run.json), each side's final validation accuracy, and the ratio
nnflow median / hand-written median. The target is a ratio <= 0.6.

The validation rows differ (the hand-written script shuffles once and keeps the
last 20%, as validation_split does; nnflow draws a stratified sample), so the
two accuracies are a sanity check, not a comparison.

Exit status: non-zero if a side fails (its output is shown); otherwise 0,
whether or not the target holds. It is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from _common import (
    BENCHMARKS,
    HANDWRITTEN,
    last_json_line,
    nnflow_command,
    read_run,
    run_side,
)

TARGET = 0.6
CONFIG = BENCHMARKS / "configs" / "iris_tutorial.yaml"
SCRIPT = HANDWRITTEN / "iris_keras.py"


def run_handwritten() -> dict:
    cmd = [sys.executable, str(SCRIPT)]
    elapsed, stdout = run_side("hand-written Keras script", cmd)
    result = last_json_line("hand-written Keras script", cmd, stdout)
    return {
        "total": elapsed,
        "import": result["import_seconds"],
        "prep": result["prep_seconds"],
        "fit": result["fit_seconds"],
        "val_accuracy": result["val_accuracy"],
        "train_rows": result["train_rows"],
        "epochs": result["epochs"],
    }


def run_nnflow(run_dir: Path) -> dict:
    cmd = nnflow_command() + ["train", str(CONFIG), "--out", str(run_dir), "-q"]
    elapsed, _ = run_side("nnflow train", cmd)
    timing, metrics = read_run("nnflow train", cmd, run_dir)
    return {
        "total": elapsed,
        "fit": timing["fit_seconds"],
        "val_accuracy": metrics["val_accuracy"],
        "train_rows": timing["train_rows"],
        "epochs": timing["epochs"],
    }


def summarize(runs: list[dict]) -> dict:
    """min and median wall time, the median of each other number, and all runs."""
    totals = [r["total"] for r in runs]
    summary = {"min": min(totals), "median": statistics.median(totals)}
    for key in runs[0]:
        if key != "total":
            summary[key] = statistics.median(r[key] for r in runs)
    summary["runs"] = runs
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat", type=int, default=3, metavar="N", help="measured runs per side, after 1 warm-up round (default: 3)"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON document")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    runs: dict[str, list[dict]] = {"handwritten": [], "nnflow": []}
    with tempfile.TemporaryDirectory(prefix="nnflow-bench-") as tmp:
        for round_no in range(1 + args.repeat):  # round 0 is the warm-up
            order = ["handwritten", "nnflow"] if round_no % 2 == 0 else ["nnflow", "handwritten"]
            for side in order:
                if side == "handwritten":
                    result = run_handwritten()
                else:
                    result = run_nnflow(Path(tmp) / f"run-{round_no}")
                if round_no > 0:
                    runs[side].append(result)
                if not args.json:
                    label = "warm-up" if round_no == 0 else f"round {round_no}"
                    print(f"  {label}: {side:<11} {result['total']:6.2f} s", file=sys.stderr)

    hand, nn = summarize(runs["handwritten"]), summarize(runs["nnflow"])
    ratio = nn["median"] / hand["median"]
    target_met = ratio <= TARGET

    if args.json:
        print(
            json.dumps(
                {
                    "python": sys.executable,
                    "nnflow": nnflow_command(),
                    "config": str(CONFIG),
                    "script": str(SCRIPT),
                    "warmup": 1,
                    "repeat": args.repeat,
                    "seconds": {"handwritten": hand, "nnflow": nn},
                    "ratio": ratio,
                    "target": TARGET,
                    "target_met": target_met,
                },
                indent=2,
            )
        )
        return 0

    print(
        f"iris 4-16-3 MLP, batch 16, {hand['epochs']:.0f} epochs, validation 0.2, normalize on; "
        f"1 warm-up + {args.repeat} measured runs per side, alternating"
    )
    print(f"{'whole process':<28} {'min (s)':>8} {'median (s)':>11} {'val_accuracy':>13}")
    print(
        f"{'hand-written Keras script':<28} {hand['min']:>8.2f} {hand['median']:>11.2f} {hand['val_accuracy']:>13.3f}"
    )
    print(f"{'nnflow train':<28} {nn['min']:>8.2f} {nn['median']:>11.2f} {nn['val_accuracy']:>13.3f}")
    print()
    print("where the time goes (medians, s):")
    hand_rest = hand["median"] - hand["import"] - hand["prep"] - hand["fit"]
    print(
        f"  hand-written: import keras {hand['import']:.2f} + read/build/compile {hand['prep']:.2f} "
        f"+ fit {hand['fit']:.2f} + interpreter start/exit {hand_rest:.2f}"
    )
    print(
        f"  nnflow:       fit {nn['fit']:.2f} (run.json) + everything else {nn['median'] - nn['fit']:.2f} "
        f"(start-up, imports, data, build, run folder)"
    )
    print(
        f"  train rows x epochs: hand-written {hand['train_rows']:.0f} x {hand['epochs']:.0f}, "
        f"nnflow {nn['train_rows']:.0f} x {nn['epochs']:.0f}"
    )
    print()
    verdict = "ok" if target_met else "OVER TARGET"
    print(f"ratio nnflow / hand-written (median whole-process time): {ratio:.3f}  [{verdict}]")
    print(f"target (ratio <= {TARGET:.2f}): {'met' if target_met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
