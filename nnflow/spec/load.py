"""Loading: a file (or text) -> `--set` overrides -> every check -> a frozen `Spec`, or every problem at once."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from types import MappingProxyType

from ..errors import ConfigError, Problem
from ..overrides import apply_overrides
from ..yamlio import Document, load_yaml_file, parse_yaml, render_path
from .experiment import Spec
from .experiment_file import check_experiment, check_with
from .problems import ProblemCollector, describe


def load_spec(path: str | Path, overrides: Iterable[str] = ()) -> Spec:
    """Read, override and validate an experiment file.

    >>> spec = load_spec("configs/iris.yaml", overrides=["fit.epochs=5"])

    Raises `ConfigError` listing every problem, each with `file:line:col` and key path.
    """
    path = Path(path)
    document = load_yaml_file(path)
    return spec_from_document(document, overrides=overrides, base_dir=path.parent, default_name=path.stem, source=path)


def spec_from_text(
    text: str, overrides: Iterable[str] = (), *, source: str = "<string>", base_dir: str | Path = "."
) -> Spec:
    """Validate YAML text as an experiment (for tests and notebooks)."""
    document = parse_yaml(text, source)
    return spec_from_document(document, overrides=overrides, base_dir=Path(base_dir), default_name="experiment")


def _reading_order(problem: Problem) -> tuple:
    """Problems in the order of the file; those from `--set` last."""
    match = re.search(r":(\d+):(\d+)$", problem.where)
    return (0, int(match.group(1)), int(match.group(2))) if match else (1, 0, 0)


def spec_from_document(
    document: Document,
    *,
    overrides: Iterable[str] = (),
    base_dir: Path,
    default_name: str,
    source: Path | None = None,
) -> Spec:
    """Apply `overrides` to the parsed file, check everything, and freeze it."""
    overrides = tuple(overrides)
    if not isinstance(document.data, dict):
        raise ConfigError(
            Problem(
                f"the file must be a mapping of sections (layers:, compile:, ...); received {describe(document.data)}.",
                where=document.where(()),
            )
        )
    override_problems = apply_overrides(document, overrides)
    found = ProblemCollector(document)
    checked = check_experiment(found, base_dir, default_name)
    problems = found.problems + override_problems
    if problems:
        raise ConfigError(sorted(problems, key=_reading_order), document.source)
    locations = {render_path(path): document.where(path) for path in document.positions}
    locations.update({render_path(path): label for path, label in document.overridden.items()})
    return Spec(**{**checked, "source": source, "overrides": overrides, "locations": MappingProxyType(locations)})


def check_candidate(
    document: Document, overrides: Iterable[str], *, base_dir: Path, default_name: str
) -> list[Problem]:
    """The problems of the parsed file `document` with `overrides` applied (`[]`: it accepts them).

    `document` is left as it is, so one parse serves many candidates (a sweep's grid points):
    about half a millisecond each, against a full `load_spec`. The `sweep:` section is not judged.
    """
    return check_with(document, tuple(overrides), base_dir, default_name).problems
