"""Every private Keras and TensorFlow internal nnflow relies on, in one place.

nnflow uses public APIs wherever they exist. The few places it cannot are here, each with
the reason, a guard that fails with a clear message when the internal is gone, and an
entry in `WORKAROUNDS`, which tests/test_keras_compat.py checks against the installed
Keras: it fails when an internal is gone, and when Keras's code no longer shows the bug
a workaround exists for (as far as its source text can tell; see each `still_needed`).

- keras-team/keras#20585, Keras under MultiWorkerMirroredStrategy: `build_under_strategy`
  (`Model._symbolic_build`, `Model._maybe_symbolic_build`) and
  `elementwise_log_reduction` (`keras.src.backend.tensorflow.trainer.reduce_per_replica`).
- ONNX export: `freeze` (`convert_variables_to_constants_v2`) and `patch_tf2onnx`
  (`keras.src.export.tf2onnx_lib`).
- Resume: `CALLBACK_STATE`, the undocumented attributes Keras's callbacks learn in.
- Library use: `global_seed_state` / `restore_global_seeds`, the global seeds that
  `keras.utils.set_random_seed` sets (Keras's global state and TensorFlow's eager context),
  and `op_determinism` / `set_op_determinism` (TensorFlow exports only the switch to turn it on).

Importing this module is cheap; each function imports Keras or TensorFlow when called.
"""

from __future__ import annotations

import contextlib
import inspect
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# The Keras releases (major, minor) these workarounds were checked against. A newer Keras
# still runs them (each guard below says what is missing); tests/test_keras_compat.py asks
# for the workarounds to be checked again and this tuple to be extended.
KERAS_CHECKED = ((3, 15),)

# What Keras's callbacks learn while training, and nothing else: their settings come from
# the file, and some (`min_delta`, `monitor_op`) are rewritten by the callbacks themselves.
# None of these attributes is documented; resume saves and restores them.
CALLBACK_STATE = (
    "wait",
    "best",
    "best_weights",
    "best_epoch",
    "stopped_epoch",
    "cooldown_counter",
    "epochs_since_last_save",
)


class KerasInternalMissing(RuntimeError):
    """A private Keras or TensorFlow internal nnflow relies on is not in the installed version."""


def keras_version() -> tuple[int, int]:
    import keras

    major, minor = keras.__version__.split(".")[:2]
    return int(major), int(minor)


def _missing(what: str, why: str) -> KerasInternalMissing:
    import keras

    checked = ", ".join(f"{major}.{minor}" for major, minor in KERAS_CHECKED)
    return KerasInternalMissing(
        f"Keras {keras.__version__} has no {what}, which nnflow uses {why} (checked with Keras {checked}). "
        "Install a Keras nnflow was checked with, or see nnflow/_keras_compat.py."
    )


# ---------------------------------------------------------------------------
# keras-team/keras#20585: model.fit under MultiWorkerMirroredStrategy


def build_under_strategy(model, strategy, x, y) -> None:
    """Build the compiled loss and metrics on one sample row, and stop Keras from building them again.

    Under a strategy, Keras builds them from the first batch averaged over the replicas
    (`_maybe_symbolic_build`): a collective that fails across workers, and on one machine
    whenever that batch does not split evenly. Replacing `_maybe_symbolic_build` is per
    model: nothing outside `model` changes.
    """
    build = getattr(model, "_symbolic_build", None)
    if build is None or not hasattr(model, "_maybe_symbolic_build"):
        raise _missing(
            "Model._symbolic_build / _maybe_symbolic_build",
            "to train under a distribution strategy (keras-team/keras#20585)",
        )
    with strategy.scope():
        build(data_batch=(x[:1], y[:1]))

    def built_already(iterator=None, data_batch=None):
        return None

    model._maybe_symbolic_build = built_already


def _trainer_module():
    try:
        from keras.src.backend.tensorflow import trainer
    except ImportError:
        raise _missing(
            "keras.src.backend.tensorflow.trainer", "to reduce metric logs across workers (keras-team/keras#20585)"
        ) from None
    if not hasattr(trainer, "reduce_per_replica") or not hasattr(trainer, "_collective_all_reduce_multi_worker"):
        raise _missing("trainer.reduce_per_replica", "to reduce metric logs across workers (keras-team/keras#20585)")
    return trainer


