"""Data files before pandas: their format, their column names, and the `data:` section against them.

Standard library only (pyarrow for a Parquet schema, imported only then): `nnflow check`
reads the data's headers with this module, without TensorFlow, pandas or numpy, and
`data.py` opens and reads headers through it too, so both say the same thing.

- `read_header` reads a table's column names: a CSV's first record (quoted cells may span
  lines), with a bounded read; a Parquet file's schema and row count.
- `check_data` checks the target, feature and drop columns of a `data:` section against
  the headers of its files, with the words `nnflow train` uses.

Opening, decompressing and reading files as text is `table_files.py`'s.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .catalog import close_matches
from .errors import DataError
from .spec import DataSpec
from .table_files import (  # noqa: F401  (re-exported: data.py and the tests know them from here)
    CELL_LIMIT,
    COMPRESSION_SUFFIXES,
    blank_line,
    check_text,
    damaged_archive_errors,
    existing_table,
    one_line,
    open_table,
    row_line,
    table_format,
    undecodable,
)

HEADER_LIMIT = 16 * 1024 * 1024  # characters a header record may take (100,000 names of 160 characters fit)


# ---------------------------------------------------------------------------
# Headers


@dataclass(frozen=True)
class TableHeader:
    """What a data file says about itself without its rows being read."""

    path: Path
    format: str  # csv | tsv | parquet
    columns: tuple[str, ...]
    types: dict[str, str] | None = None  # Parquet: column -> Arrow type (as text)
    refused: dict[str, tuple[str, str]] | None = None  # Parquet: column -> (kind, type) nnflow cannot use

    def to_json(self) -> dict:
        return {"path": str(self.path), "format": self.format, "columns": list(self.columns)}


def read_header(path: Path) -> TableHeader:
    """The column names of a data file (and a Parquet file's types); DataError for what `train` refuses too.

    A CSV/TSV's first record is read with the csv module (bounded: at most HEADER_LIMIT
    characters); the file must then hold at least one row. A Parquet file's schema is read.
    """
    path = Path(path)
    kind = existing_table(path)
    if kind == "parquet":
        return _parquet_header(path)
    return TableHeader(path, kind, tuple(csv_header(path, kind)))


def csv_header(path: Path, kind: str) -> list[str]:
    """The header of a CSV/TSV file as pandas names its columns (an empty name is `Unnamed: N`)."""
    separator = "\t" if kind == "tsv" else ","
    check_text(path)
    with open_table(path) as stream, io.TextIOWrapper(stream, encoding="utf-8-sig", newline="") as text:
        lines = _HeaderLines(path, text)
        reader = csv.reader(lines, delimiter=separator)
        start = 1  # the line the header starts on (blank lines before it are skipped)
        try:
            header = None
            for record in reader:
                if not _blank(record, separator, lines.last):
                    header = record
                    break
                start = reader.line_num + 1
            if header is None:
                raise DataError(f"{path}: the file is empty; expected a header row and data rows.")
            for position, name in enumerate(header):
                if len(name) > CELL_LIMIT:
                    raise DataError(
                        _long_header_cell(path, start, f"column {position + 1}'s name holds {len(name):,} characters")
                    )
            if not _has_rows(lines, separator):
                if reader.line_num > start and any("\n" in name or "\r" in name for name in header):
                    raise DataError(
                        f"{path}: has a header but no data rows (the header runs from line {start} to the end of the file, "
                        f"line {reader.line_num}: is a quote left open?)."
                    )
                raise DataError(f"{path}: has a header but no data rows.")
        except DataError:
            raise
        except csv.Error as error:
            if "field larger than field limit" in str(error):
                raise DataError(
                    _long_header_cell(
                        path,
                        start,
                        f"a cell holds more than {CELL_LIMIT:,} characters"
                        + (f" (it runs on to line {reader.line_num})" if reader.line_num > start else ""),
                    )
                ) from None
            raise DataError(
                f"{path}: not a well-formed {kind.upper()} header (line {reader.line_num}): {one_line(error)}."
            ) from None
        except UnicodeDecodeError as error:
            raise DataError(f"{path}: not UTF-8 text ({undecodable(path, error)}); save it as UTF-8.") from None
        except damaged_archive_errors() as error:  # part-way through the archive
            raise DataError(f"{path}: cannot be decompressed ({one_line(error)}).") from None
    names = [name if name != "" else f"Unnamed: {position}" for position, name in enumerate(header)]
    seen = set()
    for name in names:
        if name in seen:
            raise DataError(f"{path}: the header names column {name!r} twice; give each column its own name.")
        seen.add(name)
    return names


def _long_header_cell(path: Path, line: int, what: str) -> str:
    return (
        f"{path}: the header (line {line}): {what}; a header cell may hold at most {CELL_LIMIT:,}. "
        "Is a quote left open? Otherwise shorten the column names."
    )


class _HeaderLines:
    """The text's lines, each whole, for csv.reader; at most HEADER_LIMIT characters in all."""

    def __init__(self, path: Path, text: io.TextIOBase):
        self.path = path
        self.text = text
        self.used = 0
        self.last = ""

    def __iter__(self):
        return self

    def __next__(self) -> str:
        pieces = []
        while True:
            piece = self.text.readline(1 << 20)
            self.used += len(piece)
            if self.used > HEADER_LIMIT:
                raise DataError(
                    f"{self.path}: no header record in its first {HEADER_LIMIT:,} characters: is a quote left open, "
                    "or is it not a table?"
                )
            if not piece:
                break
            pieces.append(piece)
            if piece.endswith(("\n", "\r")):
                break
        if not pieces:
            raise StopIteration
        self.last = "".join(pieces)
        return self.last


