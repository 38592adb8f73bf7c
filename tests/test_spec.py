"""Validation of the experiment format: every example of the contract (docs/experiment-file.md), defaults, and located errors.

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
    assert [(layer.target, dict(layer.args)) for layer in spec.layers] == [
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
    assert [layer.target for layer in spec.layers] == ["Dense", "Activation", "Dense", "Activation"]
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
    spec = spec_from_text(
        f"layers: [Dense: 1]\ncompile: {{optimizer: {optimizer}, loss: mse, metrics: [accuracy]}}\nfit: {{callbacks: [EarlyStopping]}}\n"
    )
    assert spec.compile.optimizer.name == target and dict(spec.compile.optimizer.args) == args
    assert spec.fit.callbacks[0].name == "EarlyStopping"


def test_defaults_match_keras():
    spec = spec_from_text(MINIMAL)
    assert spec.compile.optimizer.name == "rmsprop"  # model.compile()'s default
    assert (spec.fit.batch_size, spec.fit.epochs, spec.fit.shuffle) == (32, 1, True)  # model.fit()'s defaults
    assert spec.seed == 0 and spec.name == "experiment"
    assert spec.to_dict()["fit"] == {
        "batch_size": 32,
        "epochs": 1,
        "shuffle": True,
        "callbacks": [],
        "diagnostics": {"gradient_norms": False},
        "distribute": "none",
        "join_timeout": 300,
    }


def test_seed_null_is_kept_for_the_run_to_draw():
    assert spec_from_text("seed: null\n" + MINIMAL).seed is None


def test_input_shape_from_input_shape_argument():
    spec = spec_from_text(
        "layers:\n  - Conv1D: {filters: 2, kernel_size: 3, input_shape: [10, 1]}\ncompile: {loss: mse}\n"
    )
    assert spec.input_shape == (10, 1)
    assert "input_shape" not in spec.layers[0].args


def test_embedding_input_dim_is_its_vocabulary_not_the_input_shape():
    spec = spec_from_text(
        "layers:\n  - Input: [5]\n  - Embedding: {input_dim: 100, output_dim: 8}\ncompile: {loss: mse}\n"
    )
    assert spec.layers[0].args["input_dim"] == 100 and spec.input_shape == (5,)


def test_resolved_file_has_the_explicit_form():
    resolved = load_spec(CONFIGS / "tutorial.yaml").to_dict()
    assert resolved["layers"][:2] == [{"Input": {"shape": [3]}}, {"Dense": {"units": 4}}]
    again = spec_from_text(__import__("yaml").safe_dump(resolved))
    assert again.input_shape == (3,) and [dict(layer.args) for layer in again.layers] == [
        dict(layer.args) for layer in load_spec(CONFIGS / "tutorial.yaml").layers
    ]


def test_metric_names_follow_keras():
    spec = spec_from_text(
        "layers: [Dense: 1]\ncompile: {loss: mse, metrics: [mae, AUC, {AUC: {name: roc}}, {Precision: {}}]}\n"
    )
    assert spec.metric_names == ["loss", "mae", "AUC", "roc", "precision"]


# -- errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text, fragment",
    [
        (
            "layers: [Dense: 1]\ncompile: {loss: mse}\nfitt: {}\n",
            "x.yaml:3:1 fitt: unknown key 'fitt' in the experiment file. Did you mean 'fit'?",
        ),
        (
            "layers: [Dens: 1]\ncompile: {loss: mse}\n",
            "layers[0].Dens: unknown layer 'Dens' (not a name in keras.layers). Did you mean 'Dense'",
        ),
        ("layers: [dense: 1]\ncompile: {loss: mse}\n", "Did you mean 'Dense'?"),
        (
            "layers: [Dense: {unit: 1}]\ncompile: {loss: mse}\n",
            "layers[0].Dense.unit: Dense has no argument 'unit'. Did you mean 'units'?",
        ),
        ("layers: [Dense: {units: 0}]\ncompile: {loss: mse}\n", "expected a positive integer; received 0"),
        (
            "layers: [Dense: {units: 2, use_bias: 3}]\ncompile: {loss: mse}\n",
            "layers[0].Dense.use_bias: expected true or false; received the number 3",
        ),
        ("layers: [Dense: {units: 2, activation: sigmoidd}]\ncompile: {loss: mse}\n", "unknown activation 'sigmoidd'"),
        (
            "layers: [Dense: {units: 2, kernel_initializer: he_normall}]\ncompile: {loss: mse}\n",
            "Did you mean 'he_normal'",
        ),
        ("layers: [Dropout: 1.5]\ncompile: {loss: mse}\n", "expected a rate in [0, 1)"),
        (
            "layers: [Lambda: {function: 'lambda x: x'}]\ncompile: {loss: mse}\n",
            "`Lambda` is not allowed: it would run Python code",
        ),
        ("layers: [Dense: 1]\ncompile: {loss: mse, optimizer: adamm}\n", "Did you mean 'adam'"),
        (
            "layers: [Dense: 1]\ncompile: {loss: {mse: {reduction: sum}}}\n",
            "'mse' is a loss function and takes no arguments",
        ),
        ("layers: [Dense: 1]\ncompile: {loss: mse, metrics: accuracyy}\n", "unknown metric 'accuracyy'"),
        ("layers: [Dense: 1]\ncompile: {optimizer: adam}\n", "missing `loss`"),
        ("layers: [Dense: 1]\n", "missing the `compile:` section"),
        ("compile: {loss: mse}\n", "missing the `layers:` list"),
        ("layers: []\ncompile: {loss: mse}\n", "`layers` is empty"),
        (
            "layers: [Dense: 1]\ncompile: {loss: mse}\nfit: {epochs: '5'}\n",
            "fit.epochs: expected a positive integer; received the string '5'",
        ),
        ("layers: [Dense: 1]\ncompile: {loss: mse}\nfit: {batch_size: 16.0}\n", "write it without the decimal point"),
        ("layers: [Dense: 1]\ncompile: {loss: mse}\nfit: {shuffle: yes}\n", "(write true or false)"),
        (
            "layers: [Dense: 1]\ncompile: {loss: mse}\nfit: {callbacks: [EarlyStoping]}\n",
            "Did you mean 'EarlyStopping'",
        ),
        ("layers: [Dense: 1]\ncompile: {loss: mse}\nfit: {callbacks: [LambdaCallback]}\n", "it would run Python code"),
        (
            "layers: [Dense: 1]\ncompile: {loss: mse}\nfit: {callbacks: [EarlyStopping: {patiense: 3}]}\n",
            "Did you mean 'patience'",
        ),
        ("layers: [Dense: 1]\ncompile: {loss: mse}\nexpect: {val_los: '< 1'}\n", "Did you mean 'val_loss'"),
        (
            "layers: [Dense: 1]\ncompile: {loss: mse}\nexpect: {loss: 0.5}\n",
            "a gate is a comparison written as a string",
        ),
        ("layers: [Dense: 1]\ncompile: {loss: mse}\nexpect: {loss: '=> 0.5'}\n", "operators >=, <=, >, <, =="),
        (
            "layers: [Dense: 1]\ncompile: {loss: mse}\nexpect: {accuracy: '> 0.5'}\n",
            "Add the metric to `compile.metrics`",
        ),
        ("layers:\n  - Dense: 1\n  - Input: [3]\ncompile: {loss: mse}\n", "`Input` must be the first item"),
        (
            "layers:\n  - Input: [3]\n  - Dense: {units: 1, input_dim: 3}\ncompile: {loss: mse}\n",
            "the input shape is given twice: by layers[0].Input.shape and by layers[1].Dense.input_dim",
        ),
        (
            "layers:\n  - Dense: 1\n  - Dense: {units: 1, input_dim: 3}\ncompile: {loss: mse}\n",
            "only the first layer can set `input_dim`",
        ),
        (
            "layers: [Conv2D: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]]\ncompile: {loss: mse}\n",
            "Conv2D takes at most",
        ),
        ("layers: [{Dense: 1, Dropout: 0.1}]\ncompile: {loss: mse}\n", "a layer is one name, or a mapping of one name"),
        ("- Dense: 1\n", "the file must be a mapping of sections"),
        ("name: 'my run/1'\nlayers: [Dense: 1]\ncompile: {loss: mse}\n", "it names the run folder"),
        (
            "seed: -1\nlayers: [Dense: 1]\ncompile: {loss: mse}\n",
            "expected a non-negative integer, or null to draw one",
        ),
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

    assert (
        "keras" not in sys.modules or "tensorflow" in sys.modules
    )  # keras only ever arrives with a test that built a model


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
def test_legitimate_callback_arguments_are_accepted(callback, monkeypatch):
    monkeypatch.setattr(
        "nnflow.spec.callback_checks._package_installed", lambda name: True
    )  # tensorboard is not in the test venv
    spec_from_text(f"layers: [Dense: 1]\ncompile: {{loss: mse}}\nfit: {{callbacks: [{callback}]}}\n")


def test_a_typo_of_a_required_argument_is_reported_once():
    message = problems("layers: [Dense: {unit: 4}]\ncompile: {loss: mse}\n")
    assert "Did you mean 'units'" in message and "needs `units`" not in message and "problems" not in message


def test_seed_must_fit_numpy():
    assert "expected a seed below 2**32" in problems("seed: 4294967296\n" + MINIMAL)


def test_optimizer_learning_rate_must_be_positive():
    assert "expected a positive learning rate" in problems(
        "layers: [Dense: 1]\ncompile: {loss: mse, optimizer: {Adam: {learning_rate: -1}}}\n"
    )


# ---------------------------------------------------------------------------
# Callback path arguments: relative paths land inside the run folder (issue 12)

from nnflow.spec import CALLBACK_PATH_ARGUMENTS, MAX_COUNT, MAX_INT64, path_escape  # noqa: E402

PATH_CALLBACKS = [
    ("CSVLogger", "filename", "{CSVLogger: {filename: %s}}"),
    ("ModelCheckpoint", "filepath", "{ModelCheckpoint: {filepath: %s}}"),
    ("TensorBoard", "log_dir", "{TensorBoard: {log_dir: %s}}"),
]


@pytest.fixture
def tensorboard_installed(monkeypatch):
    """TensorBoard is not in the test venv; pretend it is, for the tests about paths."""
    monkeypatch.setattr("nnflow.spec.callback_checks._package_installed", lambda name: True)


def test_callback_path_arguments_are_every_path_argument_of_the_shipped_callbacks():
    from nnflow import catalog

    assert CALLBACK_PATH_ARGUMENTS == ("filepath", "filename", "log_dir", "backup_dir")
    table = catalog.load_catalog()["kinds"]["callback"]["objects"]
    named = {
        p["name"]
        for spec in table.values()
        for p in spec["params"]
        if p["name"].endswith(("path", "file", "filename", "_dir"))
    }
    assert named <= set(CALLBACK_PATH_ARGUMENTS)


@pytest.mark.parametrize(
    "value, reason",
    [
        ("..", "goes above"),
        ("../x.csv", "goes above"),
        ("../../..", "goes above"),
        ("a/../../b", "goes above"),
        ("./../x", "goes above"),
        (".", "names the run folder itself"),
        ("", "names the run folder itself"),
        ("./", "names the run folder itself"),
        ("a/..", "names the run folder itself"),
        ("a/b/../..", "names the run folder itself"),
        ("x\0y", "NUL"),
    ],
)
def test_path_escape_names_why(value, reason):
    assert reason in path_escape(value)


@pytest.mark.parametrize(
    "value",
    [
        "x.csv",
        "logs/x.csv",
        "./x.csv",
        "a/../x.csv",
        "a//b",
        "logs/",
        "~/x.csv",
        "..x",
        "x..",
        "/tmp/x.csv",
        "/",
        "/../..",
    ],
)
def test_path_escape_accepts_paths_inside_the_run_folder_and_absolute_paths(value):
    assert path_escape(value) is None


@pytest.mark.parametrize("name, argument, template", PATH_CALLBACKS)
@pytest.mark.parametrize("value", ["../x.csv", "'..'", "'.'", "''", "a/..", "a/../../b"])
def test_relative_callback_paths_that_leave_the_run_folder_are_refused(
    name, argument, template, value, tensorboard_installed
):
    if name == "ModelCheckpoint" and value not in ("'..'", "'.'", "''", "a/.."):
        value = value.rstrip("'") + ".keras" if not value.startswith("'") else value
    message = problems(f"layers: [Dense: 1]\ncompile: {{loss: mse}}\nfit:\n  callbacks:\n    - {template % value}\n")
    assert "x.yaml:5:" in message and f"fit.callbacks[0].{name}.{argument}:" in message
    assert "A relative path lands inside the run folder" in message and "give an absolute path" in message


@pytest.mark.parametrize("name, argument, template", PATH_CALLBACKS)
@pytest.mark.parametrize("value", ["logs/x", "./x", "a/../x", "/tmp/nnflow-elsewhere/x"])
def test_callback_paths_inside_the_run_folder_or_absolute_are_accepted(
    name, argument, template, value, tensorboard_installed
):
    if name == "ModelCheckpoint":
        value += ".keras"
    spec = spec_from_text(f"layers: [Dense: 1]\ncompile: {{loss: mse}}\nfit:\n  callbacks:\n    - {template % value}\n")
    assert spec.fit.callbacks[0].args[argument] == value


@pytest.mark.parametrize("value", ["5", "null", "[a, b]", "true"])
def test_callback_paths_must_be_strings(value):
    message = problems(
        f"layers: [Dense: 1]\ncompile: {{loss: mse}}\nfit: {{callbacks: [{{CSVLogger: {{filename: {value}}}}}]}}\n"
    )
    assert "fit.callbacks[0].CSVLogger.filename: CSVLogger.filename is a path: expected a string" in message


def test_a_set_that_makes_a_callback_path_escape_points_at_the_set():
    text = "layers: [Dense: 1]\ncompile: {loss: mse}\nfit: {callbacks: [{CSVLogger: {filename: log.csv}}]}\n"
    message = problems(text, ["fit.callbacks.0.CSVLogger.filename=../../log.csv"])
    assert message.startswith(
        "--set fit.callbacks.0.CSVLogger.filename=../../log.csv fit.callbacks[0].CSVLogger.filename: '../../log.csv': its '..' goes above"
    )


@pytest.mark.parametrize(
    "callback",
    [
        "BackupAndRestore",
        "{BackupAndRestore: {backup_dir: ../../..}}",
        "{BackupAndRestore: {backup_dir: backup}}",
        "{BackupAndRestore: {backup_dir: /tmp/b}}",
    ],
)
def test_backup_and_restore_is_refused_in_favour_of_resume(callback):
    message = problems(f"layers: [Dense: 1]\ncompile: {{loss: mse}}\nfit: {{callbacks: [{callback}]}}\n")
    assert "fit.callbacks[0]" in message
    assert (
        "`BackupAndRestore` is not allowed: nnflow checkpoints every epoch itself, and `nnflow train --resume RUN` continues"
        in message
    )
    assert "deletes its folder" in message


def test_backup_and_restore_is_not_offered_by_the_schema_or_did_you_mean():
    from nnflow import catalog
    from nnflow.schema import json_schema

    assert "BackupAndRestore" not in catalog.kind_names("callback") and "BackupAndRestore" not in catalog.object_names(
        "callback"
    )
    assert "BackupAndRestore" not in str(json_schema()["properties"]["fit"]["properties"]["callbacks"])
    assert "BackupAndRestore" not in problems(
        "layers: [Dense: 1]\ncompile: {loss: mse}\nfit: {callbacks: [BackupAndRestor]}\n"
    )


def test_tensorboard_is_refused_when_its_package_is_missing():
    """The real environment: tensorboard is not installed in nnflow's test venv."""
    import importlib.util

    if importlib.util.find_spec("tensorboard") is not None:
        pytest.skip("tensorboard is installed here")
    message = problems(
        "layers: [Dense: 1]\ncompile: {loss: mse}\nfit:\n  callbacks:\n    - TensorBoard: {log_dir: tb}\n"
    )
    assert (
        "x.yaml:5:7 fit.callbacks[0].TensorBoard: the TensorBoard callback needs the `tensorboard` package" in message
    )
    assert "`pip install tensorboard`" in message
    assert "tensorboard" not in sys.modules  # found, never imported


