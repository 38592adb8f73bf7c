"""`--set KEY=VALUE`: the reference's examples (docs/experiment-file.md), and errors that name the override."""

import pytest

from conftest import CONFIGS
from nnflow import load_spec
from nnflow.errors import ConfigError


def resolved(*overrides, config="iris.yaml"):
    return load_spec(CONFIGS / config, overrides).to_dict()


def test_spec_examples():
    data = resolved("fit.epochs=5", "compile.optimizer.Adam.learning_rate=0.001", "layers.0.units=32")
    assert data["fit"]["epochs"] == 5
    assert data["compile"]["optimizer"] == {"Adam": {"learning_rate": 0.001}}
    assert data["layers"][0] == {"Dense": {"units": 32, "activation": "relu"}}


@pytest.mark.parametrize(
    "override, key, expected",
    [
        ("fit.epochs=5", ("fit", "epochs"), 5),
        ("compile.optimizer.Adam.learning_rate=1e-3", ("compile", "optimizer"), {"Adam": {"learning_rate": 0.001}}),
        ("seed=null", ("seed",), None),
        ("fit.callbacks=[]", ("fit", "callbacks"), []),
        ("compile.optimizer=adam", ("compile", "optimizer"), "adam"),
        ("data.features=[petal_length, petal_width]", ("data", "features"), ["petal_length", "petal_width"]),
        ("expect.test_accuracy='>= 0.8'", ("expect", "test_accuracy"), ">= 0.8"),
    ],
)
def test_values_are_read_as_yaml(override, key, expected):
    data = resolved(override)
    for part in key:
        data = data[part]
    assert data == expected


def test_optimizer_alias_keeps_its_other_arguments():
    data = resolved("compile.optimizer=adam", "compile.optimizer.Adam.beta_1=0.8")
    assert data["compile"]["optimizer"] == {"Adam": {"beta_1": 0.8}}
    data = resolved("compile.optimizer.Adam.beta_1=0.8")
    assert data["compile"]["optimizer"] == {"Adam": {"learning_rate": 0.01, "beta_1": 0.8}}


def test_a_different_optimizer_replaces_the_current_one():
    assert resolved("compile.optimizer.SGD.momentum=0.9")["compile"]["optimizer"] == {"SGD": {"momentum": 0.9}}


def test_layer_shorthands_and_explicit_names_and_negative_indexes():
    data = resolved("layers.1.rate=0.3", "layers.-1.Dense.units=4")
    assert data["layers"][1] == {"Dropout": {"rate": 0.3}}
    assert data["layers"][2] == {"Dense": {"units": 4, "activation": "softmax"}}
    tutorial = resolved("layers.1.activation=relu", config="tutorial.yaml")
    assert tutorial["layers"][2] == {"Activation": {"activation": "relu"}}  # [0] is the Input


def test_metric_and_callback_arguments():
    data = resolved("fit.callbacks.0.EarlyStopping.patience=3", "compile.metrics.0=accuracy")
    assert data["fit"]["callbacks"][0]["EarlyStopping"]["patience"] == 3


def test_overrides_create_missing_sections():
    data = resolved("fit.batch_size=8", config="tutorial.yaml")
    assert data["fit"]["batch_size"] == 8


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("fit.epoch=5", "--set fit.epoch=5 fit.epoch: unknown key 'epoch' in `fit`. Did you mean 'epochs'?"),
        ("fit.epochs=0", "--set fit.epochs=0 fit.epochs: expected a positive integer; received 0."),
        ("layers.9.units=3", "--set layers.9.units=3: index 9 is out of range: layers has 3 item(s)."),
        ("layers.x.units=3", "address an item by its index"),
        (
            "layers.0.unit=3",
            "--set layers.0.unit=3 layers[0].Dense.unit: Dense has no argument 'unit'. Did you mean 'units'?",
        ),
        (
            "compile.optimizer.Adamm.learning_rate=1",
            "--set compile.optimizer.Adamm.learning_rate=1 compile.optimizer.Adamm: unknown optimizer 'Adamm'",
        ),
        ("foo", "--set foo: expected KEY=VALUE"),
        ("fit..epochs=1", "has an empty part"),
        ("fit.epochs=", "no value after '='"),
        # Not YAML: read as the plain string, which the file's check then refuses (issue 13, item 9).
        (
            "fit.epochs=[1, 2",
            "--set fit.epochs=[1, 2 fit.epochs: expected a positive integer; received the string '[1, 2'.",
        ),
        ("data.target.x=1", "is str, not a mapping"),
    ],
)
def test_errors_name_the_override(override, fragment):
    with pytest.raises(ConfigError) as caught:
        load_spec(CONFIGS / "iris.yaml", [override])
    assert fragment in str(caught.value)


def test_later_override_wins():
    assert resolved("fit.epochs=5", "fit.epochs=7")["fit"]["epochs"] == 7


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("compile.metrics.0=accuracy", "compile.metrics is not set, so it has no item 0"),
        ("fit.callbacks.0.EarlyStopping.patience=3", "fit.callbacks is not set, so it has no item 0"),
        ("fit.epochs=#x", "which YAML reads as a comment; quote it"),
        ("compile.optimizer.learning_rate=0.1", "write `--set compile.optimizer.SGD.learning_rate=...`"),
    ],
)
def test_override_mistakes_on_the_tutorial(override, fragment):
    with pytest.raises(ConfigError) as caught:
        load_spec(CONFIGS / "tutorial.yaml", [override])
    assert fragment in str(caught.value)


