"""`POST /predict` bodies read strictly into a `Table`: JSON `rows`, JSON `columns`/`data`, or CSV.

orjson and the standard library only. Every problem is a `RequestError` carrying the HTTP
status, the row (counted from 0 in the request) and the field, so the service answers with
a JSON error that names them and goes on serving.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

import orjson

FORMS = ("rows", "columns", "csv")
JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv", "application/csv", "text/plain")
SHAPES = 'a JSON object {"rows": [{feature: value, ...}, ...]} or {"columns": [...], "data": [[...], ...]}'


class RequestError(Exception):
    """A request the service refuses: `status` 400/413/415/422, and where the problem is."""

    def __init__(self, status: int, code: str, message: str, *, row: int | None = None, field: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.row, self.field = status, code, message, row, field

    def to_json(self) -> dict:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.row is not None:
            error["row"] = self.row
        if self.field is not None:
            error["field"] = self.field
        return {"error": error}


@dataclass
class Table:
    """The request's rows, in the form they came in, which is also the form of the answer.

    `rows` form: `records` is the list of objects and `columns` is empty (each row has its keys).
    `columns` and `csv` forms: `columns` names the cells of each list in `records`.
    """

    form: str
    columns: list[str]
    records: list  # list[dict] for "rows", list[list] otherwise
    lines: list[int] | None = None  # csv: the line each record starts on (the header is line 1)

    def __len__(self) -> int:
        return len(self.records)

    def where(self, row: int, field: str | None = None) -> str:
        """`rows[3].petal_width`, `data[3][1]` or `line 5`: how a message points at a cell."""
        if self.form == "rows":
            return f"rows[{row}]" + (f".{field}" if field is not None else "")
        if self.form == "columns":
            return f"data[{row}]" + (f"[{self.columns.index(field)}]" if field in self.columns else "")
        line = self.lines[row] if self.lines is not None else row + 2
        return f"line {line}" + (f", column {field!r}" if field is not None else "")


def media_type(content_type: str | None) -> str:
    """`json` or `csv` from a Content-Type header; 415 for anything else."""
    kind, _, parameters = (content_type or "").partition(";")
    kind = kind.strip().lower()
    charset = next(
        (
            v.strip(' "').lower()
            for k, _, v in (p.partition("=") for p in parameters.split(";"))
            if k.strip().lower() == "charset"
        ),
        "utf-8",
    )
    if charset not in ("utf-8", "utf8"):
        raise RequestError(415, "unsupported_media_type", f"charset={charset}: send the body as UTF-8 (charset=utf-8).")
    if kind in JSON_TYPES or kind.endswith("+json"):
        return "json"
    if kind in CSV_TYPES:
        return "csv"
    shown = f"Content-Type {kind!r}" if kind else "no Content-Type"
    raise RequestError(
        415,
        "unsupported_media_type",
        f"{shown}: send JSON with 'Content-Type: application/json' or CSV with 'Content-Type: text/csv'.",
    )


def read_body(body: bytes, kind: str, max_rows: int) -> Table:
    """The rows of a request body of `kind` (`json` or `csv`), checked for shape and count."""
    if not body.strip():
        raise _empty()
    return _read_json(body, max_rows) if kind == "json" else _read_csv(body, max_rows)


def _empty() -> RequestError:
    return RequestError(400, "empty_body", f"the body is empty; send {SHAPES}, or CSV with a header line.")


def _check_count(rows: int, max_rows: int, at_least: bool = False) -> None:
    """413 before any row is looked at: a refused request costs little."""
    if rows > max_rows:
        raise RequestError(
            413,
            "too_many_rows",
            f"{'over ' if at_least else ''}{max_rows if at_least else rows:,} rows in one request; this service takes "
            f"at most {max_rows:,} (--max-rows). Split the rows over several requests.",
        )


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)  # strict JSON: NaN, Infinity and numbers past float64 are refused
    except orjson.JSONDecodeError as error:
        raise RequestError(400, "malformed_json", f"the body is not valid JSON: {error}.") from None


def _read_json(body: bytes, max_rows: int) -> Table:
    document = _loads(body)
    if not isinstance(document, dict):
        raise RequestError(422, "bad_shape", f"the body is a JSON {_json_type(document)}; send {SHAPES}.")
    keys = set(document)
    if keys == {"rows"}:
        return _rows_form(document["rows"], max_rows)
    if keys == {"columns", "data"}:
        return _columns_form(document["columns"], document["data"], max_rows)
    unknown = sorted(keys - {"rows", "columns", "data"})
    if unknown:
        said = f"unknown key(s) {', '.join(map(repr, unknown))}"
    else:
        said = f"keys {', '.join(map(repr, sorted(keys)))}" if keys else "no keys"
    raise RequestError(422, "bad_shape", f"the body has {said}; send {SHAPES}.", field=unknown[0] if unknown else None)


def _rows_form(rows: Any, max_rows: int) -> Table:
    if not isinstance(rows, list):
        raise RequestError(
            422, "bad_shape", f'"rows" is a JSON {_json_type(rows)}; it must be a list of objects.', field="rows"
        )
    _check_count(len(rows), max_rows)
    for index, row in enumerate(rows):
        if type(row) is not dict:
            raise RequestError(
                422,
                "bad_shape",
                f"rows[{index}] is a JSON {_json_type(row)}; each row is an object {{feature: value, ...}}.",
                row=index,
            )
    return Table("rows", [], rows)


def _columns_form(columns: Any, data: Any, max_rows: int) -> Table:
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise RequestError(422, "bad_shape", '"columns" must be a list of column names (strings).', field="columns")
    _check_unique(columns, "columns")
    if not isinstance(data, list):
        raise RequestError(
            422, "bad_shape", f'"data" is a JSON {_json_type(data)}; it must be a list of rows (lists).', field="data"
        )
    _check_count(len(data), max_rows)
    width = len(columns)
    for index, row in enumerate(data):
        if type(row) is not list or len(row) != width:
            what = f"a list of {len(row)} values" if type(row) is list else f"a JSON {_json_type(row)}"
            raise RequestError(
                422,
                "bad_shape",
                f"data[{index}] is {what}; each row is a list of {width} values, one per column.",
                row=index,
            )
    return Table("columns", columns, data)


def _read_csv(body: bytes, max_rows: int) -> Table:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise RequestError(400, "malformed_csv", f"the CSV body is not UTF-8 text (byte {error.start}).") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records, starts, line = [], [], 0
    try:
        for record in reader:
            if record and (len(record) > 1 or record[0].strip()):  # blank lines are skipped, as pandas does
                records.append(record)
                starts.append(line + 1)
                _check_count(len(records) - 1, max_rows, at_least=True)  # stop reading at the first row too many
            line = reader.line_num
    except csv.Error as error:
        raise RequestError(
            400, "malformed_csv", f"the CSV body cannot be read (line {reader.line_num}): {error}."
        ) from None
    if not records:  # a byte-order mark, blank lines
        raise _empty()
    header, records, starts = records[0], records[1:], starts[1:]
    if any(not name for name in header):
        raise RequestError(400, "malformed_csv", "line 1 (the header) has an empty column name.")
    _check_unique(header, "the header", status=400)
    for index, record in enumerate(records):
        if len(record) != len(header):
            raise RequestError(
                400,
                "malformed_csv",
                f"line {starts[index]} has {len(record)} fields where the header has {len(header)}.",
                row=index,
            )
    return Table("csv", header, records, starts)


def _check_unique(names: list[str], what: str, status: int = 422) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            code = "malformed_csv" if status == 400 else "bad_shape"
            raise RequestError(status, code, f"{what} names column {name!r} twice.", field=name)
        seen.add(name)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )
