"""Batch prediction speed: `nnflow predict` against a hand-written Keras script, CSV in and out.

Run it from the project root with the project's interpreter:

    .venv/bin/python benchmarks/predict_speed.py                  # 1,000,000 rows, 3 runs per side
    .venv/bin/python benchmarks/predict_speed.py --rows 100000    # a quick try
    .venv/bin/python benchmarks/predict_speed.py --warmup --repeat 5
    .venv/bin/python benchmarks/predict_speed.py --json           # JSON document

The workload: a trained binary classifier (the 64-64-1 MLP of train_large.py,
features standardised inside the model, trained by `nnflow train` for 2 epochs
on 50,000 rows of train_large.py's table; trained once and cached) predicts on
a generated CSV of --rows rows (default 1,000,000): an `id` column, then the
20 float features x00..x19, and no label column (a file to score, not to
evaluate). The rows come from the same task as the training rows, drawn from
another seed. Two sides, each its own process:

  handwritten  `python benchmarks/handwritten/predict_keras.py RUN input.csv out.csv`:
               pd.read_csv, keras.saving.load_model(RUN/model.keras),
               model.predict(x, verbose=0) with Keras's default batch size,
               then a DataFrame with the same columns as nnflow's, to_csv
  nnflow       `nnflow predict RUN --input input.csv --output out.csv`

Both write id, predicted_label, probability_0, probability_1.

What it measures: the wall-clock time (time.perf_counter) of each whole
process, start-up and `import keras` included: what a user waits for. Also
each process's own peak RSS (os.wait4), for information. The sides alternate
for --repeat rounds (default 3), the order flipping every round, and the
medians are compared: nnflow / hand-written, target <= 1.2. --warmup adds one
untimed round first. Each run writes a new output file (the previous one is
deleted first).

The OS page cache: the input CSV (about 210 MB per million rows) is read once
before anything is timed, so every run reads it from memory, not from disk;
both sides get the same warm file. With a cold cache the first run of either
side would pay for the disk too. The output is written to the temp dir; how
much of that reaches the disk within the timed run depends on the OS (nnflow
may fsync its output, as it does for every file a user keeps; the hand-written
script does not).

After the runs, the last two outputs are compared (by _predict_data.py in a
child process): row counts, columns, ids, predicted classes (a class may differ
only where a probability is within 1e-5 of the 0.5 threshold) and probabilities
(within 1e-5), plus each side's accuracy against the true labels (~0.95
expected). The inputs and the trained run are cached under the temp dir
(--cache), keyed by row count, a data version and the nnflow/Keras versions.

Exit status: non-zero if a side fails (its output is shown); otherwise 0,
whether or not the target holds or the outputs agree. It is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from _common import (
    PREDICT_DATA,
    PREDICT_SCRIPT,
    handwritten_predict_command,
    labels_of,
    last_json_line,
    mb,
    megabytes,
    nnflow_command,
    nnflow_predict_command,
    predict_input,
    predict_run,
    read_through,
    run_measured,
    run_side,
)

TARGET = 1.2
SIDES = {"handwritten": "hand-written Keras script", "nnflow": "nnflow predict"}
STEPS = ("import", "read", "load", "predict", "write")  # the hand-written script's own timings


def run_once(side: str, run_dir: Path, csv: Path, output: Path) -> dict:
    output.unlink(missing_ok=True)
    if side == "handwritten":
        cmd = handwritten_predict_command(run_dir, csv, output)
    else:
        cmd = nnflow_predict_command(run_dir, csv, output)
    measured = run_measured(SIDES[side], cmd)
    result = {"total": measured.seconds, "max_rss_mb": mb(measured.max_rss_kib)}
    if side == "handwritten":
        timings = last_json_line(SIDES[side], cmd, measured.stdout)
        result.update({step: timings[f"{step}_seconds"] for step in STEPS})
    return result


def summarize(runs: list[dict]) -> dict:
    """min and median wall time, the median of every other number, and all runs."""
    totals = [r["total"] for r in runs]
    summary = {"min": min(totals), "median": statistics.median(totals)}
    summary.update({key: statistics.median(r[key] for r in runs) for key in runs[0] if key != "total"})
    summary["runs"] = runs
    return summary


def compare(a: Path, b: Path, labels: Path) -> dict:
    cmd = [sys.executable, str(PREDICT_DATA), "compare", str(a), str(b), str(labels)]
    _, stdout = run_side("output comparison", cmd)
    return last_json_line("output comparison", cmd, stdout)


def agreement_lines(agree: dict, sides: list[str]) -> list[str]:
    """The comparison of two outputs (or the checks of one), in words."""
    rows, columns = agree["rows"], agree["columns"]
    if len(sides) == 1:
        accuracy = f"; accuracy against the true labels {agree['accuracy'][0]:.4f}" if "accuracy" in agree else ""
        return [f"output ({SIDES[sides[0]]}): {rows[0]:,} rows, columns {', '.join(columns[0])}{accuracy}"]
    left, right = (SIDES[s] for s in sides)
    lines = [f"outputs ({left} vs {right}): {'MATCH' if agree['match'] else 'DO NOT MATCH'}"]
    lines.append(f"  rows: {rows[0]:,} vs {rows[1]:,}" + ("" if agree["same_rows"] else "  <- differ"))
    if agree["same_columns"]:
        lines.append(f"  columns: {', '.join(columns[0])} (both)")
    else:
        lines.append(f"  columns differ: {', '.join(columns[0])}  vs  {', '.join(columns[1])}")
        lines.append(f"  (expected: {', '.join(agree['expected_columns'])})")
    if "class_mismatches" in agree:
        if "id_mismatches" in agree:
            lines.append(f"  id: {agree['id_mismatches']:,} rows differ")
        lines.append(
            f"  predicted class: {agree['class_mismatches']:,} rows differ"
            + (
                f" (+{agree['class_mismatches_at_threshold']:,} within 1e-5 of the 0.5 threshold, allowed)"
                if agree["class_mismatches_at_threshold"]
                else ""
            )
        )
        diffs = ", ".join(f"{column} {diff:.2g}" for column, diff in agree["max_probability_diff"].items())
        lines.append(f"  max |probability difference|: {diffs or 'no shared probability columns'} (tolerance 1e-5)")
    if "accuracy" in agree:
        lines.append(f"  accuracy against the true labels: {agree['accuracy'][0]:.4f} vs {agree['accuracy'][1]:.4f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, default=1_000_000, metavar="N", help="rows in the CSV to predict on (default: 1000000)"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, metavar="N", help="measured runs per side, alternating (default: 3)"
    )
    parser.add_argument("--warmup", action="store_true", help="one untimed round of both sides first")
    parser.add_argument(
        "--side",
        choices=["both", *SIDES],
        default="both",
        help="run only one side, e.g. while `nnflow predict` does not exist yet (default: both)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "nnflow-bench",
        metavar="DIR",
        help="where the generated data and the trained run are kept (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON document")
    args = parser.parse_args(argv)
    if args.rows < 100:
        parser.error("--rows must be at least 100")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    sides = list(SIDES) if args.side == "both" else [args.side]

    def progress(text: str) -> None:
        if not args.json:
            print(f"  {text}", file=sys.stderr)

    cache = args.cache.resolve()
    run_dir, how = predict_run(cache)
    progress(f"model: {run_dir} ({how})")
    csv, how = predict_input(cache, args.rows)
    input_bytes = csv.stat().st_size
    progress(f"input: {csv} ({megabytes(input_bytes)}, {how})")
    read_through(csv)  # into the page cache: no run pays for the disk

    runs: dict[str, list[dict]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory(prefix="nnflow-bench-") as tmp:
        outputs = {side: Path(tmp) / f"{side}.csv" for side in sides}
        for round_no in range(0 if args.warmup else 1, 1 + args.repeat):  # round 0 is the warm-up
            order = sides if round_no % 2 == 1 else sides[::-1]
            for side in order:
                result = run_once(side, run_dir, csv, outputs[side])
                if round_no > 0:
                    runs[side].append(result)
                label = "warm-up" if round_no == 0 else f"round {round_no}"
                progress(f"{label}: {side:<11} {result['total']:6.2f} s, peak RSS {result['max_rss_mb']:6,.0f} MB")
        progress("comparing the outputs")
        agree = compare(outputs[sides[0]], outputs[sides[-1]], labels_of(csv))

    summaries = {side: summarize(runs[side]) for side in sides}
    ratio = summaries["nnflow"]["median"] / summaries["handwritten"]["median"] if len(sides) == 2 else None
    target_met = ratio <= TARGET if ratio is not None else None

    if args.json:
        print(
            json.dumps(
                {
                    "python": sys.executable,
                    "nnflow": nnflow_command(),
                    "script": str(PREDICT_SCRIPT),
                    "run": str(run_dir),
                    "input": str(csv),
                    "input_bytes": input_bytes,
                    "rows": args.rows,
                    "warmup": int(args.warmup),
                    "repeat": args.repeat,
                    "results": summaries,
                    "ratio": ratio,
                    "target": f"<= {TARGET}",
                    "target_met": target_met,
                    "outputs": agree,
                },
                indent=2,
            )
        )
        return 0

    print(
        f"{args.rows:,} rows x 20 features (+ id), CSV in ({megabytes(input_bytes)}, in the page cache) "
        f"and CSV out; 64-64-1 MLP, binary; {args.repeat} run{'s' if args.repeat > 1 else ''} per side"
        + (", alternating (medians)" if args.repeat > 1 else "")
        + (", after 1 warm-up round" if args.warmup else "")
    )
    print(f"{'whole process':<28} {'min (s)':>8} {'median (s)':>11} {'rows/s':>10} {'peak RSS (MB)':>14}")
    for side in sides:
        s = summaries[side]
        print(
            f"{SIDES[side]:<28} {s['min']:>8.2f} {s['median']:>11.2f} {args.rows / s['median']:>10,.0f} "
            f"{s['max_rss_mb']:>14,.0f}"
        )
    if "handwritten" in summaries:
        h = summaries["handwritten"]
        rest = h["median"] - sum(h[step] for step in STEPS)
        print(
            f"  hand-written, where the time goes (medians, s): import {h['import']:.2f} + read CSV "
            f"{h['read']:.2f} + load model {h['load']:.2f} + predict {h['predict']:.2f} + write CSV "
            f"{h['write']:.2f} + interpreter start/exit {rest:.2f}"
        )
    print()
    for line in agreement_lines(agree, sides):
        print(line)
    print()
    if ratio is None:
        print(f"ratio: not measured (--side {args.side}); target nnflow / hand-written <= {TARGET}")
    else:
        print(
            f"ratio nnflow / hand-written (median whole-process time): {ratio:.3f}  "
            f"[{'ok' if target_met else 'OVER TARGET'}; target <= {TARGET}]"
        )
        print(f"target: {'met' if target_met else 'NOT met'}; outputs {'match' if agree['match'] else 'DO NOT match'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
