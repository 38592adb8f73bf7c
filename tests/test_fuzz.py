"""Property-based fuzzing of the file reader, `--set` and the validator (no TensorFlow).

The generator lives in benchmarks/fuzz_spec.py, which runs 10,000 examples; here a few
hundred run in a fixed (derandomised) order, so a failure is the same on every machine.
Any exception other than ConfigError, a hang, or a valid experiment whose resolved file
does not read back the same, fails the test with Hypothesis's smallest example.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import fuzz_spec  # noqa: E402
from nnflow.errors import ConfigError  # noqa: E402
from nnflow.yamlio import dump_yaml, parse_yaml  # noqa: E402

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,  # the time limit is run_case's own (a hang raises fuzz_spec.Hang)
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


@settings(FUZZ, max_examples=150)
@given(fuzz_spec.cases())
def test_mutated_experiments_give_a_spec_or_a_config_error(case):
    assert fuzz_spec.run_case(case, limit=5) in ("spec", "config-error")


@settings(FUZZ, max_examples=100)
@given(fuzz_spec.cases(text=False))
def test_overrides_on_mutated_documents_give_a_spec_or_a_config_error(case):
    assert fuzz_spec.run_case(case, limit=5) in ("spec", "config-error")


@settings(FUZZ, max_examples=60)
@given(fuzz_spec.cases(structure=False, overrides=False))
def test_text_mutations_of_shipped_files_give_a_spec_or_a_config_error(case):
    assert fuzz_spec.run_case(case, limit=5) in ("spec", "config-error")


def _same(a, b) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


PLAIN = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()
    | st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
    | st.sampled_from(fuzz_spec.EXTREME_STRINGS),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6),
            children,
            max_size=4,
        )
    ),
    max_leaves=10,
)


@settings(FUZZ, max_examples=100)
@given(PLAIN)
def test_dump_yaml_reads_back_as_the_same_data(data):
    """What a run folder keeps (experiment.yaml) is read back exactly, by nnflow and by PyYAML."""
    import yaml

    text = dump_yaml({"value": data})
    try:
        back = parse_yaml(text, "x.yaml").data["value"]
    except ConfigError as error:
        # Only what the reader refuses on purpose: characters YAML cannot hold, nesting, aliases.
        assert "not allowed" in str(error) or "nesting" in str(error), str(error)
        return
    assert _same(data, back), text
    assert _same(data, yaml.safe_load(text)["value"]), text


def test_the_seeds_are_valid_experiments_so_mutations_start_from_real_files():
    outcomes = {
        name: fuzz_spec.run_case(fuzz_spec.Case(text))
        for name, text in fuzz_spec.SEEDS
        if name.startswith(("configs", "SPEC"))
    }
    assert len(outcomes) >= 10 and set(outcomes.values()) == {"spec"}, outcomes


def test_the_harness_reports_an_exception_that_is_not_a_config_error(monkeypatch):
    """Guard the harness: a validator that crashes must not pass for a ConfigError."""
    from nnflow.spec import expect

    def crash(self, *args, **kwargs):
        raise ValueError("boom")

    monkeypatch.setattr(expect, "gate", crash)
    with pytest.raises(ValueError, match="boom"):
        fuzz_spec.run_case(fuzz_spec.Case(dict(fuzz_spec.SEEDS)["configs/iris.yaml"]))


def test_the_harness_reports_a_hang(monkeypatch):
    import time

    from nnflow.spec import expect

    monkeypatch.setattr(expect, "gate", lambda self, *args: time.sleep(10))
    with pytest.raises(fuzz_spec.Hang):
        fuzz_spec.run_case(fuzz_spec.Case(dict(fuzz_spec.SEEDS)["configs/iris.yaml"]), limit=0.2)


def test_the_harness_reports_a_resolved_file_that_does_not_read_back(monkeypatch):
    from nnflow import spec

    monkeypatch.setattr(spec.Spec, "to_dict", lambda self: {"layers": "not a list"})
    with pytest.raises(fuzz_spec.ResolvedFileMismatch):
        fuzz_spec.run_case(fuzz_spec.Case(dict(fuzz_spec.SEEDS)["configs/iris.yaml"]))