@pytest.mark.parametrize("callback", ["TensorBoard", "{TensorBoard: {log_dir: tb}}", "{TensorBoard: null}"])
def test_tensorboard_follows_the_finder(callback, monkeypatch):
    import importlib.machinery
    import importlib.util

    real = importlib.util.find_spec
    asked = []

    def finder(name, *args, **kwargs):
        if name == "tensorboard":
            asked.append(name)
            return found
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", finder)
    text = f"layers: [Dense: 1]\ncompile: {{loss: mse}}\nfit: {{callbacks: [{callback}]}}\n"
    found = None
    assert "pip install tensorboard" in problems(text)
    found = importlib.machinery.ModuleSpec("tensorboard", None)
    assert spec_from_text(text).fit.callbacks[0].target == "TensorBoard"
    assert asked == ["tensorboard", "tensorboard"]


@pytest.mark.parametrize(
    "args, fragment",
    [
        ("{filepath: best.h6}", "must end in .keras or .h5 (the Keras model format); received 'best.h6'"),
        (
            "{filepath: best.keras, save_weights_only: true}",
            "must end in .weights.h5 when save_weights_only is true; received 'best.keras'",
        ),
        ("{filepath: 'best.weights', save_weights_only: true}", "must end in .weights.h5"),
    ],
)
def test_model_checkpoint_file_extensions_are_checked_as_keras_does(args, fragment):
    message = problems(
        f"layers: [Dense: 1]\ncompile: {{loss: mse}}\nfit: {{callbacks: [{{ModelCheckpoint: {args}}}]}}\n"
    )
    assert "fit.callbacks[0].ModelCheckpoint.filepath: ModelCheckpoint's filepath " + fragment in message


