"""The files of a run folder as nnflow reads them back: validated, and never written over.

Every file nnflow reads from a run folder (run.json, experiment.yaml, preprocessing.json,
metrics.json, history.csv, gradients.csv, evaluation*.json; checkpoint.npz in `runs.py`)
is read here: only if it is a regular file, never past a size limit, and checked against
the shape nnflow writes. Damage is a `DamagedRunError` (exit 6) that names the file and
what is wrong with it; unknown extra keys and statuses are accepted, for the features that
add them later.

`check_output` is the other half: no command writes over a file of a run folder, except
its own outputs in the folder of the run it works on.

Standard library only (plus `preprocessing` and `spec` when a run's encodings or
experiment are asked for), so `nnflow runs` and `compare` stay fast.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Callable

from . import fileio
from .errors import ConfigError, DamagedRunError, Problem, UnsafeModelError

RUN_FILE = "run.json"
CHECKPOINT_FILE = "checkpoint.npz"
LOCK_FILE = ".nnflow.lock"
# Every name nnflow itself keeps at the top of a run folder: nothing else may write over them.
RUN_FILES = frozenset({
    RUN_FILE, CHECKPOINT_FILE, LOCK_FILE, "experiment.yaml", "preprocessing.json", "history.csv",
    "gradients.csv", "metrics.json", "model.keras", "evaluation.json", "report.html", "curves.png",
    "gradients.png", "export",
})


def is_nnflow_name(name: str) -> bool:
    """Whether `name`, at the top of a run folder, is one nnflow writes: its files, and the
    temporary files beside them (`.history.csv.x1y2.tmp`, `.model.x1y2.keras`) that a resume clears."""
    return name in RUN_FILES or (name.startswith(".") and name.endswith(".tmp")) or (name.startswith(".model.") and name.endswith(".keras"))
JSON_LIMIT = 64 << 20  # more than nnflow ever writes in a run's JSON files (vocabularies, confusion matrices)
CSV_LIMIT = 256 << 20  # history.csv and gradients.csv: a row per epoch (per weight)
EXPERIMENT_LIMIT = 1_000_000  # yamlio.MAX_FILE_BYTES: what an experiment file may be


def damaged(path: str | Path, problem: str) -> DamagedRunError:
    """`RUN/run.json: `data` must be ...; received a list; the run folder is damaged.`"""
    return DamagedRunError(f"{path}: {problem}; the run folder is damaged.")


def describe(value: Any) -> str:
    """What a JSON value is, for `received ...`: `a list`, `the text 'abc'`, `null`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the text {value[:40]!r}" + (" ..." if len(value) > 40 else "")
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


# ---------------------------------------------------------------------------
# Reading: regular files only, bounded


def read_bytes(path: str | Path, limit: int) -> bytes:
    """The bytes of a run file; a FIFO, a device, a missing or oversized file is damage."""
    try:
        return fileio.read_bounded(path, limit)
    except fileio.TooLarge:
        raise damaged(path, f"larger than {limit:,} bytes, far more than nnflow writes there") from None
    except fileio.NotReadable as error:
        raise damaged(path, error.reason) from None


def read_text(path: str | Path, limit: int) -> str:
    try:
        return read_bytes(path, limit).decode("utf-8")
    except UnicodeDecodeError as error:
        raise damaged(path, f"not UTF-8 text (byte {error.start})") from None


def read_json_file(path: str | Path, limit: int | None = None) -> Any:
    """A JSON document of a run folder, parsed; not JSON is damage."""
    text = read_text(path, limit or JSON_LIMIT)
    try:
        return json.loads(text)
    except ValueError as error:
        raise damaged(path, f"not valid JSON ({error})") from None
    except RecursionError:
        raise damaged(path, "not valid JSON (nested too deeply)") from None


def present(path: str | Path) -> bool:
    """Whether anything is at `path`: a broken link or a FIFO is there (and damaged), not absent."""
    return os.path.lexists(path)


# ---------------------------------------------------------------------------
# Checking shapes


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_count(value) -> bool:
    return _is_int(value) and value >= 0


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_number_or_null(value) -> bool:
    return value is None or _is_number(value)


def _is_text(value) -> bool:
    return isinstance(value, str)


