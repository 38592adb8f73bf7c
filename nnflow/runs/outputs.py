"""Outputs never land on a run's files: what each command may write inside a run folder."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from .. import fileio
from ..errors import ConfigError, Problem
from ..run_layout import RUN_FILE, is_nnflow_name
from .reading import present

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")

# What each command may write inside the folder of the run it works on; nothing else, anywhere in a run folder.
OWN_OUTPUTS: dict[str, tuple[str, Callable[[tuple[str, ...]], bool]]] = {
    "evaluate": (
        "evaluation*.json",
        lambda parts: len(parts) == 1 and parts[0].startswith("evaluation") and parts[0].endswith(".json"),
    ),
    "predict": (
        "predictions*.csv/.tsv/.parquet",
        lambda parts: (
            len(parts) == 1 and parts[0].startswith("predictions") and parts[0].lower().endswith(TABLE_SUFFIXES)
        ),
    ),
    "report": ("a .html page", lambda parts: len(parts) == 1 and parts[0].lower().endswith((".html", ".htm"))),
    "plot": ("a .png picture", lambda parts: len(parts) == 1 and parts[0].lower().endswith(".png")),
    "export": ("exports under RUN/export/", lambda parts: len(parts) >= 2 and parts[0] == "export"),
    # A callback's files (CSVLogger's log, ModelCheckpoint's models, TensorBoard's events).
    "train": (
        "its callbacks' own files, never one nnflow keeps there",
        lambda parts: bool(parts) and not is_nnflow_name(parts[0]),
    ),
}


def check_output(
    path: str | Path, command: str, runs: Iterable[Path] = (), *, folder: bool = False, where: str = "--output"
) -> Path:
    """Refuse an output path before any work: one that cannot be written (under a regular file,
    in a folder that cannot be written, a folder where a file is wanted), or one that would
    land on a file of a run folder.

    Inside a run folder, `command` may write only its own outputs (`OWN_OUTPUTS`), and only
    in the folder of a run it works on (`runs`). `..` and symbolic links are resolved: where
    the file is written (its folder, resolved) and where its name points (a link) both count.
    Raises a ConfigError (exit 2) located at `where`.
    """
    path = Path(path)
    problem = fileio.output_problem(path, folder=folder)
    if problem is not None:
        hint = " Give another --output." if where == "--output" else " Give an --output elsewhere."
        raise ConfigError(Problem(f"cannot write {path}: {problem}.{hint}", where=where))
    own_runs = {Path(os.path.realpath(run)) for run in runs}
    parent = Path(os.path.realpath(path.parent if str(path.parent) else "."))
    targets = [parent / path.name, Path(os.path.realpath(path))]
    described, allowed = OWN_OUTPUTS[command]
    for target in targets:
        for run_dir in enclosing_runs(target):
            parts = target.relative_to(run_dir).parts
            if run_dir in own_runs and parts and allowed(parts):
                continue
            via = "" if target == Path(os.path.abspath(path)) else f" (it resolves to {target})"
            if run_dir in own_runs:
                fix = f"in a run folder, {command} writes only {described}"
            else:
                fix = f"{command} writes nothing into the folder of another run"
            raise ConfigError(
                Problem(
                    f"{path} is inside the run folder {run_dir}{via}, and would replace or add to that run's files: "
                    f"{fix}. Write it outside the run folder.",
                    where=where,
                )
            )
    return path


def enclosing_runs(target: Path) -> list[Path]:
    """Every run folder (a folder holding run.json) that `target` is, or is inside."""
    return [folder for folder in (target, *target.parents) if present(folder / RUN_FILE)]
