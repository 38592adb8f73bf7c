"""Reading tables (pandas) and checking their cells: CSV/TSV (compressed too) and Parquet.

Nothing is silently dropped or coerced. A missing value, a stray word in a numeric
column, a date, an undecodable byte is a `DataError` naming the file, the column and
the first bad row. `preprocessing.py` fits and applies the encodings on top of this.
"""

from __future__ import annotations

import contextlib
import datetime
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import DataError
from .headers import (  # noqa: F401  (COMPRESSION_SUFFIXES, feature_columns, _missing_message: used from here by others)
    CELL_LIMIT,
    COMPRESSION_SUFFIXES,
    arrow_kind,
    csv_header,
    existing_table,
    feature_columns,
    kind_message,
    missing_message as _missing_message,
    one_line as _one_line,
    open_table,
    row_line,
    table_format,
    undecodable,
)

# What a CSV cell may say to be missing. Not pandas's longer default list: `NA` (Namibia)
# and `None` are words in real categorical columns.
MISSING_MARKERS = ["", "nan", "NaN", "NAN", "null", "NULL", "N/A", "n/a", "#N/A"]


# ---------------------------------------------------------------------------
# Reading
#
# Files are opened by `headers.open_table` (regular files only, decompressed there) and handed
# to pandas and pyarrow as open streams: a path would let them open a FIFO and wait for ever.


def read_table(path: Path, *, nrows: int | None = None):
    """Read a table into a DataFrame; every way it can fail is a DataError naming the file."""
    import pandas as pd

    path = Path(path)
    kind = existing_table(path)
    if kind == "parquet":
        with open_table(path, decompress=False) as stream:
            try:
                frame = pd.read_parquet(stream)
            except Exception as error:  # pyarrow raises its own ArrowInvalid/OSError family
                raise DataError(f"{path}: not a readable Parquet file ({_one_line(error)}).") from None
        frame = frame if nrows is None else frame.head(nrows)
    else:
        sep = "\t" if kind == "tsv" else ","
        csv_header(path, kind)  # bounded, and what `nnflow check` says about it
        with _csv_errors(path, kind), open_table(path) as stream:
            frame = pd.read_csv(
                stream, sep=sep, nrows=nrows, encoding="utf-8", low_memory=False, compression=None,
                keep_default_na=False, na_values=MISSING_MARKERS,
            )
        _check_cell_lengths(frame, path)
    if len(frame.columns) == 0:
        raise DataError(f"{path}: no columns; expected a header row naming the columns.")
    if len(frame) == 0:
        raise DataError(f"{path}: has a header but no data rows.")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def iter_table(path: Path, chunk_rows: int, *, parsed_columns=None, text_columns=()):
    """Read a table in chunks of `chunk_rows` rows (memory stays flat); rows keep their file index.

    Yields DataFrames. `text_columns` are read as text in every chunk (a category column of
    digits must not turn into numbers in one chunk and stay text in another). With
    `parsed_columns`, every other column is carried exactly as written: CSV cells as their
    text (`00017` stays `00017`), Parquet columns with their Arrow types.
    """
    import pandas as pd

    path = Path(path)
    kind = existing_table(path)
    if kind == "parquet":
        yield from _iter_parquet(path, chunk_rows, parsed_columns)
        return
    sep = "\t" if kind == "tsv" else ","
    header = csv_header(path, kind)
    parsed = set(header) if parsed_columns is None else set(parsed_columns)
    raw = [c for c in header if c not in parsed]
    with _csv_errors(path, kind), open_table(path) as stream:
        reader = pd.read_csv(
            stream, sep=sep, chunksize=chunk_rows, encoding="utf-8", low_memory=False, compression=None,
            keep_default_na=False, na_values={c: MISSING_MARKERS for c in header if c in parsed},
            dtype={c: str for c in [*raw, *text_columns] if c in header},
        )
        produced = False
        for frame in reader:
            if len(frame) == 0:
                continue
            frame.columns = [str(c) for c in frame.columns]
            _check_cell_lengths(frame, path)
            produced = True
            yield frame
        if not produced:
            raise DataError(f"{path}: has a header but no data rows.")


