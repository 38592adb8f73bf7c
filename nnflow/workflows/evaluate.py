"""`evaluate`: a trained run's metrics on its own test split or on a labelled file, and its gates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, Problem
from ..spec import GateResult, Spec, check_gates
from .trained_run import TrainedRun, check_not_same, check_suffix, load_run


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


@dataclass(frozen=True)
class _Labelled:
    """The rows evaluated, as the model takes them, with their targets."""

    x: Any  # numpy arrays, as the model takes them
    y: Any
    rows: int
    described: str  # "the test split (...)" or the file
    notes: tuple[str, ...] = ()


def evaluate(run, data: str | Path | None = None, *, output: str | Path | None = None) -> EvaluateResult:
    """Metrics of a trained run on its own test split, or on a labelled file, preprocessed as in training.

    `expect:` gates on `test_*` metrics are checked against these numbers; other gates
    (`val_loss`, ...) against the run's own metrics.json. Results go to the run folder
    (`evaluation.json`, or `evaluation-<file>.json`) or to `output`.
    """
    from .. import runs

    written = _checked_output(run, data, output)
    trained = load_run(run)
    metrics_so_far = (
        runs.read_metrics(trained.run_dir, optional=True) or {}
    )  # gates on training's metrics then report "not reported"
    labelled = _test_split(trained) if data is None else _labelled_file(trained, Path(data))
    metrics, report = _scores(trained, labelled)
    available = {**metrics_so_far, **{f"test_{key}": value for key, value in metrics.items()}}
    gates = check_gates(trained.spec, available)
    result = EvaluateResult(
        trained.run_dir,
        trained.spec,
        labelled.described,
        labelled.rows,
        metrics,
        report,
        gates,
        written,
        labelled.notes,
    )
    runs.write_json(result.written, {**result.to_json(), "evaluated": runs.now()})
    return result


def _checked_output(run, data: str | Path | None, output: str | Path | None) -> Path:
    """Where the results go, checked before any work: `output`, or evaluation*.json in the run folder."""
    from ..runs import check_output, find_run

    if output is not None:
        check_suffix(Path(output), (".json",), "evaluation results are written as JSON; give a .json file")
        if data is not None:
            check_not_same(Path(output), Path(data), "is the --data file; the results would replace it.")
    run_dir = find_run(run)
    if output is not None:
        written = Path(output)
    else:
        written = run_dir / ("evaluation.json" if data is None else f"evaluation-{_table_stem(Path(data))}.json")
    check_output(written, "evaluate", [run_dir], where="--output" if output is not None else "RUN")
    return written


def _test_split(trained: TrainedRun) -> _Labelled:
    """The run's own test split, rebuilt from its data files, which must be as they were in training."""
    from ..errors import DataError
    from ..preprocessing import prepare
    from ..runs import changed_data_file

    run_dir, spec = trained.run_dir, trained.spec
    assert spec.data is not None and spec.seed is not None  # a run's experiment.yaml holds both, resolved
    if spec.data.test == 0:
        raise ConfigError(
            Problem(
                f"{run_dir} has no test split (data.test: 0); evaluate it on a labelled file with --data FILE.",
                where="RUN",
            )
        )
    changed = changed_data_file(trained.info)
    if changed is not None:
        state = "is gone (or is not a regular file)" if changed.gone else "changed since training (its sha256 differs)"
        raise DataError(
            f"{changed.path}: the {changed.role} data of {run_dir} {state}, so its test split cannot be rebuilt. Evaluate on a labelled file with --data FILE."
        )
    test = prepare(spec, spec.seed).test
    assert test is not None  # data.test is not 0
    return _Labelled(test.x, test.y, test.rows, f"the test split ({test.source})")


def _labelled_file(trained: TrainedRun, path: Path) -> _Labelled:
    """A labelled file, read as predict reads it: category columns as text in every chunk, other columns as written."""
    import pandas as pd

    from .. import scoring
    from ..data import iter_table
    from ..preprocessing import UnseenCategories

    preprocessing = trained.preprocessing
    chunks = iter_table(
        path,
        scoring.CHUNK_ROWS,
        parsed_columns=[*preprocessing.feature_columns, preprocessing.target],
        text_columns=list(preprocessing.categories),
    )
    frame = pd.concat(list(chunks))
    unseen = UnseenCategories()
    x, y = preprocessing.features(frame, path, unseen), preprocessing.targets(frame, path)
    return _Labelled(x, y, len(frame), str(path), tuple(unseen.notes()))


def _scores(trained: TrainedRun, labelled: _Labelled) -> tuple[dict, dict | None]:
    """(the metrics in the experiment's order, then the others; a classification report for a classifier)."""
    import numpy as np

    from .. import training
    from ..scoring import class_ids, classification_report, true_ids

    spec, preprocessing, model = trained.spec, trained.preprocessing, trained.model
    with training.deterministic_ops():  # as in training: the test split's numbers are training's exactly
        scores_by_name = training.evaluate(
            model, training.evaluation_dataset(labelled.x, labelled.y, spec.fit.batch_size)
        )
    order = [name for name in spec.metric_names if name in scores_by_name]
    metrics = {name: scores_by_name[name] for name in [*order, *sorted(set(scores_by_name) - set(order))]}
    report = None
    if preprocessing.task == "classification":
        scores = np.asarray(
            model.predict(training.evaluation_dataset(labelled.x, None, spec.fit.batch_size), verbose=0)
        )
        report = classification_report(
            preprocessing.class_names, true_ids(preprocessing, labelled.y), class_ids(preprocessing, scores)
        )
    return metrics, report


def _table_stem(path: Path) -> str:
    """`new.2024.csv.gz` -> `new.2024`: the name without its table and compression suffixes."""
    from ..headers import COMPRESSION_SUFFIXES
    from ..runs import TABLE_SUFFIXES

    name = path.name
    for suffixes in (COMPRESSION_SUFFIXES, TABLE_SUFFIXES):
        for suffix in suffixes:
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
                break
    return name.lstrip(".") or "data"
