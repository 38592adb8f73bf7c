"""Data for the prediction benchmarks: generate the tables, compare two prediction files.

predict_speed.py and predict_memory.py run this file as a subprocess, never
import it: a child process's peak RSS as Linux reports it (ru_maxrss) starts
at its parent's own high-water mark, so the harnesses must never hold a big
table themselves. This file uses numpy, pandas and pyarrow, never Keras.

    python benchmarks/_predict_data.py train CACHE_DIR ROWS
        the training table of train_large.py (its make_table, its cache);
        prints the Parquet file's path
    python benchmarks/_predict_data.py csv PATH ROWS
        the table to predict on: `id` then x00..x19, no label column, written
        in chunks to PATH (atomically) with the true labels in PATH.labels.npy
    python benchmarks/_predict_data.py compare A.csv B.csv LABELS.npy
        compare two prediction files; prints one JSON line

The rows to predict on come from the same task as the training table (the
same label weights, column means and scales, drawn first from seed 0 exactly
as train_large.make_table draws them), with new rows from another seed.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import train_large  # the training data's generator and cache (this file's folder is on sys.path)

FEATURES = [f"x{i:02d}" for i in range(train_large.FEATURES)]
TARGET = train_large.LABEL
CLASSES = [0, 1]
ID = "id"
PREDICT_SEED = 1
CHUNK_ROWS = 250_000
TOLERANCE = 1e-5


def task(seed: int = 0) -> tuple[np.random.Generator, np.ndarray, np.ndarray, np.ndarray]:
    """(the generator, label weights, column means, column scales), drawn as make_table draws them."""
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal(len(FEATURES))
    means = rng.uniform(-5.0, 5.0, len(FEATURES))
    scales = np.exp(rng.uniform(-1.0, 2.0, len(FEATURES)))
    return rng, weights, means, scales


def chunk(rng: np.random.Generator, rows: int, weights, means, scales) -> tuple[np.ndarray, np.ndarray]:
    """(float32 features, int8 labels) of `rows` new rows, as make_table makes them."""
    z = rng.standard_normal((rows, len(FEATURES)), dtype=np.float32)
    noise = rng.standard_normal(rows, dtype=np.float32)
    label = (z @ weights + 0.5 * noise > 0).astype(np.int8)
    return (means + scales * z).astype(np.float32), label


def check_same_task() -> None:
    """Stop if this file's generator has drifted from train_large.make_table."""
    rng, weights, means, scales = task(0)
    x, label = chunk(rng, 1000, weights, means, scales)
    table = train_large.make_table(1000)
    if not (np.array_equal(x, table[FEATURES].to_numpy()) and np.array_equal(label, table[TARGET].to_numpy())):
        sys.exit(
            "benchmarks/_predict_data.py: task() and chunk() no longer match train_large.make_table; "
            "update them together and bump the data versions"
        )


def write_csv(path: Path, rows: int) -> None:
    """`id`, x00..x19 as CSV, CHUNK_ROWS at a time (a few tens of MB in memory), plus the true labels."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    check_same_task()
    _, weights, means, scales = task(0)
    rng = np.random.default_rng(PREDICT_SEED)
    labels = np.empty(rows, dtype=np.int8)
    schema = pa.schema([(ID, pa.int64())] + [(name, pa.float32()) for name in FEATURES])
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(partial, "wb") as sink:
        sink.write((",".join(schema.names) + "\n").encode())  # unquoted, as pandas writes it
        with pacsv.CSVWriter(sink, schema, write_options=pacsv.WriteOptions(include_header=False)) as writer:
            for start in range(0, rows, CHUNK_ROWS):
                n = min(CHUNK_ROWS, rows - start)
                x, labels[start : start + n] = chunk(rng, n, weights, means, scales)
                columns = [pa.array(np.arange(start, start + n, dtype=np.int64))]
                columns += [pa.array(x[:, i]) for i in range(len(FEATURES))]
                writer.write_table(pa.Table.from_arrays(columns, schema=schema))
    np.save(labels_path(path), labels)
    partial.replace(path)  # last: the CSV's presence means both files are complete


def labels_path(csv: Path) -> Path:
    return csv.with_name(csv.name + ".labels.npy")


def compare(a: Path, b: Path, labels: Path) -> dict:
    """How far two prediction files agree, and each one's accuracy against the true labels.

    They match when they have the same columns in the same order, the same
    rows (carried-through `id`s equal), the same predicted class wherever the
    probability is not within TOLERANCE of the 0.5 threshold (there, a tie may
    go either way), and probabilities within TOLERANCE.
    """
    left, right = pd.read_csv(a), pd.read_csv(b)
    truth = np.load(labels)
    predicted = f"predicted_{TARGET}"
    probability = [f"probability_{name}" for name in CLASSES]
    result: dict = {
        "rows": [len(left), len(right)],
        "columns": [list(left.columns), list(right.columns)],
        "expected_columns": [ID, predicted, *probability],
    }
    result["same_rows"] = len(left) == len(right)
    result["same_columns"] = list(left.columns) == list(right.columns)
    shared = [c for c in left.columns if c in right.columns]
    if not result["same_rows"] or predicted not in shared:
        result["match"] = False
        return result
    if ID in shared:
        result["id_mismatches"] = int((left[ID].to_numpy() != right[ID].to_numpy()).sum())
    differ = left[predicted].astype(str).to_numpy() != right[predicted].astype(str).to_numpy()
    positive = f"probability_{CLASSES[1]}"
    borderline = np.zeros(len(left), dtype=bool)
    if positive in shared:
        for side in (left, right):
            borderline |= np.abs(side[positive].to_numpy(dtype="float64") - 0.5) <= TOLERANCE
    result["class_mismatches"] = int((differ & ~borderline).sum())
    result["class_mismatches_at_threshold"] = int((differ & borderline).sum())
    result["max_probability_diff"] = {
        column: float(np.abs(left[column].to_numpy(dtype="float64") - right[column].to_numpy(dtype="float64")).max())
        for column in probability
        if column in shared
    }
    if len(truth) == len(left):
        names = np.array([str(name) for name in CLASSES])
        result["accuracy"] = [
            float((side[predicted].astype(str).to_numpy() == names[truth]).mean()) for side in (left, right)
        ]
    result["match"] = (
        result["same_columns"]
        and result.get("id_mismatches", 1) == 0
        and result["class_mismatches"] == 0
        and len(result["max_probability_diff"]) == len(probability)
        and max(result["max_probability_diff"].values()) <= TOLERANCE
    )
    return result


def main(argv: list[str]) -> int:
    command, *args = argv
    if command == "train":
        path, _ = train_large.dataset(int(args[1]), Path(args[0]))
        print(path)
    elif command == "csv":
        start = time.perf_counter()
        write_csv(Path(args[0]), int(args[1]))
        print(json.dumps({"seconds": time.perf_counter() - start}))
    elif command == "compare":
        print(json.dumps(compare(Path(args[0]), Path(args[1]), Path(args[2]))))
    else:
        sys.exit(f"unknown command {command!r}; expected train, csv or compare")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
