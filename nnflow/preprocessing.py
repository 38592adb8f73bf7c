"""Fitting and applying the preprocessing: target encoding, splits, one-hot vocabularies, normalisation.

The fitted state (`Preprocessing`) is plain data that travels with the run as JSON, so
`predict` and `evaluate` transform new rows exactly as training did. What nnflow
transforms (one-hot columns, label encoding, booleans as 0/1, categories unseen in
training) is reported in `notes`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .data import (
    _category_codes,
    _check_feature,
    _check_kind,
    _check_no_missing,
    _examples,
    _first_bad,
    _is_bool,
    _is_number,
    _is_text_column,
    _key,
    _list,
    _missing_message,
    _numeric,
    _row_label,
    _show,
    feature_columns,
    read_table,
)
from .errors import DataError
from .spec import Spec

SPLIT_SEEDS = {"test": 1, "validation": 2}  # independent streams from the one experiment seed


# ---------------------------------------------------------------------------
# The fitted preprocessing that travels with a run


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
    def from_json(cls, data: dict) -> "Preprocessing":
        return cls(**data)

    # -- transforming rows ---------------------------------------------------

    def features(self, frame, path: Path, unseen: "UnseenCategories | None" = None) -> np.ndarray:
        """The model inputs of `frame` as float32, shaped `(rows, *input_shape)`.

        Categories the training split did not have become all-zero rows, counted in `unseen`.
        """
        missing = [c for c in self.feature_columns if c not in frame.columns]
        if missing:
            raise DataError(f"{path}: {_missing_message(missing, list(frame.columns))}")
        blocks = []
        for column in self.feature_columns:
            series = frame[column]
            _check_kind(series, path, column, "feature")
            if column in self.categories:
                _check_no_missing(series, path, column, "feature")
                vocabulary = self.categories[column]
                codes = _category_codes(series, vocabulary)
                absent = codes < 0
                if absent.any() and unseen is not None:
                    unseen.add(path, column, series, absent)
                block = np.zeros((len(series), len(vocabulary)), dtype="float32")
                rows = np.flatnonzero(~absent)
                block[rows, codes[rows]] = 1.0
                blocks.append(block)
            else:
                if _is_text_column(series) and not _is_bool(series):
                    raise DataError(
                        f"{path}: feature {column!r} holds text ({_examples(series)}), but it was numeric in training."
                    )
                blocks.append(_numeric(series, path, column, "feature").astype("float32")[:, None])
        matrix = np.concatenate(blocks, axis=1) if len(blocks) > 1 else blocks[0]
        return matrix.reshape((len(frame), *self.input_shape))

    def targets(self, frame, path: Path) -> np.ndarray:
        """The target column encoded as the loss expects (ids, one-hot, 0/1, or floats)."""
        if self.target not in frame.columns:
            raise DataError(f"{path}: {_missing_message([self.target], list(frame.columns))}")
        series = frame[self.target]
        if self.task == "regression":
            return _numeric(series, path, self.target, "target").astype("float32")[:, None]
        _check_no_missing(series, path, self.target, "target")
        codes = _category_codes(series, self.class_names)
        unknown = codes < 0
        if unknown.any():
            first, count = _first_bad(unknown)
            raise DataError(
                f"{path}: {_row_label(path, series, first)}, target {self.target!r}: class {_show(series.iloc[first])} "
                f"is not one of the training classes ({_list(self.class_names)})"
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


class UnseenCategories:
    """Counts, per file and column, the rows whose category training never saw (across chunks)."""

    def __init__(self):
        self.seen: dict[tuple[str, str], list] = {}  # (file, column) -> [count, first value, first row]

    def add(self, path: Path, column: str, series, mask) -> None:
        first, count = _first_bad(mask)
        key = (path.name, column)
        if key not in self.seen:  # the first row's label may read the file: once per column, not per chunk
            self.seen[key] = [0, _show(series.iloc[first]), _row_label(path, series, first)]
        self.seen[key][0] += count

    @property
    def rows(self) -> int:
        return sum(count for count, _, _ in self.seen.values())

    def notes(self) -> list[str]:
        return [
            f"{file}: column {column!r} has {count:,} row(s) with categories not seen in training "
            f"(first: {value} at {row}); encoded as all zeros."
            for (file, column), (count, value, row) in self.seen.items()
        ]


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
        return {name: split for name, split in (("train", self.train), ("validation", self.validation), ("test", self.test)) if split is not None}


def classification_encoding(spec: Spec) -> str | None:
    """How the loss wants class labels: 'sparse' ids, 'onehot' rows, 'binary' 0/1; None for regression losses."""
    from .catalog import snake_case

    loss = spec.compile.loss
    name = snake_case(loss.target if loss.is_class else loss.name).lower()
    if "sparse" in name:
        return "sparse"
    if "binary" in name or "hinge" in name and "categorical" not in name:
        return "binary"
    if "categorical" in name or name in ("kl_divergence", "kld", "kullback_leibler_divergence"):
        return "onehot"
    return None


# Layers that leave the width of their input unchanged: looking back past them finds the output's units.
_SAME_WIDTH = {
    "Activation", "Dropout", "Softmax", "ReLU", "LeakyReLU", "ELU", "PReLU", "BatchNormalization",
    "LayerNormalization", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization",
}


def output_activation(spec: Spec) -> str | None:
    """The last activation of the model as the file writes it (`softmax`, `sigmoid`, ...), if any."""
    for layer in reversed(spec.layers):
        if layer.name == "Softmax":
            return "softmax"
        activation = layer.args.get("activation")
        if activation is not None:
            return getattr(activation, "name", activation)
        if layer.name not in _SAME_WIDTH:
            return None
    return None


def output_units(spec: Spec) -> int | None:
    """The width of the model's output when the file says it (the last `units`)."""
    for layer in reversed(spec.layers):
        units = layer.args.get("units")
        if isinstance(units, int):
            return units
        if layer.name not in _SAME_WIDTH:
            return None
    return None


