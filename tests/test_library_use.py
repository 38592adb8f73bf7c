"""nnflow used as a library leaves the process as it found it (issue 13, item 6).

In this one interpreter: call `nnflow.train` (returning, then raising), and check that the
global seeds, op determinism, umask, fd 2 and Keras's functions are as they were.
"""

from __future__ import annotations

import os
import random

import pytest

from conftest import CONFIGS


def _process_state() -> dict:
    import numpy as np
    from keras.src.backend.tensorflow import trainer
    from keras.src.utils import rng_utils
    from tensorflow.python.eager import context

    from nnflow import _keras_compat

    umask = os.umask(0o077)
    os.umask(umask)
    stderr = os.fstat(2)
    eager = context.context()
    rng = getattr(eager, "_rng", None)
    return {
        "python random": random.getstate(),
        "numpy random": np.random.get_state()[1].tolist() + [np.random.get_state()[2]],
        "tensorflow global seed": (getattr(eager, "_seed", None), rng.getstate() if rng is not None else None),
        "keras global seed": rng_utils.get_random_seed(),
        "op determinism": _keras_compat.op_determinism(),
        "umask": umask,
        "fd 2": (stderr.st_dev, stderr.st_ino),
        "keras reduce_per_replica": trainer.reduce_per_replica,
    }


@pytest.fixture
def unusual_process_state():
    """A state nnflow would not leave by chance: seeds drawn, a umask of 027."""
    import numpy as np

    random.seed(20261201)
    np.random.seed(20261201)
    random.random()
    np.random.random()
    umask = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(umask)


def _assert_unchanged(before: dict, after: dict) -> None:
    changed = [name for name in before if before[name] != after[name]]
    assert not changed, f"nnflow.train changed the process's {', '.join(changed)}"


def test_train_leaves_the_process_as_it_found_it(tmp_path, unusual_process_state):
    import nnflow

    before = _process_state()
    result = nnflow.train(CONFIGS / "iris.yaml", ["fit.epochs=1", "expect={}", "seed=7"], out=tmp_path / "run")
    assert result.run_dir == tmp_path / "run"
    _assert_unchanged(before, _process_state())


def test_train_that_raises_after_seeding_leaves_the_process_as_it_found_it(tmp_path, unusual_process_state):
    import nnflow

    before = _process_state()
    with pytest.raises(
        nnflow.DataError, match="the last layer has 7 units"
    ):  # refused once the model is built (seeded)
        nnflow.train(CONFIGS / "iris.yaml", ["fit.epochs=1", "expect={}", "layers.-1.units=7"], out=tmp_path / "run")
    _assert_unchanged(before, _process_state())


def test_seeded_seeds_and_makes_ops_deterministic_for_the_block_only(unusual_process_state):
    from nnflow import _keras_compat, training

    before = _process_state()
    with training.seeded(3):
        first = random.random()
        assert _keras_compat.op_determinism()
    with training.seeded(3):
        assert random.random() == first
    _assert_unchanged(before, _process_state())


def test_the_multi_worker_patch_of_keras_is_undone_with_the_scope():
    from keras.src.backend.tensorflow import trainer

    from nnflow import distribute, library_scope

    original = trainer.reduce_per_replica
    with library_scope.kept():
        distribute.patch_keras()
        assert trainer.reduce_per_replica is not original and trainer.reduce_per_replica.nnflow
    assert trainer.reduce_per_replica is original
    from nnflow._keras_compat import elementwise_log_reduction

    with elementwise_log_reduction():
        assert trainer.reduce_per_replica.original is original
    assert trainer.reduce_per_replica is original


def test_fd_2_redirected_and_not_restored_is_put_back():
    from nnflow import library_scope

    before = os.fstat(2)
    with library_scope.kept():
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)


def test_current_umask_reads_the_umask_and_leaves_it(unusual_process_state):
    from nnflow.fileio import current_umask

    assert current_umask() == 0o027
    assert os.umask(0o027) == 0o027  # still what the fixture set