@pytest.mark.parametrize(
    "args",
    [
        "{filepath: m.keras}",
        "{filepath: 'm-{epoch:02d}.keras'}",
        "{filepath: m.h5}",
        "{filepath: m.weights.h5, save_weights_only: true}",
    ],
)
def test_model_checkpoint_file_extensions_keras_takes(args):
    spec_from_text(f"layers: [Dense: 1]\ncompile: {{loss: mse}}\nfit: {{callbacks: [{{ModelCheckpoint: {args}}}]}}\n")


# ---------------------------------------------------------------------------
# Values that pass `check` and crash `train` (issue 12, items 9 and 10)


@pytest.mark.parametrize(
    "fit, key",
    [
        ("{epochs: 9223372036854775808}", "epochs"),
        ("{epochs: 9223372036854775807}", "epochs"),
        ("{epochs: 2147483648}", "epochs"),
        ("{batch_size: 18446744073709551616}", "batch_size"),
        ("{batch_size: 0xffffffffffffffffffffffffffffffffffffffff}", "batch_size"),
    ],
)
def test_counts_past_what_tensorflow_takes_are_refused(fit, key):
    message = problems(f"layers: [Dense: 1]\ncompile: {{loss: mse}}\nfit: {fit}\n")
    assert (
        f"fit.{key}: expected a positive integer; received " in message
        and "more than the largest allowed, 2,147,483,647." in message
    )


