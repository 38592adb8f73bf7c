"""The builder: the model Keras users would write by hand, and Keras's errors located."""

import warnings

import keras  # noqa: E402
import pytest

from conftest import CONFIGS
from nnflow import build_model, load_spec
from nnflow.errors import ConfigError
from nnflow.spec import spec_from_text


def _without_name(config: dict) -> dict:
    return {key: value for key, value in config.items() if key != "name"}


def test_tutorial_builds_the_hand_written_model_without_warnings():
    spec = load_spec(CONFIGS / "tutorial.yaml")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = build_model(spec)
    assert [str(w.message) for w in caught] == []

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the hand-written version triggers the input_dim warning
        by_hand = keras.Sequential()
        by_hand.add(keras.layers.Dense(units=4, input_dim=3))
        by_hand.add(keras.layers.Activation("sigmoid"))
        by_hand.add(keras.layers.Dense(units=4))
        by_hand.add(keras.layers.Activation("sigmoid"))
        by_hand.compile(optimizer="sgd", loss="mse")

    assert model.count_params() == by_hand.count_params() == 36
    assert [type(layer) for layer in model.layers] == [type(layer) for layer in by_hand.layers]
    for ours, theirs in zip(model.layers, by_hand.layers):
        assert _without_name(ours.get_config()) == _without_name(theirs.get_config())
    assert model.input_shape == by_hand.input_shape == (None, 3)
    assert type(model.optimizer) is type(by_hand.optimizer)
    assert model.loss == "mse"


def test_objects_with_arguments_become_keras_objects():
    spec = spec_from_text(
        """
        seed: 3
        layers:
          - Input: {shape: [8, 8, 1]}
          - Conv2D: [4, 3]
          - MaxPooling2D: 2
          - Flatten
          - Dense: {units: 3, activation: softmax, kernel_initializer: {RandomNormal: {stddev: 0.5}}, kernel_regularizer: {L2: {l2: 0.01}}}
        compile:
          optimizer: {Adam: {learning_rate: {ExponentialDecay: {initial_learning_rate: 0.1, decay_steps: 10, decay_rate: 0.9}}}}
          loss: {SparseCategoricalCrossentropy: {from_logits: false}}
          metrics: [accuracy, {SparseTopKCategoricalAccuracy: {k: 2, name: top2}}]
        """.replace("\n        ", "\n")
    )
    model = build_model(spec)
    dense = model.layers[-1]
    assert dense.get_config()["kernel_initializer"]["class_name"] == "RandomNormal"
    assert dense.get_config()["kernel_initializer"]["config"]["stddev"] == 0.5
    assert isinstance(dense.kernel_regularizer, keras.regularizers.L2)
    assert isinstance(model.optimizer.learning_rate, keras.optimizers.schedules.ExponentialDecay) or hasattr(
        model.optimizer, "_learning_rate"
    )
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)
    assert model.layers[0].get_config()["filters"] == 4 and model.layers[0].get_config()["kernel_size"] == (3, 3)


def test_the_same_seed_gives_the_same_initial_weights():
    text = "seed: 5\nlayers: [Input: [4], Dense: 3]\ncompile: {loss: mse}\n"
    first = build_model(spec_from_text(text)).get_weights()
    second = build_model(spec_from_text(text)).get_weights()
    assert all((a == b).all() for a, b in zip(first, second))


@pytest.mark.parametrize(
    "layers, fragment",
    [
        ("[Input: [4], {Conv2D: {filters: 8, kernel_size: 3, padding: sideways}}]", "layers[1].Conv2D"),
        ("[Input: [4], Conv2D: [8, 3]]", "Keras cannot add this layer"),
        ("[Input: [4], {Reshape: {target_shape: [3, 3]}}]", "layers[1]"),
    ],
)
def test_keras_build_errors_come_back_located(layers, fragment):
    spec = spec_from_text(f"layers: {layers}\ncompile: {{loss: mse}}\n", source="x.yaml")
    with pytest.raises(ConfigError) as caught:
        build_model(spec)
    message = str(caught.value)
    assert fragment in message and "x.yaml:1:" in message


def test_unknown_input_shape_says_how_to_give_one():
    with pytest.raises(ConfigError, match=r"input shape is unknown. Give it as the first item"):
        build_model(spec_from_text("layers: [Dense: 1]\ncompile: {loss: mse}\n"))


def test_input_shape_from_the_caller():
    model = build_model(spec_from_text("layers: [Dense: 2]\ncompile: {loss: mse}\n"), input_shape=(5,))
    assert model.count_params() == 12


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("layers: [Input: [4], {Dense: {units: 4, dtype: int32}}]\ncompile: {loss: mse}\n", "layers[1]"),
        (
            "layers: [Input: [4], {Embedding: {input_dim: 10, output_dim: 4, weights: [1]}}]\ncompile: {loss: mse}\n",
            "layers[1]",
        ),
        ("layers: [Input: [4], {Dense: {units: 3, kernel_initializer: stft}}]\ncompile: {loss: mse}\n", "layers[1]"),
    ],
)
def test_any_keras_failure_on_the_files_arguments_is_a_located_config_error(text, fragment):
    with pytest.raises(ConfigError) as caught:
        build_model(spec_from_text(text, source="x.yaml"))
    assert fragment in str(caught.value) and "x.yaml:1:" in str(caught.value)


@pytest.mark.parametrize(
    "objects",
    [
        "compile: {loss: mse, optimizer: Lamb}",
        "compile: {loss: mse, optimizer: lion}",
        "layers_extra: {kernel_regularizer: l1_l2, kernel_initializer: constant, kernel_constraint: max_norm}",
    ],
)
def test_every_bare_name_the_catalog_accepts_builds(objects):
    if objects.startswith("layers_extra"):
        args = objects[len("layers_extra: {") : -1]
        text = f"layers: [Input: [4], {{Dense: {{units: 2, {args}}}}}]\ncompile: {{loss: mse}}\n"
    else:
        text = f"layers: [Input: [4], Dense: 2]\n{objects}\n"
    build_model(spec_from_text(text))


def test_input_options_are_honoured():
    spec = spec_from_text(
        "layers: [{Input: {shape: [4], dtype: float64, name: features}}, Dense: 1]\ncompile: {loss: mse}\n"
    )
    model = build_model(spec)
    assert model.inputs[0].dtype == "float64" and model.inputs[0].name == "features"


def test_layer_names_are_the_same_every_time_in_one_process():
    """Keras counts automatic names across a process; nnflow names unnamed layers per model."""
    from nnflow import build_model
    from nnflow.spec import spec_from_text

    text = "layers: [{Dense: {units: 4, input_dim: 3}}, {Dense: 2}, {Dropout: {rate: 0.1, name: dense_1}}, {Dense: 1}]\ncompile: {loss: mse}\n"
    first = [layer.name for layer in build_model(spec_from_text(text)).layers]
    second = [layer.name for layer in build_model(spec_from_text(text)).layers]
    assert first == second == ["dense", "dense_2", "dense_1", "dense_3"]  # a name the file gives is kept, and skipped
