"""Validation of the experiment format: every example of SPEC.md, defaults, and located errors.

No TensorFlow here: these run in milliseconds.
"""

import sys

import pytest

from conftest import CONFIGS, DATA
from nnflow import load_spec
from nnflow.errors import ConfigError
from nnflow.spec import spec_from_text

MINIMAL = "layers:\n  - Dense: 1\ncompile: {loss: mse}\n"


def problems(text: str, overrides=()) -> str:
    with pytest.raises(ConfigError) as caught:
        spec_from_text(text, overrides, source="x.yaml")
    return str(caught.value)


def test_spec_complete_file_example():
    spec = load_spec(CONFIGS / "iris.yaml")
    assert spec.name == "iris-mlp"
    assert spec.description == "Iris with one hidden layer"
    assert spec.seed == 42
    assert spec.data.train.resolve() == (DATA / "iris.csv").resolve()
    assert spec.data.target == "species"
    assert spec.data.features == ("sepal_length", "sepal_width", "petal_length", "petal_width")
    assert (spec.data.validation, spec.data.test, spec.data.normalize) == (0.2, 0.1, True)
    assert [(l.target, dict(l.args)) for l in spec.layers] == [
        ("Dense", {"units": 16, "activation": "relu"}),
        ("Dropout", {"rate": 0.1}),
        ("Dense", {"units": 3, "activation": "softmax"}),
    ]
    assert spec.compile.optimizer.target == "Adam" and dict(spec.compile.optimizer.args) == {"learning_rate": 0.01}
    assert spec.compile.loss.name == "sparse_categorical_crossentropy"
    assert [m.output_name for m in spec.compile.metrics] == ["accuracy"]
    assert (spec.fit.batch_size, spec.fit.epochs) == (16, 100)
    assert spec.fit.callbacks[0].target == "EarlyStopping"
    assert dict(spec.fit.callbacks[0].args) == {"monitor": "val_loss", "patience": 10, "restore_best_weights": True}
    assert [str(g) for g in spec.expect] == ["test_accuracy >= 0.9", "val_loss < 0.5"]
    assert spec.input_shape is None  # inferred from the data's feature columns


def test_spec_tutorial_example():
    spec = load_spec(CONFIGS / "tutorial.yaml")
    assert spec.input_shape == (3,)
    assert [l.target for l in spec.layers] == ["Dense", "Activation", "Dense", "Activation"]
    assert "input_dim" not in spec.layers[0].args  # it became the model's Input
    assert dict(spec.layers[1].args) == {"activation": "sigmoid"}
    assert spec.compile.optimizer.name == "sgd" and spec.compile.loss.name == "mse"
    assert spec.data is None


