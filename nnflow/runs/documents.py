"""The documents of a run folder read back and checked: run.json, metrics.json, evaluation*.json,
preprocessing.json, history.csv, gradients.csv, experiment.yaml (checkpoint.npz: `checkpoint.py`).

Standard library only (plus `preprocessing` and `spec` when a run's encodings or
experiment are asked for), so `nnflow runs` and `compare` stay fast.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path

from .. import fileio
from ..errors import ConfigError, UnsafeModelError
from ..run_layout import RUN_FILE, RUN_FORMAT
from .reading import (
    CSV_LIMIT,
    EXPERIMENT_LIMIT,
    GATE_FIELDS,
    JSON_LIMIT,
    Shape,
    damaged,
    describe,
    is_bool,
    is_count,
    is_int,
    is_json_number,
    is_json_number_or_null,
    is_text,
    is_text_or_null,
    present,
    read_json_file,
    read_text,
)

# ---------------------------------------------------------------------------
# run.json


def read_run_info(run_dir: str | Path) -> dict:
    """run.json of `run_dir`, checked: a DamagedRunError when it is not what nnflow writes.

    A run written by a newer nnflow (a `format` above this one's) is an UnsafeModelError
    that says so, before its keys are looked at: they may mean something else there.
    """
    path = Path(run_dir) / RUN_FILE
    info = read_json_file(path)
    shape = Shape(path, info, "an nnflow run record")
    _check_format(path, info)
    shape.key("name", is_text, "the run's name as text", required=True)
    shape.key("status", is_text, "a status such as 'completed'", required=True)
    shape.key("started", is_text, "a time as text", required=True)
    shape.key("seed", is_int, "an integer", required=True)
    shape.key("data", lambda value: isinstance(value, dict), "a mapping of role -> {path, sha256}", required=True)
    for role, entry in info["data"].items():
        if not isinstance(entry, dict):
            raise shape.fail(f"data.{role}", "a mapping {path, sha256}", entry)
        shape.within(
            f"data.{role}", entry, {"path": (is_text, "a file's path"), "sha256": (is_text, "a checksum as text")}
        )
    shape.key("epochs", lambda value: isinstance(value, dict), "a mapping {configured, completed}", required=True)
    count = (is_count, "a number of epochs (an integer, 0 or more)")
    shape.within("epochs", info["epochs"], {"configured": count, "completed": count})
    shape.key("uuid", _is_uuid, "the run's id (a UUID as text)")
    shape.key("git", lambda value: isinstance(value, dict), "a mapping {commit, dirty}")
    shape.key("tracking", lambda value: isinstance(value, dict), "a mapping of tracker -> what it logged")
    shape.key("config", is_text_or_null, "the experiment file's path, or null")
    shape.key("command", is_text, "the command line as text")
    shape.key("ended", is_text, "a time as text")
    shape.key("host", is_text, "a host name")
    shape.key("error", is_text, "a message")
    shape.key("pid", lambda value: value is None or is_int(value), "a process id (an integer) or null")
    shape.key("steps_per_execution", lambda value: is_int(value) and value > 0, "a positive integer")
    shape.key("duration_seconds", is_json_number, "a number of seconds")
    shape.key("distribute", lambda value: isinstance(value, dict), "a mapping")
    shape.mapping("versions", is_text, "a mapping of package -> version text")
    shape.mapping("rows", is_count, "a mapping of split -> a number of rows")
    shape.key("timing", lambda value: isinstance(value, dict), "a mapping")
    shape.records("gates", GATE_FIELDS, "a list of gates {metric, condition, value, passed}")
    shape.records("resumes", {"at": (is_text, "a time as text")}, "a list of resumes {at, command}")
    shape.key(
        "pruned_at_epoch",
        lambda value: is_int(value) and value > 0,
        "the epoch a pruned run stopped after (a positive integer)",
        required=info["status"] == "pruned",
    )
    return info


def _check_format(path: Path, info: dict) -> None:
    from ..version import __version__

    run_format = info.get("format", 1)
    if not is_int(run_format) or run_format < 1:
        raise damaged(path, f"`format` must be a run format number (1 or more); received {describe(run_format)}")
    if run_format > RUN_FORMAT:
        versions = info.get("versions")
        written_by = versions.get("nnflow", "?") if isinstance(versions, dict) else "?"
        raise UnsafeModelError(
            f"{path.parent} was written by nnflow {written_by} (run format {run_format}); "
            f"this nnflow ({__version__}) reads run format {RUN_FORMAT}. Use a newer nnflow, or train the run again."
        )


def _is_uuid(value) -> bool:
    import uuid

    try:
        return isinstance(value, str) and str(uuid.UUID(value)) == value
    except ValueError:
        return False


def run_started(run_dir: str | Path) -> str:
    """run.json's `started`, or "" when it cannot be read (for choosing the newest run)."""
    try:
        info = json.loads(fileio.read_bounded(Path(run_dir) / RUN_FILE, JSON_LIMIT))
    except (fileio.NotReadable, ValueError, RecursionError):
        return ""
    started = info.get("started") if isinstance(info, dict) else None
    return started if isinstance(started, str) else ""


# ---------------------------------------------------------------------------
# metrics.json, evaluation*.json


def read_metrics(run_dir: str | Path, *, optional: bool = False) -> dict | None:
    """metrics.json: metric name -> number (null for a value that was not finite).

    With `optional`, a run without the file (one whose training did not finish) gives None.
    """
    path = Path(run_dir) / "metrics.json"
    if optional and not present(path):
        return None
    metrics = read_json_file(path)
    shape = Shape(path, metrics, "metric name -> number")
    for name, value in metrics.items():
        if not is_json_number_or_null(value):
            raise shape.fail(name, "a number (or null)", value)
    return metrics


def read_evaluation(path: str | Path, *, optional: bool = False) -> dict | None:
    """An evaluation*.json that `nnflow evaluate` wrote, checked (the report draws its confusion matrix)."""
    path = Path(path)
    if optional and not present(path):
        return None
    evaluation = read_json_file(path)
    shape = Shape(path, evaluation, "an nnflow evaluation")
    shape.mapping("metrics", is_json_number_or_null, "a mapping of metric -> a number or null", required=True)
    shape.key("ok", is_bool, "true or false")
    shape.key("run", is_text, "a run folder")
    shape.key("data", is_text, "a description of the data")
    shape.key("rows", is_count, "a number of rows")
    shape.key("evaluated", is_text, "a time as text")
    shape.key(
        "notes", lambda value: isinstance(value, list) and all(isinstance(v, str) for v in value), "a list of notes"
    )
    shape.records("gates", GATE_FIELDS, "a list of gates {metric, condition, value, passed}")
    shape.key(
        "classification", lambda value: value is None or isinstance(value, dict), "a classification report or null"
    )
    report = evaluation.get("classification")
    if report is not None:
        classes = report.get("classes")
        matrix = report.get("confusion_matrix")
        if not isinstance(classes, list):
            raise shape.fail("classification.classes", "a list of class names", classes)
        square = (
            isinstance(matrix, list)
            and len(matrix) == len(classes)
            and all(
                isinstance(row, list) and len(row) == len(classes) and all(is_count(cell) for cell in row)
                for row in matrix
            )
        )
        if not square:
            raise shape.fail(
                "classification.confusion_matrix",
                f"a {len(classes)} x {len(classes)} table of counts (one row and column per class)",
                matrix,
            )
    return evaluation


# ---------------------------------------------------------------------------
# preprocessing.json

TASKS = ("classification", "regression")
ENCODINGS = ("sparse", "onehot", "binary", None)


def read_preprocessing(run_dir: str | Path):
    """preprocessing.json as a `Preprocessing`, checked to hang together (widths, classes, shape).

    Compare with a fresh one as `read_preprocessing(run).to_json() == json.loads(json.dumps(fresh.to_json()))`.
    """
    from ..preprocessing import Preprocessing

    path = Path(run_dir) / "preprocessing.json"
    data = read_json_file(path)
    shape = Shape(path, data, "the run's encodings")
    shape.key("feature_columns", lambda v: _texts(v) and len(v) > 0, "a list of column names", required=True)
    shape.key("categories", lambda v: isinstance(v, dict), "a mapping of column -> its categories", required=True)
    shape.key("booleans", _texts, "a list of column names", required=True)
    shape.key("target", is_text, "the target column's name", required=True)
    shape.key("task", lambda v: v in TASKS, "'classification' or 'regression'", required=True)
    shape.key("target_encoding", lambda v: v in ENCODINGS, "'sparse', 'onehot', 'binary' or null", required=True)
    shape.key(
        "class_names",
        lambda v: v is None or (isinstance(v, list) and all(_label(c) for c in v)),
        "a list of class names or null",
        required=True,
    )
    shape.key(
        "input_shape",
        lambda v: isinstance(v, list) and len(v) > 0 and all(is_int(n) and n > 0 for n in v),
        "a list of positive sizes",
        required=True,
    )
    shape.key("normalize", is_bool, "true or false", required=True)
    _check_encodings(shape, path, data)
    fields = Preprocessing.__dataclass_fields__
    return Preprocessing(**{key: value for key, value in data.items() if key in fields})


def _texts(value) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _label(value) -> bool:
    return isinstance(value, (str, int))  # bool is an int: true/false classes


def _check_encodings(shape: Shape, path: Path, data: dict) -> None:
    """The encodings hang together: vocabularies of feature columns, classes that fit the target's
    encoding, an input shape that holds the encoded columns, normalisation of that width."""
    for name, vocabulary in data["categories"].items():
        if name not in data["feature_columns"]:
            raise damaged(path, f"`categories.{name}` is not one of the feature columns")
        if not (_texts(vocabulary) and vocabulary):
            raise shape.fail(f"categories.{name}", "a list of categories (text)", vocabulary)
    classes = data["class_names"]
    if data["task"] == "classification":
        if data["target_encoding"] is None or not isinstance(classes, list) or len(classes) < 2:
            raise damaged(path, "a classification run needs `target_encoding` and at least two `class_names`")
        if data["target_encoding"] == "binary" and len(classes) != 2:
            raise damaged(path, f"a binary target has two classes; `class_names` lists {len(classes)}")
    elif data["target_encoding"] is not None:
        raise damaged(path, "a regression run has no `target_encoding`")
    width = sum(len(data["categories"][c]) if c in data["categories"] else 1 for c in data["feature_columns"])
    if math.prod(data["input_shape"]) != width:
        raise damaged(
            path, f"`input_shape` {data['input_shape']} does not hold the {width} numbers the feature columns give"
        )
    for key in ("mean", "variance"):
        value = data.get(key)
        if value is None:
            continue
        if not (isinstance(value, list) and len(value) == width and all(is_json_number_or_null(v) for v in value)):
            raise shape.fail(key, f"a list of {width} numbers (one per input column) or null", value)


# ---------------------------------------------------------------------------
# history.csv, gradients.csv


def _csv_rows(path: Path, required: tuple[str, ...]) -> tuple[list[str], list[list[str]]]:
    text = read_text(path, CSV_LIMIT)
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as error:
        raise damaged(path, f"not a readable CSV file ({error})") from None
    if not rows:
        raise damaged(path, "empty (it should have a header line: " + ",".join(required) + ", ...)")
    header = rows[0]
    missing = [column for column in required if column not in header]
    if missing:
        raise damaged(
            path,
            f"no {', '.join(repr(c) for c in missing)} column in its header (it has {', '.join(header[:10]) or 'nothing'})",
        )
    body = [row for row in rows[1:] if row]
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise damaged(path, f"line {number} has {len(row)} cells; the header has {len(header)}")
    return header, body


def _epoch(path: Path, number: int, text: str) -> int:
    if not re.fullmatch(r"[0-9]+", text.strip()) or int(text) < 1:
        raise damaged(path, f"line {number}: `epoch` must be an epoch number (1 or more); received {text[:40]!r}")
    return int(text)


def _float(path: Path, number: int, column: str, text: str) -> float:
    if text == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise damaged(path, f"line {number}, column {column!r}: {text[:40]!r} is not a number") from None


def read_history(run_dir: str | Path) -> list[dict]:
    """history.csv: one row per epoch, `epoch` (an int) then the logged numbers (floats; NaN where empty)."""
    path = Path(run_dir) / "history.csv"
    header, body = _csv_rows(path, ("epoch",))
    history = []
    for number, cells in enumerate(body, start=2):
        row = {}
        for column, text in zip(header, cells):
            row[column] = _epoch(path, number, text) if column == "epoch" else _float(path, number, column, text)
        history.append(row)
    return history


def read_gradients(run_dir: str | Path) -> list[dict]:
    """gradients.csv: `{epoch, layer, norm}` per weight and epoch."""
    path = Path(run_dir) / "gradients.csv"
    header, body = _csv_rows(path, ("epoch", "layer", "norm"))
    rows = []
    for number, cells in enumerate(body, start=2):
        row = dict(zip(header, cells))
        if not row["layer"]:
            raise damaged(path, f"line {number}: `layer` is empty")
        rows.append(
            {
                "epoch": _epoch(path, number, row["epoch"]),
                "layer": row["layer"],
                "norm": _float(path, number, "norm", row["norm"]),
            }
        )
    return rows


# ---------------------------------------------------------------------------
# experiment.yaml


def read_experiment(run_dir: str | Path) -> dict:
    """The run's resolved experiment.yaml as plain data, through nnflow's guarded YAML reader."""
    from ..yamlio import load_yaml_file

    path = Path(run_dir) / "experiment.yaml"
    try:
        data = load_yaml_file(path).data
    except ConfigError as error:
        raise damaged(path, f"it does not read as an experiment file: {_one_line(error)}") from None
    if not isinstance(data, dict):
        raise damaged(path, f"must be a mapping of sections (data, layers, compile, ...); received {describe(data)}")
    return data


def read_experiment_text(run_dir: str | Path) -> str:
    """The run's experiment.yaml as text (shown by `report`), read bounded."""
    return read_text(Path(run_dir) / "experiment.yaml", EXPERIMENT_LIMIT)


def read_spec(run_dir: str | Path):
    """The run's experiment.yaml as a validated `Spec`; one this nnflow cannot load is damage."""
    from ..spec import load_spec

    path = Path(run_dir) / "experiment.yaml"
    try:
        return load_spec(path)
    except ConfigError as error:
        raise damaged(
            path, f"it does not load (was it edited, or written by another nnflow version?): {_one_line(error)}"
        ) from None


def _one_line(error: Exception) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 500 else text[:500] + " ..."
