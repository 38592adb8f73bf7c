"""The YAML reader: plain data only, located errors, YAML 1.2 scalars."""

import pytest

from nnflow.errors import ConfigError
from nnflow.yamlio import MAX_FILE_BYTES, load_yaml_file, parse_yaml


def test_yaml_12_scalars():
    data = parse_yaml("a: 1e-3\nb: no\nc: on\nd: 0x10\ne: .inf\nf: 2024-01-01\ng: ~\nh: [1, 2.5, true, FALSE]").data
    assert data == {
        "a": 0.001,
        "b": "no",
        "c": "on",
        "d": 16,
        "e": float("inf"),
        "f": "2024-01-01",
        "g": None,
        "h": [1, 2.5, True, False],
    }


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
        (
            "a: !!python/object/apply:os.system ['true']\n",
            "x.yaml:1:4: the tag !!python/object/apply:os.system is not allowed",
        ),
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


# ---------------------------------------------------------------------------
# Only regular files, and bounded reads (issue 12, item 8)

import os  # noqa: E402
import threading  # noqa: E402

import yaml  # noqa: E402

from conftest import CONFIGS  # noqa: E402
from nnflow.yamlio import dump_yaml  # noqa: E402


def _within(seconds, function, *args):
    """Run `function` in a thread; fail (instead of hanging the suite) if it does not return in time."""
    outcome = {}

    def target():
        try:
            outcome["value"] = function(*args)
        except BaseException as error:  # noqa: BLE001 - handed to the test
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{function.__name__} did not return within {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_a_device_is_refused_without_reading_it(device):
    with pytest.raises(
        ConfigError, match=rf"^{device}: is a character device, not a regular file; expected an experiment file"
    ):
        _within(5, load_yaml_file, device)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "experiment.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="is a named pipe \\(FIFO\\), not a regular file"):
        _within(5, load_yaml_file, fifo)


def test_a_symlink_loop_is_not_reported_as_a_missing_file(tmp_path):
    (tmp_path / "a.yaml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "b.yaml").symlink_to(tmp_path / "a.yaml")
    with pytest.raises(ConfigError) as caught:
        load_yaml_file(tmp_path / "a.yaml")
    assert "a loop of symbolic links" in str(caught.value) and "no such file" not in str(caught.value)


def test_a_symlink_to_a_regular_file_is_read(tmp_path):
    target = tmp_path / "real.yaml"
    target.write_text("a: 1\n")
    (tmp_path / "link.yaml").symlink_to(target)
    assert load_yaml_file(tmp_path / "link.yaml").data == {"a": 1}


def test_a_file_that_grows_past_the_limit_after_stat_is_still_bounded(tmp_path, monkeypatch):
    """The limit holds on what is read, not on what stat() says."""
    path = tmp_path / "big.yaml"
    path.write_text("a: '" + "x" * (MAX_FILE_BYTES + 10) + "'\n")
    real_stat = os.stat

    def small(target, *args, **kwargs):  # what a file being written to could have said a moment ago
        result = real_stat(target, *args, **kwargs)
        return os.stat_result((*result[:6], 10, *result[7:])) if str(target) == str(path) else result

    monkeypatch.setattr(os, "stat", small)
    assert path.stat().st_size == 10
    with pytest.raises(
        ConfigError, match=r"the file is over 1,000,000 bytes; experiment files are limited to 1,000,000 bytes"
    ):
        load_yaml_file(path)


def test_a_file_that_cannot_be_read_says_why(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    path = tmp_path / "secret.yaml"
    path.write_text("a: 1\n")
    path.chmod(0)
    with pytest.raises(ConfigError, match=r"secret.yaml: cannot read it: permission denied\."):
        load_yaml_file(path)


# ---------------------------------------------------------------------------
# Characters and tags that no experiment can hold


@pytest.mark.parametrize(
    "text, fragment",
    [
        ('a: "x\\0y"\n', "x.yaml:1:4: a NUL character (\\0) is not allowed in a value or a key"),
        ('"x\\0": 1\n', "x.yaml:1:1: a NUL character (\\0) is not allowed"),
        ('a: "\\ud800"\n', "x.yaml:1:4: a lone surrogate (\\ud800, half of a UTF-16 pair) is not allowed"),
        ('a: ["ok", "\\udfff"]\n', "x.yaml:1:11: a lone surrogate (\\udfff"),
        ("a: b\x0c\n", "x.yaml:1:5: the character U+000C (a control character) is not allowed in a YAML file"),
        ("a: 1\nb: \x84\n", "x.yaml:2:4: the character U+0084"),
        ("a: \ufffe\n", "x.yaml:1:4: the character U+FFFE"),
        ("--- !!map\n", "x.yaml:1:5: the tag !!map does not fit a single value"),
        ("a: !!seq x\n", "the tag !!seq does not fit a single value"),
        ("a: !!str [1]\n", "x.yaml:1:4: the tag !!str does not fit a list"),
        ("a: !!int {b: 1}\n", "the tag !!int does not fit a mapping"),
        ("a: !!null []\n", "the tag !!null does not fit a list"),
    ],
)
def test_characters_and_tags_that_cannot_be_plain_data_are_located(text, fragment):
    with pytest.raises(ConfigError) as caught:
        parse_yaml(text, "x.yaml")
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    "text, data",
    [
        ("a: !!map {b: 1}\n", {"a": {"b": 1}}),
        ("a: !!seq [1]\n", {"a": [1]}),
        ("a: !!str 5\n", {"a": "5"}),
        ('a: "\\U0001F600 \\t"\n', {"a": "\U0001f600 \t"}),
    ],
)
def test_tags_that_fit_and_escapes_of_characters_are_plain_data(text, data):
    assert parse_yaml(text).data == data


# ---------------------------------------------------------------------------
# A run folder's experiment.yaml reads back as it was written (issue 12, item 3)


def _resolved_files():
    from nnflow import load_spec

    return [
        load_spec(path).to_dict() for path in sorted(CONFIGS.glob("*.yaml")) + sorted(CONFIGS.glob("lessons/*.yaml"))
    ]


@pytest.mark.parametrize("writer", ["dump_yaml", "safe_dump"])
def test_a_resolved_experiment_reads_back_the_same(writer, tmp_path):
    for resolved in _resolved_files():
        path = tmp_path / "experiment.yaml"
        text = (
            dump_yaml(resolved, comment="The resolved experiment\nFrom: x.yaml")
            if writer == "dump_yaml"
            else "# header\n" + yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True)
        )
        path.write_text(text, encoding="utf-8")
        assert load_yaml_file(path).data == resolved


@pytest.mark.parametrize(
    "value",
    [
        "1e3",
        "1E-5",
        "0o17",
        "1.0e3",
        ".5",
        "yes",
        "no",
        "on",
        "null",
        "~",
        "True",
        "0x1F",
        "\x85",
        "a\u2028b",
        "x\u2029",
        "é",
        "",
        " ",
        "#x",
        "a: b",
    ],
)
def test_dump_yaml_quotes_strings_that_either_yaml_version_reads_otherwise(value):
    text = dump_yaml({"name": value, "data": {"target": value}})
    assert parse_yaml(text).data == {"name": value, "data": {"target": value}}
    assert yaml.safe_load(text) == {"name": value, "data": {"target": value}}


def test_safe_dump_does_not_round_trip_what_dump_yaml_does():
    """Why run folders should be written with dump_yaml: yaml.safe_dump leaves `1e3` bare, YAML 1.2 reads a number."""
    assert parse_yaml(yaml.safe_dump({"target": "1e3"})).data == {"target": 1000.0}
    assert parse_yaml(dump_yaml({"target": "1e3"})).data == {"target": "1e3"}


@pytest.mark.parametrize(
    "comment", ["From: my\nexp.yaml", "a\rb", "a\r\nb", "a\u2028b", "a\x85b", "--set name=x\n\nlayers: []"]
)
def test_dump_yaml_comments_cannot_break_out_of_the_comment(comment):
    text = dump_yaml({"a": 1}, comment=comment)
    assert parse_yaml(text).data == {"a": 1}
    assert all(line.startswith("# ") for line in text.splitlines()[:-1])


def test_dump_yaml_writes_shared_values_out_instead_of_aliases():
    shared = {"units": 4}
    text = dump_yaml({"a": shared, "b": shared})
    assert "&" not in text and "*" not in text and parse_yaml(text).data == {"a": shared, "b": shared}


# ---------------------------------------------------------------------------
# Where an overridden value came from


def test_an_override_of_a_parent_replaces_the_files_positions_below_it():
    from nnflow.overrides import apply_overrides

    document = parse_yaml("layers:\n  - Dense: {units: 4}\nfit: {epochs: 2}\n", "x.yaml")
    assert apply_overrides(document, ["layers=[{Dense: {units: 0}}]"]) == []
    assert document.where(("layers", 0, "Dense", "units")) == "--set layers=[{Dense: {units: 0}}]"
    assert document.where(("fit", "epochs")) == "x.yaml:3:15"
    apply_overrides(document, ["layers.0.units=3"])
    assert document.where(("layers", 0, "Dense", "units")) == "--set layers.0.units=3"  # the most specific
    assert document.where(("layers", 0, "Dense", "activation")) == "--set layers=[{Dense: {units: 0}}]"
