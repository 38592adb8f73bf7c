"""Model files are refused (exit 6) unless they are plain Keras `.keras` files; no code from them ever runs.

The malicious and broken files are built here, inside a copy of a real run folder.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import CONFIGS, DATA
from nnflow.cli import cli
from nnflow.errors import UnsafeModelError
from nnflow.modelfile import check_model_file


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    from nnflow.workflows import train

    return train(
        CONFIGS / "iris.yaml", ["fit.epochs=2", "expect={}"], out=tmp_path_factory.mktemp("run") / "iris"
    ).run_dir


@pytest.fixture
def run_copy(trained, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def predict(run: Path | str, tmp_path: Path):
    return CliRunner().invoke(
        cli, ["predict", str(run), "--input", str(DATA / "iris.csv"), "--output", str(tmp_path / "out.csv")]
    )


def assert_refused(result, tmp_path: Path, fragment: str):
    assert result.exit_code == 6, result.output
    assert fragment in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "out.csv").exists()


def lambda_model(path: Path, trace: Path):
    """A model whose Lambda layer leaves `trace` behind whenever its code runs."""
    import keras

    code = f"lambda x: (open({str(trace)!r}, 'w').close(), x)[1]"
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Lambda(eval(code)), keras.layers.Dense(3, activation="softmax")]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.save(path)
    trace.unlink(missing_ok=True)  # building the model above ran it once


def test_a_lambda_model_is_refused_and_its_code_never_runs(run_copy, tmp_path):
    trace = tmp_path / "lambda-ran"
    lambda_model(run_copy / "model.keras", trace)
    assert not trace.exists()

    assert_refused(predict(run_copy, tmp_path), tmp_path, "refused: model > Sequential")
    assert "a Lambda layer carries Python code" in predict(run_copy, tmp_path).stderr
    result = CliRunner().invoke(cli, ["evaluate", str(run_copy)])
    assert result.exit_code == 6 and "Lambda" in result.stderr
    assert not trace.exists(), "code from the model file ran"


def test_control_the_same_lambda_file_does_run_code_when_loaded_unsafely(tmp_path):
    """Proves the payload above is live: without the guards, loading it runs its code."""
    import keras

    trace = tmp_path / "lambda-ran"
    lambda_model(tmp_path / "evil.keras", trace)
    model = keras.saving.load_model(tmp_path / "evil.keras", safe_mode=False)
    model.predict(np.zeros((1, 4)), verbose=0)
    assert trace.exists()


def rewrite_config(path: Path, change) -> None:
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    change(config)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_objects_from_outside_keras_are_refused(run_copy, tmp_path):
    def point_at_os(config):
        layer = config["config"]["layers"][-1]
        layer.update(module="os", class_name="system")

    rewrite_config(run_copy / "model.keras", point_at_os)
    assert_refused(predict(run_copy, tmp_path), tmp_path, "comes from module 'os'")


def test_registered_custom_objects_are_refused(run_copy, tmp_path):
    def custom(config):
        config["config"]["layers"][-1]["registered_name"] = "mypackage>Evil"

    rewrite_config(run_copy / "model.keras", custom)
    assert_refused(predict(run_copy, tmp_path), tmp_path, "is a custom object ('mypackage>Evil')")


def test_legacy_h5_files_are_refused(run_copy, tmp_path):
    import keras

    model = keras.saving.load_model(run_copy / "model.keras")
    model.save(run_copy / "model.h5")
    assert_refused(predict(run_copy / "model.h5", tmp_path), tmp_path, "a legacy HDF5 (.h5) model is refused")
    shutil.copy(run_copy / "model.h5", run_copy / "model.keras")  # HDF5 content under a .keras name
    assert_refused(predict(run_copy, tmp_path), tmp_path, "a legacy HDF5 (.h5) model is refused")


def test_a_saved_model_is_refused(run_copy, tmp_path):
    (run_copy / "model.keras").unlink()
    (run_copy / "model.keras").mkdir()
    (run_copy / "model.keras" / "saved_model.pb").write_bytes(b"\x08\x01")
    assert_refused(predict(run_copy, tmp_path), tmp_path, "a TensorFlow SavedModel is refused")


def test_truncated_and_corrupt_files_are_refused(run_copy, tmp_path):
    model = run_copy / "model.keras"
    data = model.read_bytes()
    model.write_bytes(data[: len(data) // 2])
    assert_refused(predict(run_copy, tmp_path), tmp_path, "it is not a zip archive); it may be truncated or corrupt")

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo("model.weights.h5")
    corrupt = bytearray(data)
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)  # the member's data
    corrupt[start + info.compress_size // 2] ^= 0xFF
    model.write_bytes(bytes(corrupt))
    assert_refused(predict(run_copy, tmp_path), tmp_path, "model.weights.h5 inside it fails its checksum")


def test_a_run_from_a_newer_nnflow_gets_a_clear_message(run_copy, tmp_path):
    info = json.loads((run_copy / "run.json").read_text())
    (run_copy / "run.json").write_text(json.dumps({**info, "format": 99, "versions": {"nnflow": "9.0"}}))
    assert_refused(predict(run_copy, tmp_path), tmp_path, "was written by nnflow 9.0 (run format 99); this nnflow")


def test_the_trained_model_passes_the_check(trained):
    config = check_model_file(trained / "model.keras")
    assert config["class_name"] == "Sequential"
    with pytest.raises(UnsafeModelError):
        check_model_file(trained / "nothing.keras")


def rezip(path: Path, change_members=None, compression=zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    if change_members:
        change_members(members)
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_a_damaged_deflated_member_is_refused(run_copy, tmp_path):
    model = run_copy / "model.keras"
    rezip(model, compression=zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(model) as archive:
        info = archive.getinfo("config.json")
    data = bytearray(model.read_bytes())
    data[info.header_offset + 30 + len(info.filename) + len(info.extra) + 5] ^= 0xFF
    model.write_bytes(bytes(data))
    assert_refused(predict(run_copy, tmp_path), tmp_path, "corrupt")


def test_members_a_keras_model_never_has_and_zip_bombs_are_refused(trained, tmp_path):
    for case, change, fragment in (
        (
            "extra",
            lambda members: members.update({"../../evil.py": b"print(1)"}),
            "holds files a Keras model of nnflow's never has",
        ),
        (
            "bomb",
            lambda members: members.update({"config.json": members["config.json"] + b" " * (40 << 20)}),
            "expands to",
        ),
    ):
        run = tmp_path / case
        shutil.copytree(trained, run)
        rezip(run / "model.keras", change, compression=zipfile.ZIP_DEFLATED)
        assert_refused(predict(run, tmp_path), tmp_path, fragment)


def test_a_model_that_does_not_fit_its_run_is_refused(run_copy, tmp_path):
    import keras

    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, activation="softmax")])
    model.save(run_copy / "model.keras")
    assert_refused(predict(run_copy, tmp_path), tmp_path, "does not fit this run's preprocessing.json")


def test_the_file_compile_config_is_not_used(run_copy, tmp_path):
    rewrite_config(
        run_copy / "model.keras",
        lambda config: config.update(compile_config={"loss": "nonsense", "steps_per_execution": 0}),
    )
    result = CliRunner().invoke(cli, ["evaluate", str(run_copy)])
    assert result.exit_code == 0, result.output


def test_a_damaged_run_record_is_refused(run_copy, tmp_path):
    (run_copy / "run.json").write_text("[]")
    assert_refused(
        predict(run_copy, tmp_path), tmp_path, "run.json: must be a JSON object (an nnflow run record); received a list"
    )


@pytest.mark.parametrize(
    ("case", "fragment"), [("fifo", "is a named pipe (FIFO), not a regular file"), ("loop", "a loop of symbolic links")]
)
def test_a_model_file_that_is_not_a_regular_file_is_refused_at_once(run_copy, tmp_path, case, fragment):
    import os

    model = run_copy / "model.keras"
    model.unlink()
    if case == "fifo":
        os.mkfifo(model)  # opened for reading without a writer, it would block for ever
    else:
        model.symlink_to("model.keras")
    assert_refused(predict(run_copy, tmp_path), tmp_path, fragment)