def test_the_largest_counts_are_accepted():
    spec = spec_from_text(
        f"layers: [Dense: 1]\ncompile: {{loss: mse, steps_per_execution: {MAX_COUNT}}}\nfit: {{epochs: {MAX_COUNT}, batch_size: {MAX_COUNT}}}\n"
    )
    assert spec.fit.epochs == spec.fit.batch_size == spec.compile.steps_per_execution == MAX_COUNT


@pytest.mark.parametrize(
    "text, fragment",
    [
        (
            "layers: [Dense: 1]\ncompile: {loss: mse, steps_per_execution: 2147483648}\n",
            "compile.steps_per_execution: expected a positive integer or 'auto'; received 2,147,483,648, more than",
        ),
        (
            "layers: [{Dense: {units: 4294967296}}]\ncompile: {loss: mse}\n",
            "layers[0].Dense.units: expected a positive integer; received 4,294,967,296, more than",
        ),
        (
            "layers: [{Dense: {units: 1, input_dim: 2147483648}}]\ncompile: {loss: mse}\n",
            "layers[0].Dense.input_dim: expected a positive integer; received 2,147,483,648",
        ),
        (
            "layers: [{Input: [2147483648]}, Dense: 1]\ncompile: {loss: mse}\n",
            "layers[0].Input.shape: expected a shape",
        ),
        (
            "layers: [Input: [8, 8, 1], {Conv2D: {filters: 1, kernel_size: 2147483648}}]\ncompile: {loss: mse}\n",
            "kernel_size: expected a positive integer or a list of them",
        ),
        (
            "layers: [{Dense: {units: 1, kernel_initializer: {GlorotUniform: {seed: -1}}}}]\ncompile: {loss: mse}\n",
            "seed: expected a seed: an integer from 0 to 2**32 - 1, or null; received -1.",
        ),
        (
            "layers: [{Dense: {units: 1, kernel_initializer: {GlorotUniform: {seed: x}}}}]\ncompile: {loss: mse}\n",
            "seed: expected a seed",
        ),
        (
            "layers: [Dense: 1]\ncompile: {loss: mse}\nfit: {callbacks: [{EarlyStopping: {patience: 9223372036854775808}}]}\n",
            "patience: expected an integer that fits in 64 bits",
        ),
        (
            "layers: [Dense: 1]\ncompile: {loss: mse}\nfit: {callbacks: [{EarlyStopping: {patience: -9223372036854775809}}]}\n",
            "patience: expected an integer that fits in 64 bits",
        ),
        (
            "layers: [Dense: 1]\ncompile: {loss: mse}\nseed: 0x" + "f" * 5000 + "\n",
            "seed: expected a seed below 2**32 (4,294,967,296); received an integer of about 6,020 digits.",
        ),
        (
            "layers: [Dense: 1]\ncompile: {loss: mse}\ndata: {train: a.csv, target: y, validation: 0x"
            + "f" * 5000
            + "}\n",
            "data.validation: expected a fraction of train in [0, 1), or a file path; received an integer of about 6,020 digits.",
        ),
    ],
)
def test_integers_past_what_keras_takes_are_refused(text, fragment):
    assert fragment in problems(text)


