"""A request's rows to model inputs, and model outputs to the answer, exactly as `nnflow predict` does.

`RowEncoder` is `Preprocessing.features` without pandas: per request, pandas would cost more
than the model. It reads the same values the same way (numbers, true/false as 1/0, categories
by their key, unseen categories as all zeros with predict's note) and refuses the same ones
(missing values, text in a numeric feature, infinities), naming the row and the field.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

from ..catalog import close_matches
from ..columns import category_key, shown_value
from ..data import MISSING_MARKERS
from ..feature_encoding import Preprocessing, beyond_float32, unseen_note
from ..scoring import FORMULA_STARTS, PredictionColumns, class_ids
from .bodies import RequestError, Table

NUMBER_TYPES = {int, float}
CSV_TRUE, CSV_FALSE = {"True", "TRUE", "true"}, {"False", "FALSE", "false"}  # what pandas reads as booleans
CSV_BOOLEANS = CSV_TRUE | CSV_FALSE
CSV_MISSING = set(MISSING_MARKERS)
SOURCE = "request"  # the file name in predict's notes


class RowEncoder:
    """Encodes `Table`s for one run's model and builds the answers in the request's own form."""

    def __init__(self, preprocessing: Preprocessing):
        self.preprocessing = preprocessing
        self.features = list(preprocessing.feature_columns)
        self.feature_set = set(self.features)
        self.outputs = PredictionColumns.of(preprocessing)
        self.output_set = set(self.outputs.names)
        self.vocabularies = {
            column: {value: code for code, value in enumerate(vocabulary)}
            for column, vocabulary in preprocessing.categories.items()
        }
        self.class_names = np.asarray(preprocessing.class_names) if preprocessing.class_names is not None else None
        self.shape = tuple(preprocessing.input_shape)

    # -- requests to inputs ---------------------------------------------------

    def encode(self, table: Table) -> tuple[np.ndarray, list[str]]:
        """The model's inputs for `table`, shaped `(rows, *input_shape)`, and the notes on them."""
        self._check_columns(table)
        blocks, notes = [], []
        for name in self.features:
            values = self._values(table, name)
            if name in self.vocabularies:
                block, note = self._categories(table, name, values)
                blocks.append(block)
                if note:
                    notes.append(note)
            else:
                blocks.append(self._numbers(table, name, values)[:, None])
        matrix = np.concatenate(blocks, axis=1) if len(blocks) > 1 else blocks[0]
        return matrix.reshape((len(table), *self.shape)), notes

    def _check_columns(self, table: Table) -> None:
        if table.form != "rows":
            present = set(table.columns)
            missing = [name for name in self.features if name not in present]
            if missing:
                raise self._missing(missing[0], table.columns, None, "the columns")
            keys = table.columns
        else:
            keys = [key for row in table.records if len(row) > len(self.features) for key in row]
        clash = next((key for key in keys if key in self.output_set), None)
        if clash is not None:
            row = next((i for i, r in enumerate(table.records) if clash in r), None) if table.form == "rows" else None
            raise RequestError(
                422,
                "output_column",
                f"the input has a field {clash!r}, which the answer writes; rename or drop it.",
                row=row,
                field=clash,
            )

    def _values(self, table: Table, name: str) -> list:
        if table.form == "rows":
            try:
                return [row[name] for row in table.records]
            except KeyError:
                index = next(i for i, row in enumerate(table.records) if name not in row)
                raise self._missing(name, list(table.records[index]), index, table.where(index)) from None
        position = table.columns.index(name)
        return [record[position] for record in table.records]

    def _missing(self, name: str, have: list[str], row: int | None, where: str) -> RequestError:
        spare = [key for key in have if key not in self.feature_set]
        matches = close_matches(name, spare)
        hint = f" (did you mean {matches[0]!r}?)" if matches else ""
        return RequestError(
            422,
            "missing_feature",
            f"{where}: no feature {name!r}{hint}. The model needs {', '.join(self.features)}.",
            row=row,
            field=name,
        )

    def _numbers(self, table: Table, name: str, values: list) -> np.ndarray:
        if set(map(type, values)) <= NUMBER_TYPES:
            numbers = np.asarray(values, dtype="float64")
        else:
            read: Callable[[Any], float | str]
            if table.form == "csv":  # true/false read as 1/0 only in a column of them, as pandas reads a file
                words = all(v in CSV_BOOLEANS or v in CSV_MISSING for v in values)
                read = _csv_number if words else _csv_strict_number
            else:
                read = _json_number
            numbers = np.empty(len(values), dtype="float64")
            for index, value in enumerate(values):
                number = read(value)
                if isinstance(number, str):
                    problem = _problem(number, value, json=table.form != "csv")
                    code = "not_a_number" if number == "not_finite" else number
                    raise RequestError(422, code, f"{table.where(index, name)}: {problem}", row=index, field=name)
                numbers[index] = number
        with np.errstate(over="ignore"):
            inputs = numbers.astype("float32")
        if len(inputs) and not np.isfinite(inputs).all():  # past float32's range: the model would see inf
            index = int(np.flatnonzero(~np.isfinite(inputs))[0])
            raise RequestError(
                422,
                "not_a_number",
                f"{table.where(index, name)}: {beyond_float32(values[index])}.",
                row=index,
                field=name,
            )
        return inputs

    def _categories(self, table: Table, name: str, values: list) -> tuple[np.ndarray, str | None]:
        vocabulary = self.vocabularies[name]
        block = np.zeros((len(values), len(vocabulary)), dtype="float32")
        unseen, first = 0, -1
        for index, value in enumerate(values):
            key = _category(value, table.form == "csv")
            if key is None:
                problem = "missing_value" if value is None or isinstance(value, str) else "not_a_category"
                raise RequestError(
                    422, problem, f"{table.where(index, name)}: {_problem(problem, value)}", row=index, field=name
                )
            code = vocabulary.get(key)
            if code is None:
                unseen += 1
                first = index if first < 0 else first
            else:
                block[index, code] = 1.0
        if not unseen:
            return block, None
        return block, unseen_note(SOURCE, name, unseen, shown_value(values[first]), table.where(first))

    # -- outputs to answers ---------------------------------------------------

    def predictions(self, scores: np.ndarray) -> tuple[list, list[list[float]] | None]:
        """(`predicted_<target>` per row, `probability_<class>` rows or None), as Python values.

        Each float is float32's shortest form, as predict writes it (0.9999993, not 0.9999992847442627).
        """
        if self.class_names is None:
            return _short_floats(scores[:, 0]), None
        predicted = self.class_names[class_ids(self.preprocessing, scores)].tolist()
        probabilities = np.concatenate([1.0 - scores, scores], axis=1) if scores.shape[1] == 1 else scores
        return predicted, _short_floats(probabilities)

    def answer(self, table: Table, scores: np.ndarray, notes: list[str]) -> tuple[Any, str]:
        """The answer in the request's form: (a JSON-able document, or CSV text; its media type)."""
        predicted, probabilities = self.predictions(scores)
        outputs = (
            [[value, *row] for value, row in zip(predicted, probabilities)]
            if probabilities is not None
            else [[value] for value in predicted]
        )
        if table.form == "rows":
            width, features, output_names = len(self.features), self.feature_set, self.outputs.names
            rows = []
            for row, values in zip(table.records, outputs):
                out = {k: v for k, v in row.items() if k not in features} if len(row) > width else {}
                out.update(zip(output_names, values))
                rows.append(out)
            return {"predictions": rows, "notes": notes}, "application/json"
        keep = [i for i, column in enumerate(table.columns) if column not in self.feature_set]
        columns = [table.columns[i] for i in keep] + self.outputs.names
        data = [[record[i] for i in keep] + values for record, values in zip(table.records, outputs)]
        if table.form == "columns":
            return {"columns": columns, "data": data, "notes": notes}, "application/json"
        return _csv_text(columns, data), "text/csv; charset=utf-8"


