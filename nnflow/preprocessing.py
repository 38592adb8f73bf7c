"""Fitting the preprocessing: `prepare` reads the training data, checks it, splits it and fits
the target encoding, one-hot vocabularies and normalisation on the training split.

The fitted state (`Preprocessing`, feature_encoding.py) is plain data that travels with the
run as JSON, so `predict` and `evaluate` transform new rows exactly as training did. What nnflow
transforms (one-hot columns, label encoding, booleans as 0/1, categories unseen in
training) is reported in `notes`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .columns import (
    category_codes,
    category_key,
    check_feature,
    check_kind,
    check_no_missing,
    examples,
    first_bad,
    is_bool_column,
    is_number_column,
    is_text_column,
    numeric_values,
    row_label,
    shown_list,
    shown_value,
)
from .data import read_table
from .errors import DataError
from .feature_encoding import Preprocessing, UnseenCategories  # noqa: F401  (re-exported: scoring and runs know them from here)
from .headers import feature_columns
from .spec import Spec
from .target_encoding import classification_encoding, output_activation, output_units, target_encoding  # noqa: F401  (re-exported)

SPLIT_SEEDS = {"test": 1, "validation": 2}  # independent streams from the one experiment seed


# ---------------------------------------------------------------------------
# Fitting the preprocessing and splitting


@dataclass
class Split:
    """One split's model-ready arrays."""

    x: np.ndarray
    y: np.ndarray
    rows: int
    source: str  # "train.csv", "20% of train.csv", "val.csv"


@dataclass
class PreparedData:
    preprocessing: Preprocessing
    train: Split
    validation: Split | None
    test: Split | None
    files: dict[str, Path]  # role -> file, for run.json's checksums
    notes: list[str] = field(default_factory=list)

    @property
    def splits(self) -> dict[str, Split]:
        return {
            name: split
            for name, split in (("train", self.train), ("validation", self.validation), ("test", self.test))
            if split is not None
        }


def prepare(spec: Spec, seed: int) -> PreparedData:
    """Read the data of `spec`, check it, split it and fit the preprocessing on the training split."""
    import pandas as pd

    data = spec.data
    assert data is not None  # only an experiment with a data: section is prepared
    notes: list[str] = []
    frame, columns, text_columns = _read_training_table(data, notes)
    target = frame[data.target]
    encoding = target_encoding(spec, not pd.api.types.is_float_dtype(target.dtype))
    task, class_names = _target_kind(target, data.train, data.target, encoding)

    strata = category_codes(frame[data.target], class_names) if class_names is not None else None  # classes: stratified
    held_out, remaining = _hold_out(data, len(frame), strata, seed)
    train_frame = frame.iloc[remaining]

    preprocessing = _fit(spec, train_frame, columns, text_columns, task, encoding, class_names, data.train, notes)
    if class_names is not None:
        present = set(category_codes(train_frame[data.target], class_names).tolist())
        absent = [class_names[i] for i in range(len(class_names)) if i not in present]
        if absent:
            raise DataError(
                f"{data.train}: class(es) {shown_list(absent)} have no rows left in the training split; use more data or smaller splits."
            )

    unseen = UnseenCategories()

    def make(part, path, source) -> Split:
        return Split(preprocessing.features(part, path, unseen), preprocessing.targets(part, path), len(part), source)

    name = data.train.name
    train = make(
        train_frame, data.train, name if not held_out else f"{len(remaining):,} of {len(frame):,} rows of {name}"
    )
    files = {"train": data.train}
    splits: dict[str, Split | None] = {}
    for role in ("validation", "test"):
        value = getattr(data, role)
        if isinstance(value, Path):
            other = read_table(value)
            splits[role] = make(other, value, value.name)
            files[role] = value
        elif role in held_out:
            part = frame.iloc[np.sort(held_out[role])]
            splits[role] = make(part, data.train, f"{len(part):,} rows of {name}")
        else:
            splits[role] = None
    notes.extend(unseen.notes())
    return PreparedData(preprocessing, train, splits["validation"], splits["test"], files, notes)


def _read_training_table(data, notes: list[str]):
    """The training file's feature and target columns, every feature checked; and which features hold text."""
    frame = read_table(data.train)
    columns = feature_columns(data, list(frame.columns), data.train)
    frame = frame[[*columns, data.target]]
    for column in columns:  # the whole file first, so an error names its first bad row
        check_feature(frame[column], data.train, column)
    text_columns = {column for column in columns if is_text_column(frame[column])}
    for column in columns:
        if column.startswith("Unnamed: "):
            notes.append(
                f"column {column!r} has no name in the header (a saved row index?); it is used as a feature. "
                "If it is an index, list it under `data.drop`."
            )
    return frame, columns, text_columns


