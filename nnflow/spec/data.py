"""The `data:` section: the table to train on, its target and feature columns, its splits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..yamlio import KeyPath
from .experiment import DataSpec
from .fields import INVALID, Custom, Field, Section
from .problems import ProblemCollector, boolean, describe, is_int_or_float, number, string, string_list


def _expandable(found: ProblemCollector, text: str, path: KeyPath) -> bool:
    try:
        Path(text).expanduser()
    except RuntimeError:  # `~user/...` for a user this machine does not have
        found.report(path, f"cannot expand {text.split('/')[0]!r} in {text!r}: no such user's home folder.")
        return False
    return True


def resolve_path(text: str, base_dir: Path) -> Path:
    """A path from the file: `~` expanded, a relative one taken from the file's folder."""
    file = Path(text).expanduser()
    return file if file.is_absolute() else (base_dir / file)


def check_train(found: ProblemCollector, value: Any, path: KeyPath) -> Any:
    if string(found, value, path, "a file path") is None or not _expandable(found, value, path):
        return INVALID
    return value


def check_target(found: ProblemCollector, value: Any, path: KeyPath) -> Any:
    return INVALID if string(found, value, path, "a column name") is None else value


def check_features(found: ProblemCollector, value: Any, path: KeyPath) -> Any:
    if value is None:
        return None
    features = string_list(found, value, path, "`features`")
    if features is None:
        return INVALID
    if not features:
        found.report(path, "`features` is empty; list the input columns, or leave it out to use all other columns.")
    return features


def check_drop(found: ProblemCollector, value: Any, path: KeyPath) -> Any:
    return string_list(found, value, path, "`drop`") or ()


def check_split(found: ProblemCollector, value: Any, path: KeyPath) -> Any:
    """A fraction of train in [0, 1) (a float), or a file path (kept as text until resolved)."""
    if is_int_or_float(value):
        if not 0 <= value < 1:
            found.report(path, f"expected a fraction of train in [0, 1), or a file path; received {number(value)}.")
            return INVALID
        return float(value)
    if isinstance(value, str) and value:
        return value if _expandable(found, value, path) else INVALID
    found.report(path, f"expected a fraction of train in [0, 1), or a file path; received {describe(value)}.")
    return INVALID


def _split_schema() -> dict:
    return {"anyOf": [{"type": "number", "minimum": 0, "exclusiveMaximum": 1}, _TEXT]}


_TEXT = {"type": "string", "minLength": 1}
_COLUMNS = {"type": "array", "items": _TEXT, "uniqueItems": True}


def _check_boolean(found: ProblemCollector, value: Any, path: KeyPath) -> Any:
    return INVALID if boolean(found, value, path) is None else value


DATA = Section(
    "`data`",
    (
        Field(
            "train", Custom(check_train, lambda: _TEXT),
            description="CSV (.csv .tsv .csv.gz) or Parquet file, relative to the experiment file",
            missing="missing `train`: the path of the training data (CSV or Parquet), relative to this file.",
        ),
        Field(
            "target", Custom(check_target, lambda: _TEXT),
            description="the column to predict", missing="missing `target`: the name of the column to predict.",
        ),
        Field(
            "features", Custom(check_features, lambda: {"anyOf": [dict(_COLUMNS, minItems=1), {"type": "null"}]}), None,
            "input columns; default: all other columns",
        ),
        Field("drop", Custom(check_drop, lambda: _COLUMNS), [], "columns to ignore"),
        Field("validation", Custom(check_split, _split_schema), 0.2, "fraction of train for validation (stratified for classes), a file, or 0"),
        Field("test", Custom(check_split, _split_schema), 0, "fraction of train held out for testing, or a file"),
        Field("normalize", Custom(_check_boolean, lambda: {"type": "boolean"}), True, "standardise numeric features inside the model"),
    ),
)  # fmt: skip


def _target_not_a_feature(path: KeyPath, found: ProblemCollector):
    def check(merged: dict, checked: dict) -> None:
        target, features = merged.get("target"), checked["features"]
        if isinstance(features, tuple) and features and isinstance(target, str) and target in features:
            found.report(
                path + ("features",),
                f"the target {target!r} is also listed as a feature; that would leak the answer.",
                related=[path + ("target",)],
            )

    return check


def _drop_apart(path: KeyPath, found: ProblemCollector):
    def check(merged: dict, checked: dict) -> None:
        target, features, drop = merged.get("target"), checked["features"], checked["drop"]
        if isinstance(target, str) and target in drop:
            found.report(path + ("drop",), f"the target {target!r} cannot be dropped.", related=[path + ("target",)])
        if isinstance(features, tuple) and features and drop:
            for column in set(features) & set(drop):
                found.report(
                    path + ("drop",),
                    f"column {column!r} is both a feature and dropped; keep it in one list.",
                    related=[path + ("features",)],
                )

    return check


def _splits_leave_rows(path: KeyPath, found: ProblemCollector):
    def check(merged: dict, checked: dict) -> None:
        validation, test = checked["validation"], checked["test"]
        if is_int_or_float(validation) and is_int_or_float(test) and validation + test >= 1:
            found.report(
                path + ("validation",),
                f"validation ({validation}) and test ({test}) together take all of train; leave some rows to train on.",
                related=[path + ("test",)],
            )

    return check


_RESOLVED_FIRST = ("drop", "validation", "test", "normalize", "features")


def check_data(found: ProblemCollector, value: Any, path: KeyPath, base_dir: Path) -> tuple[DataSpec | None, Any]:
    """The `data:` section: (its DataSpec, or None after a problem; the section with its defaults)."""
    after = {
        "features": _target_not_a_feature(path, found),
        "drop": _drop_apart(path, found),
        "test": _splits_leave_rows(path, found),
    }
    checked, merged = DATA.check(found, value, path, after=after)
    if isinstance(merged, dict):  # the resolved file keeps the order it has always had: defaults first
        merged = {**{key: merged[key] for key in _RESOLVED_FIRST}, **merged}
    if checked is None:
        return None, merged

    def as_path(split):
        return resolve_path(split, base_dir) if isinstance(split, str) else split

    data = DataSpec(
        train=resolve_path(checked["train"], base_dir),
        target=checked["target"],
        features=checked["features"],
        drop=checked["drop"],
        validation=as_path(checked["validation"]),
        test=as_path(checked["test"]),
        normalize=checked["normalize"],
    )
    return data, merged
