"""The private Keras and TensorFlow internals nnflow relies on (nnflow/_keras_compat.py) are still there,
and the workarounds are still needed, as far as the installed Keras's code can tell.

What these tests can detect, honestly:
- an internal that is gone (a module, a function, an attribute): always;
- a workaround no longer needed: only where Keras's source still shows the bug's own line
  (`still_needed`); a fix made elsewhere is not seen. So an upgrade past the Keras versions
  the workarounds were checked with fails `test_keras_is_a_version_the_workarounds_were_checked_with`,
  which asks for the multi-worker tests to be run without them.
"""

from __future__ import annotations

import importlib

import pytest

from nnflow import _keras_compat
from nnflow._keras_compat import WORKAROUNDS


def _resolve(dotted: str):
    module_name, _, attributes = dotted.partition(":")
    value = importlib.import_module(module_name)
    for attribute in attributes.split("."):
        value = getattr(value, attribute)
    return value


@pytest.mark.parametrize("workaround", WORKAROUNDS, ids=lambda w: w.name)
def test_the_internals_a_workaround_relies_on_are_there(workaround):
    missing = []
    for dotted in workaround.internals:
        try:
            _resolve(dotted)
        except (ImportError, AttributeError) as error:
            missing.append(f"{dotted} ({type(error).__name__}: {error})")
    assert not missing, (
        f"nnflow/_keras_compat.py's {workaround.name} relies on internals this Keras/TensorFlow no longer has: "
        f"{'; '.join(missing)}. Why it exists: {workaround.why}. Find the new way, or drop the workaround if it is not needed any more."
    )


@pytest.mark.parametrize("workaround", [w for w in WORKAROUNDS if w.still_needed is not None], ids=lambda w: w.name)
def test_a_workaround_is_still_needed(workaround):
    assert workaround.still_needed(), (
        f"Keras's code no longer shows the bug nnflow/_keras_compat.py's {workaround.name} works around ({workaround.why}). "
        "If keras-team/keras#20585 is fixed, run `pytest tests/test_distribute.py -m slow` without the workaround, "
        "then remove it from _keras_compat.py and its callers."
    )


def test_keras_is_a_version_the_workarounds_were_checked_with():
    import keras

    assert _keras_compat.keras_version() in _keras_compat.KERAS_CHECKED, (
        f"Keras {keras.__version__} is not one of the versions nnflow/_keras_compat.py was checked with "
        f"({_keras_compat.KERAS_CHECKED}). Run `pytest tests/test_keras_compat.py tests/test_library_use.py` and "
        "`pytest tests/test_distribute.py -m slow` (and once without each keras-team/keras#20585 workaround, "
        "to see whether it is still needed), then add the version to KERAS_CHECKED."
    )


def test_tensorflow_keeps_the_global_seed_where_restore_global_seeds_looks():
    import tensorflow as tf
    from tensorflow.python.eager import context

    saved = _keras_compat.global_seed_state()
    try:
        tf.random.set_seed(1234)
        eager = context.context()
        assert getattr(eager, "_seed", None) == 1234 and hasattr(eager, "_rng"), (
            "tf.random.set_seed no longer keeps its seed in the eager context's `_seed` and `_rng`: "
            "update _keras_compat.global_seed_state / restore_global_seeds."
        )
    finally:
        _keras_compat.restore_global_seeds(saved)
    after = _keras_compat.global_seed_state()
    assert (after.tensorflow_seed, after.tensorflow_rng, after.keras_seed) == (
        saved.tensorflow_seed,
        saved.tensorflow_rng,
        saved.keras_seed,
    )


def test_a_missing_internal_is_a_clear_error():
    class NotAKerasModel:
        pass

    with pytest.raises(
        _keras_compat.KerasInternalMissing,
        match=r"has no Model._symbolic_build .*keras-team/keras#20585.*checked with Keras 3\.",
    ):
        _keras_compat.build_under_strategy(NotAKerasModel(), None, [0], [0])