def test_integers_up_to_int64_are_accepted_where_keras_takes_any():
    spec = spec_from_text(
        f"layers: [Dense: 1]\ncompile: {{loss: mse}}\nfit: {{callbacks: [{{EarlyStopping: {{patience: {MAX_INT64}, monitor: loss}}}}]}}\n"
    )
    assert spec.fit.callbacks[0].args["patience"] == MAX_INT64


@pytest.mark.parametrize(
    "text, fragment",
    [
        (
            "compile: {loss: mse, optimizer: {Adam: {learning_rate: .nan}}}",
            "compile.optimizer.Adam.learning_rate: NaN (.nan) is not a value Keras can use for `learning_rate`",
        ),
        (
            "compile: {loss: mse, optimizer: {Adam: {learning_rate: .inf}}}",
            "compile.optimizer.Adam.learning_rate: expected a finite number for `learning_rate`; received .inf.",
        ),
        (
            "compile: {loss: mse, optimizer: {Adam: {learning_rate: {ExponentialDecay: {initial_learning_rate: .nan, decay_steps: 1, decay_rate: 0.9}}}}}",
            "initial_learning_rate: NaN",
        ),
        (
            "compile: {loss: mse, optimizer: {Adam: {learning_rate: {ExponentialDecay: {initial_learning_rate: 0.1, decay_steps: .inf, decay_rate: 0.9}}}}}",
            "decay_steps: expected a finite number",
        ),
        ("compile: {loss: mse, optimizer: {SGD: {momentum: .nan}}}", "momentum: NaN"),
        ("compile: {loss: mse, optimizer: {Adam: {beta_1: .nan}}}", "beta_1: NaN"),
        ("compile: {loss: mse, optimizer: {Adam: {epsilon: -.inf}}}", "epsilon: expected a finite number"),
        ("compile: {loss: {Huber: {delta: .nan}}}", "compile.loss.Huber.delta: NaN"),
        ("compile: {loss: mse, metrics: [{AUC: {num_thresholds: .inf}}]}", "num_thresholds: expected a finite number"),
        (
            "compile: {loss: mse}\nfit: {callbacks: [{EarlyStopping: {min_delta: .nan, monitor: loss}}]}",
            "min_delta: NaN",
        ),
        (
            "compile: {loss: mse}\nfit: {callbacks: [{ReduceLROnPlateau: {min_lr: .inf, monitor: loss}}]}",
            "min_lr: expected a finite number",
        ),
        ("compile: {loss: mse}\nfit: {callbacks: [{EarlyStopping: {baseline: .nan, monitor: loss}}]}", "baseline: NaN"),
    ],
)
def test_nan_and_meaningless_infinities_in_keras_arguments_are_refused(text, fragment):
    assert fragment in problems("layers: [Dense: 1]\n" + text + "\n")