def _hold_out(data, rows: int, strata: np.ndarray | None, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The rows held out for `data.test` and `data.validation` fractions, and the rows left to train on.

    Test first, then validation, from what is left; stratified by class when classifying.
    """
    remaining = np.arange(rows)
    held_out: dict[str, np.ndarray] = {}
    for role in ("test", "validation"):
        fraction = getattr(data, role)
        if isinstance(fraction, Path) or not fraction:
            continue
        rng = np.random.default_rng([seed, SPLIT_SEEDS[role]])
        # Both fractions are of the whole file: `validation: 0.2, test: 0.1` leaves 70% to train on.
        share = min(1.0, fraction * rows / len(remaining))
        keep, take = _split(remaining, share, None if strata is None else strata[remaining], rng)
        if len(take) == 0:
            raise DataError(
                f"{data.train}: `data.{role}: {fraction}` of {len(remaining)} rows is no rows; use a larger fraction or a file."
            )
        held_out[role], remaining = take, keep
    if len(remaining) == 0:
        raise DataError(f"{data.train}: no rows are left to train on after the test and validation splits.")
    return held_out, remaining


def _target_kind(series, path: Path, column: str, encoding: str | None) -> tuple[str, list | None]:
    """('classification', class names) or ('regression', None), from the loss and the target's values."""
    import pandas as pd

    check_kind(series, path, column, "target")
    check_no_missing(series, path, column, "target")
    text = not (is_number_column(series) or is_bool_column(series))
    if encoding is None:
        if text:
            if not is_text_column(series):
                numeric_values(series, path, column, "target")  # raises at the first non-number
            raise DataError(
                f"{path}: target {column!r} holds class names ({examples(series)}), but the loss is a regression loss "
                "and the output is not softmax or sigmoid. Use a classification loss such as "
                "sparse_categorical_crossentropy (with a softmax output) or binary_crossentropy (two classes, sigmoid output)."
            )
        numeric_values(series, path, column, "target")
        return "regression", None
    if pd.api.types.is_float_dtype(series.dtype):
        values = numeric_values(series, path, column, "target")
        fractional = values != np.round(values)
        if fractional.any():
            first, _ = first_bad(fractional)
            raise DataError(
                f"{path}: {row_label(path, series, first)}, target {column!r}: {shown_value(values[first])} is not a class label, "
                "but the loss is a classification loss. Use a regression loss (mse) for continuous targets."
            )
        series = series.astype("int64")
    unique = series.unique().tolist()
    class_names: list[Any]
    if is_bool_column(series):
        class_names = sorted({bool(v) for v in unique})
    elif is_number_column(series):
        class_names = sorted({int(v) for v in unique})
    else:
        class_names = sorted({category_key(v) for v in unique})
    if len(class_names) < 2:
        raise DataError(
            f"{path}: target {column!r} has a single class ({shown_value(class_names[0])}); a classifier needs at least two."
        )
    if encoding == "binary" and len(class_names) != 2:
        raise DataError(
            f"{path}: target {column!r} has {len(class_names)} classes ({shown_list(class_names)}), but the loss is binary. "
            "Use sparse_categorical_crossentropy with a softmax output of that many units."
        )
    return "classification", class_names


def _fit(
    spec: Spec, frame, columns, text_columns, task, encoding, class_names, path: Path, notes: list[str]
) -> Preprocessing:
    """The preprocessing, from the training split; which columns are text was decided on the whole file."""
    data = spec.data
    assert data is not None  # only an experiment with a data: section is prepared
    categories: dict[str, list[str]] = {}
    booleans: list[str] = []
    for column in columns:
        series = frame[column]
        if is_bool_column(series):
            booleans.append(column)
        elif column in text_columns:
            categories[column] = sorted({category_key(v) for v in series.tolist()})
    if booleans:
        notes.append(f"column(s) {', '.join(booleans)}: true/false read as 1/0.")
    for column, vocabulary in categories.items():
        notes.append(f"column {column!r}: one-hot encoded, {len(vocabulary)} categories ({shown_list(vocabulary, 5)}).")
    if task == "classification":
        how = {"sparse": "ids", "onehot": "one-hot rows", "binary": "0/1"}[encoding]
        mapping = ", ".join(f"{name}={index}" for index, name in enumerate(class_names[:10]))
        notes.append(
            f"target {data.target!r}: {len(class_names)} classes encoded as {how} ({mapping}{', ...' if len(class_names) > 10 else ''})."
        )
    preprocessing = Preprocessing(
        feature_columns=list(columns),
        categories=categories,
        booleans=booleans,
        target=data.target,
        task=task,
        target_encoding=encoding if task == "classification" else None,
        class_names=class_names,
        input_shape=[],
        normalize=data.normalize,
    )
    width = preprocessing.input_width
    shape = list(spec.input_shape) if spec.input_shape else [width]
    if math.prod(shape) != width:
        names = preprocessing.input_names
        raise DataError(
            f"{path}: the model's input shape {shape} takes {math.prod(shape)} numbers per row, but the data gives "
            f"{width} ({shown_list(names, 8)}). Change the input shape or `data.features`."
        )
    preprocessing.input_shape = shape
    if data.normalize:
        matrix = preprocessing.features(frame, path).reshape(len(frame), width).astype("float64")
        mean = matrix.mean(axis=0)
        variance = matrix.var(axis=0)
        start = 0
        for column in columns:  # one-hot columns pass through unchanged
            size = len(categories[column]) if column in categories else 1
            if column in categories:
                mean[start : start + size], variance[start : start + size] = 0.0, 1.0
            start += size
        preprocessing.mean, preprocessing.variance = mean.tolist(), variance.tolist()
    return preprocessing


def _split(indices: np.ndarray, fraction: float, strata: np.ndarray | None, rng) -> tuple[np.ndarray, np.ndarray]:
    """Hold out `fraction` of `indices` (per class when `strata` is given); returns (kept, taken), sorted."""
    total = int(round(len(indices) * fraction))
    if strata is None:
        chosen = rng.permutation(len(indices))[:total]
    else:
        # Largest remainder: each class gives its share, and the shares add up to `total`.
        classes, counts = np.unique(strata, return_counts=True)
        exact = counts * fraction
        shares = np.floor(exact).astype(int)
        for position in np.argsort(-(exact - shares), kind="stable")[: total - shares.sum()]:
            shares[position] += 1
        chosen = np.concatenate(
            [rng.permutation(np.flatnonzero(strata == label))[:share] for label, share in zip(classes, shares)]
        )
    mask = np.zeros(len(indices), dtype=bool)
    mask[chosen] = True
    return indices[~mask], indices[mask]
