"""Scoring with a trained run: classification reports for `evaluate`, streamed predictions for `predict`.

Predictions stream: the input is read, transformed, scored and written chunk by chunk, so
memory stays flat whatever the file's size. The writer (`runs.TableWriter`) puts output
files in place only when complete; an error part-way leaves no output file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import iter_table
from .errors import DataError
from .preprocessing import Preprocessing, UnseenCategories

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
    def of(cls, preprocessing: Preprocessing) -> PredictionColumns:
        predicted = f"predicted_{preprocessing.target}"
        if preprocessing.task != "classification":
            return cls(predicted, [])
        return cls(predicted, [f"probability_{name}" for name in preprocessing.class_names or ()])

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
    names = np.asarray(preprocessing.class_names)  # ints stay ints, so `-1` is a number in the output
    out[columns.predicted] = pd.Series(names[class_ids(preprocessing, scores)], index=chunk.index)
    if scores.shape[1] == 1:  # one sigmoid unit: the probability of the second class
        probabilities = np.concatenate([1.0 - scores, scores], axis=1)
    else:
        probabilities = scores
    for position, name in enumerate(columns.probabilities):
        out[name] = probabilities[:, position]
    return out


def escape_formulas(frame):
    """Text a spreadsheet would run as a formula gets a leading `'`: in cells and in column names.

    Numbers are left alone, in numeric columns and as text (`-1`, `+3.5` are numbers).
    """
    import pandas as pd

    def risky(text):
        starts = text.str.startswith(FORMULA_STARTS).fillna(False)
        return (starts & pd.to_numeric(text.where(starts), errors="coerce").isna()).to_numpy(dtype=bool)

    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
            continue
        text = series.astype("string")
        mask = risky(text)
        if mask.any():
            escaped = series.astype(object).copy()
            escaped[mask] = "'" + text[mask].astype(object)
            frame[column] = escaped
    names = pd.Series([str(c) for c in frame.columns], dtype="string")
    mask = risky(names)
    if mask.any():
        frame.columns = ["'" + name if bad else name for name, bad in zip(names.tolist(), mask)]
    return frame


def predict_stream(
    model,
    preprocessing: Preprocessing,
    input_path: Path,
    writer,
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
    unseen = UnseenCategories()
    rows = 0
    first = True
    chunks = iter_table(
        input_path,
        chunk_rows,
        parsed_columns=preprocessing.feature_columns,
        text_columns=list(preprocessing.categories),
    )
    for chunk in chunks:
        frame = score_frame(model, preprocessing, chunk, input_path, unseen, check=first)
        first = False
        writer.write(frame if writer.kind == "parquet" else escape_formulas(frame))
        rows += len(chunk)
        if on_progress is not None:
            on_progress(rows, total)
    return rows, unseen


def score_frame(model, preprocessing: Preprocessing, frame, source: Path, unseen: UnseenCategories, *, check=True):
    """The predictions for the rows of `frame`, as `predict` writes them: its other columns carried
    through, then `predicted_<target>` (and `probability_<class>`); `source` names it in errors."""
    columns = PredictionColumns.of(preprocessing)
    if check:
        _check_columns(frame, preprocessing, columns, source)
    x = preprocessing.features(frame, source, unseen)
    scores = np.asarray(model.predict(x, batch_size=PREDICT_BATCH, verbose=0))
    return prediction_frame(frame, preprocessing, scores, columns)


def _check_columns(chunk, preprocessing: Preprocessing, columns: PredictionColumns, path: Path) -> None:
    from .catalog import close_matches

    missing = [c for c in preprocessing.feature_columns if c not in chunk.columns]
    if missing:
        have = [str(c) for c in chunk.columns]
        spare = [c for c in have if c not in preprocessing.feature_columns]  # a misspelt feature is among these

        def one(column):
            matches = close_matches(column, spare)
            return column + (f" (did you mean {matches[0]!r}?)" if matches else "")

        raise DataError(
            f"{path}: missing {len(missing)} feature column(s) the model needs: {', '.join(map(one, missing))}. "
            f"It has: {', '.join(have[:30])}{' ...' if len(have) > 30 else ''}."
        )
    clashes = [name for name in columns.names if name in chunk.columns]
    if clashes:
        raise DataError(
            f"{path}: already has column(s) {', '.join(clashes)}, which predict writes; rename or drop them."
        )
