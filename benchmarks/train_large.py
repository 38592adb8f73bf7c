"""Large-table training throughput: `nnflow train` against a hand-written Keras script.

Run it from the project root with the project's interpreter:

    .venv/bin/python benchmarks/train_large.py                 # 1,000,000 rows
    .venv/bin/python benchmarks/train_large.py --rows 100000   # a quick try
    .venv/bin/python benchmarks/train_large.py --json          # JSON document

The workload: a generated table of --rows rows (default 1,000,000) x 20
numeric features and a binary 0/1 target, a 64-64-1 MLP (Dense 64 relu,
Dense 64 relu, Dense 1 sigmoid) with the features standardised inside the
model on both sides (normalize: true), Adam, binary_crossentropy, accuracy,
batch 256, 2 epochs, 20% held out for validation and evaluated after every
epoch. Two sides, each its own process:

  handwritten  `python benchmarks/handwritten/large_keras.py DATA.parquet`:
               pandas, numpy, model.fit(..., validation_split=0.2)
  nnflow       `nnflow train large.yaml --out TMP -q`, the config written next
               to the data

What it measures: the wall-clock time of model.fit only (the hand-written
script times it itself; nnflow reports it in run.json "timing"), as training
throughput: rows/s = training rows x epochs / fit seconds. It reports both,
the ratio nnflow rows/s / hand-written rows/s (target >= 2.0), both final
validation accuracies and their difference (target |diff| <= 0.01). Whole-process
times are shown too, for information. With --repeat N the sides alternate
(order flipping every round) and the medians are reported.

The data: rows are i.i.d. draws from one seeded numpy generator; the label is
1 when a fixed random linear combination of the (standardised) features plus a
little noise is positive, so a good model reaches ~0.95 accuracy. Columns have
different means and scales, so standardising matters. The Parquet file is
cached under the temp dir, keyed by the row count and a generator version.

Note: Keras's validation_split holds out the LAST 20% of the rows, while nnflow
draws a seeded stratified 20% sample. The rows are i.i.d., so both validation
sets are equally representative and the accuracies are comparable.

Exit status: non-zero if a side fails (its output is shown); otherwise 0,
whether or not the targets hold. It is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _common import HANDWRITTEN, last_json_line, nnflow_command, read_run, run_side

TARGET_RATIO = 2.0
TARGET_ACCURACY_DIFF = 0.01
FEATURES = 20
LABEL = "label"
DATA_VERSION = 1  # bump when make_table changes, so stale caches are not reused
SCRIPT = HANDWRITTEN / "large_keras.py"

CONFIG = """\
# Written by benchmarks/train_large.py; the same model and training as
# benchmarks/handwritten/large_keras.py.
name: large-mlp
seed: 0
data:
  train: {data}
  target: {label}
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


def make_table(rows: int, seed: int = 0) -> pd.DataFrame:
    """rows x FEATURES float32 features x00.. and a 0/1 int8 LABEL, deterministic."""
    rng = np.random.default_rng(seed)
    # The task (weights, column means and scales) is drawn first, so it is the
    # same whatever the row count.
    weights = rng.standard_normal(FEATURES)
    means = rng.uniform(-5.0, 5.0, FEATURES)
    scales = np.exp(rng.uniform(-1.0, 2.0, FEATURES))
    z = rng.standard_normal((rows, FEATURES), dtype=np.float32)
    noise = rng.standard_normal(rows, dtype=np.float32)
    label = (z @ weights + 0.5 * noise > 0).astype(np.int8)
    x = (means + scales * z).astype(np.float32)
    table = pd.DataFrame(x, columns=[f"x{i:02d}" for i in range(FEATURES)])
    table[LABEL] = label
    return table


def dataset(rows: int, cache_root: Path) -> tuple[Path, str]:
    """The cached Parquet file for `rows` rows (made if missing), and how it was got."""
    folder = cache_root / f"large-{rows}-v{DATA_VERSION}"
    path = folder / "train.parquet"
    if path.exists():
        return path, "cached"
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    partial = folder / f"train.parquet.{os.getpid()}.tmp"
    make_table(rows).to_parquet(partial, index=False)
    partial.replace(path)  # atomic: a half-written file is never taken for the cache
    return path, f"generated in {time.perf_counter() - start:.1f} s"


def run_handwritten(data: Path) -> dict:
    cmd = [sys.executable, str(SCRIPT), str(data), LABEL]
    elapsed, stdout = run_side("hand-written Keras script", cmd)
    result = last_json_line("hand-written Keras script", cmd, stdout)
    return {
        "total": elapsed,
        **{key: result[key] for key in ("fit_seconds", "train_rows", "epochs", "rows_per_second", "val_accuracy")},
    }


