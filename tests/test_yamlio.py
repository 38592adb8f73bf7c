"""The YAML reader: plain data only, located errors, YAML 1.2 scalars."""

import pytest

from nnflow.errors import ConfigError
from nnflow.yamlio import MAX_FILE_BYTES, load_yaml_file, parse_yaml


def test_yaml_12_scalars():
    data = parse_yaml("a: 1e-3\nb: no\nc: on\nd: 0x10\ne: .inf\nf: 2024-01-01\ng: ~\nh: [1, 2.5, true, FALSE]").data
    assert data == {"a": 0.001, "b": "no", "c": "on", "d": 16, "e": float("inf"), "f": "2024-01-01", "g": None, "h": [1, 2.5, True, False]}


def test_positions_are_one_based_and_cover_keys_and_values():
    document = parse_yaml("fit:\n  epochs: 5\nlayers:\n  - Dense: 4\n", "x.yaml")
    assert document.where(("fit", "epochs")) == "x.yaml:2:11"
    assert document.where(("fit", "epochs"), key=True) == "x.yaml:2:3"
    assert document.where(("layers", 0, "Dense")) == "x.yaml:4:12"
    assert document.where(("fit", "missing")) == "x.yaml:2:3"  # falls back to the parent


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("a: 1\nb: 2\na: 3\n", "x.yaml:3:1: duplicate key 'a': it is also set at line 1"),
        ("a: !!python/object/apply:os.system ['true']\n", "x.yaml:1:4: the tag !!python/object/apply:os.system is not allowed"),
        ("a: !!binary aGk=\n", "the tag !!binary is not allowed"),
        ("a: !custom x\n", "the tag !custom is not allowed"),
        ("a:\n\tb: 1\n", "x.yaml:2:1: a tab is used for indentation"),
        ("a: [1, 2\n", "x.yaml:2:1: YAML syntax error"),
        ("", "x.yaml: the file is empty"),
        ("# only a comment\n---\n", "x.yaml: the file is empty"),
        ("a: " + "[" * 60 + "]" * 60, "nesting is deeper than 50 levels"),
        ("x: &a [*a]\n", "nesting is deeper than 50 levels (through aliases)"),
        ("<<: {a: 1}\n", "merge keys"),
        ("? [a]\n: 1\n", "a key must be a plain name"),
    ],
)
def test_refusals_are_located(text, fragment):
    with pytest.raises(ConfigError) as caught:
        parse_yaml(text, "x.yaml")
    assert fragment in str(caught.value)


def test_billion_laughs_is_stopped_by_the_expansion_budget():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    with pytest.raises(ConfigError, match="aliases expand to more than"):
        parse_yaml("\n".join(lines), "bomb.yaml")


def test_aliases_within_budget_are_fine():
    data = parse_yaml("base: &b {units: 4}\nuse: *b\n").data
    assert data["use"] == {"units": 4}


def test_file_size_limit(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("a: '" + "x" * MAX_FILE_BYTES + "'\n")
    with pytest.raises(ConfigError, match="limited to 1,000,000 bytes"):
        load_yaml_file(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_yaml_file(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a folder"):
        load_yaml_file(tmp_path)


def test_not_utf8(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_yaml_file(path)