@pytest.mark.parametrize("config", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_every_shipped_config_is_valid(config):
    load_spec(CONFIGS / config)


@pytest.mark.parametrize(
    "item, target, args",
    [
        ("Dropout: 0.2", "Dropout", {"rate": 0.2}),
        ("Activation: sigmoid", "Activation", {"activation": "sigmoid"}),
        ("Dense: 4", "Dense", {"units": 4}),
        ("Conv2D: [32, 3]", "Conv2D", {"filters": 32, "kernel_size": 3}),
        ("Dense: {units: 4, activation: relu}", "Dense", {"units": 4, "activation": "relu"}),
        ("Flatten", "Flatten", {}),
        ("LeakyReLU: {negative_slope: 0.1}", "LeakyReLU", {"negative_slope": 0.1}),
    ],
)
def test_layer_shorthands(item, target, args):
    spec = spec_from_text(f"layers:\n  - Input: {{shape: [8, 8, 1]}}\n  - {item}\ncompile: {{loss: mse}}\n")
    assert spec.layers[0].target == target
    assert dict(spec.layers[0].args) == args
    assert spec.input_shape == (8, 8, 1)


@pytest.mark.parametrize(
    "optimizer, target, args",
    [("adam", "adam", {}), ("{Adam: {learning_rate: 0.01}}", "Adam", {"learning_rate": 0.01}), ("SGD", "SGD", {})],
)
def test_objects_by_name_or_with_arguments(optimizer, target, args):
    spec = spec_from_text(f"layers: [Dense: 1]\ncompile: {{optimizer: {optimizer}, loss: mse, metrics: [accuracy]}}\nfit: {{callbacks: [EarlyStopping]}}\n")
    assert spec.compile.optimizer.name == target and dict(spec.compile.optimizer.args) == args
    assert spec.fit.callbacks[0].name == "EarlyStopping"


def test_defaults_match_keras():
    spec = spec_from_text(MINIMAL)
    assert spec.compile.optimizer.name == "rmsprop"  # model.compile()'s default
    assert (spec.fit.batch_size, spec.fit.epochs, spec.fit.shuffle) == (32, 1, True)  # model.fit()'s defaults
    assert spec.seed == 0 and spec.name == "experiment"
    assert spec.to_dict()["fit"] == {"batch_size": 32, "epochs": 1, "shuffle": True, "callbacks": [], "diagnostics": {"gradient_norms": False}, "distribute": "none"}


def test_seed_null_is_kept_for_the_run_to_draw():
    assert spec_from_text("seed: null\n" + MINIMAL).seed is None


def test_input_shape_from_input_shape_argument():
    spec = spec_from_text("layers:\n  - Conv1D: {filters: 2, kernel_size: 3, input_shape: [10, 1]}\ncompile: {loss: mse}\n")
    assert spec.input_shape == (10, 1)
    assert "input_shape" not in spec.layers[0].args


def test_embedding_input_dim_is_its_vocabulary_not_the_input_shape():
    spec = spec_from_text("layers:\n  - Input: [5]\n  - Embedding: {input_dim: 100, output_dim: 8}\ncompile: {loss: mse}\n")
    assert spec.layers[0].args["input_dim"] == 100 and spec.input_shape == (5,)


def test_resolved_file_has_the_explicit_form():
    resolved = load_spec(CONFIGS / "tutorial.yaml").to_dict()
    assert resolved["layers"][:2] == [{"Input": {"shape": [3]}}, {"Dense": {"units": 4}}]
    again = spec_from_text(__import__("yaml").safe_dump(resolved))
    assert again.input_shape == (3,) and [dict(l.args) for l in again.layers] == [dict(l.args) for l in load_spec(CONFIGS / "tutorial.yaml").layers]


def test_metric_names_follow_keras():
    spec = spec_from_text("layers: [Dense: 1]\ncompile: {loss: mse, metrics: [mae, AUC, {AUC: {name: roc}}, {Precision: {}}]}\n")
    assert spec.metric_names == ["loss", "mae", "AUC", "roc", "precision"]


# -- errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("layers: [Dense: 1]\ncompile: {loss: mse}\nfitt: {}\n", "x.yaml:3:1 fitt: unknown key 'fitt' in the experiment file. Did you mean 'fit'?"),
        ("layers: [Dens: 1]\ncompile: {loss: mse}\n", "layers[0].Dens: unknown layer 'Dens' (not a name in keras.layers). Did you mean 'Dense'"),
        ("layers: [dense: 1]\ncompile: {loss: mse}\n", "Did you mean 'Dense'?"),
        ("layers: [Dense: {unit: 1}]\ncompile: {loss: mse}\n", "layers[0].Dense.unit: Dense has no argument 'unit'. Did you mean 'units'?"),
        ("layers: [Dense: {units: 0}]\ncompile: {loss: mse}\n", "expected a positive integer; received 0"),
        ("layers: [Dense: {units: 2, use_bias: 3}]\ncompile: {loss: mse}\n", "layers[0].Dense.use_bias: expected true or false; received the number 3"),
        ("layers: [Dense: {units: 2, activation: sigmoidd}]\ncompile: {loss: mse}\n", "unknown activation 'sigmoidd'"),
        ("layers: [Dense: {units: 2, kernel_initializer: he_normall}]\ncompile: {loss: mse}\n", "Did you mean 'he_normal'"),
        ("layers: [Dropout: 1.5]\ncompile: {loss: mse}\n", "expected a rate in [0, 1)"),
        ("layers: [Lambda: {function: 'lambda x: x'}]\ncompile: {loss: mse}\n", "`Lambda` is not allowed: it would run Python code"),
        ("layers: [Dense: 1]\ncompile: {loss: mse, optimizer: adamm}\n", "Did you mean 'adam'"),
        ("layers: [Dense: 1]\ncompile: {loss: {mse: {reduction: sum}}}\n", "'mse' is a loss function and takes no arguments"),
        ("layers: [Dense: 1]\ncompile: {loss: mse, metrics: accuracyy}\n", "unknown metric 'accuracyy'"),
        ("layers: [Dense: 1]\ncompile: {optimizer: adam}\n", "missing `loss`"),
        ("layers: [Dense: 1]\n", "missing the `compile:` section"),
        ("compile: {loss: mse}\n", "missing the `layers:` list"),
        ("layers: []\ncompile: {loss: mse}\n", "`layers` is empty"),
        ("layers: [Dense: 1]\ncompile: {loss: mse}\nfit: {epochs: '5'}\n", "fit.epochs: expected a positive integer; received the string '5'"),
        ("layers: [Dense: 1]\ncompile: {loss: mse}\nfit: {batch_size: 16.0}\n", "write it without the decimal point"),
        ("layers: [Dense: 1]\ncompile: {loss: mse}\nfit: {shuffle: yes}\n", "(write true or false)"),
        ("layers: [Dense: 1]\ncompile: {loss: mse}\nfit: {callbacks: [EarlyStoping]}\n", "Did you mean 'EarlyStopping'"),
        ("layers: [Dense: 1]\ncompile: {loss: mse}\nfit: {callbacks: [LambdaCallback]}\n", "it would run Python code"),
        ("layers: [Dense: 1]\ncompile: {loss: mse}\nfit: {callbacks: [EarlyStopping: {patiense: 3}]}\n", "Did you mean 'patience'"),
        ("layers: [Dense: 1]\ncompile: {loss: mse}\nexpect: {val_los: '< 1'}\n", "Did you mean 'val_loss'"),
        ("layers: [Dense: 1]\ncompile: {loss: mse}\nexpect: {loss: 0.5}\n", "a gate is a comparison written as a string"),
        ("layers: [Dense: 1]\ncompile: {loss: mse}\nexpect: {loss: '=> 0.5'}\n", "operators >=, <=, >, <, =="),
        ("layers: [Dense: 1]\ncompile: {loss: mse}\nexpect: {accuracy: '> 0.5'}\n", "Add the metric to `compile.metrics`"),
        ("layers:\n  - Dense: 1\n  - Input: [3]\ncompile: {loss: mse}\n", "`Input` must be the first item"),
        ("layers:\n  - Input: [3]\n  - Dense: {units: 1, input_dim: 3}\ncompile: {loss: mse}\n", "the input shape is given twice: by layers[0].Input.shape and by layers[1].Dense.input_dim"),
        ("layers:\n  - Dense: 1\n  - Dense: {units: 1, input_dim: 3}\ncompile: {loss: mse}\n", "only the first layer can set `input_dim`"),
        ("layers: [Conv2D: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]]\ncompile: {loss: mse}\n", "Conv2D takes at most"),
        ("layers: [{Dense: 1, Dropout: 0.1}]\ncompile: {loss: mse}\n", "a layer is one name, or a mapping of one name"),
        ("- Dense: 1\n", "the file must be a mapping of sections"),
        ("name: 'my run/1'\nlayers: [Dense: 1]\ncompile: {loss: mse}\n", "it names the run folder"),
        ("seed: -1\nlayers: [Dense: 1]\ncompile: {loss: mse}\n", "expected a non-negative integer, or null to draw one"),
    ],
)
def test_errors_are_located_and_say_how_to_fix(text, fragment):
    message = problems(text)
    assert fragment in message
    assert "x.yaml:" in message