def target_encoding(spec: Spec, target_is_label: bool) -> str | None:
    """How the target is encoded: the loss decides ('sparse', 'onehot', 'binary'); with another loss,
    a softmax or sigmoid output makes a text, integer or boolean target classes too (SPEC.md): one-hot
    rows, or 0/1 for a single unit, as the tutorial's sigmoid + mse networks expect."""
    encoding = classification_encoding(spec)
    if encoding is None and target_is_label and output_activation(spec) in ("softmax", "sigmoid"):
        encoding = "binary" if output_units(spec) == 1 else "onehot"
    return encoding


def prepare(spec: Spec, seed: int) -> PreparedData:
    """Read the data of `spec`, check it, split it and fit the preprocessing on the training split."""
    import pandas as pd

    data = spec.data
    notes: list[str] = []
    frame = read_table(data.train)
    columns = feature_columns(data, list(frame.columns), data.train)
    frame = frame[[*columns, data.target]]
    for column in columns:  # the whole file first, so an error names its first bad row
        _check_feature(frame[column], data.train, column)
    text_columns = {column for column in columns if _is_text_column(frame[column])}
    for column in columns:
        if column.startswith("Unnamed: "):
            notes.append(
                f"column {column!r} has no name in the header (a saved row index?); it is used as a feature. "
                "If it is an index, list it under `data.drop`."
            )
    target = frame[data.target]
    encoding = target_encoding(spec, not pd.api.types.is_float_dtype(target.dtype))
    task, class_names = _target_kind(target, data.train, data.target, encoding)

    # Test first, then validation, from what is left; stratified by class when classifying.
    strata = _category_codes(frame[data.target], class_names) if task == "classification" else None
    remaining = np.arange(len(frame))
    held_out: dict[str, np.ndarray] = {}
    for role in ("test", "validation"):
        fraction = getattr(data, role)
        if isinstance(fraction, Path) or not fraction:
            continue
        rng = np.random.default_rng([seed, SPLIT_SEEDS[role]])
        # Both fractions are of the whole file: `validation: 0.2, test: 0.1` leaves 70% to train on.
        share = min(1.0, fraction * len(frame) / len(remaining))
        keep, take = _split(remaining, share, None if strata is None else strata[remaining], rng)
        if len(take) == 0:
            raise DataError(f"{data.train}: `data.{role}: {fraction}` of {len(remaining)} rows is no rows; use a larger fraction or a file.")
        held_out[role], remaining = take, keep
    if len(remaining) == 0:
        raise DataError(f"{data.train}: no rows are left to train on after the test and validation splits.")
    train_frame = frame.iloc[remaining]

    preprocessing = _fit(spec, train_frame, columns, text_columns, task, encoding, class_names, data.train, notes)
    if task == "classification":
        present = set(_category_codes(train_frame[data.target], class_names).tolist())
        absent = [class_names[i] for i in range(len(class_names)) if i not in present]
        if absent:
            raise DataError(f"{data.train}: class(es) {_list(absent)} have no rows left in the training split; use more data or smaller splits.")

    unseen = UnseenCategories()

    def make(part, path, source) -> Split:
        return Split(preprocessing.features(part, path, unseen), preprocessing.targets(part, path), len(part), source)

    name = data.train.name
    train = make(train_frame, data.train, name if not held_out else f"{len(remaining):,} of {len(frame):,} rows of {name}")
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