@pytest.mark.parametrize(
    "item, fragment",
    [
        ("Dropout: .nan", "layers[1].Dropout.rate: NaN"),
        ("Dropout: .inf", "layers[1].Dropout.rate: expected a finite number"),
        (
            "{Dense: {units: 1, kernel_regularizer: {L2: {l2: .inf}}}}",
            "kernel_regularizer.L2.l2: expected a finite number",
        ),
        (
            "{Dense: {units: 1, kernel_regularizer: {L2: {l2: -1}}}}",
            "kernel_regularizer.L2.l2: expected a non-negative regularization factor; received -1.",
        ),
        ("{Dense: {units: 1, kernel_initializer: {RandomNormal: {stddev: .nan}}}}", "stddev: NaN"),
        ("{GaussianNoise: {stddev: .inf}}", "layers[1].GaussianNoise.stddev: expected a finite number"),
        ("{LeakyReLU: {negative_slope: .nan}}", "negative_slope: NaN"),
        ("{Conv1D: {filters: 1, kernel_size: [.nan]}}", "layers[1].Conv1D.kernel_size[0]: NaN"),
        ("{BatchNormalization: {momentum: .inf}}", "momentum: expected a finite number"),
    ],
)
def test_nan_and_infinities_in_layer_arguments_are_refused(item, fragment):
    assert fragment in problems(f"layers:\n  - Input: [4, 1]\n  - {item}\ncompile: {{loss: mse}}\n")


@pytest.mark.parametrize(
    "text",
    [
        "compile: {loss: mse, optimizer: {SGD: {clipnorm: .inf}}}",
        "compile: {loss: mse}\nfit: {callbacks: [{EarlyStopping: {baseline: .inf, monitor: loss}}]}",
        "compile: {loss: mse}\nfit: {callbacks: [{ModelCheckpoint: {filepath: m.keras, initial_value_threshold: -.inf, monitor: loss}}]}",
    ],
)
def test_infinities_that_mean_no_bound_are_accepted(text):
    spec_from_text("layers: [Dense: 1]\n" + text + "\n")


@pytest.mark.parametrize(
    "text, fragment",
    [
        (
            "{Adam: {learning_rate: [0.01]}}",
            "expected a positive learning rate, or a schedule like `{ExponentialDecay: {...}}`; received a list of 1.",
        ),
        ("{Adam: {learning_rate: null}}", "expected a positive learning rate, or a schedule"),
        ("{Adam: {learning_rate: true}}", "expected a positive learning rate, or a schedule"),
        (
            "{SGD: {momentum: 1.5}}",
            "compile.optimizer.SGD.momentum: expected a momentum between 0 and 1; received 1.5.",
        ),
        (
            "{Adam: {learning_rate: {ExponentialDecay: {initial_learning_rate: 0.1, decay_steps: x, decay_rate: 0.9}}}}",
            "decay_steps: expected a number; received the string 'x'.",
        ),
        (
            "{Adam: {learning_rate: {ExponentialDecay: {initial_learning_rate: 0.1, decay_steps: 0, decay_rate: 0.9}}}}",
            "decay_steps: expected a positive number; received 0.",
        ),
    ],
)
def test_optimizer_arguments_keras_refuses_at_construction(text, fragment):
    assert fragment in problems(f"layers: [Dense: 1]\ncompile: {{loss: mse, optimizer: {text}}}\n")


def test_integer_learning_rates_and_momentum_become_the_floats_keras_needs():
    spec = spec_from_text(
        "layers: [Dense: 1]\ncompile: {loss: mse, optimizer: {SGD: {learning_rate: 1, momentum: 0}}}\n"
    )
    args = spec.compile.optimizer.args
    assert args == {"learning_rate": 1.0, "momentum": 0.0} and all(type(v) is float for v in args.values())
    assert spec.to_dict()["compile"]["optimizer"] == {"SGD": {"learning_rate": 1.0, "momentum": 0.0}}


@pytest.mark.parametrize("factor", ["1", "2147483647", "0", "-0.5", "x"])
def test_reduce_lr_on_plateau_factor_is_below_one(factor):
    message = problems(
        f"layers: [Dense: 1]\ncompile: {{loss: mse}}\nfit: {{callbacks: [{{ReduceLROnPlateau: {{factor: {factor}, monitor: loss}}}}]}}\n"
    )
    assert "ReduceLROnPlateau.factor: expected a factor between 0 and 1" in message


