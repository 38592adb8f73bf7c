"""The tutorial's lessons (configs/lessons/) run, and the vanishing gradient is measured, not told."""

from __future__ import annotations

import csv
import json

import pytest

from conftest import CONFIGS
from nnflow import load_spec
from nnflow.workflows import compile_experiment, train

LESSONS = sorted((CONFIGS / "lessons").glob("*.yaml"))


def kernel_norms(run_dir, epoch: int) -> list[float]:
    """The kernels' gradient norms at `epoch`, first layer to last."""
    with open(run_dir / "gradients.csv", newline="") as stream:
        return [
            float(r["norm"])
            for r in csv.DictReader(stream)
            if r["epoch"] == str(epoch) and r["layer"].endswith("/kernel")
        ]


def test_every_lesson_says_what_to_look_for():
    assert len(LESSONS) == 7
    for lesson in LESSONS:
        assert "What to look for" in lesson.read_text(), lesson.name


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda path: path.stem)
def test_each_lesson_runs(lesson, tmp_path):
    spec = load_spec(lesson)
    if spec.data is None:
        assert compile_experiment(lesson).total_params == 36  # the tutorial's model, as written
        return
    result = train(lesson, ["fit.epochs=3"], out=tmp_path / "run")
    assert json.loads((result.run_dir / "run.json").read_text())["status"] == "completed"
    assert (result.run_dir / "gradients.csv").exists() == spec.fit.gradient_norms


@pytest.fixture(scope="module")
def deep_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("deep")
    return {
        activation: train(
            CONFIGS / "lessons" / f"{number}_deep_{activation}.yaml", ["fit.epochs=5"], out=folder / activation
        ).run_dir
        for number, activation in (("03", "sigmoid"), ("04", "relu"))
    }


def test_the_sigmoid_gradient_vanishes_and_relus_does_not(deep_runs):
    sigmoid, relu = kernel_norms(deep_runs["sigmoid"], 5), kernel_norms(deep_runs["relu"], 5)
    assert len(sigmoid) == len(relu) == 7  # six hidden layers and the output layer
    assert sigmoid[-1] / sigmoid[0] >= 10  # the first layer's gradient is at least 10x smaller than the last's
    assert relu[-1] / relu[0] < 10


@pytest.mark.parametrize("config", ["iris", "breast_cancer"])  # dropout; an L2 regularizer
def test_gradient_diagnostics_do_not_change_the_results(config, tmp_path):
    plain = train(CONFIGS / f"{config}.yaml", ["fit.epochs=3", "expect={}"], out=tmp_path / "plain")
    measured = train(
        CONFIGS / f"{config}.yaml",
        ["fit.epochs=3", "expect={}", "fit.diagnostics.gradient_norms=true"],
        out=tmp_path / "measured",
    )
    assert measured.metrics == plain.metrics
    drop = lambda text: [line.rsplit(",", 1)[0] for line in text.splitlines()]  # noqa: E731 - all but the seconds column
    assert drop((measured.run_dir / "history.csv").read_text()) == drop((plain.run_dir / "history.csv").read_text())
    rows = list(csv.DictReader(open(measured.run_dir / "gradients.csv", newline="")))
    assert list(rows[0]) == ["epoch", "layer", "norm"] and {r["epoch"] for r in rows} == {"1", "2", "3"}
    assert len(rows) == 3 * 4  # two Dense layers, a kernel and a bias each, every epoch


def test_gradients_of_a_loss_only_compile_understands(tmp_path):
    """`crossentropy` is resolved by Keras's compile(); the diagnostics use the compiled loss too."""
    result = train(
        CONFIGS / "iris.yaml",
        ["fit.epochs=1", "expect={}", "compile.loss=crossentropy", "fit.diagnostics.gradient_norms=true"],
        out=tmp_path / "r",
    )
    assert len(kernel_norms(result.run_dir, 1)) == 2
