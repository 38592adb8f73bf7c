"""The JSON Schema accepts every shipped config and rejects typos, as editors will show them."""

import pytest
import yaml

from conftest import CONFIGS
from nnflow.schema import json_schema

import jsonschema  # noqa: E402  (a test dependency: pip install -e .[test])


@pytest.fixture(scope="module")
def validator():
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("config", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_shipped_configs_are_valid(validator, config):
    data = yaml.safe_load((CONFIGS / config).read_text())
    assert list(validator.iter_errors(data)) == []


@pytest.mark.parametrize(
    "text",
    [
        "layers: [Dens: 1]\ncompile: {loss: mse}\n",
        "layers: [Dense: {unit: 1}]\ncompile: {loss: mse}\n",
        "layers: [Dense: 1]\ncompile: {loss: mse, optimizer: {Adam: {learning_rat: 1}}}\n",
        "layers: [Dense: 1]\ncompile: {loss: mse}\nfit: {epoch: 3}\n",
        "layers: [Dense: 1]\ncompile: {loss: mse}\nexpect: {loss: '=> 3'}\n",
        "layers: [Dense: 1]\n",
    ],
)
def test_typos_are_schema_errors(validator, text):
    assert list(validator.iter_errors(yaml.safe_load(text)))


def test_layer_arguments_are_listed_for_completion():
    layers = json_schema()["properties"]["layers"]["items"]["anyOf"]
    dense = next(v for v in layers if "Dense" in v.get("properties", {}))
    arguments = dense["properties"]["Dense"]["anyOf"][0]["properties"]
    assert {"units", "activation", "use_bias", "kernel_initializer", "input_dim"} <= set(arguments)


@pytest.mark.parametrize(
    "text",
    [
        "layers: [Dense: 1]\ncompile: {loss: mse, optimizer: {Adam: {learning_rate: {ExponentialDecay: {initial_learning_rate: 0.1, decay_steps: 10, decay_rate: 0.9}}}}}\n",
        "layers: [Dense: 1]\ncompile: {loss: mse, metrics: accuracy}\n",
        "layers: [{LayerNormalization: {axis: [1, 2]}}]\ncompile: {loss: mse}\n",
    ],
)
def test_schema_accepts_what_check_accepts(validator, text):
    from nnflow.spec import spec_from_text

    spec_from_text(text)
    assert list(validator.iter_errors(yaml.safe_load(text))) == []


@pytest.mark.parametrize(
    "text",
    [
        "name: \"iris\\n\"\nlayers: [Dense: 1]\ncompile: {loss: mse}\n",
        "layers: [Dense: 1]\ncompile: {loss: mse}\nfit: {epochs: 9223372036854775808}\n",
        "layers: [Dense: 1]\ncompile: {loss: mse}\nfit: {batch_size: 2147483648}\n",
        "layers: [Dense: 1]\ncompile: {loss: mse, steps_per_execution: 2147483648}\n",
        "seed: 4294967296\nlayers: [Dense: 1]\ncompile: {loss: mse}\n",
        "layers: [Dense: 1]\ncompile: {loss: mse}\nfit: {callbacks: [{BackupAndRestore: {backup_dir: b}}]}\n",
    ],
)
def test_schema_refuses_what_check_refuses(validator, text):
    from nnflow.errors import ConfigError
    from nnflow.spec import spec_from_text

    with pytest.raises(ConfigError):
        spec_from_text(text)
    assert list(validator.iter_errors(yaml.safe_load(text)))
