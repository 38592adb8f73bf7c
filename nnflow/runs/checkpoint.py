"""The checkpoint of a run in training: the last completed epoch, saved, loaded back and checked."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any, NamedTuple

from ..run_layout import CHECKPOINT_FILE
from .atomic import remove_file, write_bytes_atomic
from .reading import Shape, damaged, is_bool, is_count, is_int, is_json_number_or_null, is_text


class Checkpoint(NamedTuple):
    """The last completed epoch of a run: `state` (JSON: epochs, history, callback states, gradients)
    and `arrays` (the model's and optimizer's variables, the callbacks' arrays)."""

    state: dict
    arrays: dict[str, Any]


class Checkpointer:
    """Saves the last completed epoch in one file, `checkpoint.npz`: its rename commits it.

    It holds the model's and optimizer's variables (the dropout RNG state included),
    the file's callbacks' state and the history so far. Not fsynced: it guards against
    a killed process, and it is written every epoch, so it must be cheap (about 1 ms).
    """

    def __init__(self, run_dir: Path, model):
        self.path = Path(run_dir) / CHECKPOINT_FILE
        self.model = model
        self._variables: tuple[list, list] | None = None
        self.epochs_saved: int | None = None  # the last epoch saved, by this process

    def save(self, state: dict, arrays: dict[str, Any]) -> None:
        import numpy as np

        if self._variables is None:  # fixed once training has started; listing them is not free
            self._variables = (list(self.model.variables), list(self.model.optimizer.variables))
        model_variables, optimizer_variables = self._variables
        stored = {f"model.{i}": v.numpy() for i, v in enumerate(model_variables)}
        stored.update({f"optimizer.{i}": v.numpy() for i, v in enumerate(optimizer_variables)})
        stored.update(arrays)
        stored["state"] = np.array(json.dumps(state))
        buffer = io.BytesIO()
        np.savez(buffer, **stored)
        write_bytes_atomic(self.path, buffer.getvalue(), durable=False)
        self.epochs_saved = state["epochs_completed"]


def load_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The last completed epoch, checked; None if no epoch completed.

    A checkpoint that is not a regular file, does not load, or lacks what a resume needs
    (its epochs, history, callback states, the arrays they name) is a DamagedRunError.
    Whether its arrays fit the model is checked by `restore_weights`.
    """
    import zipfile

    import numpy as np

    from ..errors import DamagedRunError
    from ..fileio import NotReadable, open_regular

    path = Path(run_dir) / CHECKPOINT_FILE
    if not os.path.lexists(path):
        return None
    try:
        stream = open_regular(path)
    except NotReadable as error:
        raise damaged(path, error.reason) from None
    with stream:
        try:
            with zipfile.ZipFile(stream) as archive:
                for member in archive.infolist():  # np.savez stores; a member that inflates far is a bomb
                    if member.file_size > 1 << 20 and member.file_size > 100 * max(member.compress_size, 1):
                        raise damaged(
                            path, f"its member {member.filename} expands to {member.file_size:,} bytes (a zip bomb?)"
                        )
            stream.seek(0)
            with np.load(stream, allow_pickle=False) as stored:
                arrays = {key: stored[key] for key in stored.files}
        except DamagedRunError:
            raise
        except Exception as error:  # a truncated or foreign file: whatever zipfile or numpy raise
            raise damaged(path, f"not a readable checkpoint ({type(error).__name__}: {_short(error)})") from None
    if "state" not in arrays:
        raise damaged(path, "it holds no `state` (the epochs, history and callback states of a resume)")
    state_array = arrays.pop("state")
    if state_array.shape != () or state_array.dtype.kind != "U":
        raise damaged(
            path,
            f"its `state` must be JSON text; received an array of {state_array.dtype} shaped {list(state_array.shape)}",
        )
    try:
        state = json.loads(str(state_array))
    except (ValueError, RecursionError) as error:
        raise damaged(path, f"its `state` is not valid JSON ({_short(error)})") from None
    return Checkpoint(check_checkpoint(path, state, arrays), arrays)


def _short(error: BaseException, limit: int = 200) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[:limit] + " ..."


def restore_weights(model, arrays: dict, *, path: str | Path = CHECKPOINT_FILE) -> None:
    """Put the checkpoint's model and optimizer variables back (the optimizer is built first).

    Every array is checked against the model before any is assigned: a wrong count or shape
    is a DamagedRunError naming `path` (the checkpoint), and the model is left as it was.
    """
    model.optimizer.build(model.trainable_variables)
    assignments = []
    for prefix, variables in (("model", list(model.variables)), ("optimizer", list(model.optimizer.variables))):
        stored = [name for name in arrays if name.startswith(prefix + ".") and name[len(prefix) + 1 :].isdigit()]
        if len(stored) != len(variables):
            raise damaged(
                path,
                f"it holds {len(stored)} {prefix} arrays, but the run's model has {len(variables)} {prefix} variables",
            )
        for index, variable in enumerate(variables):
            name = f"{prefix}.{index}"
            if name not in arrays:
                raise damaged(path, f"the array {name} is missing")
            array = arrays[name]
            wanted = tuple(int(size) for size in variable.shape)
            if tuple(array.shape) != wanted:
                label = getattr(variable, "path", None) or variable.name
                raise damaged(
                    path,
                    f"the array {name} has shape {list(array.shape)}, but the model's {label} has shape {list(wanted)}",
                )
            assignments.append((variable, array))
    for variable, array in assignments:
        variable.assign(array)


def remove_partial_files(run_dir: Path) -> list[Path]:
    """Temporary files a killed process left beside their final names (never read as results)."""
    partial = [*Path(run_dir).glob(".*.tmp"), *Path(run_dir).glob(".model.*.keras")]
    for path in partial:
        remove_file(path)
    return partial


def remove_checkpoint(run_dir: Path) -> None:
    remove_file(Path(run_dir) / CHECKPOINT_FILE)


# ---------------------------------------------------------------------------
# Checking what a checkpoint holds

_ARRAY_NAME = re.compile(r"(model|optimizer)\.([0-9]+)|callback([0-9]+)\.([A-Za-z_]+)\.([0-9]+)")


def check_checkpoint(path: Path, state: Any, arrays: dict) -> dict:
    """The checkpoint's state (JSON) and arrays hang together: the epochs, history and callback
    states a resume needs, and every array they refer to. Shapes are checked against the model
    by `runs.restore_weights` and `training.restore_callbacks`."""
    shape = Shape(path, state, "the state of the last completed epoch")
    shape.key(
        "epochs_completed", lambda v: is_int(v) and v >= 1, "the number of epochs completed (1 or more)", required=True
    )
    shape.key("stopped", is_bool, "true or false")
    shape.key("pruned_at_epoch", lambda v: is_int(v) and v >= 1, "the epoch the run was pruned after (1 or more)")
    shape.records(
        "history", {"epoch": (lambda v: is_int(v) and v >= 1, "an epoch number")}, "a list of epoch rows", required=True
    )
    completed, history = state["epochs_completed"], state["history"]
    if [row["epoch"] for row in history] != list(range(1, completed + 1)):
        raise damaged(path, f"its history does not hold epochs 1 to {completed} (`epochs_completed`), one row each")
    for index, row in enumerate(history):
        for key, value in row.items():
            if not is_json_number_or_null(value):
                raise shape.fail(f"history[{index}].{key}", "a number", value)
    _check_callback_states(shape, path, state, arrays)
    shape.records(
        "gradients",
        {
            "epoch": (lambda v: is_int(v) and v >= 1, "an epoch number"),
            "layer": (is_text, "a weight's name"),
            "norm": (is_json_number_or_null, "a number"),
        },
        "a list of gradient norms {epoch, layer, norm}",
    )
    _check_arrays(path, arrays)
    return state


def _check_callback_states(shape: Shape, path: Path, state: dict, arrays: dict) -> None:
    """Each callback's state: numbers, null, or `{arrays: N}` naming N arrays that are there."""
    shape.key(
        "callbacks",
        lambda v: isinstance(v, list) and all(isinstance(s, dict) for s in v),
        "a list of callback states",
        required=True,
    )
    for index, callback in enumerate(state["callbacks"]):
        for key, value in callback.items():
            if isinstance(value, dict):
                if set(value) != {"arrays"} or not is_count(value["arrays"]):
                    raise shape.fail(f"callbacks[{index}].{key}", "a number, null or {arrays: N}", value)
                for position in range(value["arrays"]):
                    if f"callback{index}.{key}.{position}" not in arrays:
                        raise damaged(
                            path, f"the array callback{index}.{key}.{position} of its callback state is missing"
                        )
            elif not (value is None or isinstance(value, (bool, int, float))):
                raise shape.fail(f"callbacks[{index}].{key}", "a number, null or {arrays: N}", value)


def _check_arrays(path: Path, arrays: dict) -> None:
    """The model's and optimizer's arrays numbered from 0 without a gap; every array holds numbers."""
    for prefix in ("model", "optimizer"):
        indices = sorted(
            int(name.split(".", 1)[1])
            for name in arrays
            if _ARRAY_NAME.fullmatch(name) and name.startswith(prefix + ".")
        )
        if indices != list(range(len(indices))):
            gap = next(i for i, index in enumerate(indices + [None]) if index != i)
            raise damaged(
                path, f"the array {prefix}.{gap} is missing (it holds {prefix} arrays up to {prefix}.{indices[-1]})"
            )
        if prefix == "model" and not indices:
            raise damaged(path, "it holds no model arrays")
    for name, array in arrays.items():
        if array.dtype.kind not in "biuf":
            raise damaged(path, f"the array {name} holds {array.dtype} values, not numbers")
