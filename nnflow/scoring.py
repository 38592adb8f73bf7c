"""Scoring with a trained run: classification reports for `evaluate`, streamed predictions for `predict`.

Predictions stream: the input is read, transformed, scored and written chunk by chunk, so
memory stays flat whatever the file's size. Output files are written beside their final
name and renamed into place when complete; an error part-way leaves no output file.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

import numpy as np

from .data import Preprocessing, UnseenCategories, iter_table, table_format
from .errors import DataError

CHUNK_ROWS = 100_000
PREDICT_BATCH = 4096  # inference batch: results do not depend on it, speed does
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


# ---------------------------------------------------------------------------
# Classification report


def class_ids(preprocessing: Preprocessing, scores: np.ndarray) -> np.ndarray:
    """Predicted class ids from the model's outputs: 0/1 at 0.5 for one unit, else the largest."""
    if scores.ndim == 2 and scores.shape[1] == 1:
        return (scores[:, 0] > 0.5).astype("int64")
    return np.argmax(scores, axis=1).astype("int64")


def true_ids(preprocessing: Preprocessing, targets: np.ndarray) -> np.ndarray:
    """Class ids of encoded targets (ids, one-hot rows or 0/1)."""
    if preprocessing.target_encoding == "onehot":
        return np.argmax(targets, axis=1).astype("int64")
    return np.asarray(targets).reshape(len(targets)).astype("int64")


def classification_report(class_names: list, truth: np.ndarray, predicted: np.ndarray) -> dict:
    """Confusion matrix (rows: true class, columns: predicted) and per-class precision, recall, F1."""
    k = len(class_names)
    matrix = np.zeros((k, k), dtype="int64")
    np.add.at(matrix, (truth, predicted), 1)
    per_class = []
    for index, name in enumerate(class_names):
        true_positive = int(matrix[index, index])
        predicted_total = int(matrix[:, index].sum())
        support = int(matrix[index, :].sum())
        precision = true_positive / predicted_total if predicted_total else 0.0
        recall = true_positive / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class.append({"class": name, "precision": precision, "recall": recall, "f1": f1, "support": support})
    supported = [row for row in per_class if row["support"]]
    return {
        "classes": list(class_names),
        "confusion_matrix": matrix.tolist(),
        "per_class": per_class,
        "accuracy": float(np.trace(matrix) / matrix.sum()) if matrix.sum() else 0.0,
        "macro_f1": float(np.mean([row["f1"] for row in supported])) if supported else 0.0,
    }


# ---------------------------------------------------------------------------
# Streamed predictions


@dataclass
class PredictionColumns:
    """Names of the columns `predict` adds: `predicted_<target>` and `probability_<class>`."""

    predicted: str
    probabilities: list[str]

    @classmethod
    def of(cls, preprocessing: Preprocessing) -> "PredictionColumns":
        predicted = f"predicted_{preprocessing.target}"
        if preprocessing.task != "classification":
            return cls(predicted, [])
        return cls(predicted, [f"probability_{name}" for name in preprocessing.class_names])

    @property
    def names(self) -> list[str]:
        return [self.predicted, *self.probabilities]


def prediction_frame(chunk, preprocessing: Preprocessing, scores: np.ndarray, columns: PredictionColumns):
    """The output rows of one chunk: the input's non-feature columns, then the predictions."""
    import pandas as pd

    features = set(preprocessing.feature_columns)
    out = chunk[[c for c in chunk.columns if c not in features]].copy()
    if preprocessing.task != "classification":
        out[columns.predicted] = scores.reshape(len(chunk), -1)[:, 0]
        return out
    names = np.asarray(preprocessing.class_names, dtype=object)
    out[columns.predicted] = pd.Series(names[class_ids(preprocessing, scores)], index=chunk.index)
    if scores.shape[1] == 1:  # one sigmoid unit: the probability of the second class
        probabilities = np.concatenate([1.0 - scores, scores], axis=1)
    else:
        probabilities = scores
    for position, name in enumerate(columns.probabilities):
        out[name] = probabilities[:, position]
    return out


