"""`evaluate` and `predict`: score a trained run's model, loaded safely, on its test split or new data."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import ConfigError, Problem, UnsafeModelError
from ..spec import Spec
from .run import GateResult, _now, check_gates


def _load_run(run):
    """(run folder, run.json, spec, preprocessing, model) of a finished run, the model loaded safely.

    The model file is checked before anything else of the run is read; the model is then
    compiled from the run's own experiment file and must fit its preprocessing. Every run
    file is checked as it is read: a damaged one is a DamagedRunError (exit 6).
    """
    from .. import runfiles, runs
    from ..builder import compile_model
    from ..modelfile import load_model

    run_dir, info, model_path = runs.open_run(run)
    model = load_model(model_path)  # checked before Keras sees it; nothing else of a refused run is read
    spec = runfiles.read_spec(run_dir)
    preprocessing = runfiles.read_preprocessing(run_dir)
    _check_model_fits(model, preprocessing, model_path)
    compile_model(model, spec)
    return run_dir, info, spec, preprocessing, model


def _check_model_fits(model, preprocessing, model_path: Path) -> None:
    """The model takes what the preprocessing makes and outputs what the target needs."""
    inputs = list(model.input_shape[1:]) if isinstance(model.input_shape, tuple) else None
    outputs = model.output_shape[1:] if isinstance(model.output_shape, tuple) else None
    wanted_out = [len(preprocessing.class_names)] if preprocessing.target_encoding in ("sparse", "onehot") else [1]
    if inputs != list(preprocessing.input_shape) or list(outputs or ()) != wanted_out:
        raise UnsafeModelError(
            f"{model_path} does not fit this run's preprocessing.json: the model takes {inputs} and gives {list(outputs or ())}, "
            f"the run's data gives {list(preprocessing.input_shape)} and needs {wanted_out}. Was the model file replaced?"
        )


@dataclass(frozen=True)
class EvaluateResult:
    run_dir: Path
    spec: Spec
    data: str  # "the test split (15 rows of iris.csv)" or the file
    rows: int
    metrics: dict  # loss and compiled metrics, plain names
    report: dict | None  # classification: confusion matrix, per-class precision/recall/F1
    gates: tuple[GateResult, ...]
    written: Path
    notes: tuple[str, ...]

    @property
    def failed_gates(self) -> list[GateResult]:
        return [gate for gate in self.gates if not gate.passed]

    def to_json(self) -> dict:
        return {
            "ok": not self.failed_gates,
            "run": str(self.run_dir),
            "data": self.data,
            "rows": self.rows,
            "metrics": self.metrics,
            "classification": self.report,
            "gates": [gate.to_json() for gate in self.gates],
            "notes": list(self.notes),
        }


def evaluate(run, data: str | Path | None = None, *, output: str | Path | None = None) -> EvaluateResult:
    """Metrics of a trained run on its own test split, or on a labelled file, preprocessed as in training.

    `expect:` gates on `test_*` metrics are checked against these numbers; other gates
    (`val_loss`, ...) against the run's own metrics.json. Results go to the run folder
    (`evaluation.json`, or `evaluation-<file>.json`) or to `output`.
    """
    import numpy as np

    from .. import runs, training
    from ..data import iter_table, sha256
    from ..errors import DataError
    from ..fileio import is_regular
    from ..preprocessing import UnseenCategories, prepare
    from ..runfiles import check_output, read_metrics
    from ..scoring import class_ids, classification_report, true_ids

    if output is not None:
        _check_suffix(Path(output), (".json",), "evaluation results are written as JSON; give a .json file")
        if data is not None:
            _check_not_same(Path(output), Path(data), "is the --data file; the results would replace it.")
    run_dir = runs.find_run(run)
    written = Path(output) if output is not None else run_dir / ("evaluation.json" if data is None else f"evaluation-{_table_stem(Path(data))}.json")
    check_output(written, "evaluate", [run_dir], where="--output" if output is not None else "RUN")
    run_dir, info, spec, preprocessing, model = _load_run(run)
    trained = read_metrics(run_dir, optional=True) or {}  # gates on training's metrics then report "not reported"
    notes: list[str] = []
    if data is None:
        if spec.data.test == 0:
            raise ConfigError(Problem(f"{run_dir} has no test split (data.test: 0); evaluate it on a labelled file with --data FILE.", where="RUN"))
        for role, entry in info["data"].items():
            path = Path(entry["path"])
            regular = is_regular(path)  # never hash a FIFO or a device: it would block or never end
            if not regular or sha256(path) != entry["sha256"]:
                state = "changed since training (its sha256 differs)" if regular else "is gone (or is not a regular file)"
                raise DataError(f"{path}: the {role} data of {run_dir} {state}, so its test split cannot be rebuilt. Evaluate on a labelled file with --data FILE.")
        prepared = prepare(spec, spec.seed)
        x, y, rows = prepared.test.x, prepared.test.y, prepared.test.rows
        described = f"the test split ({prepared.test.source})"
    else:
        import pandas as pd

        path = Path(data)
        # Read as predict reads: category columns as text in every chunk, other columns as written.
        chunks = iter_table(path, 100_000, parsed_columns=[*preprocessing.feature_columns, preprocessing.target], text_columns=list(preprocessing.categories))
        frame = pd.concat(list(chunks))
        unseen = UnseenCategories()
        x, y, rows = preprocessing.features(frame, path, unseen), preprocessing.targets(frame, path), len(frame)
        notes += unseen.notes()
        described = str(path)

    dataset = training.evaluation_dataset(x, y, spec.fit.batch_size)
    scores_by_name = training.evaluate(model, dataset)
    order = [name for name in spec.metric_names if name in scores_by_name]
    metrics = {name: scores_by_name[name] for name in [*order, *sorted(set(scores_by_name) - set(order))]}
    report = None
    if preprocessing.task == "classification":
        scores = np.asarray(model.predict(training.evaluation_dataset(x, None, spec.fit.batch_size), verbose=0))
        report = classification_report(preprocessing.class_names, true_ids(preprocessing, y), class_ids(preprocessing, scores))

    available = {**trained, **{f"test_{key}": value for key, value in metrics.items()}}
    gates = check_gates(spec, available)
    result = EvaluateResult(run_dir, spec, described, rows, metrics, report, gates, written, tuple(notes))
    runs.write_json(result.written, {**result.to_json(), "evaluated": _now()})
    return result


@dataclass(frozen=True)
class PredictResult:
    run_dir: Path
    rows: int
    output: Path | None  # None: CSV went to the stream
    columns: list[str]
    notes: tuple[str, ...]


def predict(
    run,
    input: str | Path,
    output: str | Path | None = None,
    *,
    stream=None,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> PredictResult:
    """Predict for every row of `input` (CSV or Parquet), streamed in chunks, into `output` or CSV on `stream`.

    Feature columns are matched by name; the input's other columns (ids, ...) are carried
    through exactly as written, followed by `predicted_<target>` and, for classes,
    `probability_<class>`.
    """
    from ..runfiles import TABLE_SUFFIXES, check_output
    from ..runs import TableWriter, find_run
    from ..scoring import PredictionColumns, predict_stream

    output_path = Path(output) if output is not None else None
    if output_path is None and stream is None:
        raise ValueError("predict needs an output file or a text stream")
    if output_path is not None:
        _check_suffix(output_path, TABLE_SUFFIXES, "write predictions to a .csv, .tsv or .parquet file (not compressed)")
        _check_not_same(output_path, Path(input), "is the input file; predictions would replace it. Choose another --output.")
        check_output(output_path, "predict", [find_run(run)])
    run_dir, _, _, preprocessing, model = _load_run(run)
    writer = TableWriter(output_path, stream=stream)
    try:
        rows, unseen = predict_stream(model, preprocessing, Path(input), writer, on_progress=on_progress)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return PredictResult(run_dir, rows, output_path, PredictionColumns.of(preprocessing).names, tuple(unseen.notes()))


def _table_stem(path: Path) -> str:
    """`new.2024.csv.gz` -> `new.2024`: the name without its table and compression suffixes."""
    from ..headers import COMPRESSION_SUFFIXES

    name = path.name
    for suffixes in (COMPRESSION_SUFFIXES, (".csv", ".tsv", ".txt", ".parquet", ".pq")):
        for suffix in suffixes:
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
                break
    return name.lstrip(".") or "data"


def _check_suffix(path: Path, suffixes: tuple[str, ...], message: str) -> None:
    if path.suffix.lower() not in suffixes:
        raise ConfigError(Problem(f"{path}: {message}.", where="--output"))


def _check_not_same(output: Path, other: Path, message: str) -> None:
    same = output.resolve() == other.resolve()
    if not same and output.exists() and other.exists():
        same = os.path.samefile(output, other)
    if same:
        raise ConfigError(Problem(f"{output} {message}", where="--output"))
