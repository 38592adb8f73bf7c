"""`nnflow plot` and `nnflow report`: pictures drawn from the run's own data, and a self-contained page."""

from __future__ import annotations

import base64
import csv
import json
import struct

import pytest
from click.testing import CliRunner

from conftest import CONFIGS, ROOT
from nnflow import plots
from nnflow.cli import cli
from nnflow.workflows import train


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plots") / "iris"
    return train(CONFIGS / "iris.yaml", ["fit.epochs=4", "fit.diagnostics.gradient_norms=true"], out=folder).run_dir


def history(run_dir, column):
    with open(run_dir / "history.csv", newline="") as stream:
        return [float(row[column]) for row in csv.DictReader(stream)]


def test_learning_curves_are_drawn_from_the_history(run, tmp_path):
    figure = plots.learning_curves([run])
    panels = {axis.get_title(): axis for axis in figure.axes if axis.get_visible()}
    assert list(panels) == ["loss", "accuracy"]
    lines = {line.get_label(): list(line.get_ydata()) for line in panels["loss"].get_lines()}
    assert lines == {
        "train": pytest.approx(history(run, "loss")),
        "validation": pytest.approx(history(run, "val_loss")),
    }

    result = invoke("plot", run, "-o", tmp_path / "curves.png")
    assert result.exit_code == 0 and result.stdout == f"wrote {tmp_path / 'curves.png'}\n"
    width, height = png_size((tmp_path / "curves.png").read_bytes())
    assert 600 <= width <= 2000 and 250 <= height <= 1500


def test_several_runs_overlay(run, tmp_path):
    other = train(CONFIGS / "iris.yaml", ["fit.epochs=2", "expect={}"], out=tmp_path / "other").run_dir
    figure = plots.learning_curves([run, other])
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    # Labelled by the runs' names, with the folder where two names are the same.
    assert labels == [
        f"iris-mlp ({run.name}) train",
        f"iris-mlp ({run.name}) validation",
        "iris-mlp (other) train",
        "iris-mlp (other) validation",
    ]
    assert invoke("plot", run, other, "-o", tmp_path / "both.png").exit_code == 0


def test_gradient_norms_are_drawn_per_weight_on_a_log_scale(run, tmp_path):
    figure = plots.gradient_norms(run)
    axis = figure.axes[0]
    assert axis.get_yscale() == "log"
    with open(run / "gradients.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    lines = {line.get_label(): list(line.get_ydata()) for line in axis.get_lines()}
    assert set(lines) == {row["layer"] for row in rows}
    assert lines["dense/kernel"] == pytest.approx([float(r["norm"]) for r in rows if r["layer"] == "dense/kernel"])
    assert invoke("plot", run, "--gradients", "-o", tmp_path / "g.png").exit_code == 0
    png_size((tmp_path / "g.png").read_bytes())


def test_gradients_need_recording_and_plots_are_png(tmp_path):
    plain = train(CONFIGS / "iris.yaml", ["fit.epochs=1", "expect={}"], out=tmp_path / "plain").run_dir
    result = invoke("plot", plain, "--gradients")
    assert result.exit_code == 2 and "fit.diagnostics.gradient_norms=true" in result.stderr
    assert invoke("plot", plain, "-o", tmp_path / "x.jpg").exit_code == 2


def test_the_report_is_one_self_contained_page(run, tmp_path):
    assert not (run / "evaluation.json").exists()  # a classifier not evaluated yet is evaluated for its matrix
    result = invoke("report", run, "-o", tmp_path / "report.html")
    assert result.exit_code == 0, result.output
    assert "(metrics, gates, curves, gradients, confusion matrix, experiment)" in result.stdout
    page = (tmp_path / "report.html").read_text()
    assert page.startswith("<!doctype html>") and "<h1>iris-mlp</h1>" in page
    images = [part.split('"', 1)[0] for part in page.split('src="data:image/png;base64,')[1:]]
    assert len(images) == 2 and all(png_size(base64.b64decode(image)) for image in images)
    assert 'src="http' not in page and "<script" not in page and "<link" not in page  # nothing fetched from elsewhere
    assert "test_accuracy &gt;= 0.9" in page and "<h2>Confusion matrix</h2>" in page
    assert "loss: sparse_categorical_crossentropy" in page  # the experiment file, escaped into <pre>
    info = json.loads((run / "run.json").read_text())
    assert info["name"] == "iris-mlp"


def test_the_readme_shows_the_gradient_picture():
    readme = (ROOT / "README.md").read_text()
    assert "![Gradient norms per layer of the deep sigmoid network](docs/images/deep_sigmoid_gradients.png)" in readme
    width, height = png_size((ROOT / "docs" / "images" / "deep_sigmoid_gradients.png").read_bytes())
    assert width > 600 and height > 300


def test_a_history_without_epoch_is_a_damaged_run_for_plot_and_report(run, tmp_path):
    """The red team's case: plot and report crashed (exit 1) on a history.csv without `epoch`."""
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(run, damaged)
    lines = (damaged / "history.csv").read_text().splitlines()
    (damaged / "history.csv").write_text("\n".join([lines[0].replace("epoch", "step"), *lines[1:]]) + "\n")
    for args in (["plot", damaged, "-o", tmp_path / "c.png"], ["report", damaged, "-o", tmp_path / "r.html"]):
        result = invoke(*args)
        assert result.exit_code == 6, result.output
        assert f"{damaged / 'history.csv'}: no 'epoch' column in its header" in result.stderr
    assert not (tmp_path / "c.png").exists() and not (tmp_path / "r.html").exists()


def test_plot_and_report_refuse_another_runs_folder(run, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(run, other)
    for args in (["plot", run, "-o", other / "curves.png"], ["report", run, "-o", other / "report.html"]):
        result = invoke(*args)
        assert result.exit_code == 2 and "writes nothing into the folder of another run" in result.stderr
    assert not (other / "report.html").exists()