def install_elementwise_log_reduction() -> Callable[[], None]:
    """Reduce Keras's per-step logs across workers element-wise (`axis=None`), not along axis 0.

    Keras reduces the scalar logs of `MultiWorkerMirroredStrategy` with `axis=0`, which fails.
    Returns the function that puts Keras's own reduction back (a no-op when it was patched
    already). Prefer `elementwise_log_reduction()`, which does so on leaving the block.
    """
    from keras.src import tree

    trainer = _trainer_module()
    original = trainer.reduce_per_replica
    if getattr(original, "nnflow", False):
        return lambda: None

    def reduce_per_replica(values, strategy, reduction):  # Keras's signature
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(lambda value: strategy.reduce("MEAN", value, axis=None), values)
        return original(values, strategy, reduction)

    patched: Any = reduce_per_replica  # marked, so that it is never wrapped twice and can be undone
    patched.nnflow = True
    patched.original = original
    trainer.reduce_per_replica = patched

    def restore() -> None:
        if trainer.reduce_per_replica is reduce_per_replica:
            trainer.reduce_per_replica = original

    return restore


@contextlib.contextmanager
def elementwise_log_reduction():
    """`install_elementwise_log_reduction` for the block only."""
    restore = install_elementwise_log_reduction()
    try:
        yield
    finally:
        restore()


@contextlib.contextmanager
def keras_patches_restored():
    """Whatever patches nnflow installs in Keras while the block runs are undone when it ends."""
    import sys

    name = "keras.src.backend.tensorflow.trainer"
    saved = getattr(sys.modules.get(name), "reduce_per_replica", None)  # None: Keras not imported yet
    try:
        yield
    finally:
        trainer: Any = sys.modules.get(name)
        if trainer is not None and getattr(trainer.reduce_per_replica, "nnflow", False):
            trainer.reduce_per_replica = saved if saved is not None else trainer.reduce_per_replica.original


# ---------------------------------------------------------------------------
# ONNX export


def freeze(concrete_function):
    """The function with its variables (and captured constants) folded into the graph."""
    try:
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
    except ImportError:
        raise _missing("tensorflow.python.framework.convert_to_constants", "to export ONNX") from None
    return convert_variables_to_constants_v2(concrete_function)


def patch_tf2onnx() -> None:
    """Apply Keras's own patch of tf2onnx 1.17 for numpy 2 names (once per process; it sets `np.object`)."""
    try:
        from keras.src.export.tf2onnx_lib import patch_tf2onnx as keras_patch
    except ImportError:  # a Keras without it: tf2onnx runs as it is
        return
    keras_patch()


# ---------------------------------------------------------------------------
# Global seeds, for nnflow used as a library


@dataclass(frozen=True)
class GlobalSeeds:
    """Every global random state `keras.utils.set_random_seed` changes."""

    python: Any  # None: leave as it is
    numpy: Any  # None: leave as it is
    tensorflow_seed: Any
    tensorflow_rng: Any  # the state of the eager context's operation-seed generator, or None
    keras_seed: Any
    keras_generator: Any


def global_seed_state() -> GlobalSeeds:
    import numpy as np
    import tensorflow as tf  # noqa: F401  (the eager context below is TensorFlow's)
    from keras.src.backend.common import global_state
    from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR
    from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED
    from tensorflow.python.eager import context

    eager = context.context()
    rng = getattr(eager, "_rng", None)
    return GlobalSeeds(
        python=random.getstate(),
        numpy=np.random.get_state(),
        tensorflow_seed=getattr(eager, "_seed", None),
        tensorflow_rng=rng.getstate() if rng is not None else None,
        keras_seed=global_state.get_global_attribute(GLOBAL_RANDOM_SEED),
        keras_generator=global_state.get_global_attribute(GLOBAL_SEED_GENERATOR),
    )