def _short_floats(values: np.ndarray) -> list:
    """A float32 array as nested lists of the floats its shortest decimal forms name.

    orjson writes float32 that way in C, and reads the text back: the values then print the same
    in JSON and CSV, at a fraction of the cost of converting each number in Python.
    """
    return orjson.loads(orjson.dumps(np.ascontiguousarray(values), option=orjson.OPT_SERIALIZE_NUMPY))


def _json_number(value: Any) -> float | str:
    """A JSON value of a numeric feature as a float, or the code of its problem."""
    if type(value) in NUMBER_TYPES or type(value) is bool:
        return float(value)
    if value is None:
        return "missing_value"
    return "not_a_number"


def _csv_number(text: str) -> float | str:
    """A CSV cell of a numeric feature as pandas reads it, or the code of its problem."""
    if text in CSV_MISSING:
        return "missing_value"
    if text in CSV_TRUE or text in CSV_FALSE:
        return 1.0 if text in CSV_TRUE else 0.0
    if not _number_text(text):
        return "not_a_number"
    number = float(text)
    return number if math.isfinite(number) else "not_finite"


def _number_text(text: str) -> bool:
    """Whether pandas would read `text` as a number: ASCII only (Python's float() takes `١` and
    `1_000`, pandas does not), and float() takes it."""
    if not text.isascii() or "_" in text:
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


def _csv_strict_number(text: str) -> float | str:
    """A CSV cell of a numeric feature in a column that is not all true/false: words are not numbers."""
    return "not_a_number" if text in CSV_BOOLEANS else _csv_number(text)


def _category(value: Any, from_csv: bool) -> str | None:
    """The vocabulary key of a category value, None when it is missing or not a category."""
    if from_csv:
        return None if value in CSV_MISSING else value
    if type(value) is str:
        return value
    if value is None or type(value) in (list, dict):
        return None
    return category_key(value)


def _problem(code: str, value: Any, json: bool = True) -> str:
    if code == "missing_value":
        return "the value is missing; every feature needs a value."
    if code == "not_finite":
        return f"{shown_value(value)} is an infinite value; every feature needs a finite number."
    if code == "not_a_category":
        return f"{shown_value(value)} is not a category (a string, number or boolean)."
    if isinstance(value, str):
        quoted = json and _number_text(value)
        return f"{shown_value(value)} is text, not a number" + ("; send numbers without quotes." if quoted else ".")
    return f"{shown_value(value)} is not a number."


def _csv_text(columns: list[str], data: list[list]) -> str:
    """CSV as predict writes it: text a spreadsheet would run as a formula gets a leading `'`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([_escaped(column) for column in columns])
    writer.writerows([_escaped(cell) if type(cell) is str else cell for cell in row] for row in data)
    return buffer.getvalue()


def _escaped(text: str) -> str:
    if not text.startswith(FORMULA_STARTS) or _number_text(text):
        return text
    return "'" + text
