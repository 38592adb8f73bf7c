"""The data files a run was trained on, against the checksums its run.json keeps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..fileio import is_regular


@dataclass(frozen=True)
class ChangedDataFile:
    """A data file of a run that is not as the run started with it."""

    role: str  # train, validation, test
    path: Path
    gone: bool  # True: missing (or not a regular file); False: there, with another sha256


def changed_data_file(info: dict) -> ChangedDataFile | None:
    """The first of the run's data files (`info` is its run.json) that is gone or changed; None if all are as they were.

    A path that is not a regular file counts as gone: it is never hashed (a FIFO would block).
    """
    from ..data import sha256

    for role, entry in info.get("data", {}).items():
        path = Path(entry["path"])
        if not is_regular(path):
            return ChangedDataFile(role, path, gone=True)
        if sha256(path) != entry["sha256"]:
            return ChangedDataFile(role, path, gone=False)
    return None