def _blank(record: list[str], separator: str, line: str) -> bool:
    """A record that readers skip: an empty line, or one of spaces and tabs (not the separator)."""
    return not record or (len(record) == 1 and blank_line(line, separator))


def _has_rows(lines: _HeaderLines, separator: str) -> bool:
    """Whether a line that is not blank follows (a long file is taken to have rows)."""
    try:
        for line in lines:
            if not blank_line(line, separator):
                return True
    except DataError:  # past the reading limit: something is there
        return True
    return False


def _parquet_header(path: Path) -> TableHeader:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading Parquet files needs the pyarrow package (pip install pyarrow).") from None
    with open_table(path, decompress=False) as stream:
        try:
            parquet = pq.ParquetFile(stream)
            schema = parquet.schema_arrow
            rows = parquet.metadata.num_rows
        except Exception as error:  # pyarrow's ArrowInvalid/OSError family
            raise DataError(f"{path}: not a readable Parquet file ({one_line(error)}).") from None
    index_columns = set()
    try:  # pandas keeps a saved index as a column; reading the file makes it the index again
        pandas = json.loads((schema.metadata or {}).get(b"pandas", b"{}"))
        index_columns = {name for name in pandas.get("index_columns", []) if isinstance(name, str)}
    except (ValueError, AttributeError):
        pass
    fields = [field for field in schema if field.name not in index_columns]
    names = [str(field.name) for field in fields]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise DataError(
            f"{path}: names column(s) {', '.join(map(repr, duplicated))} twice; give each column its own name."
        )
    if rows == 0:
        raise DataError(f"{path}: has no rows.")
    refused = {}
    for field in fields:
        kind = arrow_kind(field.type)
        if kind:
            refused[str(field.name)] = (kind, str(field.type))
    return TableHeader(path, "parquet", tuple(names), {str(f.name): str(f.type) for f in fields}, refused)


def arrow_kind(arrow_type) -> str | None:
    """`dates` or `nested` for the Arrow types nnflow does not turn into numbers; None for the others."""
    import pyarrow.types as types

    if types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    if types.is_temporal(arrow_type) or types.is_interval(arrow_type):
        return "dates"
    if types.is_nested(arrow_type):
        return "nested"
    return None


# ---------------------------------------------------------------------------
# Messages shared with data.py


