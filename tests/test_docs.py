"""The docs are self-contained and agree with the code: links resolve, the format reference's
examples load, and its tables name every key and default that the spec declares. No TensorFlow."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from nnflow.spec import COMPILE_KEYS, DATA_KEYS, DEFAULTS, FIT_KEYS, PRUNERS, SAMPLERS, SWEEP, load_spec

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "experiment-file.md"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def test_no_page_points_to_a_file_outside_the_repository():
    places = [
        ROOT / "README.md",
        ROOT / "docs",
        ROOT / "nnflow",
        ROOT / "examples",
        ROOT / "configs",
        ROOT / "benchmarks",
    ]
    files = [p for place in places for p in ([place] if place.is_file() else sorted(place.rglob("*"))) if p.is_file()]
    pointers = [
        f"{file.relative_to(ROOT)}:{number}: {line.strip()}"
        for file in files
        if file.suffix in {".md", ".py", ".yaml", ".yml", ".sh", ".toml", ".txt"}
        for number, line in enumerate(file.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if "SPEC.md" in line
    ]
    assert not pointers, "SPEC.md is not in this repository; point to docs/experiment-file.md:\n  " + "\n  ".join(
        pointers
    )


def test_every_link_between_pages_resolves():
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue
            file_part, _, anchor = target.partition("#")
            file = (page.parent / file_part).resolve() if file_part else page
            if not file.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no heading #{anchor} in {file.name})")
    assert not broken, "links that lead nowhere:\n  " + "\n  ".join(broken)


def yaml_blocks(page: Path) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("index", range(len(yaml_blocks(REFERENCE))))
def test_the_reference_examples_load(index, tmp_path):
    config = tmp_path / "example.yaml"  # the spec is checked, not the data: `train:` need not exist
    config.write_text(yaml_blocks(REFERENCE)[index], encoding="utf-8")
    assert load_spec(config).layers


def _table_rows(section_heading: str) -> list[str]:
    """The first cell of each row of the first table under a heading of the reference."""
    text = REFERENCE.read_text(encoding="utf-8")
    start = text.index(f"\n## {section_heading}\n")
    end = text.find("\n## ", start + 1)
    rows = [line for line in text[start:end].splitlines() if line.startswith("| `")]
    return [row.split("|")[1].strip() for row in rows]


@pytest.mark.parametrize(
    ("heading", "keys"),
    [("`data`", DATA_KEYS), ("`compile`", COMPILE_KEYS), ("`fit`", FIT_KEYS)],
)
def test_each_section_table_names_every_key(heading, keys):
    assert [cell.strip("`") for cell in _table_rows(heading)] == list(keys)


def test_the_defaults_table_holds_every_default():
    documented = {}
    for row in REFERENCE.read_text(encoding="utf-8").split("\n## Defaults\n")[1].split("\n## ")[0].splitlines():
        cells = [cell.strip() for cell in row.split("|")[1:-1]]
        if len(cells) == 3 and cells[0].startswith("`"):
            documented[cells[0].strip("`")] = cells[1]

    def flat(prefix: str, value: object) -> dict[str, object]:
        if isinstance(value, dict):
            return {
                k: v for key, item in value.items() for k, v in flat(f"{prefix}.{key}" if prefix else key, item).items()
            }
        return {prefix: value}

    expected = {key: value for key, value in flat("", DEFAULTS).items() if value is not None}
    missing = sorted(set(expected) - set(documented))
    assert not missing, f"defaults not in the table of {REFERENCE.name}: {missing}"
    wrong = {
        key: (documented[key], value)
        for key, value in expected.items()
        if documented[key] != f"`{yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}`"
    }
    assert not wrong, f"defaults that the table of {REFERENCE.name} states otherwise (table, code): {wrong}"


SWEEP_HEADING = "`sweep`: an Optuna study over the file"


def _tables(section_heading: str) -> list[list[list[str]]]:
    """Each table under a heading of the reference: its rows (the header left out), each a list of cells."""
    text = REFERENCE.read_text(encoding="utf-8")
    start = text.index(f"\n## {section_heading}\n")
    end = text.find("\n## ", start + 1)
    tables: list[list[list[str]]] = []
    in_table = False
    for line in text[start:end].splitlines():
        if line.startswith("| ---"):
            tables.append([])
            in_table = True
        elif in_table and line.startswith("|"):
            tables[-1].append([cell.strip() for cell in line.split("|")[1:-1]])
        else:
            in_table = False
    return tables


def test_the_sweep_table_names_every_key_and_default():
    keys, *_ = _tables(SWEEP_HEADING)
    assert [row[0].strip("`") for row in keys] == list(SWEEP.keys)
    for row in keys:
        field = SWEEP.field(row[0].strip("`"))
        expected = (
            f"`{yaml.safe_dump(field.default).strip().removesuffix('...').strip()}`"
            if field.has_default
            else "required"
        )
        assert row[1] == expected, (row[0], row[1], expected)


@pytest.mark.parametrize(("table", "methods"), [(2, SAMPLERS), (3, PRUNERS)])
def test_the_sampler_and_pruner_tables_name_every_argument(table, methods):
    """Each name in order, with every argument the spec declares for it (and `none` when it has none)."""
    rows = _tables(SWEEP_HEADING)[table]
    assert [row[0].strip("`") for row in rows] == list(methods)
    for row, (name, method) in zip(rows, methods.items()):
        documented = set(re.findall(r"`([a-z_]+)`", row[1]))
        if method.argument_names:
            assert set(method.argument_names) <= documented, (name, set(method.argument_names) - documented)
        else:
            assert row[1] == "none", name
