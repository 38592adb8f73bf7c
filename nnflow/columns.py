"""One column's cells (a pandas Series): checked, read as numbers, or as category labels; and
how cells and rows are shown in messages. Used by data.py (reading) and the preprocessing.

Nothing is silently dropped or coerced: a missing value, a stray word in a numeric column,
a date is a `DataError` naming the file, the column and the first bad row.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError
from .headers import arrow_kind, kind_message
from .table_files import row_line, table_format


def row_label(path: Path, series, position: int) -> str:
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


def first_bad(mask) -> tuple[int, int]:
    """Position of the first True in a boolean array, and how many there are."""
    positions = np.flatnonzero(np.asarray(mask))
    return int(positions[0]), len(positions)


def is_bool_column(series) -> bool:
    """numpy bool, pandas' nullable `boolean` and `bool[pyarrow]`."""
    import pandas as pd

    return pd.api.types.is_bool_dtype(series.dtype)


def is_number_column(series) -> bool:
    """Integers and floats, nullable and Arrow-backed ones included (not booleans, not complex)."""
    import pandas as pd

    dtype = series.dtype
    return (
        pd.api.types.is_numeric_dtype(dtype)
        and not pd.api.types.is_bool_dtype(dtype)
        and not pd.api.types.is_complex_dtype(dtype)
    )


def check_kind(series, path: Path, column: str, role: str) -> None:
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
    if (
        pd.api.types.is_datetime64_any_dtype(dtype)
        or pd.api.types.is_timedelta64_dtype(dtype)
        or isinstance(dtype, pd.PeriodDtype)
    ):
        raise DataError(kind_message(path, role, column, "dates", str(dtype)))
    if pd.api.types.is_complex_dtype(dtype):
        raise DataError(kind_message(path, role, column, "complex"))
    if dtype == object:  # noqa: E721  (numpy's dtype equality: object columns, whatever their dtype instance)
        present = np.flatnonzero(series.notna().to_numpy())
        value = series.iloc[present[0]] if len(present) else None
        if isinstance(value, (datetime.date, datetime.time, datetime.timedelta)):
            raise DataError(kind_message(path, role, column, "dates", f"{type(value).__name__} values"))
        if isinstance(value, (list, tuple, dict, np.ndarray)):
            shown = shown_value(value.tolist() if isinstance(value, np.ndarray) else value)
            raise DataError(
                kind_message(path, role, column, "nested", f"{row_label(path, series, int(present[0]))}: {shown}")
            )


def numeric_values(series, path: Path, column: str, role: str):
    """A column as float64, or a DataError at its first missing, infinite or non-numeric value."""
    import pandas as pd

    check_kind(series, path, column, role)
    check_no_missing(series, path, column, role)
    if is_number_column(series) or is_bool_column(series):
        values = series.to_numpy(dtype="float64")
    else:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")
        bad = np.isnan(values)
        if bad.any():
            first, count = first_bad(bad)
            raise DataError(
                f"{path}: {row_label(path, series, first)}, {role} {column!r}: {shown_value(series.iloc[first])} is not a number"
                + (f" ({count:,} such rows)" if count > 1 else "")
                + ". Fix the value, or list the column under `data.drop`."
            )
    infinite = np.isinf(values)
    if infinite.any():
        first, count = first_bad(infinite)
        raise DataError(
            f"{path}: {row_label(path, series, first)}, {role} {column!r}: infinite value {shown_value(values[first])}"
            + (f" ({count:,} rows in all)" if count > 1 else "")
            + "."
        )
    return values


def is_text_column(series) -> bool:
    """A column of words (one-hot encoded), as opposed to a numeric column with some stray text.

    Most values parsing as numbers means the column is numeric and the rest are mistakes.
    """
    import pandas as pd

    if is_number_column(series) or is_bool_column(series) or series.dtype.kind in "cmM":
        return False
    present = series.dropna()
    if present.empty:
        return False
    parsed = pd.to_numeric(present, errors="coerce")
    return parsed.notna().mean() < 0.5


def check_feature(series, path: Path, column: str) -> None:
    check_kind(series, path, column, "feature")
    if is_bool_column(series) or is_text_column(series):
        check_no_missing(series, path, column, "feature")
    else:
        numeric_values(series, path, column, "feature")


def check_no_missing(series, path: Path, column: str, role: str) -> None:
    missing = series.isna().to_numpy()
    if missing.any():
        first, count = first_bad(missing)
        raise DataError(
            f"{path}: {row_label(path, series, first)}, {role} {column!r}: missing value"
            + (f" ({count:,} rows in all)" if count > 1 else "")
            + ". nnflow does not guess values: fill them or drop those rows"
            + (", or list the column under `data.drop`." if role == "feature" else ".")
        )


def category_codes(series, vocabulary: Sequence[Any]) -> np.ndarray:
    """Index of each value in `vocabulary`, -1 where absent. Vectorised: this runs over every row."""
    import pandas as pd

    numeric_vocabulary = all(isinstance(v, (int, float, bool, np.number, np.bool_)) for v in vocabulary)
    if numeric_vocabulary and (is_number_column(series) or is_bool_column(series)) and not series.isna().any():
        index = pd.Index(np.asarray(vocabulary, dtype="float64"))
        return index.get_indexer(series.to_numpy(dtype="float64")).astype("int64")
    # Compared as text, the way vocabularies are stored in JSON; one key function for both sides.
    index = pd.Index([category_key(v) for v in vocabulary])
    keys = series.astype(str) if isinstance(series.dtype, pd.StringDtype) else series.map(category_key)
    return index.get_indexer(np.asarray(keys, dtype=object)).astype("int64")


def category_key(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def shown_value(value: Any) -> str:
    """A value as the user wrote it: `'1.5cm'`, `0.2`, `inf` (not `np.float64(0.2)`)."""
    if isinstance(value, np.generic):
        value = value.item()
    shown = repr(value)
    if len(shown) > 80:  # an error is one screen, whatever a cell holds
        length = f" ({len(value):,} characters)" if isinstance(value, str) else ""
        shown = shown[:60] + "..." + length
    return shown


def examples(series, limit: int = 3) -> str:
    values = series.dropna().unique()[:limit].tolist()
    return ", ".join(shown_value(v) for v in values) + (", ..." if series.nunique() > limit else "")


def shown_list(values: Sequence[Any], limit: int = 10) -> str:
    shown = ", ".join(str(v) for v in list(values)[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")
