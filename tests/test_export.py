"""`nnflow export`: SavedModel and TFLite exports that predict as the run does; ONNX says what it needs."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import CONFIGS, DATA
from nnflow.cli import cli
from nnflow.workflows import train


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train(
        CONFIGS / "iris.yaml", ["fit.epochs=3", "expect={}"], out=tmp_path_factory.mktemp("export") / "iris"
    ).run_dir


def rows_and_expected(run):
    import json

    import keras

    from nnflow.data import read_table
    from nnflow.preprocessing import Preprocessing

    preprocessing = Preprocessing.from_json(json.loads((run / "preprocessing.json").read_text()))
    rows = preprocessing.features(read_table(DATA / "iris.csv").sample(n=20, random_state=1), DATA / "iris.csv")
    return rows, keras.saving.load_model(run / "model.keras").predict(rows, verbose=0)


def test_savedmodel_serves_the_runs_predictions(run):
    import tensorflow as tf

    result = invoke("export", run, "--format", "savedmodel")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote {run / 'export' / 'savedmodel'} (savedmodel; 8 rows checked")
    rows, expected = rows_and_expected(run)
    loaded = tf.saved_model.load(str(run / "export" / "savedmodel"))
    assert np.allclose(loaded.serve(rows).numpy(), expected, atol=1e-5)
    again = invoke("export", run, "--format", "savedmodel")
    assert again.exit_code == 2 and "exists already" in again.stderr


def test_tflite_predicts_as_the_run(run, tmp_path):
    import tensorflow as tf

    target = tmp_path / "iris.tflite"
    assert invoke("export", run, "-f", "tflite", "-o", target).exit_code == 0
    rows, expected = rows_and_expected(run)
    interpreter = tf.lite.Interpreter(model_path=str(target))
    source, sink = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(source["index"], rows.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], rows)
    interpreter.invoke()
    assert np.allclose(interpreter.get_tensor(sink["index"]), expected, atol=1e-5)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no work folder left behind


def test_onnx_predicts_as_the_run(run, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")

    target = tmp_path / "iris.onnx"
    result = invoke("export", run, "-f", "onnx", "-o", target)
    assert result.exit_code == 0, result.output
    rows, expected = rows_and_expected(run)
    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [
        "inputs"
    ]  # the Normalization statistics are constants, not inputs
    assert np.allclose(session.run(["outputs"], {"inputs": rows})[0], expected, atol=1e-5)


@pytest.mark.parametrize("missing", ["onnxruntime", "tf2onnx"])
def test_onnx_says_what_to_install_when_it_is_missing(run, tmp_path, monkeypatch, missing):
    monkeypatch.setitem(__import__("sys").modules, missing, None)  # import fails as if not installed
    result = invoke("export", run, "-f", "onnx", "-o", tmp_path / "m.onnx")
    assert result.exit_code == 2 and "pip install 'nnflow[onnx]'" in result.stderr
    assert not list(tmp_path.iterdir())  # nothing written, no work folder left


def test_unknown_formats_are_refused_by_the_command_line(run):
    result = invoke("export", run, "--format", "pickle")
    assert result.exit_code == 2 and "pickle" in result.output


@pytest.mark.parametrize(
    ("format", "name", "message"),
    [
        ("tflite", "x.onnx", "a tflite export is a TensorFlow Lite flatbuffer; give a .tflite file"),
        ("onnx", "x.tflite", "an ONNX model; give a .onnx file"),
        ("savedmodel", "x.tflite", "a savedmodel export is a folder; give a folder name"),
    ],
)
def test_an_output_of_another_formats_extension_is_refused(run, tmp_path, format, name, message):
    result = invoke("export", run, "-f", format, "-o", tmp_path / name)
    assert result.exit_code == 2 and message in result.stderr and not list(tmp_path.iterdir())


def test_export_writes_only_under_the_runs_export_folder(run, tmp_path):
    (tmp_path / "file.txt").write_text("x")
    result = invoke("export", run, "-f", "tflite", "-o", tmp_path / "file.txt" / "m.tflite")
    assert result.exit_code == 2 and "file.txt is a file, not a folder" in result.stderr
    result = invoke("export", run, "-f", "tflite", "-o", run / "model.tflite")
    assert result.exit_code == 2 and "in a run folder, export writes only exports under RUN/export/" in result.stderr
    assert not (run / "model.tflite").exists()


def test_tflite_start_up_chatter_is_filtered_but_real_errors_pass():
    from nnflow._tf import is_noise

    assert is_noise("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    assert not is_noise("INFO: Created TensorFlow Lite XNNPACK delegate for CPU. Then something failed.\n")
    assert not is_noise("ERROR: tflite conversion failed\n")