def _is_text_or_null(value) -> bool:
    return value is None or isinstance(value, str)


def _is_bool(value) -> bool:
    return isinstance(value, bool)


class _Shape:
    """Checks one document's keys, raising at the first that is wrong (naming the file and the key)."""

    def __init__(self, path: str | Path, document: Any, what: str):
        self.path = path
        if not isinstance(document, dict):
            raise damaged(path, f"must be a JSON object ({what}); received {describe(document)}")
        self.document = document

    def fail(self, key: str, expected: str, value: Any) -> DamagedRunError:
        return damaged(self.path, f"`{key}` must be {expected}; received {describe(value)}")

    def key(self, key: str, test: Callable[[Any], bool], expected: str, *, required: bool = False) -> None:
        if key not in self.document:
            if required:
                raise damaged(self.path, f"`{key}` is missing (it should be {expected})")
            return
        value = self.document[key]
        if not test(value):
            raise self.fail(key, expected, value)

    def mapping(self, key: str, test: Callable[[Any], bool], expected: str, *, required: bool = False) -> None:
        """`key` holds a mapping whose every value passes `test`."""
        self.key(key, lambda value: isinstance(value, dict), expected, required=required)
        for name, value in (self.document.get(key) or {}).items():
            if not test(value):
                raise self.fail(f"{key}.{name}", expected.split(" -> ", 1)[-1], value)

    def records(self, key: str, fields: dict[str, tuple[Callable[[Any], bool], str]], expected: str, *, required: bool = False) -> None:
        """`key` holds a list of mappings, each with `fields` (name -> (test, expected))."""
        self.key(key, lambda value: isinstance(value, list), expected, required=required)
        for index, record in enumerate(self.document.get(key) or []):
            if not isinstance(record, dict):
                raise self.fail(f"{key}[{index}]", "a mapping", record)
            self.within(f"{key}[{index}]", record, fields)

    def within(self, where: str, record: dict, fields: dict[str, tuple[Callable[[Any], bool], str]]) -> None:
        """The mapping at `where` has each of `fields` (name -> (test, expected)); other keys are accepted."""
        for name, (test, what) in fields.items():
            if name not in record:
                raise damaged(self.path, f"`{where}.{name}` is missing (it should be {what})")
            if not test(record[name]):
                raise self.fail(f"{where}.{name}", what, record[name])


GATE_FIELDS = {
    "metric": (_is_text, "a metric name"),
    "condition": (_is_text, "a condition such as '>= 0.9'"),
    "value": (_is_number_or_null, "a number or null"),
    "passed": (_is_bool, "true or false"),
}


# ---------------------------------------------------------------------------
# run.json


def read_run_info(run_dir: str | Path) -> dict:
    """run.json of `run_dir`, checked: a DamagedRunError when it is not what nnflow writes.

    A run written by a newer nnflow (a `format` above this one's) is an UnsafeModelError
    that says so, before its keys are looked at: they may mean something else there.
    """
    path = Path(run_dir) / RUN_FILE
    info = read_json_file(path)
    shape = _Shape(path, info, "an nnflow run record")
    _check_format(path, info)
    shape.key("name", _is_text, "the run's name as text", required=True)
    shape.key("status", _is_text, "a status such as 'completed'", required=True)
    shape.key("started", _is_text, "a time as text", required=True)
    shape.key("seed", _is_int, "an integer", required=True)
    shape.key("data", lambda value: isinstance(value, dict), "a mapping of role -> {path, sha256}", required=True)
    for role, entry in info["data"].items():
        if not isinstance(entry, dict):
            raise shape.fail(f"data.{role}", "a mapping {path, sha256}", entry)
        shape.within(f"data.{role}", entry, {"path": (_is_text, "a file's path"), "sha256": (_is_text, "a checksum as text")})
    shape.key("epochs", lambda value: isinstance(value, dict), "a mapping {configured, completed}", required=True)
    count = (_is_count, "a number of epochs (an integer, 0 or more)")
    shape.within("epochs", info["epochs"], {"configured": count, "completed": count})
    shape.key("config", _is_text_or_null, "the experiment file's path, or null")
    shape.key("command", _is_text, "the command line as text")
    shape.key("ended", _is_text, "a time as text")
    shape.key("host", _is_text, "a host name")
    shape.key("error", _is_text, "a message")
    shape.key("pid", lambda value: value is None or _is_int(value), "a process id (an integer) or null")
    shape.key("steps_per_execution", lambda value: _is_int(value) and value > 0, "a positive integer")
    shape.key("duration_seconds", _is_number, "a number of seconds")
    shape.key("distribute", lambda value: isinstance(value, dict), "a mapping")
    shape.mapping("versions", _is_text, "a mapping of package -> version text")
    shape.mapping("rows", _is_count, "a mapping of split -> a number of rows")
    shape.key("timing", lambda value: isinstance(value, dict), "a mapping")
    shape.records("gates", GATE_FIELDS, "a list of gates {metric, condition, value, passed}")
    shape.records("resumes", {"at": (_is_text, "a time as text")}, "a list of resumes {at, command}")
    return info