def test_override_problems_are_reported_with_the_files(write):
    path = write("layers: [Dens: 1]\ncompile: {loss: mse}\n")
    with pytest.raises(ConfigError) as caught:
        load_spec(path, ["fit.epoch=5", "layers.5.units=1"])
    message = str(caught.value)
    assert message.startswith("3 problems") and "Did you mean 'Dense'" in message and "fit.epoch" in message


@pytest.mark.parametrize(
    "override, fragment",
    [
        ('name="a\\0b"', '--set name="a\\0b": the value is not valid YAML: a NUL character (\\0) is not allowed'),
        ('name="\\ud800"', "the value is not valid YAML: a lone surrogate"),
        ("name=a\x0cb", "the value is not valid YAML: the character U+000C"),
        ("fit.epochs=!!map", "the value is not valid YAML: the tag !!map does not fit a single value"),
        ("fit.epochs=--- !!seq", "the tag !!seq does not fit a single value"),
        (
            "fit.epochs=!!python/object/apply:os.system ['true']",
            "the tag !!python/object/apply:os.system is not allowed",
        ),
        (
            "fit.epochs=9223372036854775808",
            "--set fit.epochs=9223372036854775808 fit.epochs: expected a positive integer; received 9,223,372,036,854,775,808, more than",
        ),
        (
            "compile.optimizer.Adam.learning_rate=.nan",
            "--set compile.optimizer.Adam.learning_rate=.nan compile.optimizer.Adam.learning_rate: NaN",
        ),
        (
            "fit.callbacks=[BackupAndRestore]",
            "--set fit.callbacks=[BackupAndRestore] fit.callbacks[0]: `BackupAndRestore` is not allowed",
        ),
        ("name=iris\n", None),  # a plain scalar's final newline is not part of it
        ('name="iris\\n"', '--set name="iris\\n" name: a name may hold letters'),
    ],
)
def test_values_the_reader_or_the_validator_refuse_name_the_override(override, fragment):
    if fragment is None:
        assert load_spec(CONFIGS / "iris.yaml", [override]).name == "iris"
        return
    with pytest.raises(ConfigError) as caught:
        load_spec(CONFIGS / "iris.yaml", [override])
    assert fragment in str(caught.value)


# ---------------------------------------------------------------------------
# Values that are not YAML are plain strings, judged by the file's checks (issue 13, item 9)


@pytest.mark.parametrize(
    "override, metric, condition",
    [
        ("expect.test_accuracy=>= 0.9", "test_accuracy", ">= 0.9"),
        ("expect.val_accuracy=> 0.5", "val_accuracy", "> 0.5"),
        ("expect.test_loss=<= 0.5", "test_loss", "<= 0.5"),
        ('expect.test_accuracy=">= 0.8"', "test_accuracy", ">= 0.8"),  # the quoted form still works
    ],
)
def test_a_gate_needs_no_quotes_on_the_command_line(override, metric, condition):
    spec = load_spec(CONFIGS / "iris.yaml", [override])
    assert str(next(gate for gate in spec.expect if gate.metric == metric)) == f"{metric} {condition}"
    assert spec.locations[f"expect.{metric}"] == f"--set {override}"


def test_a_value_that_is_not_yaml_is_the_text_written():
    from nnflow.overrides import parse_override

    assert parse_override("expect.test_accuracy=>= 0.9") == (["expect", "test_accuracy"], ">= 0.9")
    assert parse_override("description=  a: b: c  ") == (["description"], "a: b: c")
    assert parse_override("fit.epochs=[1, 2") == (["fit", "epochs"], "[1, 2")


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "expect.test_accuracy=>= x",
            '--set expect.test_accuracy=>= x expect.test_accuracy: a gate is a comparison like ">= 0.9"',
        ),
        ("compile.loss=>mse", "--set compile.loss=>mse compile.loss: unknown loss '>mse'"),
        (
            "fit.callbacks=[EarlyStopping",
            "--set fit.callbacks=[EarlyStopping fit.callbacks: expected a list of callbacks; received the string '[EarlyStopping'.",
        ),
    ],
)
def test_a_value_that_is_not_yaml_is_judged_by_the_files_checks_at_the_set(override, message):
    with pytest.raises(ConfigError) as caught:
        load_spec(CONFIGS / "iris.yaml", [override])
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("fit.epochs=!!map", "the value is not valid YAML: the tag !!map"),  # YAML nnflow refuses: still an error
        ("name=a\x0cb", "the value is not valid YAML: the character U+000C"),
    ],
)
def test_yaml_that_nnflow_refuses_is_still_an_error_of_the_set(override, fragment):
    with pytest.raises(ConfigError) as caught:
        load_spec(CONFIGS / "iris.yaml", [override])
    assert fragment in str(caught.value)