def escape_formulas(frame):
    """Text cells a spreadsheet would run as a formula get a leading `'`; numbers are left alone."""
    import pandas as pd

    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
            continue
        text = series.astype("string")
        risky = text.str.startswith(FORMULA_STARTS).fillna(False).to_numpy(dtype=bool)
        if risky.any():
            escaped = series.astype(object).copy()
            escaped[risky] = "'" + text[risky].astype(object)
            frame[column] = escaped
    return frame


class OutputWriter:
    """Writes prediction chunks to CSV (a file or a text stream) or Parquet, atomically for files."""

    def __init__(self, output: Path | None, stream: TextIO | None = None):
        self.output = output
        self.stream = stream
        self.kind = table_format(output) if output is not None else "csv"
        self.temporary: Path | None = None
        self.parquet = None
        self.handle = None
        self.rows = 0
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
            os.close(handle)
            self.temporary = Path(name)

    def write(self, frame) -> None:
        if self.kind == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.temporary, table.schema)
            self.parquet.write_table(table)
        else:
            frame = escape_formulas(frame)
            if self.handle is None:
                self.handle = self.stream if self.output is None else open(self.temporary, "w", encoding="utf-8", newline="")
                header = True
            else:
                header = False
            frame.to_csv(self.handle, index=False, header=header, sep="\t" if self.kind == "tsv" else ",", lineterminator="\n")
        self.rows += len(frame)

    def close(self) -> None:
        """Finish the file and rename it into place."""
        if self.parquet is not None:
            self.parquet.close()
        if self.handle is not None and self.output is not None:
            self.handle.flush()
            os.fsync(self.handle.fileno())
            self.handle.close()
        elif self.handle is not None:
            self.handle.flush()
        if self.temporary is not None:
            os.chmod(self.temporary, _file_mode())
            os.replace(self.temporary, self.output)
            self.temporary = None

    def abort(self) -> None:
        """Drop the unfinished file: nothing half-written is left under the output's name."""
        try:
            if self.parquet is not None:
                self.parquet.close()
            if self.handle is not None and self.output is not None:
                self.handle.close()
        finally:
            if self.temporary is not None:
                try:
                    os.unlink(self.temporary)
                except FileNotFoundError:
                    pass


def _file_mode() -> int:
    from .runs import FILE_MODE

    return FILE_MODE


def predict_stream(
    model,
    preprocessing: Preprocessing,
    input_path: Path,
    writer: OutputWriter,
    *,
    on_progress: Callable[[int, int | None], None] | None = None,
    chunk_rows: int | None = None,
) -> tuple[int, UnseenCategories]:
    """Score `input_path` chunk by chunk into `writer`; returns (rows, unseen categories).

    `on_progress(rows done, total rows or None)` is called after each chunk.
    """
    from .data import table_rows

    chunk_rows = chunk_rows or CHUNK_ROWS
    total = table_rows(input_path)
    columns = PredictionColumns.of(preprocessing)
    unseen = UnseenCategories()
    rows = 0
    first = True
    for chunk in iter_table(input_path, chunk_rows, text_columns=list(preprocessing.categories)):
        if first:
            _check_columns(chunk, preprocessing, columns, input_path)
            first = False
        x = preprocessing.features(chunk, input_path, unseen)
        scores = np.asarray(model.predict(x, batch_size=PREDICT_BATCH, verbose=0))
        writer.write(prediction_frame(chunk, preprocessing, scores, columns))
        rows += len(chunk)
        if on_progress is not None:
            on_progress(rows, total)
    return rows, unseen


def _check_columns(chunk, preprocessing: Preprocessing, columns: PredictionColumns, path: Path) -> None:
    missing = [c for c in preprocessing.feature_columns if c not in chunk.columns]
    if missing:
        raise DataError(
            f"{path}: missing {len(missing)} feature column(s) the model needs: {', '.join(missing)}. "
            f"It has: {', '.join(map(str, chunk.columns[:30]))}{' ...' if len(chunk.columns) > 30 else ''}."
        )
    clashes = [name for name in columns.names if name in chunk.columns]
    if clashes:
        raise DataError(f"{path}: already has column(s) {', '.join(clashes)}, which predict writes; rename or drop them.")