def _check_format(path: Path, info: dict) -> None:
    from . import __version__
    from .runs import RUN_FORMAT

    run_format = info.get("format", 1)
    if not _is_int(run_format) or run_format < 1:
        raise damaged(path, f"`format` must be a run format number (1 or more); received {describe(run_format)}")
    if run_format > RUN_FORMAT:
        versions = info.get("versions")
        written_by = versions.get("nnflow", "?") if isinstance(versions, dict) else "?"
        raise UnsafeModelError(
            f"{path.parent} was written by nnflow {written_by} (run format {run_format}); "
            f"this nnflow ({__version__}) reads run format {RUN_FORMAT}. Use a newer nnflow, or train the run again."
        )


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
    shape = _Shape(path, metrics, "metric name -> number")
    for name, value in metrics.items():
        if not _is_number_or_null(value):
            raise shape.fail(name, "a number (or null)", value)
    return metrics


def read_evaluation(path: str | Path, *, optional: bool = False) -> dict | None:
    """An evaluation*.json that `nnflow evaluate` wrote, checked (the report draws its confusion matrix)."""
    path = Path(path)
    if optional and not present(path):
        return None
    evaluation = read_json_file(path)
    shape = _Shape(path, evaluation, "an nnflow evaluation")
    shape.mapping("metrics", _is_number_or_null, "a mapping of metric -> a number or null", required=True)
    shape.key("ok", _is_bool, "true or false")
    shape.key("run", _is_text, "a run folder")
    shape.key("data", _is_text, "a description of the data")
    shape.key("rows", _is_count, "a number of rows")
    shape.key("evaluated", _is_text, "a time as text")
    shape.key("notes", lambda value: isinstance(value, list) and all(isinstance(v, str) for v in value), "a list of notes")
    shape.records("gates", GATE_FIELDS, "a list of gates {metric, condition, value, passed}")
    shape.key("classification", lambda value: value is None or isinstance(value, dict), "a classification report or null")
    report = evaluation.get("classification")
    if report is not None:
        classes = report.get("classes")
        matrix = report.get("confusion_matrix")
        if not isinstance(classes, list):
            raise shape.fail("classification.classes", "a list of class names", classes)
        square = isinstance(matrix, list) and len(matrix) == len(classes) and all(
            isinstance(row, list) and len(row) == len(classes) and all(_is_count(cell) for cell in row) for row in matrix
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
    from .preprocessing import Preprocessing

    path = Path(run_dir) / "preprocessing.json"
    data = read_json_file(path)
    shape = _Shape(path, data, "the run's encodings")

    def texts(value) -> bool:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)

    def label(value) -> bool:
        return isinstance(value, (str, int))  # bool is an int: true/false classes

    shape.key("feature_columns", lambda v: texts(v) and len(v) > 0, "a list of column names", required=True)
    shape.key("categories", lambda v: isinstance(v, dict), "a mapping of column -> its categories", required=True)
    shape.key("booleans", texts, "a list of column names", required=True)
    shape.key("target", _is_text, "the target column's name", required=True)
    shape.key("task", lambda v: v in TASKS, "'classification' or 'regression'", required=True)
    shape.key("target_encoding", lambda v: v in ENCODINGS, "'sparse', 'onehot', 'binary' or null", required=True)
    shape.key("class_names", lambda v: v is None or (isinstance(v, list) and all(label(c) for c in v)), "a list of class names or null", required=True)
    shape.key("input_shape", lambda v: isinstance(v, list) and len(v) > 0 and all(_is_int(n) and n > 0 for n in v), "a list of positive sizes", required=True)
    shape.key("normalize", _is_bool, "true or false", required=True)
    for name, vocabulary in data["categories"].items():
        if name not in data["feature_columns"]:
            raise damaged(path, f"`categories.{name}` is not one of the feature columns")
        if not (texts(vocabulary) and vocabulary):
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
        raise damaged(path, f"`input_shape` {data['input_shape']} does not hold the {width} numbers the feature columns give")
    for key in ("mean", "variance"):
        value = data.get(key)
        if value is None:
            continue
        if not (isinstance(value, list) and len(value) == width and all(_is_number_or_null(v) for v in value)):
            raise shape.fail(key, f"a list of {width} numbers (one per input column) or null", value)
    fields = Preprocessing.__dataclass_fields__
    return Preprocessing(**{key: value for key, value in data.items() if key in fields})


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
        raise damaged(path, f"no {', '.join(repr(c) for c in missing)} column in its header (it has {', '.join(header[:10]) or 'nothing'})")
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
        rows.append({"epoch": _epoch(path, number, row["epoch"]), "layer": row["layer"], "norm": _float(path, number, "norm", row["norm"])})
    return rows


