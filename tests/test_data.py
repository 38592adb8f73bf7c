"""Reading, checking, splitting and encoding the data (pandas only: no TensorFlow here)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import DATA
from nnflow.data import read_table
from nnflow.errors import DataError
from nnflow.preprocessing import Preprocessing, classification_encoding, prepare
from nnflow.spec import spec_from_text

MLP = """
layers:
  - Dense: {units: 8, activation: relu}
  - Dense: {units: 3, activation: softmax}
"""


def experiment(tmp_path, data: str, loss: str = "sparse_categorical_crossentropy", layers: str = MLP, seed: int = 0):
    text = f"seed: {seed}\ndata:\n{data}\n{layers}\ncompile: {{optimizer: adam, loss: {loss}}}\n"
    return spec_from_text(text, base_dir=tmp_path)


def iris(tmp_path, extra: str = "", **kwargs):
    return experiment(tmp_path, f"  train: {DATA / 'iris.csv'}\n  target: species\n{extra}", **kwargs)


def test_fractions_are_of_the_whole_file_and_stratified(tmp_path):
    spec = iris(tmp_path, "  validation: 0.2\n  test: 0.1\n")
    prepared = prepare(spec, seed=0)
    assert (prepared.train.rows, prepared.validation.rows, prepared.test.rows) == (105, 30, 15)
    for split, per_class in ((prepared.train, 35), (prepared.validation, 10), (prepared.test, 5)):
        assert np.bincount(split.y).tolist() == [per_class] * 3
    assert prepared.preprocessing.class_names == ["setosa", "versicolor", "virginica"]
    assert prepared.train.y.dtype == np.int32 and prepared.train.x.dtype == np.float32


def test_splits_depend_on_the_seed_only(tmp_path):
    spec = iris(tmp_path, "  validation: 0.2\n")
    first, again, other = prepare(spec, 0), prepare(spec, 0), prepare(spec, 1)
    assert np.array_equal(first.validation.x, again.validation.x)
    assert not np.array_equal(first.validation.x, other.validation.x)


def test_normalisation_statistics_come_from_the_training_split(tmp_path):
    prepared = prepare(iris(tmp_path, "  validation: 0.5\n"), seed=0)
    assert np.allclose(prepared.preprocessing.mean, prepared.train.x.mean(axis=0), atol=1e-6)
    assert np.allclose(prepared.preprocessing.variance, prepared.train.x.var(axis=0), atol=1e-5)
    assert not np.allclose(prepared.preprocessing.mean, prepared.validation.x.mean(axis=0), atol=1e-3)


@pytest.mark.parametrize(
    ("loss", "encoding"),
    [
        ("sparse_categorical_crossentropy", "sparse"),
        ("SparseCategoricalCrossentropy", "sparse"),
        ("categorical_crossentropy", "onehot"),
        ("{CategoricalFocalCrossentropy: {}}", "onehot"),
        ("binary_crossentropy", "binary"),
        ("{BinaryFocalCrossentropy: {}}", "binary"),
        ("hinge", "binary"),
        ("categorical_hinge", "onehot"),
        ("mse", None),
        ("huber", None),
    ],
)
def test_the_loss_decides_the_target_encoding(tmp_path, loss, encoding):
    assert classification_encoding(iris(tmp_path, loss=loss)) == encoding


def test_one_hot_targets_for_categorical_losses(tmp_path):
    prepared = prepare(iris(tmp_path, loss="categorical_crossentropy"), seed=0)
    assert prepared.train.y.shape == (120, 3) and prepared.train.y.sum(axis=1).tolist() == [1.0] * 120


def test_binary_targets_are_0_1_with_the_class_names_kept(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x,label\n" + "".join(f"{i},{'yes' if i % 3 else 'no'}\n" for i in range(30)))
    spec = experiment(
        tmp_path,
        f"  train: {path}\n  target: label\n  validation: 0",
        loss="binary_crossentropy",
        layers="layers: [{Dense: {units: 1, activation: sigmoid}}]",
    )
    prepared = prepare(spec, seed=0)
    assert prepared.preprocessing.class_names == ["no", "yes"]
    assert prepared.train.y[:4, 0].tolist() == [0.0, 1.0, 1.0, 0.0]
    assert "target 'label': 2 classes encoded as 0/1 (no=0, yes=1)." in prepared.notes


def test_integer_class_labels_keep_their_values(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x,grade\n" + "".join(f"{i},{[3, 5, 9][i % 3]}\n" for i in range(30)))
    prepared = prepare(experiment(tmp_path, f"  train: {path}\n  target: grade\n  validation: 0"), seed=0)
    assert prepared.preprocessing.class_names == [3, 5, 9]
    assert prepared.train.y[:3].tolist() == [0, 1, 2]


def test_text_and_boolean_features_are_encoded_and_said(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text(
        "size,colour,shiny,y\n" + "".join(f"{i},{['red', 'blue'][i % 2]},{i % 4 == 0},{i % 3}\n" for i in range(30))
    )
    valid = tmp_path / "valid.csv"
    valid.write_text("size,colour,shiny,y\n1,green,True,0\n2,red,False,1\n3,blue,False,2\n")
    spec = experiment(tmp_path, f"  train: {train}\n  target: y\n  validation: {valid}")
    prepared = prepare(spec, seed=0)
    preprocessing = prepared.preprocessing
    assert preprocessing.categories == {"colour": ["blue", "red"]} and preprocessing.booleans == ["shiny"]
    assert preprocessing.input_names == ["size", "colour=blue", "colour=red", "shiny"]
    assert prepared.validation.x[:, 1:3].tolist() == [[0, 0], [0, 1], [1, 0]]  # 'green' was never seen: all zeros
    assert prepared.validation.x[:, 3].tolist() == [1, 0, 0]
    # One-hot columns pass through the normalisation unchanged.
    assert preprocessing.mean[1:3] == [0.0, 0.0] and preprocessing.variance[1:3] == [1.0, 1.0]
    notes = " | ".join(prepared.notes)
    assert "column 'colour': one-hot encoded, 2 categories (blue, red)." in notes
    assert "shiny: true/false read as 1/0" in notes
    assert (
        "valid.csv: column 'colour' has 1 row(s) with categories not seen in training (first: 'green' at row 1 (line 2)); encoded as all zeros."
        in notes
    )


def test_preprocessing_round_trips_through_json(tmp_path):
    preprocessing = prepare(iris(tmp_path), seed=0).preprocessing
    again = Preprocessing.from_json(json.loads(json.dumps(preprocessing.to_json())))
    assert again == preprocessing


def test_drop_and_features_choose_the_columns(tmp_path):
    spec = iris(tmp_path, "  drop: [sepal_width]\n")
    assert prepare(spec, 0).preprocessing.feature_columns == ["sepal_length", "petal_length", "petal_width"]
    spec = iris(tmp_path, "  features: [petal_width, petal_length]\n")
    assert prepare(spec, 0).preprocessing.feature_columns == ["petal_width", "petal_length"]


def test_multi_dimensional_input_takes_the_columns_in_order(tmp_path):
    spec = experiment(
        tmp_path,
        f"  train: {DATA / 'digits.csv'}\n  target: digit\n  normalize: false",
        layers="layers:\n  - Input: [8, 8, 1]\n  - Flatten\n  - Dense: {units: 10, activation: softmax}",
    )
    prepared = prepare(spec, 0)
    assert prepared.train.x.shape[1:] == (8, 8, 1)
    frame = read_table(DATA / "digits.csv")
    first_row = frame.drop(columns="digit").to_numpy("float32")
    assert any(np.array_equal(prepared.train.x[0].reshape(-1), row) for row in first_row)


def test_compressed_and_parquet_files_read_the_same(tmp_path):
    import pandas as pd

    frame = pd.read_csv(DATA / "iris.csv")
    frame.to_csv(tmp_path / "iris.csv.gz", index=False)
    frame.to_parquet(tmp_path / "iris.parquet")
    frame.to_csv(tmp_path / "iris.tsv", sep="\t", index=False)
    for name in ("iris.csv.gz", "iris.parquet", "iris.tsv"):
        assert read_table(tmp_path / name).equals(frame)


def test_a_validation_fraction_too_small_for_the_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"`data.validation: 0.001` of 150 rows is no rows"):
        prepare(iris(tmp_path, "  validation: 0.001\n"), 0)


def test_nullable_and_arrow_booleans_are_booleans(tmp_path):
    import pandas as pd

    n = 40
    frame = pd.DataFrame(
        {
            "x": range(n),
            "shiny": pd.array([True, False] * (n // 2), dtype="boolean"),
            "flag": pd.array([i % 3 == 0 for i in range(n)], dtype="bool[pyarrow]"),
        }
    )
    frame.to_parquet(tmp_path / "t.parquet")
    spec = experiment(
        tmp_path,
        f"  train: {tmp_path / 't.parquet'}\n  target: flag\n  validation: 0.25",
        loss="binary_crossentropy",
        layers="layers: [{Dense: {units: 1, activation: sigmoid}}]",
    )
    prepared = prepare(spec, 0)
    assert prepared.preprocessing.class_names == [False, True] and prepared.preprocessing.booleans == ["shiny"]
    assert prepared.train.y.sum() > 0 and set(prepared.train.x[:, 1].tolist()) == {0.0, 1.0}


def test_bytes_and_pandas_string_columns_keep_their_categories(tmp_path):
    import pandas as pd

    n = 40
    frame = pd.DataFrame(
        {
            "raw": [b"ab", b"cd"] * (n // 2),
            "label": pd.array(["yes", "no", "no", "yes"] * (n // 4), dtype="string[pyarrow]"),
            "y": [i % 3 for i in range(n)],
        }
    )
    frame.to_parquet(tmp_path / "t.parquet")
    prepared = prepare(experiment(tmp_path, f"  train: {tmp_path / 't.parquet'}\n  target: y\n  validation: 0.25"), 0)
    assert prepared.preprocessing.categories == {"raw": ["ab", "cd"], "label": ["no", "yes"]}
    assert prepared.train.x.sum(axis=1).tolist() == [2.0] * prepared.train.rows  # one hot in each of the two columns
    assert not any("not seen in training" in note for note in prepared.notes)


def test_only_empty_cells_and_nan_markers_are_missing(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x,country,y\n" + "".join(f"{i},{['NA', 'None', 'FR'][i % 3]},{i % 3}\n" for i in range(30)))
    prepared = prepare(experiment(tmp_path, f"  train: {path}\n  target: y\n  validation: 0"), 0)
    assert prepared.preprocessing.categories == {"country": ["FR", "NA", "None"]}  # Namibia is not a missing value


def test_the_test_split_does_not_move_when_validation_changes(tmp_path):
    small = prepare(iris(tmp_path, "  validation: 0.1\n  test: 0.2\n"), 0)
    large = prepare(iris(tmp_path, "  validation: 0.3\n  test: 0.2\n"), 0)
    assert np.array_equal(small.test.x, large.test.x) and small.test.rows == 30


def test_validation_and_test_from_files(tmp_path):
    import pandas as pd

    frame = pd.read_csv(DATA / "iris.csv")
    frame.iloc[::5].to_csv(tmp_path / "test.csv", index=False)
    frame.iloc[1::5].to_csv(tmp_path / "valid.csv", index=False)
    spec = iris(tmp_path, f"  validation: {tmp_path / 'valid.csv'}\n  test: {tmp_path / 'test.csv'}\n")
    prepared = prepare(spec, 0)
    assert (prepared.train.rows, prepared.validation.rows, prepared.test.rows) == (150, 30, 30)
    assert set(prepared.files) == {"train", "validation", "test"}
    assert prepared.validation.source == "valid.csv"


@pytest.mark.parametrize(
    ("layers", "loss", "encoding"),
    [
        ("[{Dense: {units: 3, activation: sigmoid}}]", "mse", "onehot"),  # the tutorial's sigmoid + mse style
        ("[{Dense: 3}, {Activation: softmax}, {Dropout: 0.1}]", "mean_absolute_error", "onehot"),
        ("[{Dense: {units: 1, activation: sigmoid}}]", "mse", "binary"),
        ("[{Dense: {units: 3}}]", "mse", None),  # a linear output: regression
        (
            "[{Dense: {units: 3, activation: softmax}}]",
            "sparse_categorical_crossentropy",
            "sparse",
        ),  # the loss decides first
    ],
)
def test_a_softmax_or_sigmoid_output_makes_label_targets_classes(tmp_path, layers, loss, encoding):
    from nnflow.preprocessing import target_encoding

    spec = iris(tmp_path, loss=loss, layers=f"layers: {layers}")
    assert target_encoding(spec, target_is_label=True) == encoding
    assert target_encoding(spec, target_is_label=False) == classification_encoding(spec)


def test_text_target_with_sigmoid_outputs_and_mse_trains_on_one_hot_rows(tmp_path):
    spec = iris(tmp_path, loss="mse", layers="layers: [{Dense: {units: 3, activation: sigmoid}}]")
    prepared = prepare(spec, 0)
    assert prepared.preprocessing.task == "classification" and prepared.preprocessing.target_encoding == "onehot"
    assert prepared.train.y.shape == (120, 3)


def test_a_long_stray_value_is_shown_short(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x,y\n" + "".join(f"{i},{i % 3}\n" for i in range(30)).replace("7,1", "w" * 5000 + ",1", 1))
    with pytest.raises(DataError) as error:
        prepare(experiment(tmp_path, f"  train: {path}\n  target: y\n  validation: 0"), 0)
    message = str(error.value)
    assert "row 8 (line 9), feature 'x': 'wwww" in message and "... (5,000 characters) is not a number" in message
    assert len(message) < len(str(path)) + 200


def test_rows_read_in_chunks_are_located_after_multi_line_cells(tmp_path):
    from nnflow.columns import row_label as _row_label
    from nnflow.data import iter_table

    path = tmp_path / "t.csv"
    rows = [f'{i},"{"two" + chr(10) + "lines" if i == 1 else "one"}"\n' for i in range(9)]
    path.write_text("x,note\n" + "".join(rows))
    chunks = list(iter_table(path, 3))
    assert [len(chunk) for chunk in chunks] == [3, 3, 3]
    assert _row_label(path, chunks[2]["x"], 1) == "row 8 (line 10)"
    assert _row_label(path, chunks[0]["x"], 0) == "row 1 (line 2)"


def test_unseen_categories_locate_their_first_row_once(tmp_path, monkeypatch):
    import pandas as pd

    from nnflow import feature_encoding as preprocessing  # UnseenCategories moved there with its row_label

    calls = []
    monkeypatch.setattr(
        preprocessing, "row_label", lambda path, series, position: calls.append(position) or f"row {position + 1}"
    )
    unseen = preprocessing.UnseenCategories()
    for start in (0, 3, 6):  # three chunks of one file, each with an unseen category
        series = pd.Series(["red", "green", "blue"], index=range(start, start + 3))
        unseen.add(tmp_path / "new.csv", "colour", series, np.array([False, True, False]))
    assert unseen.rows == 3 and len(calls) == 1
    assert unseen.notes() == [
        "new.csv: column 'colour' has 3 row(s) with categories not seen in training (first: 'green' at row 2); encoded as all zeros."
    ]
