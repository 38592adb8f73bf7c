"""The JSON Schema accepts every shipped config and rejects typos, as editors will show them."""

from pathlib import Path

import jsonschema  # noqa: E402  (a test dependency: pip install -e .[test])
import pytest
import yaml

from conftest import CONFIGS
from nnflow.schema import json_schema


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


# `sweep:` sections (issue 14), added to a model with one Dense layer.
SWEEPS_CHECK_ACCEPTS = [
    "{space: {layers.0.units: {int: [1, 8], log: true}, fit.batch_size: [16, 32]}}",
    "{metric: val_loss, direction: minimize, trials: 3, max_failures: 0, space: {fit.epochs: {int: [1, 9], step: 2}}}",
    "{metric: null, trials: null, sampler: {tpe: {n_startup_trials: 0, multivariate: true}}, space: {fit.shuffle: [true, false]}}",
    "{sampler: {qmc: {qmc_type: halton}}, pruner: {hyperband: {max_resource: auto}}, space: {layers: [[Dense: 1], [Dense: 2]]}}",
    "{sampler: grid, pruner: {median: null}, space: {compile.optimizer.Adam.learning_rate: {float: [0.001, 0.003], step: 0.001}}}",
    "{pruner: {successive_halving: {min_resource: 2, bootstrap_count: 1}}, space: {layers.0.activation: [relu, tanh]}}",
]
SWEEPS_CHECK_REFUSES = [
    "{trials: 3}",
    "{space: {}}",
    "{space: {fit.epochs: []}}",
    "{space: {fit.epochs: 3}}",
    "{space: {fit.epochs: {itn: [1, 3]}}}",
    "{space: {fit.epochs: {int: [1.5, 3]}}}",
    "{space: {fit.epochs: {int: [1, 3], float: [1, 3]}}}",
    "{space: {fit.epochs: {int: [1, 3], step: 0}}}",
    "{space: {sweep.trials: [1, 2]}}",
    "{trails: 3, space: {fit.epochs: [1, 2]}}",
    "{trials: 0, space: {fit.epochs: [1, 2]}}",
    "{max_failures: -1, space: {fit.epochs: [1, 2]}}",
    "{direction: maximise, space: {fit.epochs: [1, 2]}}",
    "{sampler: tpee, space: {fit.epochs: [1, 2]}}",
    "{sampler: {tpe: {n_startup_trial: 3}}, space: {fit.epochs: [1, 2]}}",
    "{sampler: {tpe: {seed: 3}}, space: {fit.epochs: [1, 2]}}",
    "{sampler: {random: {n_startup_trials: 3}}, space: {fit.epochs: [1, 2]}}",
    "{sampler: {qmc: {qmc_type: sobl}}, space: {fit.epochs: [1, 2]}}",
    "{sampler: {tpe: {}, random: {}}, space: {fit.epochs: [1, 2]}}",
    "{pruner: {hyperband: {max_resource: autp}}, space: {fit.epochs: [1, 2]}}",
    "{pruner: {median: {interval_steps: 0}}, space: {fit.epochs: [1, 2]}}",
    "{pruner: medain, space: {fit.epochs: [1, 2]}}",
]


@pytest.mark.parametrize(
    "text",
    [
        "layers: [Dense: 1]\ncompile: {loss: mse, optimizer: {Adam: {learning_rate: {ExponentialDecay: {initial_learning_rate: 0.1, decay_steps: 10, decay_rate: 0.9}}}}}\n",
        "layers: [Dense: 1]\ncompile: {loss: mse, metrics: accuracy}\n",
        "layers: [{LayerNormalization: {axis: [1, 2]}}]\ncompile: {loss: mse}\n",
        *(
            "layers: [Dense: {units: 4, input_dim: 2}]\ncompile: {loss: mse}\nsweep: " + sweep + "\n"
            for sweep in SWEEPS_CHECK_ACCEPTS
        ),
    ],
)
def test_schema_accepts_what_check_accepts(validator, text):
    from nnflow.spec import spec_from_text

    spec_from_text(text)
    assert list(validator.iter_errors(yaml.safe_load(text))) == []


@pytest.mark.parametrize(
    "text",
    [
        'name: "iris\\n"\nlayers: [Dense: 1]\ncompile: {loss: mse}\n',
        "layers: [Dense: 1]\ncompile: {loss: mse}\nfit: {epochs: 9223372036854775808}\n",
        "layers: [Dense: 1]\ncompile: {loss: mse}\nfit: {batch_size: 2147483648}\n",
        "layers: [Dense: 1]\ncompile: {loss: mse, steps_per_execution: 2147483648}\n",
        "seed: 4294967296\nlayers: [Dense: 1]\ncompile: {loss: mse}\n",
        "layers: [Dense: 1]\ncompile: {loss: mse}\nfit: {callbacks: [{BackupAndRestore: {backup_dir: b}}]}\n",
        *(
            "layers: [Dense: {units: 4, input_dim: 2}]\ncompile: {loss: mse}\nsweep: " + sweep + "\n"
            for sweep in SWEEPS_CHECK_REFUSES
        ),
    ],
)
def test_schema_refuses_what_check_refuses(validator, text):
    from nnflow.errors import ConfigError
    from nnflow.spec import spec_from_text

    with pytest.raises(ConfigError):
        spec_from_text(text)
    assert list(validator.iter_errors(yaml.safe_load(text)))


