"""`nnflow evaluate` and `nnflow predict` on trained runs (trained once per module, in-process)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import CONFIGS, DATA
from nnflow.cli import cli
from nnflow.workflows import evaluate, predict, train


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory) -> Path:
    return train(CONFIGS / "iris.yaml", ["fit.epochs=20"], out=tmp_path_factory.mktemp("runs") / "iris").run_dir


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory) -> Path:
    """A run with a text feature, for categories that training never saw."""
    folder = tmp_path_factory.mktemp("colour")
    rng = np.random.default_rng(0)
    n = 90
    frame = pd.DataFrame({"size": rng.normal(size=n), "colour": rng.choice(["red", "blue", "green"], n)})
    frame["kind"] = np.where(frame["size"] > 0, "big", "small")
    frame.to_csv(folder / "train.csv", index=False)
    (folder / "experiment.yaml").write_text(
        "data: {train: train.csv, target: kind, validation: 0, test: 0.2}\n"
        "layers: [{Dense: {units: 8, activation: relu}}, {Dense: {units: 2, activation: softmax}}]\n"
        "compile: {optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}\n"
        "fit: {epochs: 3}\n"
    )
    return train(folder / "experiment.yaml", out=folder / "run").run_dir


@pytest.fixture(scope="module")
def diabetes_run(tmp_path_factory) -> Path:
    return train(
        CONFIGS / "diabetes.yaml", ["fit.epochs=3", "expect={}"], out=tmp_path_factory.mktemp("runs") / "d"
    ).run_dir


# ---------------------------------------------------------------------------
# evaluate


def test_evaluate_gives_the_numbers_training_reported(iris_run):
    trained = json.loads((iris_run / "metrics.json").read_text())
    result = evaluate(iris_run)
    assert result.metrics == {"loss": trained["test_loss"], "accuracy": trained["test_accuracy"]}
    assert result.rows == 15 and result.data == "the test split (15 rows of iris.csv)"
    report = result.report
    assert report["classes"] == ["setosa", "versicolor", "virginica"]
    assert np.array(report["confusion_matrix"]).sum() == 15 and report["accuracy"] == pytest.approx(
        trained["test_accuracy"]
    )
    assert [row["support"] for row in report["per_class"]] == [5, 5, 5]
    saved = json.loads((iris_run / "evaluation.json").read_text())
    assert (
        saved["metrics"] == result.metrics and saved["classification"]["confusion_matrix"] == report["confusion_matrix"]
    )


def test_evaluate_cli_table_and_json(iris_run):
    result = invoke("evaluate", iris_run)
    assert result.exit_code == 0, result.output
    assert "Confusion matrix (rows: true class, columns: predicted):" in result.stdout
    assert "  ok    test_accuracy >= 0.9" in result.stdout
    document = json.loads(invoke("evaluate", iris_run, "--json").stdout)
    assert set(document) >= {"metrics", "classification", "gates", "rows"}


def test_evaluate_on_a_labelled_file_and_its_gates(iris_run, tmp_path):
    frame = pd.read_csv(DATA / "iris.csv").sample(frac=1.0, random_state=3)
    frame = frame[list(reversed(frame.columns))].assign(extra="x")  # column order and extras do not matter
    frame.to_csv(tmp_path / "flowers.csv", index=False)
    result = evaluate(iris_run, tmp_path / "flowers.csv", output=tmp_path / "e.json")
    assert result.rows == 150 and json.loads((tmp_path / "e.json").read_text())["rows"] == 150
    hard = tmp_path / "hard"
    shutil.copytree(iris_run, hard)
    (hard / "experiment.yaml").write_text(
        (hard / "experiment.yaml").read_text().replace("test_accuracy: '>= 0.9'", "test_accuracy: '>= 1.01'")
    )
    failed = invoke("evaluate", hard)
    assert failed.exit_code == 5 and "test_accuracy = " in failed.stderr and "expected >= 1.01" in failed.stderr


def test_evaluate_without_a_test_split_or_with_changed_data(tmp_path):
    data = tmp_path / "iris.csv"
    shutil.copy(DATA / "iris.csv", data)
    config = tmp_path / "iris.yaml"
    config.write_text((CONFIGS / "iris.yaml").read_text().replace("../data/iris.csv", "iris.csv"))
    no_test = train(config, ["fit.epochs=1", "data.test=0", "expect={}"], out=tmp_path / "no-test").run_dir
    result = invoke("evaluate", no_test)
    assert (
        result.exit_code == 2
        and "has no test split (data.test: 0); evaluate it on a labelled file with --data FILE" in result.stderr
    )
    run = train(config, ["fit.epochs=1", "expect={}"], out=tmp_path / "run").run_dir
    data.write_text(data.read_text().replace("5.1,3.5", "5.2,3.5", 1))
    result = invoke("evaluate", run)
    assert result.exit_code == 3
    assert (
        "changed since training (its sha256 differs), so its test split cannot be rebuilt. Evaluate on a labelled file with --data FILE."
        in result.stderr
    )


def test_regression_evaluation_has_no_confusion_matrix(diabetes_run):
    result = evaluate(diabetes_run)
    assert result.report is None and set(result.metrics) == {"loss", "mae", "r2"}


# ---------------------------------------------------------------------------
# predict


def test_predict_matches_columns_by_name_and_carries_the_others(iris_run, tmp_path):
    import keras

    frame = pd.read_csv(DATA / "iris.csv")
    shuffled = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    shuffled.insert(0, "id", range(1000, 1150))
    shuffled = shuffled[["petal_width", "id", "sepal_width", "species", "petal_length", "sepal_length"]]
    shuffled.to_csv(tmp_path / "in.csv", index=False)

    result = predict(iris_run, tmp_path / "in.csv", tmp_path / "out.csv")
    out = pd.read_csv(tmp_path / "out.csv")
    assert result.rows == 150 and list(out.columns) == [
        "id",
        "species",
        "predicted_species",
        "probability_setosa",
        "probability_versicolor",
        "probability_virginica",
    ]
    assert out["id"].tolist() == list(range(1000, 1150))
    model = keras.saving.load_model(iris_run / "model.keras")
    expected = model.predict(
        shuffled[["sepal_length", "sepal_width", "petal_length", "petal_width"]].to_numpy("float32"), verbose=0
    )
    assert np.allclose(out[result.columns[1:]].to_numpy(), expected, atol=1e-6)
    names = np.array(["setosa", "versicolor", "virginica"])
    assert out["predicted_species"].tolist() == names[expected.argmax(axis=1)].tolist()
    assert (out["predicted_species"] == out["species"]).mean() > 0.8


def test_predict_streams_in_chunks_with_the_same_result(iris_run, tmp_path, monkeypatch):
    import nnflow.scoring

    whole = tmp_path / "whole.csv"
    predict(iris_run, DATA / "iris.csv", whole)
    monkeypatch.setattr(nnflow.scoring, "CHUNK_ROWS", 7)
    chunks = []
    real_iter_table = nnflow.scoring.iter_table

    def counting(*args, **kwargs):
        for chunk in real_iter_table(*args, **kwargs):
            chunks.append(len(chunk))
            yield chunk

    monkeypatch.setattr(nnflow.scoring, "iter_table", counting)
    chunked = tmp_path / "chunked.parquet"
    assert predict(iris_run, DATA / "iris.csv", chunked).rows == 150
    assert chunks == [7] * 21 + [3]
    assert pd.read_parquet(chunked).equals(pd.read_csv(whole).astype(pd.read_parquet(chunked).dtypes.to_dict()))


def test_a_bad_value_deep_in_a_streamed_file_names_its_row_and_leaves_no_output(iris_run, tmp_path, monkeypatch):
    import nnflow.scoring

    monkeypatch.setattr(nnflow.scoring, "CHUNK_ROWS", 7)
    lines = (DATA / "iris.csv").read_text().splitlines()
    lines[20] = lines[20].replace(lines[20].split(",")[1], "oops", 1)
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n")
    result = invoke("predict", iris_run, "--input", tmp_path / "in.csv", "--output", tmp_path / "out.csv")
    assert (
        result.exit_code == 3
        and "in.csv: row 20 (line 21), feature 'sepal_width': 'oops' is not a number" in result.stderr
    )
    assert not (tmp_path / "out.csv").exists() and not list(tmp_path.glob(".out.csv*"))


def test_missing_columns_are_listed_and_exit_3(iris_run, tmp_path):
    pd.read_csv(DATA / "iris.csv").drop(columns=["petal_width", "sepal_length"]).to_csv(
        tmp_path / "in.csv", index=False
    )
    result = invoke("predict", iris_run, "--input", tmp_path / "in.csv", "--output", tmp_path / "out.csv")
    assert result.exit_code == 3
    assert "missing 2 feature column(s) the model needs: sepal_length, petal_width" in result.stderr
    assert not (tmp_path / "out.csv").exists()


def test_unseen_categories_are_encoded_as_zeros_and_reported(colour_run, tmp_path):
    pd.DataFrame({"size": [1.0, -1.0, 2.0], "colour": ["purple", "red", "purple"]}).to_csv(
        tmp_path / "in.csv", index=False
    )
    result = invoke("predict", colour_run, "--input", tmp_path / "in.csv", "--output", tmp_path / "out.csv")
    assert result.exit_code == 0, result.output
    assert (
        "in.csv: column 'colour' has 2 row(s) with categories not seen in training (first: 'purple' at row 1 (line 2))"
        in result.stderr
    )
    out = pd.read_csv(tmp_path / "out.csv")
    assert len(out) == 3 and set(out["predicted_kind"]) <= {"big", "small"}
    assert out[["probability_big", "probability_small"]].sum(axis=1).round(5).tolist() == [1.0, 1.0, 1.0]


def test_csv_output_escapes_formulas_but_not_numbers(iris_run, tmp_path):
    frame = pd.read_csv(DATA / "iris.csv").head(6).drop(columns="species")
    frame["note"] = ['=HYPERLINK("http://x")', "+1 555", "-2+3", "@SUM(A1)", "\tindent", "plain"]
    frame["delta"] = [-1.5, 2, -3, 4, 5, -6]
    frame.to_csv(tmp_path / "in.csv", index=False)
    assert invoke("predict", iris_run, "--input", tmp_path / "in.csv", "--output", tmp_path / "out.csv").exit_code == 0
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert out["note"].tolist() == ['\'=HYPERLINK("http://x")', "'+1 555", "'-2+3", "'@SUM(A1)", "'\tindent", "plain"]
    assert out["delta"].tolist() == [-1.5, 2, -3, 4, 5, -6]


def test_predict_to_stdout_and_regression(diabetes_run, tmp_path):
    pd.read_csv(DATA / "diabetes.csv").head(5).to_csv(tmp_path / "in.csv", index=False)
    result = invoke("predict", diabetes_run, "--input", tmp_path / "in.csv")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "progression,predicted_progression" and len(lines) == 6
    assert result.stderr == ""


def test_run_can_be_the_newest_of_a_name_or_a_model_file(iris_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "iris-mlp").mkdir(parents=True)
    shutil.copytree(iris_run, tmp_path / "runs" / "iris-mlp" / "2026-01-01_00-00-00")
    for run in ("runs/iris-mlp", "runs/iris-mlp/2026-01-01_00-00-00/model.keras"):
        result = invoke("predict", run, "--input", DATA / "iris.csv", "--output", tmp_path / "o.csv", "-q")
        assert result.exit_code == 0, result.output


def test_an_unfinished_run_says_how_to_finish_it(iris_run, tmp_path):
    unfinished = tmp_path / "unfinished"
    shutil.copytree(iris_run, unfinished)
    (unfinished / "model.keras").unlink()
    info = json.loads((unfinished / "run.json").read_text())
    (unfinished / "run.json").write_text(json.dumps({**info, "status": "interrupted"}))
    result = invoke("predict", unfinished, "--input", DATA / "iris.csv")
    assert result.exit_code == 2
    assert (
        f"has no model.keras: its training did not finish (status: interrupted). Continue it with `nnflow train --resume {unfinished}`"
        in result.stderr
    )


def test_output_must_be_a_table_file(iris_run, tmp_path):
    result = invoke("predict", iris_run, "--input", DATA / "iris.csv", "--output", tmp_path / "out.xlsx")
    assert result.exit_code == 2 and "write predictions to a .csv, .tsv or .parquet file" in result.stderr
    result = invoke("predict", iris_run, "--input", DATA / "iris.csv", "--output", tmp_path / "out.csv.gz")
    assert result.exit_code == 2 and "(not compressed)" in result.stderr
    shutil.copy(DATA / "iris.csv", tmp_path / "mine.csv")
    result = invoke("predict", iris_run, "--input", tmp_path / "mine.csv", "--output", tmp_path / "." / "mine.csv")
    assert result.exit_code == 2 and "is the input file; predictions would replace it" in result.stderr
    assert (tmp_path / "mine.csv").read_bytes() == (DATA / "iris.csv").read_bytes()


def test_carried_columns_are_written_exactly_as_read(iris_run, tmp_path, monkeypatch):
    import nnflow.scoring

    monkeypatch.setattr(nnflow.scoring, "CHUNK_ROWS", 50)
    frame = pd.read_csv(DATA / "iris.csv").drop(columns="species")
    frame.insert(0, "id", [f"{i:05d}" for i in range(150)])
    frame["big"] = ["12345678901234567"] * 149 + [""]
    frame["ref"] = ["-1", "7", "=cmd"] * 50
    frame.to_csv(tmp_path / "in.csv", index=False)
    assert invoke("predict", iris_run, "--input", tmp_path / "in.csv", "--output", tmp_path / "out.csv").exit_code == 0
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert out["id"].tolist() == [f"{i:05d}" for i in range(150)]
    assert out["big"].tolist() == ["12345678901234567"] * 149 + [""]
    assert out["ref"].tolist() == ["-1", "7", "'=cmd"] * 50  # numbers written as text are numbers: not escaped
    assert (
        invoke("predict", iris_run, "--input", tmp_path / "in.csv", "--output", tmp_path / "out.parquet").exit_code == 0
    )
    assert pd.read_parquet(tmp_path / "out.parquet")["id"].tolist() == [f"{i:05d}" for i in range(150)]


def test_a_formula_in_a_column_name_is_escaped(iris_run, tmp_path):
    frame = pd.read_csv(DATA / "iris.csv").head(3).rename(columns={"species": '=HYPERLINK("http://x")'})
    frame.to_csv(tmp_path / "in.csv", index=False)
    assert invoke("predict", iris_run, "--input", tmp_path / "in.csv", "--output", tmp_path / "out.csv").exit_code == 0
    assert (tmp_path / "out.csv").read_text().splitlines()[0].startswith('"\'=HYPERLINK(""http://x"")"')


def test_parquet_output_survives_a_column_that_changes_between_chunks(iris_run, tmp_path, monkeypatch):
    import nnflow.scoring

    monkeypatch.setattr(nnflow.scoring, "CHUNK_ROWS", 50)
    frame = pd.read_csv(DATA / "iris.csv")
    frame["count"] = pd.array([1] * 100 + [None] * 50, dtype="Int64")
    frame.to_parquet(tmp_path / "in.parquet")
    assert (
        invoke("predict", iris_run, "--input", tmp_path / "in.parquet", "--output", tmp_path / "out.parquet").exit_code
        == 0
    )
    assert pd.read_parquet(tmp_path / "out.parquet")["count"].isna().sum() == 50


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("header.csv", "sepal_length,sepal_width,petal_length,petal_width\n", "has a header but no data rows"),
        ("dup.parquet", None, "names column(s) 'sepal_width' twice"),
    ],
)
def test_inputs_without_rows_or_with_a_column_twice_exit_3(iris_run, tmp_path, name, content, message):
    import pyarrow as pa
    import pyarrow.parquet as pq

    if content is not None:
        (tmp_path / name).write_text(content)
    else:
        pq.write_table(
            pa.table([[1.0], [2.0], [3.0], [4.0]], names=["sepal_length", "sepal_width", "sepal_width", "petal_width"]),
            tmp_path / name,
        )
    result = invoke("predict", iris_run, "--input", tmp_path / name, "--output", tmp_path / "out.csv")
    assert result.exit_code == 3 and message in result.stderr and not (tmp_path / "out.csv").exists()


def test_evaluate_output_never_replaces_the_data_or_the_run(iris_run, tmp_path):
    shutil.copy(DATA / "iris.csv", tmp_path / "flowers.csv")
    result = invoke("evaluate", iris_run, "--data", tmp_path / "flowers.csv", "--output", tmp_path / "flowers.csv")
    assert result.exit_code == 2 and "evaluation results are written as JSON" in result.stderr
    result = invoke("evaluate", iris_run, "--output", iris_run / "metrics.json")
    assert result.exit_code == 2 and "in a run folder, evaluate writes only evaluation*.json" in result.stderr
    assert (tmp_path / "flowers.csv").read_bytes() == (DATA / "iris.csv").read_bytes()
    assert json.loads((iris_run / "metrics.json").read_text())["test_loss"] > 0


def test_predict_never_writes_over_a_file_of_a_run(iris_run, tmp_path):
    """The red team's case: `-o RUN/history.csv` replaced the history (and plot, report then crashed)."""
    history = (iris_run / "history.csv").read_bytes()
    (tmp_path / "link.csv").symlink_to(iris_run / "history.csv")
    for output in (iris_run / "history.csv", iris_run / "export" / ".." / "history.csv", tmp_path / "link.csv"):
        result = invoke("predict", iris_run, "--input", DATA / "iris.csv", "--output", output)
        assert result.exit_code == 2 and "is inside the run folder" in result.stderr and "--output" in result.stderr
    assert (iris_run / "history.csv").read_bytes() == history


def test_evaluate_output_under_a_regular_file_is_exit_2(iris_run, tmp_path):
    (tmp_path / "file.txt").write_text("x")
    result = invoke("evaluate", iris_run, "--output", tmp_path / "file.txt" / "e.json")
    assert result.exit_code == 2 and "file.txt is a file, not a folder" in result.stderr
    assert "Traceback" not in result.output
