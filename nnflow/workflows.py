"""One function per command, composing the library; `cli.py` wraps these and prints."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import socket
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

from .errors import ConfigError, NnflowError, Problem, TrainingError, UnsafeModelError
from .spec import COMPILE_KEYS, DATA_KEYS, FIT_KEYS, Spec, load_spec


@dataclass(frozen=True)
class CheckResult:
    spec: Spec

    def to_json(self) -> dict:
        spec = self.spec
        return {
            "ok": True,
            "config": str(spec.source) if spec.source else None,
            "name": spec.name,
            "layers": len(spec.layers),
            "input_shape": list(spec.input_shape) if spec.input_shape else None,
            "metrics": spec.metric_names,
            "gates": [str(g) for g in spec.expect],
            "resolved": spec.to_dict(),
        }


def check(config: str | Path, overrides: Iterable[str] = ()) -> CheckResult:
    """Validate an experiment file and its overrides; never imports TensorFlow."""
    return CheckResult(load_spec(config, overrides))


@dataclass(frozen=True)
class LayerRow:
    name: str
    layer_class: str
    output_shape: str
    params: int


@dataclass(frozen=True)
class CompileResult:
    spec: Spec
    layers: tuple[LayerRow, ...]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    optimizer: str
    loss: str
    metrics: tuple[str, ...]

    def to_json(self) -> dict:
        return {
            "name": self.spec.name,
            "layers": [asdict(row) for row in self.layers],
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "optimizer": self.optimizer,
            "loss": self.loss,
            "metrics": list(self.metrics),
        }


def compile_experiment(config: str | Path, overrides: Iterable[str] = ()) -> CompileResult:
    """Build and compile the model of an experiment file and describe it."""
    from .builder import build_model

    spec = load_spec(config, overrides)
    input_shape = None
    normalizer = None
    if spec.input_shape is None and spec.data is not None:
        from .data import input_width

        input_shape = (input_width(spec.data),)
    if spec.data is not None and spec.data.normalize:
        from ._tf import import_keras

        normalizer = import_keras().layers.Normalization(name="normalization")
    model = build_model(spec, input_shape=input_shape, normalizer=normalizer)
    return describe_model(model, spec)


def describe_model(model, spec: Spec) -> CompileResult:
    import numpy as np

    def count(weights) -> int:
        return int(sum(np.prod(w.shape) for w in weights))

    rows = tuple(
        LayerRow(layer.name, type(layer).__name__, str(tuple(layer.output.shape)).replace(",)", ")"), int(layer.count_params()))
        for layer in model.layers
    )
    optimizer = model.optimizer
    return CompileResult(
        spec=spec,
        layers=rows,
        total_params=int(model.count_params()),
        trainable_params=count(model.trainable_weights),
        non_trainable_params=count(model.non_trainable_weights),
        optimizer=f"{type(optimizer).__name__}(learning_rate={float(optimizer.learning_rate.numpy()) if hasattr(optimizer.learning_rate, 'numpy') else optimizer.learning_rate:g})",
        loss=spec.compile.loss.name,
        metrics=tuple(m.output_name for m in spec.compile.metrics),
    )


# ---------------------------------------------------------------------------
# train


@dataclass(frozen=True)
class GateResult:
    metric: str
    condition: str
    value: float | None
    passed: bool

    def __str__(self) -> str:
        shown = "not reported" if self.value is None else f"{self.value:.4g}"
        return f"{self.metric} = {shown}, expected {self.condition}"


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    spec: Spec
    metrics: dict
    gates: tuple[GateResult, ...]
    epochs_completed: int
    stopped_early: bool
    resumed_at: int | None  # the epoch a resumed run continued after
    seconds: float
    timing: dict
    notes: tuple[str, ...]

    @property
    def failed_gates(self) -> list[GateResult]:
        return [gate for gate in self.gates if not gate.passed]


@dataclass
class Progress:
    """How training reports as it goes; `cli.py` supplies the printing."""

    verbose: int = 0  # 1: Keras's own progress bar
    on_epoch: Callable[[dict, int], None] | None = None  # (history row, configured epochs)
    on_note: Callable[[str], None] | None = None


def check_gates(spec: Spec, metrics: dict) -> tuple[GateResult, ...]:
    """Each `expect:` gate against the final metrics; a metric not reported fails its gate."""
    results = []
    for gate in spec.expect:
        value = metrics.get(gate.metric)
        results.append(GateResult(gate.metric, gate.condition, value, gate.holds(value)))
    return tuple(results)


def train(
    config: str | Path | None = None,
    overrides: Iterable[str] = (),
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    progress: Progress | None = None,
    command: list[str] | None = None,
) -> TrainResult:
    """Train the experiment of `config` into a new run folder, or continue the run `resume`.

    Data problems raise before any folder is made. Once the run folder exists, its
    `run.json` always tells the truth: running, completed, failed or interrupted.
    """
    from . import runs

    progress = progress or Progress()
    command = list(sys.argv if command is None else command)
    checkpoint = None
    if resume is not None:
        run_dir = runs.find_run(resume)
        info = runs.read_json(run_dir / runs.RUN_FILE)
        _check_resumable(run_dir, info)
        _check_same_files(run_dir, info)
        spec = load_spec(run_dir / "experiment.yaml")
        seed = spec.seed
        checkpoint = _read_checkpoint(run_dir)
    else:
        spec = load_spec(config, overrides)
        if spec.data is None:
            raise ConfigError(Problem("`nnflow train` needs a `data:` section: the table to train on (`train:`) and its `target:`.", where=str(spec.source)))
        if out is not None:
            runs.check_new_folder(out)
        seed = spec.seed if spec.seed is not None else secrets.randbelow(2**31)
        info = None

    from .data import prepare

    prepared = prepare(spec, seed)
    for note in prepared.notes:
        if progress.on_note:
            progress.on_note(note)
    if info is not None:
        _check_same_preprocessing(run_dir, prepared)
    resumed = (run_dir, info, checkpoint) if info else None
    return _run_training(spec, seed, prepared, progress, command, out=out, resumed=resumed)


def _read_checkpoint(run_dir: Path):
    from . import runs

    try:
        return runs.load_checkpoint(run_dir)
    except Exception as error:  # a truncated or foreign file: whatever numpy raises
        raise ConfigError(Problem(
            f"{run_dir / runs.CHECKPOINT_FILE} cannot be read ({type(error).__name__}: {error}); "
            "the run cannot be resumed. Start a new run with `nnflow train CONFIG`.",
            where="--resume",
        )) from None


def _check_resumable(run_dir: Path, info: dict) -> None:
    status = info.get("status")
    if status == "completed":
        raise ConfigError(Problem(f"{run_dir} finished training already; there is nothing to resume. Start a new run with `nnflow train CONFIG`.", where="--resume"))
    if status == "failed":
        raise ConfigError(Problem(f"{run_dir} failed ({info.get('error', 'see run.json')}); resuming would repeat it. Start a new run.", where="--resume"))
    if status == "running" and info.get("host") == socket.gethostname() and _alive(info.get("pid")):
        raise ConfigError(Problem(f"{run_dir} is still being trained by process {info['pid']}; wait for it or stop it first.", where="--resume"))


def _alive(pid) -> bool:
    """Whether `pid` is a live nnflow process (a reused pid running something else is not)."""
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            if b"nnflow" not in cmdline.read():
                return False
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): fall back to the signal probe
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process can linger as a zombie until its parent reaps it
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _check_same_files(run_dir: Path, info: dict) -> None:
    """The data files the run started with, unchanged (checked before reading them)."""
    from .data import sha256
    from .errors import DataError

    for role, entry in info.get("data", {}).items():
        path = Path(entry["path"])
        if not path.exists():
            raise DataError(f"{path}: the {role} data of {run_dir} is gone; it cannot be resumed. Start a new run.")
        if sha256(path) != entry["sha256"]:
            raise DataError(f"{path}: the {role} data changed since {run_dir} started (its sha256 differs); resuming would mix two datasets. Start a new run.")


def _check_same_preprocessing(run_dir: Path, prepared) -> None:
    from . import runs
    from .errors import DataError

    saved = runs.read_json(run_dir / "preprocessing.json")
    if saved != json.loads(json.dumps(prepared.preprocessing.to_json())):
        raise DataError(f"{run_dir}: the data no longer prepares as it did when the run started (another nnflow version?); start a new run.")


def _versions() -> dict:
    import platform

    import keras
    import numpy
    import pandas
    import tensorflow

    from . import __version__

    return {
        "nnflow": __version__,
        "keras": keras.__version__,
        "tensorflow": tensorflow.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "python": platform.python_version(),
    }


def _now() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def _run_training(spec: Spec, seed: int, prepared, progress: Progress, command, *, out, resumed) -> TrainResult:
    from . import runs, training
    from .builder import build_callbacks, build_model, normalization_layer
    from .data import sha256

    started_clock = time.perf_counter()
    preprocessing = prepared.preprocessing
    train_split, validation = prepared.train, prepared.validation
    batch_size, epochs = spec.fit.batch_size, spec.fit.epochs
    steps = training.steps_per_execution(spec.compile.steps_per_execution, train_split.rows, batch_size)

    training.seed_everything(seed)
    normalizer = None
    if preprocessing.normalize:
        normalizer = normalization_layer(preprocessing.mean, preprocessing.variance, preprocessing.input_shape)
    model = build_model(spec, input_shape=tuple(preprocessing.input_shape), normalizer=normalizer, steps_per_execution=steps)
    training.check_output(model, preprocessing, spec)

    checkpoint = None
    if resumed:
        run_dir, info, checkpoint = resumed
        runs.remove_partial_files(run_dir)
        info["resumes"] = [*info.get("resumes", []), {"at": _now(), "command": shlex.join(command)}]
    else:
        run_dir = runs.new_run_dir(spec.name, out)
        info = {
            "format": runs.RUN_FORMAT,
            "name": spec.name,
            "config": str(spec.source) if spec.source else None,
            "command": shlex.join(command),
            "seed": seed,
            "started": _now(),
            "data": {role: {"path": str(path.resolve()), "sha256": sha256(path)} for role, path in prepared.files.items()},
            "rows": {role: split.rows for role, split in prepared.splits.items()},
            "versions": _versions(),
        }
        runs.write_text_atomic(run_dir / "experiment.yaml", _resolved_yaml(spec, seed))
        runs.write_json(run_dir / "preprocessing.json", preprocessing.to_json())
    info.update(status="running", pid=os.getpid(), host=socket.gethostname(), steps_per_execution=steps)
    info.update(epochs={"configured": epochs, "completed": info.get("epochs", {}).get("completed", 0)})
    info.pop("error", None)
    runs.write_json(run_dir / runs.RUN_FILE, info)

    try:
        user_callbacks = build_callbacks(spec, base_dir=run_dir)
        callbacks = list(user_callbacks)
        history: list[dict] = []
        initial_epoch = 0
        stopped = False
        if checkpoint is not None:
            state, arrays = checkpoint
            runs.restore_weights(model, arrays)
            history = state["history"]
            initial_epoch = state["epochs_completed"]
            stopped = state.get("stopped", False)
            callbacks.append(training.restore_callbacks(user_callbacks, state["callbacks"], arrays, initial_epoch))

        stream = training.TrainingStream(
            train_split.x,
            train_split.y,
            batch_size,
            shuffle=spec.fit.shuffle,
            seed=seed,
            epochs=epochs,
            initial_epoch=initial_epoch,
            steps_per_execution=steps,
        )
        validation_data = training.evaluation_dataset(validation.x, validation.y, batch_size) if validation else None

        checkpointer = runs.Checkpointer(run_dir, model)

        def on_epoch(row: dict) -> None:
            # Checkpoint first, then report: every epoch a user has seen reported can be resumed.
            states, arrays = training.callback_state(user_callbacks)
            state = {"epochs_completed": row["epoch"], "stopped": bool(model.stop_training), "history": history, "callbacks": states}
            checkpointer.save(state, arrays)
            runs.write_text_atomic(run_dir / "history.csv", runs.history_csv(history), durable=False)
            if progress.on_epoch:
                progress.on_epoch(row, epochs)

        outcome = training.fit(
            model,
            stream,
            validation_data,
            epochs=initial_epoch if stopped else epochs,  # a callback had stopped it: only finish (restore best weights)
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            history=history,
            on_epoch=on_epoch,
            verbose=progress.verbose,
        )
        completed = len(history) if outcome.nan_epoch is None else outcome.nan_epoch - 1
        info["epochs"]["completed"] = completed
        info["timing"] = {
            "fit_seconds": round(outcome.fit_seconds, 4),
            "train_rows": train_split.rows,
            "epochs": outcome.epochs_run,
            "rows_per_second": round(train_split.rows * outcome.epochs_run / outcome.fit_seconds, 1) if outcome.fit_seconds else None,
        }
        if outcome.nan_epoch is not None:
            runs.write_text_atomic(run_dir / "history.csv", runs.history_csv(history))
            error = training.nan_error(outcome.nan_epoch, history, spec)
            _finish(run_dir, info, "failed", started_clock, error=str(error))
            raise type(error)(f"{error} The run {run_dir} is marked failed.")

        metrics: dict[str, float] = {}
        for role, prefix in (("train", ""), ("validation", "val_"), ("test", "test_")):
            split = prepared.splits.get(role)
            if split is not None:
                scores = training.evaluate(model, training.evaluation_dataset(split.x, split.y, batch_size))
                metrics.update({prefix + key: value for key, value in scores.items()})
        gates = check_gates(spec, metrics)
        runs.write_text_atomic(run_dir / "history.csv", runs.history_csv(history))
        runs.write_json(run_dir / "metrics.json", metrics)
        runs.save_model(model, run_dir / "model.keras")
        info["gates"] = [{"metric": g.metric, "condition": g.condition, "value": g.value, "passed": g.passed} for g in gates]
        _finish(run_dir, info, "completed", started_clock)
        runs.remove_checkpoint(run_dir)
    except KeyboardInterrupt as interrupt:
        _finish(run_dir, info, "interrupted", started_clock)
        interrupt.run_dir = run_dir  # for the message that says how to resume
        raise
    except NnflowError as error:
        if not isinstance(error, TrainingError):  # a NaN loss has marked the run already
            _finish(run_dir, info, "failed", started_clock, error=str(error))
        raise
    except BaseException as error:
        _finish(run_dir, info, "failed", started_clock, error=f"{type(error).__name__}: {error}")
        raise
    return TrainResult(
        run_dir=run_dir,
        spec=spec,
        metrics=metrics,
        gates=gates,
        epochs_completed=completed,
        stopped_early=completed < epochs,
        resumed_at=initial_epoch if resumed else None,
        seconds=time.perf_counter() - started_clock,
        timing=info["timing"],
        notes=tuple(prepared.notes),
    )


def _finish(run_dir: Path, info: dict, status: str, started_clock: float, *, error: str | None = None) -> None:
    from . import runs

    info.update(status=status, ended=_now(), duration_seconds=round(info.get("duration_seconds", 0) + time.perf_counter() - started_clock, 3))
    if error:
        info["error"] = error
    runs.write_json(run_dir / runs.RUN_FILE, info)


def _resolved_yaml(spec: Spec, seed: int) -> str:
    """The experiment as it ran: defaults, overrides and the seed filled in; data paths absolute."""
    import yaml

    resolved = spec.to_dict()
    resolved["seed"] = seed
    data = dict(resolved["data"])
    for key in ("train", "validation", "test"):
        value = getattr(spec.data, key)
        if isinstance(value, Path):
            data[key] = str(value.resolve())
    resolved["data"] = data
    # In the order SPEC.md writes them, not the order defaults were merged in.
    for section, keys in (("data", DATA_KEYS), ("compile", COMPILE_KEYS), ("fit", FIT_KEYS)):
        if isinstance(resolved.get(section), dict):
            resolved[section] = {key: resolved[section][key] for key in keys if key in resolved[section]}
    header = f"# The resolved experiment of this run (defaults, overrides and seed applied).\n# From: {spec.source}" + (
        f" with --set {' --set '.join(spec.overrides)}" if spec.overrides else ""
    ) + "\n"
    return header + yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True)


# ---------------------------------------------------------------------------
# evaluate and predict


def _load_run(run):
    """(run folder, run.json, spec, preprocessing, model) of a finished run, the model loaded safely.

    The model file is checked before anything else of the run is read; the model is then
    compiled from the run's own experiment file and must fit its preprocessing.
    """
    from . import runs
    from .builder import compile_model
    from .data import Preprocessing
    from .modelfile import check_model_file, load_model

    run_dir, info, model_path = runs.open_run(run)
    check_model_file(model_path)
    try:
        spec = load_spec(run_dir / "experiment.yaml")
    except ConfigError as error:
        raise UnsafeModelError(f"{run_dir / 'experiment.yaml'} does not load (was the run written by another nnflow version?):\n{error}") from None
    try:
        preprocessing = Preprocessing.from_json(runs.read_json(run_dir / "preprocessing.json"))
    except (OSError, ValueError, TypeError) as error:
        raise UnsafeModelError(f"{run_dir / 'preprocessing.json'}: unreadable or from another nnflow version ({error}).") from None
    model = load_model(model_path)
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
            "run": str(self.run_dir),
            "data": self.data,
            "rows": self.rows,
            "metrics": self.metrics,
            "classification": self.report,
            "gates": [{"metric": g.metric, "condition": g.condition, "value": g.value, "passed": g.passed} for g in self.gates],
            "notes": list(self.notes),
        }


def evaluate(run, data: str | Path | None = None, *, output: str | Path | None = None) -> EvaluateResult:
    """Metrics of a trained run on its own test split, or on a labelled file, preprocessed as in training.

    `expect:` gates on `test_*` metrics are checked against these numbers; other gates
    (`val_loss`, ...) against the run's own metrics.json. Results go to the run folder
    (`evaluation.json`, or `evaluation-<file>.json`) or to `output`.
    """
    import numpy as np

    from . import runs, training
    from .data import UnseenCategories, iter_table, prepare, sha256
    from .errors import DataError
    from .scoring import class_ids, classification_report, true_ids

    if output is not None:
        _check_output(Path(output), (".json",), "evaluation results are written as JSON; give a .json file")
        if data is not None:
            _check_not_same(Path(output), Path(data), "is the --data file; the results would replace it.")
    run_dir, info, spec, preprocessing, model = _load_run(run)
    if output is not None and Path(output).resolve().parent == run_dir.resolve() and not Path(output).name.startswith("evaluation"):
        raise ConfigError(Problem(f"{output} would overwrite a file of the run; name it evaluation-*.json or put it elsewhere.", where="--output"))
    notes: list[str] = []
    if data is None:
        if spec.data.test == 0:
            raise ConfigError(Problem(f"{run_dir} has no test split (data.test: 0); evaluate it on a labelled file with --data FILE.", where="RUN"))
        for role, entry in info.get("data", {}).items():
            path = Path(entry["path"])
            if not path.exists() or sha256(path) != entry["sha256"]:
                state = "is gone" if not path.exists() else "changed since training (its sha256 differs)"
                raise DataError(f"{path}: the {role} data of {run_dir} {state}, so its test split cannot be rebuilt. Evaluate on a labelled file with --data FILE.")
        prepared = prepare(spec, spec.seed)
        x, y, rows = prepared.test.x, prepared.test.y, prepared.test.rows
        described = f"the test split ({prepared.test.source})"
        default_output = run_dir / "evaluation.json"
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
        default_output = run_dir / f"evaluation-{_table_stem(path)}.json"

    dataset = training.evaluation_dataset(x, y, spec.fit.batch_size)
    scores_by_name = training.evaluate(model, dataset)
    order = [name for name in spec.metric_names if name in scores_by_name]
    metrics = {name: scores_by_name[name] for name in [*order, *sorted(set(scores_by_name) - set(order))]}
    report = None
    if preprocessing.task == "classification":
        scores = np.asarray(model.predict(training.evaluation_dataset(x, None, spec.fit.batch_size), verbose=0))
        report = classification_report(preprocessing.class_names, true_ids(preprocessing, y), class_ids(preprocessing, scores))

    try:
        trained = runs.read_json(run_dir / "metrics.json")
    except (OSError, ValueError):
        trained = {}  # gates on training's metrics then report "not reported"
    if not isinstance(trained, dict):
        trained = {}
    available = {**trained, **{f"test_{key}": value for key, value in metrics.items()}}
    gates = check_gates(spec, available)
    result = EvaluateResult(run_dir, spec, described, rows, metrics, report, gates, Path(output) if output else default_output, tuple(notes))
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
    from .runs import TableWriter
    from .scoring import PredictionColumns, predict_stream

    output_path = Path(output) if output is not None else None
    if output_path is None and stream is None:
        raise ValueError("predict needs an output file or a text stream")
    if output_path is not None:
        _check_output(output_path, (".csv", ".tsv", ".txt", ".parquet", ".pq"), "write predictions to a .csv, .tsv or .parquet file (not compressed)")
        _check_not_same(output_path, Path(input), "is the input file; predictions would replace it. Choose another --output.")
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
    from .data import COMPRESSION_SUFFIXES

    name = path.name
    for suffixes in (COMPRESSION_SUFFIXES, (".csv", ".tsv", ".txt", ".parquet", ".pq")):
        for suffix in suffixes:
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
                break
    return name.lstrip(".") or "data"


def _check_output(path: Path, suffixes: tuple[str, ...], message: str) -> None:
    if path.suffix.lower() not in suffixes:
        raise ConfigError(Problem(f"{path}: {message}.", where="--output"))
    if path.is_dir():
        raise ConfigError(Problem(f"{path} is a folder; give a file name.", where="--output"))


def _check_not_same(output: Path, other: Path, message: str) -> None:
    same = output.resolve() == other.resolve()
    if not same and output.exists() and other.exists():
        same = os.path.samefile(output, other)
    if same:
        raise ConfigError(Problem(f"{output} {message}", where="--output"))