# ---------------------------------------------------------------------------
# experiment.yaml


def read_experiment(run_dir: str | Path) -> dict:
    """The run's resolved experiment.yaml as plain data, through nnflow's guarded YAML reader."""
    from .yamlio import load_yaml_file

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
    from .spec import load_spec

    path = Path(run_dir) / "experiment.yaml"
    try:
        return load_spec(path)
    except ConfigError as error:
        raise damaged(path, f"it does not load (was it edited, or written by another nnflow version?): {_one_line(error)}") from None


def _one_line(error: Exception) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 500 else text[:500] + " ..."


# ---------------------------------------------------------------------------
# Checkpoints (loaded by runs.load_checkpoint)

_ARRAY_NAME = re.compile(r"(model|optimizer)\.([0-9]+)|callback([0-9]+)\.([A-Za-z_]+)\.([0-9]+)")


def check_checkpoint(path: Path, state: Any, arrays: dict) -> dict:
    """The checkpoint's state (JSON) and arrays hang together: the epochs, history and callback
    states a resume needs, and every array they refer to. Shapes are checked against the model
    by `runs.restore_weights` and `training.restore_callbacks`."""
    shape = _Shape(path, state, "the state of the last completed epoch")
    shape.key("epochs_completed", lambda v: _is_int(v) and v >= 1, "the number of epochs completed (1 or more)", required=True)
    shape.key("stopped", _is_bool, "true or false")
    shape.records("history", {"epoch": (lambda v: _is_int(v) and v >= 1, "an epoch number")}, "a list of epoch rows", required=True)
    completed, history = state["epochs_completed"], state["history"]
    if [row["epoch"] for row in history] != list(range(1, completed + 1)):
        raise damaged(path, f"its history does not hold epochs 1 to {completed} (`epochs_completed`), one row each")
    for index, row in enumerate(history):
        for key, value in row.items():
            if not _is_number_or_null(value):
                raise shape.fail(f"history[{index}].{key}", "a number", value)
    shape.key("callbacks", lambda v: isinstance(v, list) and all(isinstance(s, dict) for s in v), "a list of callback states", required=True)
    for index, callback in enumerate(state["callbacks"]):
        for key, value in callback.items():
            if isinstance(value, dict):
                if set(value) != {"arrays"} or not _is_count(value["arrays"]):
                    raise shape.fail(f"callbacks[{index}].{key}", "a number, null or {arrays: N}", value)
                for position in range(value["arrays"]):
                    if f"callback{index}.{key}.{position}" not in arrays:
                        raise damaged(path, f"the array callback{index}.{key}.{position} of its callback state is missing")
            elif not (value is None or isinstance(value, (bool, int, float))):
                raise shape.fail(f"callbacks[{index}].{key}", "a number, null or {arrays: N}", value)
    shape.records("gradients", {
        "epoch": (lambda v: _is_int(v) and v >= 1, "an epoch number"),
        "layer": (_is_text, "a weight's name"),
        "norm": (_is_number_or_null, "a number"),
    }, "a list of gradient norms {epoch, layer, norm}")
    for prefix in ("model", "optimizer"):
        indices = sorted(int(name.split(".", 1)[1]) for name in arrays if _ARRAY_NAME.fullmatch(name) and name.startswith(prefix + "."))
        if indices != list(range(len(indices))):
            gap = next(i for i, index in enumerate(indices + [None]) if index != i)
            raise damaged(path, f"the array {prefix}.{gap} is missing (it holds {prefix} arrays up to {prefix}.{indices[-1]})")
        if prefix == "model" and not indices:
            raise damaged(path, "it holds no model arrays")
    for name, array in arrays.items():
        if array.dtype.kind not in "biuf":
            raise damaged(path, f"the array {name} holds {array.dtype} values, not numbers")
    return state


