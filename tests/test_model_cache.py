"""A sweep worker's kept models (nnflow/model_cache.py): a run that reuses an earlier run's compiled
model of the same shape gives, to the last bit, the numbers of a run that built its own."""

from __future__ import annotations

import pytest

from conftest import CONFIGS
from nnflow import training
from nnflow.model_cache import ModelCache, shape_key
from nnflow.workflows import train

BASE = ["fit.epochs=4", "expect={}"]  # iris.yaml: Normalization, Dropout (a seed state), EarlyStopping


def history(run_dir) -> list[list[str]]:
    """history.csv but its `seconds` column (the one thing a reused model changes: it is faster)."""
    rows = [line.split(",") for line in (run_dir / "history.csv").read_text().splitlines()]
    column = rows[0].index("seconds")
    return [row[:column] + row[column + 1 :] for row in rows]


def runs(tmp_path, name: str, models: ModelCache | None, rates=(0.003, 0.03, 0.01)) -> list:
    results = []
    for rate in rates:
        training.fresh_session()
        overrides = [*BASE, f"compile.optimizer.Adam.learning_rate={rate}"]
        results.append(train(CONFIGS / "iris.yaml", overrides, out=tmp_path / name / str(rate), models=models))
    return results


def test_a_reused_model_gives_a_fresh_models_numbers(tmp_path):
    models = ModelCache()
    reused = runs(tmp_path, "reused", models)
    fresh = runs(tmp_path, "fresh", None)
    assert models.reused == 2  # the second and third runs took the first one's model
    for a, b in zip(reused, fresh):
        assert a.metrics == b.metrics
        assert (a.run_dir / "metrics.json").read_text() == (b.run_dir / "metrics.json").read_text()
        assert history(a.run_dir) == history(b.run_dir)
        assert a.timing["fit_seconds"] > 0 and b.timing["fit_seconds"] > 0
    # The saved model predicts as the fresh one does, and names the run's own learning rate.
    import keras
    import numpy as np

    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    for a, b, rate in zip(reused, fresh, (0.003, 0.03, 0.01)):
        model_a = keras.saving.load_model(a.run_dir / "model.keras")
        model_b = keras.saving.load_model(b.run_dir / "model.keras")
        assert np.array_equal(model_a.predict(x, verbose=0), model_b.predict(x, verbose=0))
        assert float(model_a.optimizer.learning_rate) == pytest.approx(rate)


def test_the_key_leaves_out_only_a_plain_learning_rate():
    from nnflow import load_spec

    def key(*overrides):
        return shape_key(load_spec(CONFIGS / "iris.yaml", overrides).to_dict(), (4,), 6, True)

    assert key("compile.optimizer.Adam.learning_rate=0.1") == key("compile.optimizer.Adam.learning_rate=0.2")
    assert key("fit.epochs=3") == key("fit.epochs=9")
    assert key("layers.0.units=8") != key("layers.0.units=16")
    assert key("compile.optimizer.Adam.beta_1=0.8") != key("compile.optimizer.Adam.beta_1=0.9")
    assert key() != shape_key(load_spec(CONFIGS / "iris.yaml").to_dict(), (4,), 1, True)


def test_a_worker_takes_the_grid_points_its_kept_models_fit():
    from types import SimpleNamespace

    from nnflow.workflows.sweep_worker import choose_waiting

    def point(number, units):
        return SimpleNamespace(number=number, units=units)

    waiting = [point(1, 8), point(2, 8), point(3, 16), point(4, 16)]
    shape = lambda trial: trial.units  # noqa: E731
    assert choose_waiting(waiting, [point(0, 8)], shape, kept=[8]).number == 1  # its own shape
    assert choose_waiting(waiting, [point(0, 8)], shape, kept=[]).number == 3  # a shape nobody trains
    assert choose_waiting(waiting[:2], [point(0, 8)], shape, kept=[]) is None  # else the oldest