def restore_global_seeds(saved: GlobalSeeds) -> None:
    import numpy as np
    from keras.src.backend.common import global_state
    from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR
    from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED
    from tensorflow.python.eager import context

    if saved.python is not None:
        random.setstate(saved.python)
    if saved.numpy is not None:
        np.random.set_state(saved.numpy)
    eager = context.context()
    eager._seed = saved.tensorflow_seed
    if saved.tensorflow_rng is None:
        if hasattr(eager, "_rng"):
            del eager._rng
    else:
        eager._rng = random.Random()
        eager._rng.setstate(saved.tensorflow_rng)
    global_state.set_global_attribute(GLOBAL_RANDOM_SEED, saved.keras_seed)
    global_state.set_global_attribute(GLOBAL_SEED_GENERATOR, saved.keras_generator)


def _determinism():
    try:
        from tensorflow.python.framework import config
    except ImportError:
        raise _missing("tensorflow.python.framework.config", "to put op determinism back as it was") from None
    if not hasattr(config, "is_op_determinism_enabled") or not hasattr(config, "disable_op_determinism"):
        raise _missing("is_op_determinism_enabled / disable_op_determinism", "to put op determinism back as it was")
    return config


def op_determinism() -> bool:
    """Whether TensorFlow's op determinism is on (`tf.config.experimental.enable_op_determinism`)."""
    return bool(_determinism().is_op_determinism_enabled())


def set_op_determinism(enabled: bool) -> None:
    config = _determinism()
    if enabled:
        config.enable_op_determinism()
    else:
        config.disable_op_determinism()


# ---------------------------------------------------------------------------
# What tests/test_keras_compat.py checks


def _source(function) -> str:
    return inspect.getsource(function)


def _symbolic_build_averages_replicas() -> bool:
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    return '"MEAN"' in _source(TensorFlowTrainer._maybe_symbolic_build)


def _logs_reduced_along_axis_0() -> bool:
    return 'reduce("MEAN", v, axis=0)' in _source(_trainer_module().reduce_per_replica)


@dataclass(frozen=True)
class Workaround:
    name: str
    internals: tuple[str, ...]  # importable dotted paths ("module:attribute.attribute")
    still_needed: Callable[[], bool] | None  # None: nothing in Keras's code says when it is no longer needed
    why: str


WORKAROUNDS = (
    Workaround(
        "build_under_strategy",
        (
            "keras.src.trainers.trainer:Trainer._symbolic_build",
            "keras.src.backend.tensorflow.trainer:TensorFlowTrainer._maybe_symbolic_build",
        ),
        _symbolic_build_averages_replicas,
        "keras-team/keras#20585: the first batch is averaged over the replicas ('MEAN' in _maybe_symbolic_build)",
    ),
    Workaround(
        "elementwise_log_reduction",
        (
            "keras.src.backend.tensorflow.trainer:reduce_per_replica",
            "keras.src.backend.tensorflow.trainer:_collective_all_reduce_multi_worker",
            "keras.src.tree:map_structure",
        ),
        _logs_reduced_along_axis_0,
        "keras-team/keras#20585: multi-worker 'mean' logs are reduced with axis=0 (reduce_per_replica)",
    ),
    Workaround(
        "freeze",
        ("tensorflow.python.framework.convert_to_constants:convert_variables_to_constants_v2",),
        None,
        "Keras's ONNX exporter leaves captured constants as graph inputs",
    ),
    Workaround(
        "patch_tf2onnx",
        ("keras.src.export.tf2onnx_lib:patch_tf2onnx",),
        None,
        "tf2onnx 1.17 uses numpy names numpy 2 removed (optional: skipped when Keras has no patch)",
    ),
    Workaround(
        "global_seed_state",
        (
            "keras.src.backend.common.global_state:get_global_attribute",
            "keras.src.random.seed_generator:GLOBAL_SEED_GENERATOR",
            "keras.src.utils.rng_utils:GLOBAL_RANDOM_SEED",
            "tensorflow.python.eager.context:Context._set_global_seed",  # it sets `_seed` and `_rng`, read back here
        ),
        None,
        "keras.utils.set_random_seed has no way to read back or undo what it sets",
    ),
    Workaround(
        "op_determinism",
        (
            "tensorflow.python.framework.config:is_op_determinism_enabled",
            "tensorflow.python.framework.config:disable_op_determinism",
        ),
        None,
        "tf.config.experimental exports enable_op_determinism only",
    ),
)