# ---------------------------------------------------------------------------
# Outputs never land on a run's files

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")

# What each command may write inside the folder of the run it works on; nothing else, anywhere in a run folder.
OWN_OUTPUTS: dict[str, tuple[str, Callable[[tuple[str, ...]], bool]]] = {
    "evaluate": ("evaluation*.json", lambda parts: len(parts) == 1 and parts[0].startswith("evaluation") and parts[0].endswith(".json")),
    "predict": ("predictions*.csv/.tsv/.parquet", lambda parts: len(parts) == 1 and parts[0].startswith("predictions") and parts[0].lower().endswith(TABLE_SUFFIXES)),
    "report": ("a .html page", lambda parts: len(parts) == 1 and parts[0].lower().endswith((".html", ".htm"))),
    "plot": ("a .png picture", lambda parts: len(parts) == 1 and parts[0].lower().endswith(".png")),
    "export": ("exports under RUN/export/", lambda parts: len(parts) >= 2 and parts[0] == "export"),
    # A callback's files (CSVLogger's log, ModelCheckpoint's models, TensorBoard's events).
    "train": ("its callbacks' own files, never one nnflow keeps there", lambda parts: bool(parts) and not is_nnflow_name(parts[0])),
}


def check_output(path: str | Path, command: str, runs: list[Path] = (), *, folder: bool = False, where: str = "--output") -> Path:
    """Refuse an output path before any work: one that cannot be written (under a regular file,
    in a folder that cannot be written, a folder where a file is wanted), or one that would
    land on a file of a run folder.

    Inside a run folder, `command` may write only its own outputs (`OWN_OUTPUTS`), and only
    in the folder of a run it works on (`runs`). `..` and symbolic links are resolved: where
    the file is written (its folder, resolved) and where its name points (a link) both count.
    Raises a ConfigError (exit 2) located at `where`.
    """
    path = Path(path)
    problem = fileio.output_problem(path, folder=folder)
    if problem is not None:
        hint = " Give another --output." if where == "--output" else " Give an --output elsewhere."
        raise ConfigError(Problem(f"cannot write {path}: {problem}.{hint}", where=where))
    own_runs = {Path(os.path.realpath(run)) for run in runs}
    parent = Path(os.path.realpath(path.parent if str(path.parent) else "."))
    targets = [parent / path.name, Path(os.path.realpath(path))]
    described, allowed = OWN_OUTPUTS[command]
    for target in targets:
        for run_dir in enclosing_runs(target):
            parts = target.relative_to(run_dir).parts
            if run_dir in own_runs and parts and allowed(parts):
                continue
            via = "" if target == Path(os.path.abspath(path)) else f" (it resolves to {target})"
            if run_dir in own_runs:
                fix = f"in a run folder, {command} writes only {described}"
            else:
                fix = f"{command} writes nothing into the folder of another run"
            raise ConfigError(Problem(
                f"{path} is inside the run folder {run_dir}{via}, and would replace or add to that run's files: "
                f"{fix}. Write it outside the run folder.",
                where=where,
            ))
    return path


def enclosing_runs(target: Path) -> list[Path]:
    """Every run folder (a folder holding run.json) that `target` is, or is inside."""
    return [folder for folder in (target, *target.parents) if present(folder / RUN_FILE)]