_KINDS = {
    "dates": ("holds dates or times ({shown})", "Convert them (day of year, hours since start, ...)"),
    "nested": (
        "holds lists, structs or maps ({shown}), not one value per cell",
        "Spread them over columns of their own (one number or word per cell)",
    ),
    "complex": ("holds complex numbers", "Convert them"),
}


def kind_message(path: Path, role: str, column: str, kind: str, shown: str = "") -> str:
    """Why a column of dates, nested values or complex numbers cannot be a model's input or target."""
    what, how = _KINDS[kind]
    if kind == "nested" and role == "target":
        how = "Give the target one class name or number per row"
    other = "choose another target" if role == "target" else "list the column under `data.drop`"
    return (
        f"{path}: {role} {column!r} {what.format(shown=shown)}; nnflow does not turn them into numbers for you. "
        f"{how}, or {other}."
    )


def feature_columns(data: DataSpec, columns: Sequence[str], path: Path) -> list[str]:
    """The input columns: `features`, or every column but the target and `drop`."""
    wanted = [data.target, *(data.features or ()), *data.drop]
    missing = [c for c in dict.fromkeys(wanted) if c not in columns]
    if missing:
        raise DataError(f"{path}: {missing_message(missing, columns)}")
    if data.features is not None:
        return list(data.features)
    features = [c for c in columns if c != data.target and c not in data.drop]
    if not features:
        raise DataError(f"{path}: no feature columns are left after removing the target {data.target!r} and `drop`.")
    return features


def missing_message(missing: Sequence[str], columns: Sequence[str]) -> str:
    columns = list(columns)

    def one(column):
        matches = close_matches(column, columns)
        return f"{column!r}" + (f" (did you mean {matches[0]!r}?)" if matches else "")

    noun = "column" if len(missing) == 1 else "columns"
    shown = ", ".join(columns[:30]) + (f", ... ({len(columns)} in all)" if len(columns) > 30 else "")
    return f"no {noun} {', '.join(one(c) for c in missing)}. The file has: {shown}."


# ---------------------------------------------------------------------------
# Checking a `data:` section against the headers (nnflow check)


@dataclass(frozen=True)
class DataCheck:
    """The headers of an experiment's data files, and the columns `train` would use."""

    headers: dict[str, TableHeader]  # role (train, validation, test) -> header
    target: str
    features: tuple[str, ...]
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {
            "checked": True,
            "files": {role: header.to_json() for role, header in self.headers.items()},
            "target": self.target,
            "features": list(self.features),
        }


def check_data(data: DataSpec) -> DataCheck:
    """Read the headers of the train, validation and test files and check the columns against them.

    Raises DataError as `nnflow train` would: a missing or unreadable file, a missing column
    (with "did you mean"), a Parquet column of dates or nested values used as a target or feature.
    A `.zst` file is left unread (with a note) when the zstandard package is not installed.
    """
    notes: list[str] = []
    headers: dict[str, TableHeader] = {}
    features: list[str] = list(data.features or ())
    files = [("train", data.train)] + [
        (role, getattr(data, role)) for role in ("validation", "test") if isinstance(getattr(data, role), Path)
    ]
    for role, path in files:
        if path.suffix.lower() == ".zst" and not _importable("zstandard"):
            existing_table(path)
            notes.append(
                f"{path.name}: not read (reading .zst files needs the zstandard package); `train` will need it."
            )
            continue
        header = read_header(path)
        if role == "train":
            features = feature_columns(data, header.columns, path)
        else:
            missing = [c for c in dict.fromkeys([*features, data.target]) if c not in header.columns]
            if missing:
                raise DataError(f"{path}: {missing_message(missing, header.columns)}")
        for column, role_of in [(column, "feature") for column in features] + [(data.target, "target")]:
            if header.refused and column in header.refused:
                kind, shown = header.refused[column]
                raise DataError(kind_message(path, role_of, column, kind, shown))
        headers[role] = header
    return DataCheck(headers, data.target, tuple(features), tuple(notes))


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