# ---------------------------------------------------------------------------
# The done-when of issue 13: on every experiment file the project ships, the generated schema
# accepts and refuses what `nnflow check` does, but for what a schema cannot see, listed here.

ROOT = Path(__file__).resolve().parent.parent
CORPUS = sorted(
    [
        *(ROOT / "configs").rglob("*.yaml"),
        *(ROOT / "tests" / "broken").glob("*.yaml"),
        *(ROOT / "examples").rglob("*.yaml"),
    ]
)

# Why a schema cannot judge a file as `check` does. Each file below is refused by `check` and
# accepted by the schema (or has no data for it at all); the test fails when one no longer is.
YAML_FAULT = (
    "YAML-level fault (encoding, tabs, duplicate keys, tags, aliases, nesting, emptiness): refused before there is data"
)
CROSS_SECTION = (
    "a cross-section check: a gate or a monitor names a metric `compile:` does not report, or a split `data:` lacks"
)
ACROSS_ITEMS = (
    "a check across the items of `layers:` (which item is first, the input shape given twice, unique layer names)"
)
FILE_NAME = "the run's name comes from the file's name, which the schema never sees"
RUN_FOLDER_PATH = "whether a callback path stays inside the run folder takes walking its '..' parts, past a pattern"
ARGUMENTS_TOGETHER = "ModelCheckpoint's file ending depends on another argument (save_weights_only)"
NOT_FINITE = "JSON has no NaN or infinity, so JSON Schema has no way to refuse them (YAML's .nan and .inf)"
HUGE_THRESHOLD = "a gate's threshold too large for a float still matches the comparison pattern"
PAST_INT64 = "JSON Schema cannot tell an integer past 64 bits (refused) from a float like 1e20 (accepted)"
WHOLE_FLOAT = "JSON Schema counts 32.0 as an integer; `check` asks for 32"
SWEEP_CANDIDATES = "a sweep's space key and candidates are judged by applying them to the file as `--set` does; a schema sees plain values"
SWEEP_GRID = "whether a float range needs a `step` depends on another key, `sweep.sampler` (grid)"
DATA_FILES = "a check against the data: `check` reads the data files' headers (here: a train file that is not there)"

SCHEMA_CANNOT_SEE: dict[str, str] = {
    **{
        name: YAML_FAULT
        for name in (
            "billion_laughs.yaml", "deep_nesting.yaml", "deep_nesting_block.yaml", "duplicate_key.yaml",
            "duplicate_section.yaml", "empty.yaml", "not_utf8.yaml", "only_comments.yaml",
            "python_tag_in_layer_argument.yaml", "python_tag_name.yaml", "python_tag_object_apply.yaml",
            "yaml_bad_dedent.yaml", "yaml_bad_indentation.yaml", "yaml_merge_key.yaml", "yaml_nul_escape.yaml",
            "yaml_surrogate_escape.yaml", "yaml_tab_indent.yaml", "yaml_tabs_two_lines.yaml", "yaml_two_documents.yaml",
            "yaml_unclosed_bracket.yaml",
        )
    },
    "expect_val_without_validation.yaml": CROSS_SECTION,
    "key_typo_expect_metric.yaml": CROSS_SECTION,
    "monitor_metric_not_compiled.yaml": CROSS_SECTION,
    "input_dim_not_first_layer.yaml": ACROSS_ITEMS,
    "input_not_first.yaml": ACROSS_ITEMS,
    "input_shape_twice.yaml": ACROSS_ITEMS,
    "layer_names_twice.yaml": ACROSS_ITEMS,
    "name from a file name.yaml": FILE_NAME,
    "callback_path_checkpoint_dotdot.yaml": RUN_FOLDER_PATH,
    "callback_path_csvlogger_dotdot.yaml": RUN_FOLDER_PATH,
    "callback_path_run_folder_itself.yaml": RUN_FOLDER_PATH,
    "callback_checkpoint_extension.yaml": ARGUMENTS_TOGETHER,
    "inf_learning_rate.yaml": NOT_FINITE,
    "inf_regularizer.yaml": NOT_FINITE,
    "inf_schedule_rate.yaml": NOT_FINITE,
    "nan_learning_rate.yaml": NOT_FINITE,
    "expect_threshold_overflows.yaml": HUGE_THRESHOLD,
    "range_patience_past_int64.yaml": PAST_INT64,
    "type_batch_size_float.yaml": WHOLE_FLOAT,
    "sweep_space_key_typo.yaml": SWEEP_CANDIDATES,
    "sweep_range_lets_a_bad_value_through.yaml": SWEEP_CANDIDATES,
    "sweep_grid_float_without_step.yaml": SWEEP_GRID,
    # `--set` files: their overrides are test_broken_configs.py's; alone, their data is what is wrong.
    "override_callback_monitor_without_validation.yaml": DATA_FILES,
    "override_test_split_takes_all.yaml": DATA_FILES,
}  # fmt: skip
# `--set` files (a `# set:` line): the schema sees the file, never the command line, so here both
# judge the file alone; test_broken_configs.py checks them with their overrides.


