"""nnflow used as a library leaves the process as it found it.

Training changes process-wide state: the global seeds and op determinism (`training.seeded`),
the umask for an instant (`runs.FILE_MODE`), fd 2 (`_tf.quiet_tensorflow`), a Keras function
(`distribute.patch_keras`, multi_worker). Each of those is scoped where it is made; `kept()`
also holds the line around a whole library call (`nnflow.train`), as Keras scopes its own flags
(`SafeModeScope`): what it saves on entry, it puts back on leaving, return or raise.

Standard library only at import: TensorFlow's state is read only when TensorFlow is loaded.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys

from ._keras_compat import (
    GlobalSeeds,
    global_seed_state,
    keras_patches_restored,
    op_determinism,
    restore_global_seeds,
    set_op_determinism,
)
from .fileio import current_umask

# TensorFlow's and Keras's global seeds as they are in a process that never set them.
_UNSEEDED = GlobalSeeds(
    python=None, numpy=None, tensorflow_seed=None, tensorflow_rng=None, keras_seed=None, keras_generator=None
)


@contextlib.contextmanager
def kept():
    """Whatever the block changes of the seeds, op determinism, umask, fd 2 and Keras's functions is put back."""
    with _umask_kept(), _stderr_kept(), _random_state_kept(), keras_patches_restored():
        yield


@contextlib.contextmanager
def _umask_kept():
    umask = current_umask()
    try:
        yield
    finally:
        os.umask(umask)


@contextlib.contextmanager
def _stderr_kept():
    """fd 2 is the file it was (a block that redirects it, and fails to restore it, is undone)."""
    try:
        before = os.fstat(2)
        saved = os.dup(2)
    except OSError:  # no fd 2 (a daemon, an embedded interpreter): nothing to keep
        yield
        return
    try:
        yield
    finally:
        try:
            now = os.fstat(2)
            if (now.st_dev, now.st_ino) != (before.st_dev, before.st_ino):
                os.dup2(saved, 2)
        except OSError:
            os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def _random_state_kept():
    """Python's, NumPy's, TensorFlow's and Keras's global seeds, and op determinism."""
    python = random.getstate()
    numpy_state = sys.modules["numpy"].random.get_state() if "numpy" in sys.modules else None
    tensorflow_loaded = "tensorflow" in sys.modules
    seeds = global_seed_state() if tensorflow_loaded else _UNSEEDED
    deterministic = op_determinism() if tensorflow_loaded else False
    try:
        yield
    finally:
        random.setstate(python)
        if numpy_state is not None:
            sys.modules["numpy"].random.set_state(numpy_state)
        if "tensorflow" in sys.modules:
            restore_global_seeds(seeds)
            set_op_determinism(deterministic)
