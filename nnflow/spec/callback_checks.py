"""Callbacks: the checks Keras would make only once training starts (paths, file endings, packages)."""

from __future__ import annotations

from typing import Any

from .. import catalog
from ..yamlio import KeyPath
from .problems import ProblemCollector, describe

# Callback arguments that name a file or a folder. A relative one lands inside the run
# folder (builder.py joins it there); an absolute one is written where it says.
CALLBACK_PATH_ARGUMENTS = ("filepath", "filename", "log_dir", "backup_dir")
_EXAMPLE_PATHS = {
    "filepath": "checkpoints/best.keras",
    "filename": "logs/train.csv",
    "log_dir": "tensorboard",
    "backup_dir": "backup",
}


def callback_available(found: ProblemCollector, entry: catalog.Entry, name_path: KeyPath, args_given: bool) -> bool:
    """The TensorBoard callback needs a package the environment may lack."""
    if entry.kind == "callback" and entry.target == "TensorBoard" and not _package_installed("tensorboard"):
        found.report(
            name_path,
            "the TensorBoard callback needs the `tensorboard` package, which is not installed here; "
            "install it with `pip install tensorboard` (in the environment that runs nnflow), or remove the callback.",
            key=args_given,
        )
        return False
    return True


def callback_path(found: ProblemCollector, entry: catalog.Entry, key: str, value: Any, path: KeyPath) -> bool:
    """A callback's file or folder argument: relative paths land inside the run folder, and stay there."""
    if not isinstance(value, str):
        found.report(
            path, f"{entry.name}.{key} is a path: expected a string like 'logs/train.csv'; received {describe(value)}."
        )
        return False
    reason = path_escape(value)
    if reason is not None:
        found.report(
            path,
            f"{value!r}: {reason}. A relative path lands inside the run folder (write a path below it, like "
            f"{_EXAMPLE_PATHS.get(key, 'logs/file')!r}); to write elsewhere, give an absolute path.",
        )
        return False
    return True


def callback_arguments(found: ProblemCollector, entry: catalog.Entry, args: dict, path: KeyPath) -> bool:
    """What Keras would refuse only once training starts, checked on the callback's whole arguments."""
    if entry.target == "ModelCheckpoint" and isinstance(args.get("filepath"), str):
        weights_only = args.get("save_weights_only") is True
        endings = (".weights.h5",) if weights_only else (".keras", ".h5")
        filepath = args["filepath"]
        if not filepath.endswith(endings):
            found.report(
                path + ("filepath",),
                f"ModelCheckpoint's filepath must end in {' or '.join(endings)}"
                + (" when save_weights_only is true" if weights_only else " (the Keras model format)")
                + f"; received {filepath!r}.",
            )
            return False
    return True


def path_escape(value: str) -> str | None:
    """Why a relative path does not stay strictly inside the run folder, or None if it does.

    Lexical only (symbolic links are the builder's concern, once the run folder exists):
    `..` that climbs above the folder, or a path that names the folder itself (`.`, `a/..`,
    the empty string). Absolute paths give None: they are allowed for callbacks that only write.

    >>> path_escape("logs/train.csv") is None
    True
    >>> path_escape("../x.csv")
    "its '..' goes above the run folder"
    """
    if "\0" in value:
        return "it holds a NUL character, which no file name may contain"
    if value.startswith("/"):
        return None
    from ..run_layout import is_nnflow_name

    parts: list[str] = []
    for part in value.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return "its '..' goes above the run folder"
            parts.pop()
        else:
            parts.append(part)
    if not parts:
        return "it names the run folder itself, not a file or folder inside it"
    if is_nnflow_name(parts[0]):
        return (
            f"it names {parts[0]!r}, which nnflow keeps in the run folder itself; give the callback a name of its own"
        )
    return None


def _package_installed(name: str) -> bool:
    """Whether a top-level package can be imported, without importing it."""
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