def _target_kind(series, path: Path, column: str, encoding: str | None) -> tuple[str, list | None]:
    """('classification', class names) or ('regression', None), from the loss and the target's values."""
    import pandas as pd

    _check_kind(series, path, column, "target")
    _check_no_missing(series, path, column, "target")
    text = not (_is_number(series) or _is_bool(series))
    if encoding is None:
        if text:
            if not _is_text_column(series):
                _numeric(series, path, column, "target")  # raises at the first non-number
            raise DataError(
                f"{path}: target {column!r} holds class names ({_examples(series)}), but the loss is a regression loss "
                "and the output is not softmax or sigmoid. Use a classification loss such as "
                "sparse_categorical_crossentropy (with a softmax output) or binary_crossentropy (two classes, sigmoid output)."
            )
        _numeric(series, path, column, "target")
        return "regression", None
    if pd.api.types.is_float_dtype(series.dtype):
        values = _numeric(series, path, column, "target")
        fractional = values != np.round(values)
        if fractional.any():
            first, _ = _first_bad(fractional)
            raise DataError(
                f"{path}: {_row_label(path, series, first)}, target {column!r}: {_show(values[first])} is not a class label, "
                "but the loss is a classification loss. Use a regression loss (mse) for continuous targets."
            )
        series = series.astype("int64")
    unique = series.unique().tolist()
    if _is_bool(series):
        class_names = sorted({bool(v) for v in unique})
    elif _is_number(series):
        class_names = sorted({int(v) for v in unique})
    else:
        class_names = sorted({_key(v) for v in unique})
    if len(class_names) < 2:
        raise DataError(f"{path}: target {column!r} has a single class ({_show(class_names[0])}); a classifier needs at least two.")
    if encoding == "binary" and len(class_names) != 2:
        raise DataError(
            f"{path}: target {column!r} has {len(class_names)} classes ({_list(class_names)}), but the loss is binary. "
            "Use sparse_categorical_crossentropy with a softmax output of that many units."
        )
    return "classification", class_names


def _fit(spec: Spec, frame, columns, text_columns, task, encoding, class_names, path: Path, notes: list[str]) -> Preprocessing:
    """The preprocessing, from the training split; which columns are text was decided on the whole file."""
    categories: dict[str, list[str]] = {}
    booleans: list[str] = []
    for column in columns:
        series = frame[column]
        if _is_bool(series):
            booleans.append(column)
        elif column in text_columns:
            categories[column] = sorted({_key(v) for v in series.tolist()})
    if booleans:
        notes.append(f"column(s) {', '.join(booleans)}: true/false read as 1/0.")
    for column, vocabulary in categories.items():
        notes.append(f"column {column!r}: one-hot encoded, {len(vocabulary)} categories ({_list(vocabulary, 5)}).")
    if task == "classification":
        how = {"sparse": "ids", "onehot": "one-hot rows", "binary": "0/1"}[encoding]
        mapping = ", ".join(f"{name}={index}" for index, name in enumerate(class_names[:10]))
        notes.append(f"target {spec.data.target!r}: {len(class_names)} classes encoded as {how} ({mapping}{', ...' if len(class_names) > 10 else ''}).")
    preprocessing = Preprocessing(
        feature_columns=list(columns),
        categories=categories,
        booleans=booleans,
        target=spec.data.target,
        task=task,
        target_encoding=encoding if task == "classification" else None,
        class_names=class_names,
        input_shape=[],
        normalize=spec.data.normalize,
    )
    width = preprocessing.input_width
    shape = list(spec.input_shape) if spec.input_shape else [width]
    if math.prod(shape) != width:
        names = preprocessing.input_names
        raise DataError(
            f"{path}: the model's input shape {shape} takes {math.prod(shape)} numbers per row, but the data gives "
            f"{width} ({_list(names, 8)}). Change the input shape or `data.features`."
        )
    preprocessing.input_shape = shape
    if spec.data.normalize:
        matrix = preprocessing.features(frame, path).reshape(len(frame), width).astype("float64")
        mean = matrix.mean(axis=0)
        variance = matrix.var(axis=0)
        start = 0
        for column in columns:  # one-hot columns pass through unchanged
            size = len(categories[column]) if column in categories else 1
            if column in categories:
                mean[start:start + size], variance[start:start + size] = 0.0, 1.0
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
