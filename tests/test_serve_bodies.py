"""`nnflow serve`'s request reading and encoding, without a server or a model (no TensorFlow).

bodies.py reads the three forms strictly; encoding.py turns rows into the model's inputs as
`Preprocessing.features` does (checked against it on the same rows) and builds the answers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nnflow.feature_encoding import Preprocessing, UnseenCategories
from nnflow.serving.bodies import RequestError, Table, media_type, read_body
from nnflow.serving.encoding import RowEncoder

PREPROCESSING = Preprocessing(
    feature_columns=["size", "colour", "shiny"],
    categories={"colour": ["blue", "green", "red"]},
    booleans=["shiny"],
    target="kind",
    task="classification",
    target_encoding="sparse",
    class_names=["big", "small", "tiny"],
    input_shape=[5],
    normalize=False,
)
ROWS = [{"size": 1.5, "colour": "red", "shiny": True}, {"size": -2, "colour": "blue", "shiny": False, "id": "a7"}]


def refused(body: bytes | str, kind: str = "json", max_rows: int = 100) -> RequestError:
    with pytest.raises(RequestError) as caught:
        read_body(body.encode() if isinstance(body, str) else body, kind, max_rows)
    return caught.value


def encode_refused(table: Table) -> RequestError:
    with pytest.raises(RequestError) as caught:
        RowEncoder(PREPROCESSING).encode(table)
    return caught.value


def rows_table(rows) -> Table:
    return read_body(json.dumps({"rows": rows}).encode(), "json", 100)


# ---------------------------------------------------------------------------
# Reading bodies


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        ("application/json", "json"),
        ("application/json; charset=utf-8", "json"),
        ("application/vnd.api+json", "json"),
        ("text/csv", "csv"),
        ("text/csv; charset=utf-8", "csv"),
    ],
)
def test_content_types(header, kind):
    assert media_type(header) == kind


@pytest.mark.parametrize(
    "header", [None, "", "application/x-www-form-urlencoded", "application/xml", "text/csv; charset=latin-1"]
)
def test_other_content_types_are_415_naming_the_header_to_send(header):
    with pytest.raises(RequestError) as caught:
        media_type(header)
    assert caught.value.status == 415 and (
        "Content-Type: application/json" in caught.value.message or "UTF-8" in caught.value.message
    )


def test_the_three_forms_are_read_as_sent():
    assert read_body(json.dumps({"rows": ROWS}).encode(), "json", 10) == Table("rows", [], ROWS)
    table = read_body(b'{"columns": ["size", "colour"], "data": [[1, "red"], [2, "blue"]]}', "json", 10)
    assert table == Table("columns", ["size", "colour"], [[1, "red"], [2, "blue"]])
    table = read_body(b'\xef\xbb\xbfsize,colour\r\n1.5,red\r\n\r\n2,"blue, dark"\r\n', "csv", 10)
    assert table == Table("csv", ["size", "colour"], [["1.5", "red"], ["2", "blue, dark"]], [2, 4])


def test_csv_errors_name_the_line_a_row_starts_on_past_blank_lines_and_quoted_newlines():
    body = 'size,colour,shiny\n\n1,"red\nish",true\n\nx,red,true\n'
    error = encode_refused(read_body(body.encode(), "csv", 10))
    assert error.message.startswith("line 6, column 'size': 'x' is text") and error.row == 1
    error = refused("size,colour\n\n1,red,extra\n", "csv")
    assert error.message.startswith("line 3 has 3 fields") and error.row == 0


@pytest.mark.parametrize(
    ("body", "kind", "status", "code", "fragment"),
    [
        ("", "json", 400, "empty_body", "the body is empty"),
        ("  \n", "csv", 400, "empty_body", "the body is empty"),
        ('{"rows": [', "json", 400, "malformed_json", "not valid JSON"),
        ('{"rows": [{"size": NaN}]}', "json", 400, "malformed_json", "not valid JSON"),
        (b"\xff\xfe", "json", 400, "malformed_json", "not valid JSON"),
        (b"size\n\xff\n", "csv", 400, "malformed_csv", "not UTF-8"),
        ('size,colour\n1,"red\n', "csv", 400, "malformed_csv", "cannot be read"),
        ("size,colour\n1,red,extra\n", "csv", 400, "malformed_csv", "3 fields where the header has 2"),
        ("size,size\n1,2\n", "csv", 400, "malformed_csv", "names column 'size' twice"),
        ("size,\n1,2\n", "csv", 400, "malformed_csv", "empty column name"),
        ("[1, 2]", "json", 422, "bad_shape", "the body is a JSON array"),
        ('{"row": []}', "json", 422, "bad_shape", "unknown key(s) 'row'"),
        ('{"rows": [], "data": []}', "json", 422, "bad_shape", "the body has keys 'data', 'rows'"),
        ('{"rows": {"size": 1}}', "json", 422, "bad_shape", '"rows" is a JSON object'),
        ('{"rows": [{"size": 1}, [1]]}', "json", 422, "bad_shape", "rows[1] is a JSON array"),
        ('{"columns": ["a", 1], "data": []}', "json", 422, "bad_shape", "list of column names"),
        ('{"columns": ["a", "a"], "data": []}', "json", 422, "bad_shape", "names column 'a' twice"),
        ('{"columns": ["a"], "data": [[1], [1, 2]]}', "json", 422, "bad_shape", "data[1] is a list of 2 values"),
    ],
)
def test_unreadable_or_misshapen_bodies(body, kind, status, code, fragment):
    error = refused(body, kind)
    assert (error.status, error.code) == (status, code)
    assert fragment in error.message


def test_more_rows_than_max_rows_is_413():
    error = refused(json.dumps({"rows": [{"size": 1}] * 4}), max_rows=3)
    assert error.status == 413 and "4 rows" in error.message and "at most 3 (--max-rows)" in error.message
    assert read_body(json.dumps({"rows": [{"size": 1}] * 3}).encode(), "json", 3).records


# ---------------------------------------------------------------------------
# Encoding: as Preprocessing.features does


def test_rows_encode_as_the_preprocessing_does_for_a_file():
    x, notes = RowEncoder(PREPROCESSING).encode(rows_table(ROWS))
    frame = pd.DataFrame(ROWS)
    assert x.dtype == np.float32 and x.shape == (2, 5)
    np.testing.assert_array_equal(x, PREPROCESSING.features(frame, Path("rows.csv")))
    assert notes == []


def test_the_three_forms_encode_alike():
    encoder = RowEncoder(PREPROCESSING)
    by_rows, _ = encoder.encode(rows_table(ROWS))
    columns = ["id", "shiny", "colour", "size"]
    data = [[row.get(c) for c in columns] for row in ROWS]
    by_columns, _ = encoder.encode(Table("columns", columns, data))
    csv_body = "id,shiny,colour,size\n,True,red,1.5\na7,false,blue,-2\n"
    by_csv, _ = encoder.encode(read_body(csv_body.encode(), "csv", 10))
    np.testing.assert_array_equal(by_rows, by_columns)
    np.testing.assert_array_equal(by_rows, by_csv)


def test_an_unseen_category_is_zeros_with_predicts_note():
    rows = [*ROWS, {"size": 0, "colour": "purple", "shiny": True}, {"size": 0, "colour": "mauve", "shiny": True}]
    x, notes = RowEncoder(PREPROCESSING).encode(rows_table(rows))
    assert x[2, 1:4].tolist() == [0, 0, 0] and x[3, 1:4].tolist() == [0, 0, 0]
    unseen = UnseenCategories()
    PREPROCESSING.features(pd.DataFrame(rows), Path("request.parquet"), unseen)  # parquet: "row N", no line
    expected = unseen.notes()[0].replace("request.parquet", "request").replace("row 3", "rows[2]")
    assert notes == [expected]
    assert notes == [
        "request: column 'colour' has 2 row(s) with categories not seen in training (first: 'purple' at rows[2]); encoded as all zeros."
    ]


def test_category_values_are_keyed_like_training():
    preprocessing = Preprocessing(["code"], {"code": ["1", "2", "true"]}, [], "y", "regression", None, None, [3], False)
    x, notes = RowEncoder(preprocessing).encode(rows_table([{"code": 2.0}, {"code": 1}, {"code": True}, {"code": "2"}]))
    assert x.tolist() == [[0, 1, 0], [1, 0, 0], [0, 0, 1], [0, 1, 0]] and notes == []


@pytest.mark.parametrize(
    ("rows", "code", "row", "field", "fragment"),
    [
        ([ROWS[0], {"size": 1, "shiny": True}], "missing_feature", 1, "colour", "rows[1]: no feature 'colour'"),
        ([{"size": 1, "color": "red", "shiny": True}], "missing_feature", 0, "colour", "(did you mean 'color'?)"),
        (
            [ROWS[0], {"size": "1.5", "colour": "red", "shiny": True}],
            "not_a_number",
            1,
            "size",
            "send numbers without quotes",
        ),
        ([{"size": "big", "colour": "red", "shiny": True}], "not_a_number", 0, "size", "'big' is text, not a number."),
        ([{"size": [1], "colour": "red", "shiny": True}], "not_a_number", 0, "size", "[1] is not a number"),
        ([{"size": None, "colour": "red", "shiny": True}], "missing_value", 0, "size", "the value is missing"),
        ([{"size": 1, "colour": None, "shiny": True}], "missing_value", 0, "colour", "rows[0].colour"),
        ([{"size": 1, "colour": {"a": 1}, "shiny": True}], "not_a_category", 0, "colour", "is not a category"),
        ([{"size": 1, "colour": "red", "shiny": "yes"}], "not_a_number", 0, "shiny", "rows[0].shiny"),
        (
            [{"size": 1, "colour": "red", "shiny": True, "predicted_kind": "x"}],
            "output_column",
            0,
            "predicted_kind",
            "which the answer writes",
        ),
    ],
)
def test_bad_rows_are_422_naming_the_row_and_field(rows, code, row, field, fragment):
    error = encode_refused(rows_table(rows))
    assert (error.status, error.code, error.row, error.field) == (422, code, row, field)
    assert fragment in error.message
    assert error.to_json() == {"error": {"code": code, "message": error.message, "row": row, "field": field}}


@pytest.mark.parametrize(
    ("csv_text", "code", "row", "fragment"),
    [
        ("size,colour,shiny\n1,red,true\n,red,true\n", "missing_value", 1, "line 3, column 'size'"),
        ("size,colour,shiny\n1,red,true\nNaN,red,true\n", "missing_value", 1, "the value is missing"),
        ("size,colour,shiny\n1_000,red,true\n", "not_a_number", 0, "'1_000' is text"),
        ("size,colour,shiny\ninf,red,true\n", "not_a_number", 0, "line 2, column 'size'"),
        ("size,colour,shiny\n1e999,red,true\n", "not_a_number", 0, "line 2"),
        ("size,colour,shiny\n1,,true\n", "missing_value", 0, "column 'colour'"),
        ("size,colour\n1,red\n", "missing_feature", None, "no feature 'shiny'"),
    ],
)
def test_bad_csv_cells_are_422_naming_the_line(csv_text, code, row, fragment):
    error = encode_refused(read_body(csv_text.encode(), "csv", 10))
    assert (error.status, error.code, error.row) == (422, code, row)
    assert fragment in error.message


def test_csv_true_false_is_1_0_only_in_a_column_of_them_as_pandas_reads_it():
    x, _ = RowEncoder(PREPROCESSING).encode(
        read_body(b"size,colour,shiny\nTrue,red,true\nfalse,red,FALSE\n", "csv", 10)
    )
    assert x[:, 0].tolist() == [1, 0] and x[:, 4].tolist() == [1, 0]
    error = encode_refused(read_body(b"size,colour,shiny\n1.5,red,true\ntrue,red,true\n", "csv", 10))
    assert (error.code, error.row, error.field) == ("not_a_number", 1, "size")
    assert error.message == "line 3, column 'size': 'true' is text, not a number."


def test_a_columns_error_points_into_data():
    error = encode_refused(Table("columns", ["size", "colour", "shiny"], [[1, "red", True], [1, "red", "no"]]))
    assert error.message.startswith("data[1][2]: 'no' is text") and (error.row, error.field) == (1, "shiny")


# ---------------------------------------------------------------------------
# Answers


def scores_for(n: int) -> np.ndarray:
    return np.tile(np.array([[0.1, 0.7, 0.2]], dtype="float32"), (n, 1))


def test_rows_answer_carries_other_fields_then_predict_columns():
    document, kind = RowEncoder(PREPROCESSING).answer(rows_table(ROWS), scores_for(2), ["a note"])
    assert kind == "application/json" and document["notes"] == ["a note"]
    first, second = document["predictions"]
    assert list(first) == ["predicted_kind", "probability_big", "probability_small", "probability_tiny"]
    assert list(second) == ["id", "predicted_kind", "probability_big", "probability_small", "probability_tiny"]
    assert second["id"] == "a7" and second["predicted_kind"] == "small"
    assert second["probability_small"] == pytest.approx(0.7, abs=1e-6)


def test_columns_and_csv_answers_keep_their_form():
    table = Table("columns", ["id", "size", "colour", "shiny"], [["=cmd()", 1, "red", True]])
    document, _ = RowEncoder(PREPROCESSING).answer(table, scores_for(1), [])
    assert document["columns"] == ["id", "predicted_kind", "probability_big", "probability_small", "probability_tiny"]
    assert document["data"][0][:2] == ["=cmd()", "small"]
    csv_table = read_body(b"id,size,colour,shiny\n=cmd(),1,red,true\n-3,1,red,true\n", "csv", 10)
    text, kind = RowEncoder(PREPROCESSING).answer(csv_table, scores_for(2), [])
    assert kind.startswith("text/csv")
    lines = text.splitlines()
    assert lines[0] == "id,predicted_kind,probability_big,probability_small,probability_tiny"
    assert lines[1] == "'=cmd(),small,0.1,0.7,0.2"  # formulas escaped; float32 written short, as predict does
    assert lines[2].startswith("-3,small,")  # a number is not a formula


def test_one_sigmoid_unit_answers_both_classes_and_regression_one_column():
    binary = Preprocessing(["x"], {}, [], "y", "classification", "binary", [0, 1], [1], False)
    document, _ = RowEncoder(binary).answer(rows_table([{"x": 1}]), np.array([[0.8]], dtype="float32"), [])
    assert document["predictions"] == [
        {"predicted_y": 1, "probability_0": pytest.approx(0.2, abs=1e-6), "probability_1": pytest.approx(0.8, abs=1e-6)}
    ]
    regression = Preprocessing(["x"], {}, [], "y", "regression", None, None, [1], False)
    encoder = RowEncoder(regression)
    document, _ = encoder.answer(rows_table([{"x": 1}]), np.array([[2.5]], dtype="float32"), [])
    assert document["predictions"] == [{"predicted_y": 2.5}]
    no_rows = np.zeros((0, 1), dtype="float32")  # CompiledModel.no_rows() of a one-unit model
    assert encoder.answer(rows_table([]), no_rows, [])[0] == {"predictions": [], "notes": []}


# ---------------------------------------------------------------------------
# Edges found in review: each one as predict reads a file, or a clear refusal


def test_a_body_of_only_a_byte_order_mark_or_blank_lines_is_empty():
    assert refused(b"\xef\xbb\xbf", "csv").code == "empty_body"
    assert refused(b"\xef\xbb\xbf\n \n\t\n", "csv").code == "empty_body"


def test_lines_of_spaces_are_blank_lines_as_pandas_skips_them():
    table = read_body(b"size,colour,shiny\n1,red,true\n   \n2,blue,false\n", "csv", 10)
    assert table.records == [["1", "red", "true"], ["2", "blue", "false"]] and table.lines == [2, 4]


def test_too_many_rows_is_said_before_the_rows_are_read():
    error = refused("size\n" + "1\n" * 50, "csv", max_rows=3)
    assert (error.status, error.message.split(";")[0]) == (413, "over 3 rows in one request")
    error = refused(json.dumps({"rows": [None] * 5}), max_rows=3)  # counted before each row is checked
    assert error.status == 413 and error.message.startswith("5 rows in one request")
    assert refused('{"columns": ["a"], "data": [1, 2, 3, 4]}', max_rows=3).status == 413


@pytest.mark.parametrize("cell", ["٣", "１", "\xa00.2", "0.2\u2003"])
def test_numbers_pandas_would_not_read_are_refused(cell):
    error = encode_refused(read_body(f"size,colour,shiny\n{cell},red,true\n".encode(), "csv", 10))
    assert (error.code, error.field) == ("not_a_number", "size")


def test_a_value_past_float32s_range_is_422_not_nan_probabilities():
    error = encode_refused(rows_table([{**ROWS[0], "size": 3.5e38}]))
    assert (error.code, error.row, error.field) == ("not_a_number", 0, "size")
    assert "beyond float32's range" in error.message
    with pytest.raises(Exception, match="beyond float32's range"):
        PREPROCESSING.features(pd.DataFrame([{**ROWS[0], "size": 3.5e38}]), Path("rows.parquet"))  # predict too
    error = encode_refused(read_body(b"size,colour,shiny\ninf,red,true\n", "csv", 10))
    assert error.message == "line 2, column 'size': 'inf' is an infinite value; every feature needs a finite number."


def test_an_empty_object_says_so():
    assert "the body has no keys" in refused("{}").message


def test_formula_escaping_treats_numbers_as_pandas_does():
    csv_table = read_body(b"id,size,colour,shiny\n-1_0,1,red,true\n", "csv", 10)
    text, _ = RowEncoder(PREPROCESSING).answer(csv_table, scores_for(1), [])
    assert text.splitlines()[1].startswith("'-1_0,")