@pytest.mark.parametrize(
    "name, fragment",
    [
        ('"iris\\n"', "received 'iris\\n'"),
        ('"iris\\r"', "received 'iris\\r'"),
        ('"\\niris"', "received '\\niris'"),
        ('"iris "', "received 'iris '"),
        ("a" * (129), "a name is at most 128 characters (it names the run folder); received 129."),
    ],
)
def test_names_that_cannot_name_a_run_folder(name, fragment):
    message = problems(f"name: {name}\nlayers: [Dense: 1]\ncompile: {{loss: mse}}\n")
    assert "x.yaml:1:7 name: " in message and fragment in message


def test_the_json_schema_refuses_a_name_ending_in_a_newline():
    jsonschema = pytest.importorskip("jsonschema")
    from nnflow.schema import json_schema

    validator = jsonschema.Draft202012Validator(json_schema())
    document = {"layers": [{"Dense": 1}], "compile": {"loss": "mse"}}
    assert not list(validator.iter_errors({**document, "name": "iris-mlp"}))
    assert list(validator.iter_errors({**document, "name": "iris-mlp\n"}))
    assert list(validator.iter_errors({**document, "name": "a" * 129}))


@pytest.mark.parametrize(
    "stem, fragment",
    [
        (
            "my exp",
            "'my exp', which holds characters other than letters, digits, '.', '_' and '-' (the name becomes the run folder). Add a line `name: my-exp` to the file, or rename the file.",
        ),
        ("x" * 130, "which is longer than 128 characters"),
        ("été", "Add a line `name: t` to the file"),
        ("_draft", "Add a line `name: draft` to the file"),
        ("(1)", "Add a line `name: 1` to the file"),
        ("!!", "Add a line `name: experiment` to the file"),
    ],
)
def test_a_name_from_the_file_name_says_where_it_came_from(stem, fragment, tmp_path):
    path = tmp_path / f"{stem}.yaml"
    path.write_text("layers: [Dense: 1]\ncompile: {loss: mse}\n")
    with pytest.raises(ConfigError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert (
        message.startswith(f"{path} name: the file has no `name:`, so the run is named after the file name")
        and fragment in message
    )
    assert ":1:1" not in message


def test_a_name_in_the_file_makes_any_file_name_fine(tmp_path):
    path = tmp_path / "my exp (copy).yaml"
    path.write_text("name: my-exp\nlayers: [Dense: 1]\ncompile: {loss: mse}\n")
    assert load_spec(path).name == "my-exp"


@pytest.mark.parametrize(
    "gate, fragment",
    [
        ("'< 1e999'", "the threshold '1e999' is too large to be a number"),
        ("'>= -1e400'", "the threshold '-1e400' is too large"),
        ("'== nan'", "a gate is a comparison like"),
        ("'>= inf'", "a gate is a comparison like"),
        ("0x" + "f" * 5000, 'a gate is a comparison written as a string, like ">= an integer of about 6,020 digits"'),
    ],
)
def test_gate_thresholds_are_finite_numbers(gate, fragment):
    assert fragment in problems(f"layers: [Dense: 1]\ncompile: {{loss: mse}}\nexpect: {{loss: {gate}}}\n")


@pytest.mark.parametrize(
    "layers, fragment",
    [
        (
            "[{Dense: {units: 4, name: h}}, {Dense: {units: 1, name: h}}]",
            "layers[1].Dense.name: two layers are named 'h' (layers[0] and layers[1])",
        ),
        ("[{Dense: {units: 1, name: a/b}}]", "layers[0].Dense.name: a layer's name is a non-empty string without '/'"),
        ("[{Dense: {units: 1, name: ''}}]", "a layer's name is a non-empty string"),
        ("[{Dense: {units: 1, name: [a]}}]", "a layer's name is a non-empty string"),
        ("[{Dense: {units: 1, name: 5}}]", "a layer's name is a non-empty string"),
    ],
)
def test_layer_names_keras_would_refuse(layers, fragment):
    assert fragment in problems(f"layers: {layers}\ncompile: {{loss: mse}}\n")


def test_a_layer_cannot_take_the_name_of_nnflows_normalization_layer():
    text = "data: {train: iris.csv, target: species}\nlayers: [{Dense: {units: 3, name: normalization}}]\ncompile: {loss: mse}\n"
    assert "layers[0].Dense.name: the name 'normalization' is taken by the layer nnflow adds" in problems(text)
    spec_from_text(text.replace("target: species", "target: species, normalize: false"))
    spec_from_text(
        "layers: [{Dense: {units: 3, name: normalization}}]\ncompile: {loss: mse}\n"
    )  # no data: no normalisation layer


@pytest.mark.parametrize(
    "metric, fragment",
    [
        ("{AUC: {name: [auc]}}", "compile.metrics[0].AUC.name: a name is a non-empty string"),
        ("{AUC: {name: 5}}", "a name is a non-empty string"),
        ("{AUC: {name: ''}}", "a name is a non-empty string"),
    ],
)
def test_metric_names_are_strings(metric, fragment):
    assert fragment in problems(f"layers: [Dense: 1]\ncompile: {{loss: mse, metrics: [{metric}]}}\n")


def test_a_home_folder_of_an_unknown_user_is_a_located_error():
    message = problems(
        "data: {train: ~nnflow-no-such-user/iris.csv, target: y, test: ~nnflow-no-such-user/t.csv}\nlayers: [Dense: 1]\ncompile: {loss: mse}\n"
    )
    assert "data.train: cannot expand '~nnflow-no-such-user'" in message and "data.test: cannot expand" in message


# ---------------------------------------------------------------------------
# Errors caused by --set point at the --set (issue 12, item 10)


@pytest.mark.parametrize(
    "override, where",
    [
        ("layers.0.units=0", "--set layers.0.units=0 layers[0].Dense.units: expected a positive integer; received 0."),
        ("layers.1.units=0", "--set layers.1.units=0 layers[1].Dense.units: expected a positive integer; received 0."),
        ("layers.1.Dense=0", "--set layers.1.Dense=0 layers[1].Dense.units: expected a positive integer; received 0."),
        ("layers.-1.units=0", "--set layers.-1.units=0 layers[1].Dense.units"),
        (
            "layers=[{Dense: {units: 0, input_dim: 3}}]",
            "--set layers=[{Dense: {units: 0, input_dim: 3}}] layers[0].Dense.units",
        ),
        ("layers.0={Dense: {units: 0}}", "--set layers.0={Dense: {units: 0}} layers[0].Dense.units"),
        (
            "layers.0.input_shape=[3]",
            "--set layers.0.input_shape=[3] layers[0].Dense: give either `input_dim` or `input_shape`, not both.",
        ),
        ("layers.0.name=x", None),
    ],
)
def test_problems_caused_by_a_set_of_layers_point_at_the_set(override, where):
    text = "layers:\n  - Dense: {units: 4, input_dim: 3}\n  - Dense: 1\ncompile: {loss: mse}\n"
    if where is None:
        spec_from_text(text, [override])
        return
    message = problems(text, [override])
    assert message.startswith(where) and "x.yaml:" not in message


@pytest.mark.parametrize(
    "override, where",
    [
        (
            "data.test=0.9",
            "--set data.test=0.9 data.validation: validation (0.2) and test (0.9) together take all of train",
        ),
        ("data.target=a", "--set data.target=a data.features: the target 'a' is also listed as a feature"),
        (
            "data.validation=0",
            "--set data.validation=0 fit.callbacks[0].EarlyStopping.monitor: EarlyStopping monitors 'val_loss', but `data.validation` is 0",
        ),
    ],
)
def test_conflicts_caused_by_a_set_point_at_the_set(override, where):
    text = "data: {train: t.csv, target: y, features: [a, b]}\nlayers: [Dense: 1]\ncompile: {loss: mse}\nfit: {callbacks: [EarlyStopping]}\n"
    assert where in problems(text, [override])


def test_conflicts_in_the_file_alone_still_point_at_the_file():
    text = "data: {train: t.csv, target: y, validation: 0.5, test: 0.5}\nlayers: [Dense: 1]\ncompile: {loss: mse}\n"
    assert problems(text, ["fit.epochs=2"]).startswith("x.yaml:1:45 data.validation: validation (0.5) and test (0.5)")


# ---------------------------------------------------------------------------
# One source for the metric names a run reports, and the gates beside `Gate` (issue 13)


@pytest.mark.parametrize(
    "data, reported",
    [
        (
            "{train: t.csv, target: y, validation: 0.2, test: 0.1}",
            ["loss", "mae", "val_loss", "val_mae", "test_loss", "test_mae"],
        ),
        ("{train: t.csv, target: y, validation: 0}", ["loss", "mae"]),
        ("{train: t.csv, target: y, test: v.csv}", ["loss", "mae", "val_loss", "val_mae", "test_loss", "test_mae"]),
    ],
)
def test_reported_metrics_are_each_metric_on_each_split_the_data_has(data, reported):
    spec = spec_from_text(f"data: {data}\nlayers: [Dense: 1]\ncompile: {{loss: mse, metrics: [mae]}}\n")
    assert spec.reported_metrics == reported


def test_reported_metrics_without_a_data_section_list_every_split():
    spec = spec_from_text(MINIMAL)
    assert spec.reported_metrics == ["loss", "val_loss", "test_loss"]


def test_check_gates_judges_each_gate_and_fails_a_metric_not_reported():
    from nnflow.spec import GateResult, check_gates

    spec = spec_from_text(MINIMAL + "expect: {loss: '<= 0.5', val_loss: '< 1'}\n")
    results = check_gates(spec, {"loss": 0.25})
    assert results == (GateResult("loss", "<= 0.5", 0.25, True), GateResult("val_loss", "< 1", None, False))
    assert str(results[0]) == "loss = 0.25, expected <= 0.5"
    assert str(results[1]) == "val_loss = not reported, expected < 1"
    assert results[0].to_json() == {"metric": "loss", "condition": "<= 0.5", "value": 0.25, "passed": True}