@pytest.mark.parametrize(
    "data, fragment",
    [
        ("{train: d.csv}", "missing `target`"),
        ("{target: y}", "missing `train`"),
        ("{train: d.csv, target: y, validation: 1.5}", "expected a fraction of train in [0, 1)"),
        ("{train: d.csv, target: y, validation: 0.5, test: 0.5}", "together take all of train"),
        ("{train: d.csv, target: y, features: [y, x]}", "also listed as a feature"),
        ("{train: d.csv, target: y, normalise: true}", "Did you mean 'normalize'"),
        ("{train: d.csv, target: y, features: x}", "`features` must be a list"),
    ],
)
def test_data_section_errors(data, fragment):
    assert fragment in problems(f"data: {data}\nlayers: [Dense: 1]\ncompile: {{loss: mse}}\n")


def test_gates_and_monitors_need_their_splits():
    text = (
        "data: {train: d.csv, target: y, validation: 0}\nlayers: [Dense: 1]\ncompile: {loss: mse}\n"
        "fit: {callbacks: [EarlyStopping]}\nexpect: {val_loss: '< 1', test_loss: '< 1'}\n"
    )
    message = problems(text)
    assert "3 problems in x.yaml" in message
    assert "EarlyStopping monitors 'val_loss', but `data.validation` is 0" in message
    assert "'val_loss' needs a validation split" in message
    assert "'test_loss' needs a test split" in message


