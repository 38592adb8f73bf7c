"""Loading model files safely: no code from a model file ever runs.

A `.keras` file is a zip of `config.json` (the architecture, as plain data), `metadata.json`
and `model.weights.h5` (arrays). nnflow reads `config.json` itself *before* Keras sees the
file and refuses anything that could carry code or that Keras would import from outside
itself: `Lambda` layers (their Python bytecode is in the config), custom or registered
objects from other packages, `TFSMLayer` (a SavedModel graph); members it never writes; zip
bombs. Only then is the file given to `keras.saving.load_model(..., safe_mode=True)`,
Keras's own guard, as a second line, uncompiled: the run's experiment file compiles it.

Legacy `.h5`/HDF5 models and TensorFlow SavedModels are refused outright: they can carry
code (marshalled lambdas, graph functions) and nnflow never writes them. Truncated or
corrupt files are refused too. Every refusal is an `UnsafeModelError` (exit 6).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import UnsafeModelError
from .fileio import NotReadable, open_regular, os_reason

# Keras classes that run code or load graphs from outside the file's plain data.
REFUSED_CLASSES = {
    "Lambda": "a Lambda layer carries Python code",
    "TFSMLayer": "a TFSMLayer loads a TensorFlow SavedModel graph",
    "JaxLayer": "a JaxLayer wraps a Python function",
    "FlaxLayer": "a FlaxLayer wraps a Python module",
    "TorchModuleWrapper": "a TorchModuleWrapper wraps a Python module",
    "__lambda__": "it holds a serialised Python function",
}
REQUIRED_MEMBERS = ("config.json", "model.weights.h5")
ALLOWED_MEMBERS = {"config.json", "metadata.json", "model.weights.h5"}  # what Keras writes for nnflow's models
MAX_CONFIG_BYTES = 16 << 20
MAX_EXPANSION = 100  # a member may not decompress to more than this many times its stored size ...
EXPANSION_FLOOR = 1 << 20  # ... once it is over 1 MiB (a zip bomb)
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def check_model_file(path: str | Path) -> dict:
    """The model's config, once the file has been shown to be a safe `.keras` file; else UnsafeModelError."""
    path = Path(path)
    if path.is_dir():
        if (path / "saved_model.pb").exists() or (path / "saved_model.pbtxt").exists():
            raise UnsafeModelError(
                f"{path}: a TensorFlow SavedModel is refused: it carries graph code. nnflow loads only .keras files."
            )
        raise UnsafeModelError(f"{path}: a folder, not a .keras model file.")
    try:
        with open_regular(path) as stream:  # a FIFO or a device is refused at once, never read
            head = stream.read(8)
    except NotReadable as error:
        reason = (
            "no such model file"
            if error.reason == "no such file"
            else f"cannot be read as a model file: {error.reason}"
        )
        raise UnsafeModelError(f"{path}: {reason}.") from None
    except OSError as error:
        raise UnsafeModelError(f"{path}: cannot be read as a model file: {os_reason(error)}.") from None
    if head == HDF5_MAGIC or path.suffix.lower() in (".h5", ".hdf5"):
        raise UnsafeModelError(
            f"{path}: a legacy HDF5 (.h5) model is refused: the format can carry Python code (Lambda bytecode). "
            "nnflow loads only Keras 3 .keras files."
        )
    if not zipfile.is_zipfile(path):
        raise UnsafeModelError(
            f"{path}: not a .keras model file (it is not a zip archive); it may be truncated or corrupt."
        )
    try:
        with zipfile.ZipFile(path) as archive:
            _check_members(path, archive.infolist())
            broken = archive.testzip()
            if broken is not None:
                raise UnsafeModelError(f"{path}: corrupt: {broken} inside it fails its checksum.")
            config = json.loads(archive.read("config.json"))
    except UnsafeModelError:
        raise
    except Exception as error:  # zlib.error, encrypted or unknown-method members, RecursionError, ...: all corrupt
        raise UnsafeModelError(
            f"{path}: corrupt or truncated .keras file ({type(error).__name__}: {_short(error)})."
        ) from None
    if not isinstance(config, dict) or "class_name" not in config:
        raise UnsafeModelError(f"{path}: corrupt: its config.json does not describe a model.")
    for where, entry in _objects(config):
        _check_object(path, where, entry)
    return config


def _check_members(path: Path, members: list[zipfile.ZipInfo]) -> None:
    """The archive holds what a .keras file of nnflow's holds, and nothing expands out of bounds (a zip bomb)."""
    names = {member.filename for member in members}
    missing = [name for name in REQUIRED_MEMBERS if name not in names]
    if missing:
        raise UnsafeModelError(f"{path}: not a complete .keras file (no {', '.join(missing)} inside).")
    unexpected = sorted(names - ALLOWED_MEMBERS)
    if unexpected:
        raise UnsafeModelError(
            f"{path}: refused: it holds files a Keras model of nnflow's never has ({', '.join(unexpected[:5])})."
        )
    for member in members:
        expanded = member.file_size > EXPANSION_FLOOR and member.file_size > MAX_EXPANSION * max(
            member.compress_size, 1
        )
        if expanded or (member.filename == "config.json" and member.file_size > MAX_CONFIG_BYTES):
            raise UnsafeModelError(
                f"{path}: refused: {member.filename} inside it expands to {member.file_size:,} bytes (a zip bomb?)."
            )


def _objects(value: Any, where: str = "model") -> Iterator[tuple[str, dict]]:
    """Every serialised object (a dict with `class_name`) in the config, with where it sits."""
    if isinstance(value, dict):
        if "class_name" in value:
            name = value.get("config", {}).get("name") if isinstance(value.get("config"), dict) else None
            where = f"{where} > {value['class_name']}" + (f" {name!r}" if name else "")
            yield where, value
        for item in value.values():
            yield from _objects(item, where)
    elif isinstance(value, list):
        for item in value:
            yield from _objects(item, where)


def _check_object(path: Path, where: str, entry: dict) -> None:
    class_name = str(entry.get("class_name"))
    if class_name in REFUSED_CLASSES:
        raise UnsafeModelError(
            f"{path}: refused: {where}: {REFUSED_CLASSES[class_name]}, and nothing from a model file may run."
        )
    module = entry.get("module")
    if module is not None and not (module == "keras" or str(module).startswith("keras.")):
        raise UnsafeModelError(
            f"{path}: refused: {where} comes from module {module!r}; nnflow loads only Keras's own classes, "
            "never code a model file points at."
        )
    registered = entry.get("registered_name")
    if registered not in (None, class_name):
        raise UnsafeModelError(
            f"{path}: refused: {where} is a custom object ({registered!r}); nnflow loads only Keras's own classes."
        )


def _short(error: BaseException, limit: int = 300) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[:limit] + " ..."


def load_model(path: str | Path):
    """Check the file, then `keras.saving.load_model` in safe mode, uncompiled; any failure is an UnsafeModelError.

    The model is compiled by the caller from the run's own experiment file: nothing of the
    file's `compile_config` (losses, metrics, optimizer settings) is trusted either.
    """
    from ._tf import import_keras

    check_model_file(path)
    keras = import_keras()
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # whatever Keras raises on a file it cannot load is the file's problem
        raise UnsafeModelError(f"{path}: Keras refused to load it in safe mode: {_short(error)}") from None
