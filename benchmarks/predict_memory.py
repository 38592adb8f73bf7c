"""Batch prediction memory: the peak RSS of `nnflow predict` and of a hand-written Keras script, 1M and 5M rows.

Run it from the project root with the project's interpreter:

    .venv/bin/python benchmarks/predict_memory.py              # 1,000,000 and 5,000,000 rows
    .venv/bin/python benchmarks/predict_memory.py --rows-small 100000 --rows-large 500000   # a quick try
    .venv/bin/python benchmarks/predict_memory.py --json       # JSON document

The workload is predict_speed.py's: the cached trained 64-64-1 binary
classifier predicts on a generated CSV (`id` + 20 float features, no label),
once with --rows-small rows (default 1,000,000, ~210 MB) and once with
--rows-large rows (default 5,000,000, ~1.1 GB). Two sides, each its own process:

  handwritten  `python benchmarks/handwritten/predict_keras.py RUN input.csv out.csv`:
               reads the whole CSV with pandas, model.predict on all of it
  nnflow       `nnflow predict RUN --input input.csv --output out.csv`,
               which reads and predicts in chunks

What it measures: the peak resident set size of each child process alone:
started with subprocess.Popen and reaped with os.wait4, whose rusage.ru_maxrss
(KiB on Linux) is that child's own (RUSAGE_CHILDREN would be the maximum over
all children). Printed in MB (10^6 bytes). Wall times are shown for
information, and so is the peak RSS of `python -c "import keras"`: what any
process that predicts with Keras holds before it has read a row. Targets for nnflow: the large file's peak <= 1.5 GB, and within
10% of the small file's peak (memory must not grow with the input). The
hand-written script's growth is shown for contrast.

One caveat of ru_maxrss: Linux folds the parent's own high-water RSS into the
child's at exec, so no child can report less than this harness's peak. The
harness therefore never holds the tables (a child process generates them) and
prints its own peak, tens of MB, as the floor.

The CSVs are generated in chunks of 250,000 rows by a child process and cached
under the temp dir (--cache; keyed by rows and a data version); generating 5M
rows takes about 10 s and 1.1 GB of disk, and the time is printed. Each run
writes its output into a fresh temp dir, its row count is checked, and it is
deleted straight after (an output of 5M rows is ~160 MB). The input is read
once before each size's runs, so both sides read it from the page cache.
With --repeat N each side runs N times per size, alternating, and the median
is reported (peak RSS hardly varies between runs).

Exit status: non-zero if a side fails or writes the wrong number of rows
(its output is shown); otherwise 0, whether or not the targets hold. It is a
benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from _common import (
    PREDICT_SCRIPT,
    data_lines,
    fail,
    handwritten_predict_command,
    harness_peak_rss_kib,
    mb,
    megabytes,
    nnflow_command,
    nnflow_predict_command,
    predict_input,
    predict_run,
    read_through,
    run_measured,
)

TARGET_PEAK_MB = 1500.0  # 1.5 GB
TARGET_GROWTH = 1.10  # large-file peak / small-file peak
SIDES = {"handwritten": "hand-written Keras script", "nnflow": "nnflow predict"}


def run_once(side: str, run_dir: Path, csv: Path, rows: int) -> dict:
    """One measured run, its output checked for row count and deleted."""
    with tempfile.TemporaryDirectory(prefix="nnflow-bench-") as tmp:
        output = Path(tmp) / "out.csv"
        if side == "handwritten":
            cmd = handwritten_predict_command(run_dir, csv, output)
        else:
            cmd = nnflow_predict_command(run_dir, csv, output)
        measured = run_measured(SIDES[side], cmd)
        if not output.exists():
            fail(SIDES[side], f"exited 0 but wrote no {output.name}", cmd, measured.stdout)
        written = data_lines(output)
        if written != rows:
            fail(SIDES[side], f"wrote {written:,} rows for {rows:,} input rows", cmd, measured.stdout)
    return {"max_rss_mb": mb(measured.max_rss_kib), "seconds": measured.seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows-small", type=int, default=1_000_000, metavar="N", help="rows in the smaller CSV (default: 1000000)"
    )
    parser.add_argument(
        "--rows-large", type=int, default=5_000_000, metavar="N", help="rows in the larger CSV (default: 5000000)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, metavar="N", help="runs per side and size, alternating (default: 1)"
    )
    parser.add_argument("--side", choices=["both", *SIDES], default="both", help="run only one side (default: both)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "nnflow-bench",
        metavar="DIR",
        help="where the generated data and the trained run are kept (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON document")
    args = parser.parse_args(argv)
    if min(args.rows_small, args.rows_large) < 100:
        parser.error("--rows-small and --rows-large must be at least 100")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    sides = list(SIDES) if args.side == "both" else [args.side]
    sizes = {"small": args.rows_small, "large": args.rows_large}

    def progress(text: str) -> None:
        if not args.json:
            print(f"  {text}", file=sys.stderr)

    cache = args.cache.resolve()
    run_dir, how = predict_run(cache)
    progress(f"model: {run_dir} ({how})")
    baseline = run_measured("import keras", [sys.executable, "-c", "import keras"])
    baseline_mb = mb(baseline.max_rss_kib)
    progress(f"baseline: python -c 'import keras': peak RSS {baseline_mb:,.0f} MB")
    inputs: dict[str, dict] = {}
    for size, rows in sizes.items():
        csv, how = predict_input(cache, rows)
        inputs[size] = {"path": csv, "rows": rows, "bytes": csv.stat().st_size, "how": how}
        progress(f"input ({size}): {csv} ({megabytes(inputs[size]['bytes'])}, {how})")

    runs: dict[str, dict[str, list[dict]]] = {side: {size: [] for size in sizes} for side in sides}
    for size, rows in sizes.items():
        read_through(inputs[size]["path"])  # into the page cache: no run pays for the disk
        for round_no in range(args.repeat):
            order = sides if round_no % 2 == 0 else sides[::-1]
            for side in order:
                result = run_once(side, run_dir, inputs[size]["path"], rows)
                runs[side][size].append(result)
                progress(
                    f"{rows:>10,} rows, run {round_no + 1}: {side:<11} peak RSS "
                    f"{result['max_rss_mb']:7,.0f} MB, {result['seconds']:6.1f} s"
                )

    summary = {
        side: {
            size: {
                "max_rss_mb": statistics.median(r["max_rss_mb"] for r in runs[side][size]),
                "seconds": statistics.median(r["seconds"] for r in runs[side][size]),
                "runs": runs[side][size],
            }
            for size in sizes
        }
        for side in sides
    }
    for side in sides:
        summary[side]["growth"] = summary[side]["large"]["max_rss_mb"] / summary[side]["small"]["max_rss_mb"]
    floor_mb = mb(harness_peak_rss_kib())

    targets_met = None
    if "nnflow" in summary:
        nn = summary["nnflow"]
        targets_met = {
            "large_peak": nn["large"]["max_rss_mb"] <= TARGET_PEAK_MB,
            "growth": nn["growth"] <= TARGET_GROWTH,
        }

    if args.json:
        print(
            json.dumps(
                {
                    "python": sys.executable,
                    "nnflow": nnflow_command(),
                    "script": str(PREDICT_SCRIPT),
                    "run": str(run_dir),
                    "inputs": {size: {**value, "path": str(value["path"])} for size, value in inputs.items()},
                    "repeat": args.repeat,
                    "unit": "MB (10^6 bytes)",
                    "results": summary,
                    "import_keras_peak_rss_mb": baseline_mb,
                    "harness_peak_rss_mb": floor_mb,
                    "targets": {
                        "large_peak": f"nnflow <= {TARGET_PEAK_MB:.0f} MB",
                        "growth": f"nnflow large / small <= {TARGET_GROWTH}",
                    },
                    "targets_met": targets_met,
                },
                indent=2,
            )
        )
        return 0

    small, large = args.rows_small, args.rows_large
    print(
        f"peak RSS (MB) of the whole process, CSV in and out, 64-64-1 MLP, binary; "
        f"{args.repeat} run{'s' if args.repeat > 1 else ''} per side and size"
        + (" (medians)" if args.repeat > 1 else "")
    )
    print(f"{'side':<28} {f'{small:,} rows':>16} {f'{large:,} rows':>16} {'large/small':>12}   wall time (s)")
    for side in sides:
        s = summary[side]
        print(
            f"{SIDES[side]:<28} {s['small']['max_rss_mb']:>16,.0f} {s['large']['max_rss_mb']:>16,.0f} "
            f"{s['growth']:>12.2f}   {s['small']['seconds']:.1f} / {s['large']['seconds']:.1f}"
        )
    print(
        f"{'python -c ' + repr('import keras'):<28} {baseline_mb:>16,.0f}   (baseline: Keras and TensorFlow loaded, no data)"
    )
    print(
        f"(input files: {megabytes(inputs['small']['bytes'])} and {megabytes(inputs['large']['bytes'])}; "
        f"this harness's own peak, a floor under every figure: {floor_mb:,.0f} MB)"
    )
    print()
    if targets_met is None:
        print(
            f"targets: not measured (--side {args.side}); nnflow: large-file peak <= {TARGET_PEAK_MB:,.0f} MB "
            f"and large/small <= {TARGET_GROWTH:.2f}"
        )
        return 0
    nn = summary["nnflow"]
    print(
        f"nnflow peak RSS, {large:,} rows: {nn['large']['max_rss_mb']:,.0f} MB  "
        f"[{'ok' if targets_met['large_peak'] else 'OVER TARGET'}; target <= {TARGET_PEAK_MB:,.0f} MB]"
    )
    print(
        f"nnflow growth, {large:,} / {small:,} rows: {nn['growth']:.3f}  "
        f"[{'ok' if targets_met['growth'] else 'OVER TARGET'}; target <= {TARGET_GROWTH:.2f}]"
    )
    if "handwritten" in summary:
        hw = summary["handwritten"]
        print(
            f"hand-written growth, same files: {hw['growth']:.2f} "
            f"({hw['small']['max_rss_mb']:,.0f} -> {hw['large']['max_rss_mb']:,.0f} MB)"
        )
    print(f"targets: {'met' if all(targets_met.values()) else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
