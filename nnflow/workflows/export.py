"""`export`: a trained run's model in the formats serving systems take, checked against the run.

SavedModel through Keras's `model.export`, TFLite through TensorFlow's converter from that
SavedModel, ONNX through tf2onnx from the frozen forward pass when the `onnx` extra is
installed. Each export is written beside its final name and moved into place only after its
predictions on a few rows match the run's own model.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, Problem

if TYPE_CHECKING:  # numpy loads with the model, never for `nnflow check`
    import numpy as np

FORMATS = ("savedmodel", "tflite", "onnx")
DEFAULT_NAMES = {"savedmodel": "savedmodel", "tflite": "model.tflite", "onnx": "model.onnx"}
FILE_SUFFIXES = {
    "tflite": ".tflite",
    "onnx": ".onnx",
    "keras": ".keras",
    "h5": ".h5",
}  # what a savedmodel folder is not named
DESCRIPTIONS = {"savedmodel": "a folder", "tflite": "a TensorFlow Lite flatbuffer", "onnx": "an ONNX model"}
TOLERANCE = 1e-4  # largest difference in any output; float32 graphs may round differently


@dataclass(frozen=True)
class ExportResult:
    output: Path
    format: str
    rows_checked: int
    max_difference: float


def export(run, format: str, output: str | Path | None = None) -> ExportResult:
    """Export RUN's model as `format` (savedmodel, tflite, onnx) and check it predicts as the run does."""
    import os

    from ..runs import check_output, find_run, output_error
    from .trained_run import load_run

    if format not in FORMATS:
        raise ConfigError(Problem(f"unknown format {format!r}; use one of {', '.join(FORMATS)}.", where="--format"))
    where = "--output" if output else "RUN"
    run_dir = find_run(run)
    target = Path(output) if output else run_dir / "export" / DEFAULT_NAMES[format]
    suffix = target.suffix.lower()
    if output and (suffix in FILE_SUFFIXES.values() if format == "savedmodel" else suffix != FILE_SUFFIXES[format]):
        wanted = "a folder name (no file extension)" if format == "savedmodel" else f"a {FILE_SUFFIXES[format]} file"
        raise ConfigError(
            Problem(f"{target}: a {format} export is {DESCRIPTIONS[format]}; give {wanted}.", where="--output")
        )
    if os.path.lexists(target):
        raise ConfigError(Problem(f"{target} exists already; remove it or give another --output.", where=where))
    check_output(target, "export", [run_dir], folder=format == "savedmodel", where=where)
    if format == "onnx":
        _onnx_packages()  # before the model is loaded: say what to install first
    run_dir, info, _, preprocessing, model = load_run(run)
    rows = _sample_rows(info, preprocessing)
    import numpy as np

    expected = np.asarray(model.predict(rows, verbose=0))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as error:
        raise output_error(target, error) from None
    try:
        if format == "onnx":
            produced, predicted = _onnx(model, rows, work)
        else:
            saved = work / "savedmodel"
            model.export(str(saved), format="tf_saved_model", verbose=False)
            if format == "savedmodel":
                produced, predicted = saved, _run_savedmodel(saved, rows)
            else:
                produced, predicted = _tflite(saved, rows, work)
        difference = float(np.max(np.abs(np.asarray(predicted).reshape(expected.shape) - expected)))
        if not difference <= TOLERANCE:
            raise ConfigError(
                Problem(
                    f"the {format} export predicts differently from the run (max difference {difference:.3g}); it was not written.",
                    where="--format",
                )
            )
        produced.rename(target)
    except OSError as error:  # a full disk, an I/O error: nothing is left under the target's name
        raise output_error(target, error) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ExportResult(target, format, len(rows), difference)


def _sample_rows(info: dict, preprocessing) -> np.ndarray:
    """A few real rows from the run's training file, transformed as in training; random ones if it is gone."""
    from ..data import read_table
    from ..fileio import is_regular

    train = Path(info["data"]["train"]["path"]) if "train" in info["data"] else None
    if train is not None and is_regular(train):  # never a FIFO or a device: it would block
        try:
            return preprocessing.features(read_table(train, nrows=8), train)
        except Exception:  # the data changed shape: the check still needs inputs of the right shape
            pass
    import numpy as np

    return np.random.default_rng(0).normal(size=(8, *preprocessing.input_shape)).astype("float32")


def _run_savedmodel(path: Path, rows: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # kept while it serves: its variables live in this object
    return loaded.serve(rows).numpy()


def _tflite(saved: Path, rows: np.ndarray, work: Path) -> tuple[Path, np.ndarray]:
    import tensorflow as tf

    flat = tf.lite.TFLiteConverter.from_saved_model(str(saved)).convert()
    path = work / "model.tflite"
    path.write_bytes(flat)
    with warnings.catch_warnings():  # tf.lite.Interpreter announces its move to ai_edge_litert
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_content=flat)
    source, sink = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(source["index"], rows.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], rows)
    interpreter.invoke()
    return path, interpreter.get_tensor(sink["index"])


def _onnx(model, rows: np.ndarray, work: Path) -> tuple[Path, np.ndarray]:
    """The model's forward pass frozen to constants and converted by tf2onnx: input `inputs`, output `outputs`.

    Keras's own ONNX exporter hands tf2onnx a function whose captured constants (the
    Normalization layer's mean and variance) become extra graph inputs that no caller can
    feed, so nnflow freezes the function itself first.
    """
    onnxruntime, tf2onnx = _onnx_packages()
    import logging

    import tensorflow as tf

    from .._keras_compat import freeze, patch_tf2onnx

    spec = tf.TensorSpec((None, *rows.shape[1:]), tf.float32, name="inputs")
    function = tf.function(lambda inputs: model(inputs, training=False)).get_concrete_function(spec)
    frozen = freeze(function)
    path = work / "model.onnx"
    quiet = [logging.getLogger(name) for name in ("tf2onnx", "tensorflow")]
    levels = [logger.level for logger in quiet]
    try:
        for logger in quiet:  # tf2onnx reports each rewrite; TensorFlow its v1 deprecations
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            patch_tf2onnx()  # tf2onnx 1.17 still uses numpy 1 names; Keras ships the patch it applies for its own exporter
            tf2onnx.convert.from_graph_def(
                frozen.graph.as_graph_def(),
                name=model.name,
                input_names=[frozen.inputs[0].name],
                output_names=[frozen.outputs[0].name],
                tensors_to_rename={frozen.inputs[0].name: "inputs", frozen.outputs[0].name: "outputs"},
                output_path=str(path),
            )
    except Exception as error:  # an operation tf2onnx cannot convert, say
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ConfigError(
            Problem(
                f"tf2onnx could not convert this model ({type(error).__name__}: {first}); export it as savedmodel or tflite instead.",
                where="--format onnx",
            )
        ) from None
    finally:
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return path, session.run(["outputs"], {"inputs": rows})[0]


def _onnx_packages():
    try:
        import onnxruntime
        import tf2onnx
    except ImportError:
        raise ConfigError(
            Problem(
                "ONNX export needs the packages of the `onnx` extra: pip install 'nnflow[onnx]' (onnx, tf2onnx, onnxruntime).",
                where="--format onnx",
            )
        ) from None
    return onnxruntime, tf2onnx
