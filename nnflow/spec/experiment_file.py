"""The whole file: its top-level keys (`name`, `description`, `seed`), its sections, in order, checked."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import Problem
from ..overrides import apply_overrides
from ..yamlio import Document, KeyPath
from . import expect, layers, sweep_section
from .compile import COMPILE, check_compile
from .compile import MISSING as MISSING_COMPILE
from .cross import check_monitors
from .data import DATA, check_data
from .expect import check_expect
from .fields import DERIVED, INVALID, OPTIONAL, REQUIRED, CheckedBySection, Custom, Field, Section
from .fit import FIT, check_fit
from .layers import check_layers
from .problems import MAX_NAME_LENGTH, MAX_SEED, ProblemCollector, integer, number, string, unknown_keys
from .sweep_section import check_sweep
from .sweep_space import Outcome, copy_document

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]*"  # used with fullmatch: `$` would accept a final newline
_NAME_RE = re.compile(NAME_PATTERN)


def check_name(found: ProblemCollector, value: Any, path: KeyPath) -> Any:
    if string(found, value, path, "a name") is None:
        return INVALID
    if not _NAME_RE.fullmatch(value):
        found.report(
            path, f"a name may hold letters, digits, '.', '_' and '-' (it names the run folder); received {value!r}."
        )
        return INVALID
    if len(value) > MAX_NAME_LENGTH:
        found.report(
            path, f"a name is at most {MAX_NAME_LENGTH} characters (it names the run folder); received {len(value):,}."
        )
        return INVALID
    return value


def _name_schema() -> dict:
    # `(?!\n)`: in Python's re (which jsonschema uses) `$` also matches before a final newline.
    return {"type": "string", "pattern": f"^{NAME_PATTERN}$(?!\\n)", "maxLength": MAX_NAME_LENGTH}


def check_description(found: ProblemCollector, value: Any, path: KeyPath) -> Any:
    if value != "" and string(found, value, path) is None:
        return INVALID
    return value


def check_seed(found: ProblemCollector, value: Any, path: KeyPath) -> Any:
    if value is None:
        return None
    seed = integer(found, value, path, minimum=0, maximum=None, what="a non-negative integer, or null to draw one")
    if seed is not None and seed > MAX_SEED:
        found.report(path, f"expected a seed below 2**32 ({MAX_SEED + 1:,}); received {number(seed)}.")
        return INVALID
    return INVALID if seed is None else seed


EXPERIMENT = Section(
    "the experiment file",
    (
        Field("name", Custom(check_name, _name_schema), DERIVED, "names the run folder; default: the file's stem"),
        Field("description", Custom(check_description, lambda: {"type": "string"}), ""),
        Field(
            "seed",
            Custom(check_seed, lambda: {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_SEED}),
            0,
            "null draws one and records it",
        ),
        Field("data", DATA, OPTIONAL),
        Field("layers", CheckedBySection(layers.json_schema), REQUIRED, missing=layers.MISSING),
        Field("compile", COMPILE, REQUIRED, missing=MISSING_COMPILE),
        Field("fit", FIT, {}),
        Field("expect", CheckedBySection(expect.json_schema), OPTIONAL),
        Field("sweep", CheckedBySection(sweep_section.json_schema), OPTIONAL, sweep_section.DESCRIPTION),
    ),
)
SECTIONS = EXPERIMENT.keys


def check_experiment(found: ProblemCollector, base_dir: Path, default_name: str) -> dict:
    """Every key of the file, checked: the arguments of `Spec` (but where it came from)."""
    checked = _check_sections(found, base_dir, default_name)
    checked["sweep"] = None
    if "sweep" in found.document.data:

        def check(settings: Sequence[str]) -> Outcome:
            return check_with(found.document, settings, base_dir, default_name)

        checked["sweep"], checked["resolved"]["sweep"] = check_sweep(
            found, found.document.data["sweep"], ("sweep",), checked, check
        )
    return checked


def check_with(document: Document, settings: Sequence[str], base_dir: Path, default_name: str) -> Outcome:
    """The file (left as it is) judged with the `--set` texts `settings` applied; its `sweep:` aside."""
    document = copy_document(document)
    problems = apply_overrides(document, settings)
    found = ProblemCollector(document)
    checked = _check_sections(found, base_dir, default_name)
    return Outcome(problems + found.problems, checked, document)


def _check_sections(found: ProblemCollector, base_dir: Path, default_name: str) -> dict:
    """Every key but `sweep:`, checked."""
    data = found.document.data
    resolved: dict[str, Any] = {}
    header = _check_header(found, data, default_name, resolved)
    data_spec = None
    if "data" in data:
        data_spec, resolved["data"] = check_data(found, data["data"], ("data",), base_dir)
    layer_items: tuple = ()
    input_shape: tuple | None = None
    input_options: Mapping[str, Any] = {}
    if "layers" not in data:
        found.report((), EXPERIMENT.field("layers").missing)
    else:
        layer_items, input_shape, input_options, resolved["layers"] = check_layers(found, data["layers"], ("layers",))
    compile_spec = None
    if "compile" not in data:
        found.report((), EXPERIMENT.field("compile").missing)
    else:
        compile_spec, resolved["compile"] = check_compile(found, data["compile"], ("compile",))
    fit_spec, resolved["fit"] = check_fit(found, data.get("fit", EXPERIMENT.field("fit").default), ("fit",))
    gates: tuple = ()
    if "expect" in data:
        gates, resolved["expect"] = check_expect(found, data["expect"], ("expect",), compile_spec, data_spec)
    check_monitors(found, data_spec, fit_spec, compile_spec)
    return {
        **header,
        "data": data_spec,
        "input_shape": input_shape,
        "input_options": input_options,
        "layers": layer_items,
        "compile": compile_spec,
        "fit": fit_spec,
        "expect": gates,
        "resolved": resolved,
    }


def _check_header(found: ProblemCollector, data: dict, default_name: str, resolved: dict) -> dict:
    """`name`, `description` and `seed`, with their defaults."""
    unknown_keys(found, data, SECTIONS, (), EXPERIMENT.title)
    name = data.get("name", default_name)
    if "name" not in data:
        _check_derived_name(found, name)
    else:
        check_name(found, name, ("name",))
    description = data.get("description", EXPERIMENT.field("description").default)
    check_description(found, description, ("description",))
    seed = check_seed(found, data.get("seed", EXPERIMENT.field("seed").default), ("seed",))
    seed = None if seed is INVALID else seed
    resolved.update(name=name, description=description, seed=seed)
    return {"name": name, "description": description if isinstance(description, str) else "", "seed": seed}


def _check_derived_name(found: ProblemCollector, name: str) -> None:
    """The default name is the file's stem: say so when the stem cannot name a run."""
    if _NAME_RE.fullmatch(name) and len(name) <= MAX_NAME_LENGTH:
        return
    if _NAME_RE.fullmatch(name):
        why = f"is longer than {MAX_NAME_LENGTH} characters"
    else:
        why = "holds characters other than letters, digits, '.', '_' and '-'"
    suggestion = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")[:MAX_NAME_LENGTH].rstrip("-._") or "experiment"
    if not suggestion[0].isalnum():
        suggestion = "experiment"
    found.problems.append(
        Problem(
            f"the file has no `name:`, so the run is named after the file name, {name!r}, which {why} "
            f"(the name becomes the run folder). Add a line `name: {suggestion}` to the file, or rename the file.",
            path="name",
            where=found.document.source,
        )
    )