def run_nnflow(config: Path, run_dir: Path) -> dict:
    cmd = nnflow_command() + ["train", str(config), "--out", str(run_dir), "-q"]
    elapsed, _ = run_side("nnflow train", cmd)
    timing, metrics = read_run("nnflow train", cmd, run_dir)
    return {
        "total": elapsed,
        **{key: timing[key] for key in ("fit_seconds", "train_rows", "epochs", "rows_per_second")},
        "val_accuracy": metrics["val_accuracy"],
    }


def summarize(runs: list[dict]) -> dict:
    """The median of every number, and all runs."""
    return {**{key: statistics.median(r[key] for r in runs) for key in runs[0]}, "runs": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows",
        type=int,
        default=1_000_000,
        metavar="N",
        help="rows in the generated table, before the validation split (default: 1000000)",
    )
    parser.add_argument("--repeat", type=int, default=1, metavar="N", help="runs per side, alternating (default: 1)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "nnflow-bench",
        metavar="DIR",
        help="where the generated Parquet files are kept (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON document")
    args = parser.parse_args(argv)
    if args.rows < 100:
        parser.error("--rows must be at least 100")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    data, how = dataset(args.rows, args.cache.resolve())
    if not args.json:
        print(f"  data: {data} ({how})", file=sys.stderr)

    runs: dict[str, list[dict]] = {"handwritten": [], "nnflow": []}
    with tempfile.TemporaryDirectory(prefix="nnflow-bench-") as tmp:
        config = Path(tmp) / "large.yaml"
        # Relative to the config file, as the spec says data paths are.
        config.write_text(CONFIG.format(data=json.dumps(os.path.relpath(data, tmp)), label=LABEL))
        for round_no in range(args.repeat):
            order = ["handwritten", "nnflow"] if round_no % 2 == 0 else ["nnflow", "handwritten"]
            for side in order:
                if side == "handwritten":
                    result = run_handwritten(data)
                else:
                    result = run_nnflow(config, Path(tmp) / f"run-{round_no}")
                runs[side].append(result)
                if not args.json:
                    print(
                        f"  round {round_no + 1}: {side:<11} fit {result['fit_seconds']:6.1f} s, "
                        f"whole process {result['total']:6.1f} s",
                        file=sys.stderr,
                    )

    hand, nn = summarize(runs["handwritten"]), summarize(runs["nnflow"])
    ratio = nn["rows_per_second"] / hand["rows_per_second"]
    diff = nn["val_accuracy"] - hand["val_accuracy"]
    ratio_met = ratio >= TARGET_RATIO
    diff_met = abs(diff) <= TARGET_ACCURACY_DIFF

    if args.json:
        print(
            json.dumps(
                {
                    "python": sys.executable,
                    "nnflow": nnflow_command(),
                    "script": str(SCRIPT),
                    "data": str(data),
                    "rows": args.rows,
                    "features": FEATURES,
                    "normalize": True,
                    "repeat": args.repeat,
                    "results": {"handwritten": hand, "nnflow": nn},
                    "ratio_rows_per_second": ratio,
                    "val_accuracy_diff": diff,
                    "targets": {
                        "ratio_rows_per_second": f">= {TARGET_RATIO}",
                        "val_accuracy_diff": f"|diff| <= {TARGET_ACCURACY_DIFF}",
                    },
                    "targets_met": {"ratio_rows_per_second": ratio_met, "val_accuracy_diff": diff_met},
                },
                indent=2,
            )
        )
        return 0

    print(
        f"{args.rows:,} rows x {FEATURES} features, 64-64-1 MLP, batch 256, validation 0.2 "
        f"every epoch, normalize: true on both sides; "
        f"{args.repeat} run{'s' if args.repeat > 1 else ''} per side" + (" (medians)" if args.repeat > 1 else "")
    )
    print(
        f"{'side':<28} {'train rows':>10} {'epochs':>6} {'fit (s)':>8} {'rows/s':>9} "
        f"{'val_accuracy':>13} {'process (s)':>12}"
    )
    for label, r in (("hand-written Keras script", hand), ("nnflow train", nn)):
        print(
            f"{label:<28} {r['train_rows']:>10,.0f} {r['epochs']:>6.0f} {r['fit_seconds']:>8.1f} "
            f"{r['rows_per_second']:>9,.0f} {r['val_accuracy']:>13.4f} {r['total']:>12.1f}"
        )
    print()
    print(
        f"ratio rows/s nnflow / hand-written: {ratio:.2f}  "
        f"[{'ok' if ratio_met else 'UNDER TARGET'}; target >= {TARGET_RATIO}]"
    )
    print(
        f"val_accuracy nnflow - hand-written: {diff:+.4f}  "
        f"[{'ok' if diff_met else 'OUTSIDE TARGET'}; target |diff| <= {TARGET_ACCURACY_DIFF}]"
    )
    print(f"targets: {'met' if ratio_met and diff_met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
