"""What a new run's folder starts with: its run.json, and the experiment as it ran (experiment.yaml)."""

from __future__ import annotations

import shlex
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from ..spec import COMPILE_KEYS, DATA_KEYS, FIT_KEYS, Spec

if TYPE_CHECKING:
    from .train_steps import RunData


def new_run_info(spec: Spec, seed: int, data: RunData, command: list[str]) -> dict:
    """A new run's run.json as it starts: what ran, on which data (checksums), with which versions."""
    from .. import runs
    from ..tracking.content import git_commit

    prepared = data.prepared
    git = git_commit(spec.source)
    return {
        "format": runs.RUN_FORMAT,
        "uuid": str(uuid.uuid4()),  # the run's stable id: MLflow's copy of it is found by it (nnflow log)
        "name": spec.name,
        "config": str(spec.source) if spec.source else None,
        "command": shlex.join(command),
        "seed": seed,
        "started": runs.now(),
        "data": {
            role: {"path": str(path.resolve()), "sha256": data.hashes[role]} for role, path in prepared.files.items()
        },
        "rows": {role: split.rows for role, split in prepared.splits.items()},
        "versions": _versions(),
        **({"git": git} if git else {}),  # the commit of the work tree holding the experiment file
    }


def _versions() -> dict:
    import platform

    import keras
    import numpy
    import pandas
    import tensorflow

    from ..version import __version__

    return {
        "nnflow": __version__,
        "keras": keras.__version__,
        "tensorflow": tensorflow.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "python": platform.python_version(),
    }


def resolved_yaml(spec: Spec, seed: int) -> str:
    """The experiment as it ran: defaults, overrides and the seed filled in; data paths absolute."""
    from ..yamlio import dump_yaml

    resolved = spec.to_dict()
    resolved["seed"] = seed
    data = dict(resolved["data"])
    for key in ("train", "validation", "test"):
        value = getattr(spec.data, key)
        if isinstance(value, Path):
            data[key] = str(value.resolve())
    resolved["data"] = data
    # In the order the reference writes them, not the order defaults were merged in.
    for section, keys in (("data", DATA_KEYS), ("compile", COMPILE_KEYS), ("fit", FIT_KEYS)):
        if isinstance(resolved.get(section), dict):
            resolved[section] = {key: resolved[section][key] for key in keys if key in resolved[section]}
    comment = (
        "The resolved experiment of this run (defaults, overrides and seed applied).\nFrom: "
        + str(spec.source)
        + (f" with --set {' --set '.join(spec.overrides)}" if spec.overrides else "")
    )
    # Strings such as `1e3` quoted: nnflow's YAML 1.2 reader must read the file back as it was.
    return dump_yaml(resolved, comment=comment)
