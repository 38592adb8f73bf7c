"""A corpus of bad data: each case must make `nnflow train` fail cleanly with exit 3.

Each folder in tests/bad_data/ holds an `experiment.yaml` and its data files. The
experiment's header says what nnflow must say:

    # expect: train.csv: row 4 (line 5), feature 'petal_length': '1.5cm' is not a number
    # check: passes (the problem is in the rows, which only train reads)

For each case the test copies the folder to tmp_path, runs `nnflow train` there in-process
and asserts: exit code 3; no traceback; the error on stderr holding every expected
fragment; and no run folder left behind (the data is checked before one is made).

`nnflow check` reads the data files' headers: it must refuse every case the same way
(exit 3, the same fragments), except those marked `# check: passes`, where it must pass.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from nnflow.cli import cli

BAD_DATA = Path(__file__).resolve().parent / "bad_data"
CASES = sorted(path.name for path in BAD_DATA.iterdir() if (path / "experiment.yaml").is_file())


def expectations(config: Path) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in config.read_text().splitlines() if line.startswith("# expect:")]


def check_passes(config: Path) -> bool:
    return any(line.startswith("# check: passes") for line in config.read_text().splitlines())


def test_the_corpus_is_big_enough():
    assert len(CASES) >= 12


@pytest.mark.parametrize("case", CASES)
def test_bad_data_exits_3_with_a_located_message(case, tmp_path, monkeypatch):
    folder = tmp_path / case
    shutil.copytree(BAD_DATA / case, folder)
    monkeypatch.chdir(tmp_path)
    fragments = expectations(folder / "experiment.yaml")
    assert fragments, f"{case}: no '# expect:' line"

    result = CliRunner().invoke(cli, ["train", str(folder / "experiment.yaml"), "-q"])

    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stderr.startswith("Error: ")
    for fragment in fragments:
        assert fragment in result.stderr
    assert not (tmp_path / "runs").exists(), "a run folder was made for data that cannot train"


@pytest.mark.parametrize("case", CASES)
def test_check_refuses_what_the_headers_show(case, tmp_path, monkeypatch):
    folder = tmp_path / case
    shutil.copytree(BAD_DATA / case, folder)
    monkeypatch.chdir(tmp_path)
    config = folder / "experiment.yaml"

    result = CliRunner().invoke(cli, ["check", str(config)])

    assert "Traceback" not in result.output
    if check_passes(config):
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 3, result.output
    assert result.stderr.startswith("Error: ")
    for fragment in expectations(config):
        assert fragment in result.stderr


def test_check_catches_most_of_the_corpus():
    caught = [case for case in CASES if not check_passes(BAD_DATA / case / "experiment.yaml")]
    assert len(caught) >= 20, caught
