"""The command line: exit codes, messages, and output formats (driven in-process with CliRunner)."""

import json

import pytest
from click.testing import CliRunner

from conftest import CONFIGS
from nnflow import __version__
from nnflow.cli import cli


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result


def test_version_and_help():
    assert run("--version").output.strip() == f"nnflow {__version__}"
    result = run("--help")
    assert result.exit_code == 0
    for command in (
        "check",
        "compile",
        "train",
        "fit",
        "evaluate",
        "predict",
        "sweep",
        "plot",
        "report",
        "export",
        "runs",
        "compare",
        "schema",
    ):
        assert command in result.output
    assert "Exit codes" in result.output


@pytest.mark.parametrize(
    "command",
    [
        "check",
        "compile",
        "train",
        "evaluate",
        "predict",
        "sweep",
        "plot",
        "report",
        "export",
        "runs",
        "compare",
        "schema",
    ],
)
def test_every_command_has_help_with_an_example(command):
    result = run(command, "--help")
    assert result.exit_code == 0 and "Example" in result.output


def test_check_ok():
    result = run("check", CONFIGS / "iris.yaml")
    assert result.exit_code == 0, result.output
    assert "OK - iris-mlp: 3 layers" in result.output and "2 gate(s)" in result.output


def test_check_json_resolves_overrides():
    result = run("check", CONFIGS / "iris.yaml", "--set", "fit.epochs=5", "--json")
    document = json.loads(result.output)
    assert document["ok"] is True and document["resolved"]["fit"]["epochs"] == 5
    assert document["metrics"] == ["loss", "accuracy"]


def test_check_error_is_one_screen_with_exit_2(write):
    path = write("layers: [Dens: 1]\ncompile: {loss: mse}\n")
    result = run("check", path)
    assert result.exit_code == 2
    assert (
        result.output
        == f"Error: {path}:1:10 layers[0].Dens: unknown layer 'Dens' (not a name in keras.layers). Did you mean 'Dense'?\n"
    )


def test_bad_command_line_is_exit_2():
    assert run("check").exit_code == 2
    assert run("frobnicate").exit_code == 2
    result = run("check", CONFIGS / "iris.yaml", "--set", "nonsense")
    assert result.exit_code == 2 and "--set nonsense: expected KEY=VALUE" in result.output


def test_missing_config_is_exit_2(tmp_path):
    result = run("check", tmp_path / "nope.yaml")
    assert result.exit_code == 2 and "no such file" in result.output


def test_compile_prints_the_layer_table():
    result = run("compile", CONFIGS / "tutorial.yaml")
    assert result.exit_code == 0, result.output
    assert "Total params: 36 (trainable 36, non-trainable 0)" in result.output
    assert "Activation" in result.output and "(None, 4)" in result.output  # layer names depend on the Keras session
    assert "SGD(learning_rate=0.01), loss mse" in result.output


def test_compile_json():
    result = run("compile", CONFIGS / "tutorial.yaml", "--json")
    document = json.loads(result.output)
    assert document["total_params"] == 36
    assert [row["layer_class"] for row in document["layers"]] == ["Dense", "Activation", "Dense", "Activation"]
    assert [row["params"] for row in document["layers"]] == [16, 0, 20, 0]


def test_compile_infers_the_input_from_the_data_and_normalizes():
    result = run("compile", CONFIGS / "iris.yaml", "--json")
    document = json.loads(result.output)
    assert document["layers"][0]["layer_class"] == "Normalization"
    assert document["layers"][1]["params"] == 4 * 16 + 16
    assert document["trainable_params"] == 4 * 16 + 16 + 16 * 3 + 3


def test_compile_keras_error_is_exit_2_and_located(write):
    path = write("layers:\n  - Input: [4]\n  - Conv2D: [8, 3]\ncompile: {loss: mse}\n")
    result = run("compile", path)
    assert result.exit_code == 2
    assert f"{path}:3:5 layers[1].Conv2D: Keras cannot add this layer" in result.output
    assert "Traceback" not in result.output


def test_compile_missing_data_file_is_exit_3(write):
    path = write("data: {train: nope.csv, target: y}\nlayers: [Dense: 1]\ncompile: {loss: mse}\n")
    result = run("compile", path)
    assert result.exit_code == 3 and "nope.csv: no such file" in result.output


def test_schema_to_stdout_and_file(tmp_path):
    result = run("schema")
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["title"] == "nnflow experiment"
    target = tmp_path / "nnflow.schema.json"
    assert run("schema", "--output", target).exit_code == 0
    assert json.loads(target.read_text()) == schema


def test_compile_with_no_feature_left_is_exit_3(write, tmp_path):
    (tmp_path / "d.csv").write_text("a,b\n1,2\n3,4\n")
    path = write("data: {train: d.csv, target: b, drop: [a]}\nlayers: [Dense: 1]\ncompile: {loss: mse}\n")
    result = run("compile", path)
    assert result.exit_code == 3 and "no feature columns are left" in result.output


def test_compile_never_prints_a_traceback_for_keras_refusals(write):
    path = write("layers: [Input: [4], {Dense: {units: 4, dtype: int32}}]\ncompile: {loss: mse, optimizer: Lamb}\n")
    result = run("compile", path)
    assert result.exit_code == 2 and "Traceback" not in result.output and f"{path}:1:" in result.output