def _check_accepts(path: Path) -> bool:
    """What `nnflow check FILE` decides: the spec, then the data files' headers (workflows.check.check)."""
    from nnflow.errors import NnflowError
    from nnflow.headers import check_data
    from nnflow.spec import load_spec

    try:
        spec = load_spec(path)
        if spec.data is not None:
            check_data(spec.data)
    except NnflowError:
        return False
    return True


@pytest.mark.parametrize("path", CORPUS, ids=lambda path: str(path.relative_to(ROOT)))
def test_the_schema_judges_every_shipped_file_as_check_does(validator, path):
    from nnflow.errors import ConfigError
    from nnflow.yamlio import load_yaml_file

    reason = SCHEMA_CANNOT_SEE.get(path.name) if path.parent.name == "broken" else None
    try:
        data = load_yaml_file(path).data
    except ConfigError:
        assert reason == YAML_FAULT, f"{path.name}: not YAML that nnflow reads; list it as {YAML_FAULT!r}"
        return
    assert reason != YAML_FAULT, f"{path.name} is listed as a YAML-level fault but parses"
    check_accepts = _check_accepts(path)
    errors = [
        f"{'/'.join(map(str, error.absolute_path)) or '(the file)'}: {error.message[:200]}"
        for error in validator.iter_errors(data)
    ]
    if reason is not None:
        assert not check_accepts and not errors, f"{path.name} is listed ({reason}) but check and the schema now agree"
    elif check_accepts:
        assert errors == [], f"check accepts {path.name}; the schema refuses it"
    else:
        assert errors, f"check refuses {path.name}; the schema accepts it"


def test_every_file_listed_as_beyond_a_schema_exists():
    broken = {path.name for path in CORPUS if path.parent.name == "broken"}
    assert set(SCHEMA_CANNOT_SEE) <= broken, set(SCHEMA_CANNOT_SEE) - broken


def test_the_schema_the_defaults_and_the_accepted_keys_come_from_one_declaration():
    from nnflow.spec import COMPILE_KEYS, DATA_KEYS, DEFAULTS, FIT_KEYS, SECTIONS

    properties = json_schema()["properties"]
    assert tuple(properties) == SECTIONS
    assert properties["seed"]["default"] == DEFAULTS["seed"]
    for section, keys in (("data", DATA_KEYS), ("compile", COMPILE_KEYS), ("fit", FIT_KEYS)):
        fields = properties[section]["properties"]
        assert tuple(fields) == keys
        assert {key: field["default"] for key, field in fields.items() if "default" in field} == DEFAULTS[section]


def test_a_layer_argument_is_typed_as_check_types_it():
    """Sizes, rates, shapes, nested objects: an editor flags what `nnflow check` would."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(json_schema())
    refused = [
        "layers: [Dense: {units: 0}]\ncompile: {loss: mse}\n",
        "layers: [Dense: 0]\ncompile: {loss: mse}\n",
        "layers: [Dense: 2, Dropout: 1.5]\ncompile: {loss: mse}\n",
        "layers: [Dense: {units: 2, activation: sigmiod}]\ncompile: {loss: mse}\n",
        "layers: [Dense: {units: 2, kernel_initializer: glorot_unifrom}]\ncompile: {loss: mse}\n",
        "layers: [Conv2D: {filters: 2, kernel_size: true}]\ncompile: {loss: mse}\n",
        "layers: [Dense: {units: 2, name: a/b}]\ncompile: {loss: mse}\n",
        "layers: [Input: [0], Dense: 1]\ncompile: {loss: mse}\n",
        "layers: [Dense: 1]\ncompile: {loss: mse, optimizer: {Adam: {learning_rate: -1}}}\n",
        "layers: [Dense: 1]\ncompile: {loss: mse}\nfit: {callbacks: [{CSVLogger: {filename: 3}}]}\n",
    ]
    for text in refused:
        assert list(validator.iter_errors(yaml.safe_load(text))), text