def test_all_problems_are_reported_together():
    message = problems("layers: [Dens: 1]\ncompile: {loss: msee, optimizer: adamm}\nfit: {epochs: 0}\n")
    assert message.startswith("4 problems in x.yaml:")
    lines = message.splitlines()[1:]
    assert [line.split()[0] for line in lines] == ["x.yaml:1:10", "x.yaml:2:17", "x.yaml:2:34", "x.yaml:3:15"]


def test_spec_module_does_not_import_tensorflow():
    # The import test in a fresh interpreter is in test_startup.py; this is the cheap in-process guard.
    import nnflow.spec  # noqa: F401

    assert "keras" not in sys.modules or "tensorflow" in sys.modules  # keras only ever arrives with a test that built a model


@pytest.mark.parametrize(
    "item",
    [
        "LayerNormalization: {axis: [1, 2]}",
        "ZeroPadding1D: [[1, 1]]",
        "BatchNormalization: {momentum: 0.9, epsilon: 0.001}",
        "Bidirectional: {layer: {LSTM: {units: 4, return_sequences: true}}}",
        "TimeDistributed: {layer: {Dense: 2}}",
    ],
)
def test_legitimate_keras_arguments_are_accepted(item):
    spec_from_text(f"layers:\n  - Input: [5, 3]\n  - {item}\ncompile: {{loss: mse}}\n")


@pytest.mark.parametrize(
    "callback",
    [
        "TensorBoard: {log_dir: logs, update_freq: 100, profile_batch: [2, 5]}",
        "ModelCheckpoint: {filepath: m.keras, save_freq: 100}",
        "ReduceLROnPlateau: {factor: 0.5, patience: 2}",
        "CSVLogger: {filename: log.csv}",
    ],
)
def test_legitimate_callback_arguments_are_accepted(callback):
    spec_from_text(f"layers: [Dense: 1]\ncompile: {{loss: mse}}\nfit: {{callbacks: [{callback}]}}\n")


def test_a_typo_of_a_required_argument_is_reported_once():
    message = problems("layers: [Dense: {unit: 4}]\ncompile: {loss: mse}\n")
    assert "Did you mean 'units'" in message and "needs `units`" not in message and "problems" not in message


def test_seed_must_fit_numpy():
    assert "expected a seed below 2**32" in problems("seed: 4294967296\n" + MINIMAL)


def test_optimizer_learning_rate_must_be_positive():
    assert "expected a positive learning rate" in problems("layers: [Dense: 1]\ncompile: {loss: mse, optimizer: {Adam: {learning_rate: -1}}}\n")
