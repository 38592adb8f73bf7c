"""Resume: what the file's Keras callbacks have learnt (EarlyStopping's wait and best weights, ...),
saved with each checkpoint and put back when a run continues.

The attributes are Keras's undocumented ones (`_keras_compat.CALLBACK_STATE`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._keras_compat import CALLBACK_STATE
from ._tf import import_keras


def callback_state(callbacks: list) -> tuple[list[dict], dict[str, np.ndarray]]:
    """What the file's callbacks have learnt so far (EarlyStopping's wait and best weights, ...).

    Numbers go to JSON; lists of arrays (best weights) to the checkpoint's arrays.
    """
    states, arrays = [], {}
    for index, callback in enumerate(callbacks):
        state: dict[str, Any] = {}
        for key in CALLBACK_STATE:
            if not hasattr(callback, key):
                continue
            value = getattr(callback, key)
            if isinstance(value, np.generic):
                value = value.item()
            if value is None or isinstance(value, (bool, int, float)):
                state[key] = value
            elif isinstance(value, list) and all(isinstance(v, np.ndarray) for v in value):
                for position, array in enumerate(value):
                    arrays[f"callback{index}.{key}.{position}"] = array
                state[key] = {"arrays": len(value)}
        states.append(state)
    return states, arrays


def restore_callbacks(
    callbacks: list,
    states: list[dict],
    arrays: dict[str, np.ndarray],
    epochs_completed: int,
    *,
    model=None,
    path: str = "checkpoint.npz",
):
    """A callback that, placed after the file's callbacks, puts back their state once they have reset it.

    The saved states must fit the callbacks (one per callback, only what that kind of callback
    learns, best weights shaped as `model`'s weights when it is given), or a DamagedRunError
    naming `path` is raised, before anything is changed. A CSVLogger appends to its file, cut
    back to the epochs being kept.
    """
    keras = import_keras()
    _check_callback_states(callbacks, states, arrays, model, path)
    for callback in callbacks:
        if isinstance(callback, keras.callbacks.CSVLogger):
            callback.append = True
            _truncate_csv_log(callback.filename, epochs_completed)

    Callback: Any = keras.callbacks.Callback  # a class made at run time: Keras loads only here

    class Restore(Callback):
        def on_train_begin(self, logs=None):
            for index, (callback, state) in enumerate(zip(callbacks, states)):
                for key, value in state.items():
                    if isinstance(value, dict) and "arrays" in value:
                        value = [arrays[f"callback{index}.{key}.{position}"] for position in range(value["arrays"])]
                    setattr(callback, key, value)

    return Restore()


def _learns(callback, key: str) -> bool:
    """Whether `callback` keeps `key` while training (EarlyStopping sets `best_epoch` only once training begins)."""
    return hasattr(callback, key) or (key == "best_epoch" and hasattr(callback, "best_weights"))


def _check_callback_states(callbacks: list, states, arrays: dict, model, path: str) -> None:
    from .runs import damaged, describe

    if not isinstance(states, list) or len(states) != len(callbacks):
        held = len(states) if isinstance(states, list) else describe(states)
        raise damaged(path, f"it holds the state of {held} callback(s), but the run's experiment has {len(callbacks)}")
    weights = [tuple(int(size) for size in weight.shape) for weight in model.weights] if model is not None else None
    for index, (callback, state) in enumerate(zip(callbacks, states)):
        name = type(callback).__name__
        if not isinstance(state, dict):
            raise damaged(path, f"the state of callback {index} ({name}) must be a mapping; received {describe(state)}")
        for key, value in state.items():
            if key not in CALLBACK_STATE or not _learns(callback, key):
                raise damaged(
                    path,
                    f"the state of callback {index} has {key!r}, which {name} does not keep (were the callbacks changed?)",
                )
            if isinstance(value, dict):
                count = value.get("arrays")
                names = [
                    f"callback{index}.{key}.{position}" for position in range(count if isinstance(count, int) else 0)
                ]
                if key != "best_weights" or set(value) != {"arrays"} or any(n not in arrays for n in names):
                    raise damaged(path, f"the state of callback {index} ({name}) has a damaged {key!r}")
                if weights is not None and [tuple(arrays[n].shape) for n in names] != weights:
                    raise damaged(
                        path,
                        f"the best weights kept by callback {index} ({name}) do not fit the run's model "
                        f"({len(names)} arrays for its {len(weights)} weights, or shapes that differ)",
                    )
            elif not (value is None or isinstance(value, (bool, int, float))):
                raise damaged(
                    path, f"the state of callback {index} ({name}) has {key!r} = {describe(value)}; expected a number"
                )


CSV_LOG_LIMIT = 256 << 20


def _truncate_csv_log(filename: str, epochs_completed: int) -> None:
    """Keep the header and the rows of epochs 0..epochs_completed-1 of a CSVLogger file.

    The log is read back like a run's own files: only a regular file, bounded; one that is
    not (a FIFO, not text, not CSV) is a DamagedRunError.
    """
    import csv
    import io
    import os
    from pathlib import Path

    from .runs import damaged, read_text, write_text_atomic

    path = Path(filename)
    if not os.path.lexists(path):
        return
    try:
        rows = list(csv.reader(io.StringIO(read_text(path, CSV_LOG_LIMIT), newline="")))
    except csv.Error as error:
        raise damaged(path, f"the CSVLogger file is not readable CSV ({error})") from None
    if not rows:
        return
    kept = [rows[0]] + [row for row in rows[1:] if row and row[0].isdigit() and int(row[0]) < epochs_completed]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(kept)
    write_text_atomic(path, out.getvalue())
