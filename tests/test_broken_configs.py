"""A corpus of broken experiment files: each one must fail `nnflow check` cleanly.

Every file in tests/broken/ states what nnflow must say about it in header comments:

    # expect: line 5, col 3: unknown key 'epoch' in `fit`. Did you mean 'epochs'?
    # expect: line 5: YAML syntax error            (line only: the column is not asserted)
    # expect: file: the file is empty              (located at the file itself, no line)
    # expect: --set fit.epoch=5: unknown key       (located at a command-line override)
    # expect: 3 problems in                        (no location: only the fragment)
    # set: fit.epoch=5                             (run with `--set fit.epoch=5`)

For each file the test runs `nnflow check FILE [--set ...]` in-process and asserts: exit
code 2; no traceback; the error on stderr (nothing on stdout); and, for every `expect`
line, an output line that holds the location immediately followed (after the key path,
if any) by the fragment. A file whose expectations do not announce "N problems" must
report exactly one problem, so each file in the corpus tests one thing.

Files that carry YAML tags which a full YAML loader would execute hold placeholders:
`__TRACE__` (a path under tmp_path) and `__TRACE_MODULE__` (a module, written under
tmp_path, that creates `__TRACE__` when imported). The test materialises them in
tmp_path and asserts the trace file does not exist afterwards; a control test proves
the same payloads do leave the trace under `yaml.unsafe_load`.

Cases where nnflow is wrong today are listed in KNOWN_BUGS and xfail strictly.
"""

from __future__ import annotations

import re
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from nnflow.cli import cli

BROKEN = Path(__file__).resolve().parent / "broken"
FILES = sorted(BROKEN.glob("*.yaml"))

# Files that cannot carry a header comment (a comment would make them non-empty).
NO_HEADER = {
    "empty.yaml": ["# expect: file: the file is empty. An experiment file needs at least a `layers:` list"],
}

# file name -> why the expected (correct) behaviour does not hold today.
KNOWN_BUGS: dict[str, str] = {}

_EXPECT = re.compile(
    r"^#\s*expect:\s*"
    r"(?:(?:line (?P<line>\d+)(?:, col (?P<col>\d+))?|(?P<file>file)|(?P<set>--set \S+)):\s+)?"
    r"(?P<fragment>.+?)\s*$"
)
_SET = re.compile(r"^#\s*set:\s*(?P<override>\S.*?)\s*$")


@dataclass(frozen=True)
class Expectation:
    fragment: str
    line: int | None = None
    col: int | None = None
    at_file: bool = False
    override: str | None = None

    @property
    def located(self) -> bool:
        return self.line is not None or self.at_file or self.override is not None

    def pattern(self, source: str) -> re.Pattern:
        """One output line: the location, then an optional key path, then the fragment."""
        fragment = re.escape(self.fragment)
        if self.override is not None:
            where = re.escape(self.override)
        elif self.line is not None:
            where = re.escape(f"{source}:{self.line}") + (f":{self.col}" if self.col is not None else r"(?::\d+)?")
        elif self.at_file:
            # The bare file name, not followed by :line; the fragment may come before it
            # ("3 problems in FILE:") or after it ("FILE: the file is empty").
            where = re.escape(source) + r"(?!:\d)"
            return re.compile(rf"^(?=.*{where}).*{fragment}", re.MULTILINE)
        else:
            return re.compile(fragment)
        # `FILE:6:3: message` or `FILE:6:3 fit.epoch: message`; the fragment later on that line.
        return re.compile(rf"{where}(?::| \S+:) .*?{fragment}")


def parse_header(lines: list[str]) -> tuple[list[Expectation], list[str]]:
    expectations, overrides = [], []
    for line in lines:
        if match := _SET.match(line):
            overrides.append(match["override"])
        elif match := _EXPECT.match(line):
            expectations.append(
                Expectation(
                    fragment=match["fragment"],
                    line=int(match["line"]) if match["line"] else None,
                    col=int(match["col"]) if match["col"] else None,
                    at_file=bool(match["file"]),
                    override=match["set"],
                )
            )
    return expectations, overrides


def header_lines(path: Path) -> list[str]:
    if path.name in NO_HEADER:
        return NO_HEADER[path.name]
    text = path.read_bytes().decode("utf-8", errors="replace")
    return [line for line in text.splitlines() if line.startswith("#")]


def materialise(path: Path, tmp_path: Path, monkeypatch) -> tuple[Path, Path | None]:
    """Copy a file that holds trace placeholders into tmp_path, filling them in."""
    raw = path.read_bytes()
    if b"__TRACE" not in raw:
        return path, None
    trace = tmp_path / "trace" / "created-by-the-payload"
    trace.parent.mkdir()
    assert re.fullmatch(r"[\w/.-]+", str(trace)), "the trace path must be safe to put in a shell command"
    module = f"nnflow_trace_{uuid.uuid4().hex}"
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules" / f"{module}.py").write_text(
        f"import pathlib\npathlib.Path({str(trace)!r}).touch()\ndef loss(*args):\n    return 0\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "modules"))
    text = raw.decode("utf-8").replace("__TRACE_MODULE__", module).replace("__TRACE__", str(trace))
    copy = tmp_path / path.name
    copy.write_text(text, encoding="utf-8")
    return copy, trace