@contextlib.contextmanager
def _csv_errors(path: Path, kind: str):
    """Every way pandas can fail on a text table, as a DataError naming the file."""
    import pandas as pd

    try:
        yield
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty; expected a header row and data rows.") from None
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text ({undecodable(path, error)}); save it as UTF-8.") from None
    except pd.errors.ParserError as error:
        raise DataError(f"{path}: not a well-formed {kind.upper()} table: {_one_line(error)}.") from None
    except (ValueError, OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read it as {kind.upper()}: {_one_line(error)}.") from None


def _check_cell_lengths(frame, path: Path) -> None:
    """A cell longer than CELL_LIMIT is refused, as in the header (a quote left open swallows rows)."""
    import pandas as pd

    for column in frame.columns:
        series = frame[column]
        if not (series.dtype == object or isinstance(series.dtype, pd.StringDtype)):
            continue
        try:
            lengths = series.str.len().to_numpy(dtype="float64", na_value=0.0)
        except (AttributeError, TypeError):  # an object column that is not text
            continue
        if len(lengths) and np.nanmax(lengths) > CELL_LIMIT:
            first, count = _first_bad(lengths > CELL_LIMIT)
            raise DataError(
                f"{path}: {_row_label(path, series, first)}, column {column!r}: a cell of {int(lengths[first]):,} characters"
                + (f" ({count:,} such cells)" if count > 1 else "")
                + f"; cells may hold at most {CELL_LIMIT:,} characters. Is a quote left open?"
            )


def _iter_parquet(path: Path, chunk_rows: int, parsed_columns):
    import pandas as pd
    import pyarrow.parquet as pq

    with open_table(path, decompress=False) as stream:
        try:
            parquet = pq.ParquetFile(stream)
        except Exception as error:  # pyarrow's ArrowInvalid/OSError family
            raise DataError(f"{path}: not a readable Parquet file ({_one_line(error)}).") from None
        names = [str(name) for name in parquet.schema_arrow.names]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise DataError(f"{path}: names column(s) {', '.join(map(repr, duplicated))} twice; give each column its own name.")
        if parquet.metadata.num_rows == 0:
            raise DataError(f"{path}: has no rows.")
        offset = 0
        try:
            for batch in parquet.iter_batches(batch_size=chunk_rows):
                frame = batch.to_pandas()
                frame.columns = names
                if parsed_columns is not None:  # carried columns keep their Arrow types in every chunk
                    for position, name in enumerate(names):
                        if name not in parsed_columns:
                            frame[name] = pd.arrays.ArrowExtensionArray(batch.column(position))
                frame.index = pd.RangeIndex(offset, offset + len(frame))
                offset += len(frame)
                yield frame
        except DataError:
            raise
        except Exception as error:  # a damaged row group
            raise DataError(f"{path}: not a readable Parquet file ({_one_line(error)}).") from None


def table_rows(path: Path) -> int | None:
    """The number of rows when the file says it without being read (Parquet), else None."""
    if table_format(Path(path)) != "parquet":
        return None
    try:
        import pyarrow.parquet as pq

        with open_table(path, decompress=False) as stream:
            return pq.ParquetFile(stream).metadata.num_rows
    except Exception:  # iter_table reports an unreadable file properly
        return None


def sha256(path: Path) -> str:
    """The file's sha256; a file that is not a regular file is a DataError (a FIFO would never end)."""
    import hashlib

    digest = hashlib.sha256()
    with open_table(path, decompress=False) as stream:
        try:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
        except OSError as error:
            raise DataError(f"{path}: cannot be read ({_one_line(error)}).") from None
    return digest.hexdigest()


# ---------------------------------------------------------------------------
# Columns


def _row_label(path: Path, series, position: int) -> str:
    """`row 17 (line 18)` for CSV files, whose first line is the header; `row 17` otherwise.

    Rows are counted in the file (the frame's index), whichever split they are in. The line is
    the one the row starts on: later than `row + 1` after quoted cells that span lines.
    """
    label = series.index[position]
    row = (int(label) if isinstance(label, (int, np.integer)) else position) + 1
    if table_format(path) == "parquet":
        return f"row {row}"
    line = row_line(path, row)
    return f"row {row} (line {line})" if line is not None else f"row {row}"


def _first_bad(mask) -> tuple[int, int]:
    """Position of the first True in a boolean array, and how many there are."""
    positions = np.flatnonzero(np.asarray(mask))
    return int(positions[0]), len(positions)


def _is_bool(series) -> bool:
    """numpy bool, pandas' nullable `boolean` and `bool[pyarrow]`."""
    import pandas as pd

    return pd.api.types.is_bool_dtype(series.dtype)


def _is_number(series) -> bool:
    """Integers and floats, nullable and Arrow-backed ones included (not booleans, not complex)."""
    import pandas as pd

    dtype = series.dtype
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype)


def _check_kind(series, path: Path, column: str, role: str) -> None:
    """Dates, durations, complex numbers and nested values have no one meaning as model inputs: say so.

    Parquet's dates and times (date32, time64) and its lists, structs and maps reach pandas as
    object columns of Python values: without this they would be one-hot encoded by their text.
    """
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, pd.ArrowDtype):
        kind = arrow_kind(dtype.pyarrow_dtype)
        if kind:
            raise DataError(kind_message(path, role, column, kind, str(dtype.pyarrow_dtype)))
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype) or isinstance(dtype, pd.PeriodDtype):
        raise DataError(kind_message(path, role, column, "dates", str(dtype)))
    if pd.api.types.is_complex_dtype(dtype):
        raise DataError(kind_message(path, role, column, "complex"))
    if dtype == object:
        present = np.flatnonzero(series.notna().to_numpy())
        value = series.iloc[present[0]] if len(present) else None
        if isinstance(value, (datetime.date, datetime.time, datetime.timedelta)):
            raise DataError(kind_message(path, role, column, "dates", f"{type(value).__name__} values"))
        if isinstance(value, (list, tuple, dict, np.ndarray)):
            shown = _show(value.tolist() if isinstance(value, np.ndarray) else value)
            raise DataError(kind_message(path, role, column, "nested", f"{_row_label(path, series, int(present[0]))}: {shown}"))


