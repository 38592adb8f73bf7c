"""The fitted preprocessing that travels with a run: `Preprocessing` (saved as preprocessing.json)
turns a table's columns into the model's inputs and targets, exactly as in training, and
`UnseenCategories` gathers the notes on categories training never saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .columns import (
    category_codes,
    check_kind,
    check_no_missing,
    examples,
    first_bad,
    is_bool_column,
    is_text_column,
    numeric_values,
    row_label,
    shown_list,
    shown_value,
)
from .errors import DataError
from .headers import missing_message


@dataclass
class Preprocessing:
    """How rows become model inputs and targets; fitted on the training split only."""

    feature_columns: list[str]
    categories: dict[str, list[str]]  # text column -> its vocabulary in the training split (one-hot, in order)
    booleans: list[str]
    target: str
    task: str  # "classification" or "regression"
    target_encoding: str | None  # "sparse" (ids), "onehot", "binary" (0/1) or None
    class_names: list[Any] | None
    input_shape: list[int]  # what the model receives per row
    normalize: bool
    mean: list[float] | None = None  # per input column (one-hot columns: 0)
    variance: list[float] | None = None  # per input column (one-hot columns: 1)

    @property
    def input_width(self) -> int:
        return sum(len(self.categories[c]) if c in self.categories else 1 for c in self.feature_columns)

    @property
    def input_names(self) -> list[str]:
        names = []
        for column in self.feature_columns:
            if column in self.categories:
                names += [f"{column}={value}" for value in self.categories[column]]
            else:
                names.append(column)
        return names

    def to_json(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict) -> Preprocessing:
        return cls(**data)

    # -- transforming rows ---------------------------------------------------

    def features(self, frame, path: Path, unseen: UnseenCategories | None = None) -> np.ndarray:
        """The model inputs of `frame` as float32, shaped `(rows, *input_shape)`.

        Categories the training split did not have become all-zero rows, counted in `unseen`.
        """
        missing = [c for c in self.feature_columns if c not in frame.columns]
        if missing:
            raise DataError(f"{path}: {missing_message(missing, list(frame.columns))}")
        blocks = []
        for column in self.feature_columns:
            series = frame[column]
            check_kind(series, path, column, "feature")
            if column in self.categories:
                check_no_missing(series, path, column, "feature")
                vocabulary = self.categories[column]
                codes = category_codes(series, vocabulary)
                absent = codes < 0
                if absent.any() and unseen is not None:
                    unseen.add(path, column, series, absent)
                block = np.zeros((len(series), len(vocabulary)), dtype="float32")
                rows = np.flatnonzero(~absent)
                block[rows, codes[rows]] = 1.0
                blocks.append(block)
            else:
                if is_text_column(series) and not is_bool_column(series):
                    raise DataError(
                        f"{path}: feature {column!r} holds text ({examples(series)}), but it was numeric in training."
                    )
                blocks.append(_float32(numeric_values(series, path, column, "feature"), series, path, column)[:, None])
        matrix = np.concatenate(blocks, axis=1) if len(blocks) > 1 else blocks[0]
        return matrix.reshape((len(frame), *self.input_shape))

    def targets(self, frame, path: Path) -> np.ndarray:
        """The target column encoded as the loss expects (ids, one-hot, 0/1, or floats)."""
        if self.target not in frame.columns:
            raise DataError(f"{path}: {missing_message([self.target], list(frame.columns))}")
        series = frame[self.target]
        if self.task == "regression":
            return numeric_values(series, path, self.target, "target").astype("float32")[:, None]
        check_no_missing(series, path, self.target, "target")
        assert self.class_names is not None  # a classification target has its classes
        codes = category_codes(series, self.class_names)
        unknown = codes < 0
        if unknown.any():
            first, count = first_bad(unknown)
            raise DataError(
                f"{path}: {row_label(path, series, first)}, target {self.target!r}: class {shown_value(series.iloc[first])} "
                f"is not one of the training classes ({shown_list(self.class_names)})"
                + (f"; {count:,} such rows" if count > 1 else "")
                + "."
            )
        if self.target_encoding == "onehot":
            onehot = np.zeros((len(codes), len(self.class_names)), dtype="float32")
            onehot[np.arange(len(codes)), codes] = 1.0
            return onehot
        if self.target_encoding == "binary":
            return codes.astype("float32")[:, None]
        return codes.astype("int32")


def beyond_float32(value) -> str:
    """What is wrong with a number the model's float32 inputs cannot hold (predict and serve say it alike)."""
    return f"{shown_value(value)} is beyond float32's range (±{np.finfo(np.float32).max:.4g}), the model's input type"


def _float32(values: np.ndarray, series, path: Path, column: str) -> np.ndarray:
    """`values` as the model's float32, or a DataError at the first one past float32's range."""
    with np.errstate(over="ignore"):
        inputs = values.astype("float32")
    beyond = ~np.isfinite(inputs)
    if beyond.any():
        first, count = first_bad(beyond)
        raise DataError(
            f"{path}: {row_label(path, series, first)}, feature {column!r}: {beyond_float32(values[first])}"
            + (f" ({count:,} rows in all)" if count > 1 else "")
            + "."
        )
    return inputs


class UnseenCategories:
    """Counts, per file and column, the rows whose category training never saw (across chunks)."""

    def __init__(self):
        self.seen: dict[tuple[str, str], list] = {}  # (file, column) -> [count, first value, first row]

    def add(self, path: Path, column: str, series, mask) -> None:
        first, count = first_bad(mask)
        key = (path.name, column)
        if key not in self.seen:  # the first row's label may read the file: once per column, not per chunk
            self.seen[key] = [0, shown_value(series.iloc[first]), row_label(path, series, first)]
        self.seen[key][0] += count

    @property
    def rows(self) -> int:
        return sum(count for count, _, _ in self.seen.values())

    def notes(self) -> list[str]:
        return [
            unseen_note(file, column, count, value, row) for (file, column), (count, value, row) in self.seen.items()
        ]


def unseen_note(source: str, column: str, count: int, value: str, row: str) -> str:
    """The note on categories training never saw, as predict, evaluate and serve give it."""
    return (
        f"{source}: column {column!r} has {count:,} row(s) with categories not seen in training "
        f"(first: {value} at {row}); encoded as all zeros."
    )