def check(path: Path, overrides=()) -> Result:
    args = ["check", str(path)]
    for override in overrides:
        args += ["--set", override]
    # click 8.2+: `output` interleaves stdout and stderr, `stderr` is stderr alone.
    return CliRunner().invoke(cli, args)


def _param(path: Path):
    marks = ()
    if path.name in KNOWN_BUGS:
        marks = (pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[path.name]),)
    return pytest.param(path, id=path.name, marks=marks)


@pytest.mark.parametrize("path", [_param(p) for p in FILES])
def test_broken_file_is_refused_with_a_located_message(path, tmp_path, monkeypatch):
    target, trace = materialise(path, tmp_path, monkeypatch)
    expectations, overrides = parse_header(header_lines(target))  # placeholders filled in
    assert expectations, f"{path.name} has no `# expect:` header"
    assert any(e.located for e in expectations), f"{path.name}: at least one expectation must give a location"

    result = check(target, overrides)
    source = str(target)
    shown = f"exit {result.exit_code}\n--- output ---\n{result.output}"

    assert result.exit_code == 2, shown
    assert result.exc_info is None or result.exc_info[0] is SystemExit, shown  # not a crash caught by CliRunner
    assert "Traceback" not in result.output, shown
    assert result.stdout == "", "errors go to stderr only:\n" + shown
    assert result.stderr.startswith("Error: "), shown
    for expectation in expectations:
        assert expectation.pattern(source).search(result.stderr), f"expected {expectation}\n{shown}"
    if not any(re.search(r"\d+ problems", e.fragment) for e in expectations):
        assert not re.match(r"Error: \d+ problems", result.stderr), f"{path.name} should hold one problem\n{shown}"
        assert result.stderr.count("\n") == 1, f"{path.name} should hold one problem\n{shown}"
    if trace is not None:
        assert not trace.exists(), "the YAML payload was executed!"


def test_corpus_is_large_enough_and_every_file_has_a_header():
    assert len(FILES) >= 36
    assert set(NO_HEADER) <= {p.name for p in FILES}
    assert set(KNOWN_BUGS) <= {p.name for p in FILES}, "a KNOWN_BUGS entry names a file that does not exist"
    for path in FILES:
        expectations, _ = parse_header(header_lines(path))
        assert expectations, path.name


@pytest.mark.parametrize(
    "name", ["python_tag_object_apply.yaml", "python_tag_in_layer_argument.yaml", "python_tag_name.yaml"]
)
def test_tag_payloads_are_live_under_an_unsafe_loader(name, tmp_path, monkeypatch):
    """Control: the payloads really would leave their trace, so asserting its absence means something."""
    yaml = pytest.importorskip("yaml")
    target, trace = materialise(BROKEN / name, tmp_path, monkeypatch)
    assert trace is not None and not trace.exists()
    try:
        yaml.unsafe_load(target.read_text(encoding="utf-8"))
    finally:
        for module in [m for m in sys.modules if m.startswith("nnflow_trace_")]:
            del sys.modules[module]
    assert trace.exists()


def test_alias_bomb_is_refused_quickly_wherever_it_is_located():
    """The security half of billion_laughs.yaml, which holds even while its location is imprecise."""
    started = time.perf_counter()
    result = check(BROKEN / "billion_laughs.yaml")
    assert time.perf_counter() - started < 5
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert re.search(
        re.escape(str(BROKEN / "billion_laughs.yaml"))
        + r":\d+:\d+(?: \S+)?: aliases expand to more than 100,000 values",
        result.stderr,
    ), result.output


def test_harness_rejects_wrong_locations_and_fragments():
    """Guard the harness itself: a wrong line, column or fragment must not match."""
    path = BROKEN / "key_typo_fit.yaml"
    stderr = check(path).stderr
    good = Expectation("unknown key 'epoch' in `fit`. Did you mean 'epochs'?", line=6, col=3)
    assert good.pattern(str(path)).search(stderr)
    assert not Expectation(good.fragment, line=5, col=3).pattern(str(path)).search(stderr)
    assert not Expectation(good.fragment, line=6, col=4).pattern(str(path)).search(stderr)
    assert not Expectation("Did you mean 'epoch'?", line=6, col=3).pattern(str(path)).search(stderr)
    assert not Expectation(good.fragment, at_file=True).pattern(str(path)).search(stderr)
    assert not Expectation(good.fragment, override="--set fit.epoch=5").pattern(str(path)).search(stderr)