def _numeric(series, path: Path, column: str, role: str):
    """A column as float64, or a DataError at its first missing, infinite or non-numeric value."""
    import pandas as pd

    _check_kind(series, path, column, role)
    _check_no_missing(series, path, column, role)
    if _is_number(series) or _is_bool(series):
        values = series.to_numpy(dtype="float64")
    else:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")
        bad = np.isnan(values)
        if bad.any():
            first, count = _first_bad(bad)
            raise DataError(
                f"{path}: {_row_label(path, series, first)}, {role} {column!r}: {_show(series.iloc[first])} is not a number"
                + (f" ({count:,} such rows)" if count > 1 else "")
                + ". Fix the value, or list the column under `data.drop`."
            )
    infinite = np.isinf(values)
    if infinite.any():
        first, count = _first_bad(infinite)
        raise DataError(
            f"{path}: {_row_label(path, series, first)}, {role} {column!r}: infinite value {_show(values[first])}"
            + (f" ({count:,} rows in all)" if count > 1 else "")
            + "."
        )
    return values


def _is_text_column(series) -> bool:
    """A column of words (one-hot encoded), as opposed to a numeric column with some stray text.

    Most values parsing as numbers means the column is numeric and the rest are mistakes.
    """
    import pandas as pd

    if _is_number(series) or _is_bool(series) or series.dtype.kind in "cmM":
        return False
    present = series.dropna()
    if present.empty:
        return False
    parsed = pd.to_numeric(present, errors="coerce")
    return parsed.notna().mean() < 0.5


def _check_feature(series, path: Path, column: str) -> None:
    _check_kind(series, path, column, "feature")
    if _is_bool(series) or _is_text_column(series):
        _check_no_missing(series, path, column, "feature")
    else:
        _numeric(series, path, column, "feature")


def _check_no_missing(series, path: Path, column: str, role: str) -> None:
    missing = series.isna().to_numpy()
    if missing.any():
        first, count = _first_bad(missing)
        raise DataError(
            f"{path}: {_row_label(path, series, first)}, {role} {column!r}: missing value"
            + (f" ({count:,} rows in all)" if count > 1 else "")
            + ". nnflow does not guess values: fill them or drop those rows"
            + (", or list the column under `data.drop`." if role == "feature" else ".")
        )


def _category_codes(series, vocabulary: Sequence[Any]) -> np.ndarray:
    """Index of each value in `vocabulary`, -1 where absent. Vectorised: this runs over every row."""
    import pandas as pd

    numeric_vocabulary = all(isinstance(v, (int, float, bool, np.number, np.bool_)) for v in vocabulary)
    if numeric_vocabulary and (_is_number(series) or _is_bool(series)) and not series.isna().any():
        index = pd.Index(np.asarray(vocabulary, dtype="float64"))
        return index.get_indexer(series.to_numpy(dtype="float64")).astype("int64")
    # Compared as text, the way vocabularies are stored in JSON; one key function for both sides.
    index = pd.Index([_key(v) for v in vocabulary])
    keys = series.astype(str) if isinstance(series.dtype, pd.StringDtype) else series.map(_key)
    return index.get_indexer(np.asarray(keys, dtype=object)).astype("int64")


def _key(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _show(value: Any) -> str:
    """A value as the user wrote it: `'1.5cm'`, `0.2`, `inf` (not `np.float64(0.2)`)."""
    if isinstance(value, np.generic):
        value = value.item()
    shown = repr(value)
    if len(shown) > 80:  # an error is one screen, whatever a cell holds
        length = f" ({len(value):,} characters)" if isinstance(value, str) else ""
        shown = shown[:60] + "..." + length
    return shown


def _examples(series, limit: int = 3) -> str:
    values = series.dropna().unique()[:limit].tolist()
    return ", ".join(_show(v) for v in values) + (", ..." if series.nunique() > limit else "")


def _list(values: Sequence[Any], limit: int = 10) -> str:
    shown = ", ".join(str(v) for v in list(values)[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def input_width(data: DataSpec) -> int:
    """How many numbers the model receives per row (for `nnflow compile`, which does not split)."""
    frame = read_table(data.train)
    columns = feature_columns(data, list(frame.columns), data.train)
    return sum(frame[c].nunique() if _is_text_column(frame[c]) else 1 for c in columns)
