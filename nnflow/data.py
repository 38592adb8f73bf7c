"""Reading tables (pandas) and checking their cells: CSV/TSV (compressed too) and Parquet.

Nothing is silently dropped or coerced. A missing value, a stray word in a numeric
column, a date, an undecodable byte is a `DataError` naming the file, the column and
the first bad row. `preprocessing.py` fits and applies the encodings on top of this.
"""

from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .catalog import close_matches
from .errors import DataError
from .spec import DataSpec

COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zip", ".xz", ".zst")
# What a CSV cell may say to be missing. Not pandas's longer default list: `NA` (Namibia)
# and `None` are words in real categorical columns.
MISSING_MARKERS = ["", "nan", "NaN", "NAN", "null", "NULL", "N/A", "n/a", "#N/A"]


# ---------------------------------------------------------------------------
# Reading


def table_format(path: Path) -> str:
    """'csv', 'tsv' or 'parquet' from the file name, or DataError."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSION_SUFFIXES:
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last in (".parquet", ".pq"):
        return "parquet"
    if last == ".tsv":
        return "tsv"
    if last in (".csv", ".txt"):
        return "csv"
    raise DataError(f"{path}: unknown file type {last or '(no extension)'!r}; use .csv, .tsv (optionally .gz) or .parquet.")


def _existing_table(path: Path) -> str:
    """The table's format, once the file is known to exist and not to be a folder."""
    kind = table_format(path)
    if not path.exists():
        raise DataError(f"{path}: no such file (paths in an experiment's `data:` are relative to the experiment file).")
    if path.is_dir():
        raise DataError(f"{path}: is a directory; expected a CSV or Parquet file.")
    return kind


def read_table(path: Path, *, nrows: int | None = None):
    """Read a table into a DataFrame; every way it can fail is a DataError naming the file."""
    import pandas as pd

    path = Path(path)
    kind = _existing_table(path)
    if kind == "parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as error:  # pyarrow raises its own ArrowInvalid/OSError family
            raise DataError(f"{path}: not a readable Parquet file ({_one_line(error)}).") from None
        frame = frame if nrows is None else frame.head(nrows)
    else:
        sep = "\t" if kind == "tsv" else ","
        with _csv_errors(path, kind):
            _check_text(path)
            frame = pd.read_csv(
                path, sep=sep, nrows=nrows, encoding="utf-8", low_memory=False,
                keep_default_na=False, na_values=MISSING_MARKERS,
            )
            _check_header(path, sep)
    if len(frame.columns) == 0:
        raise DataError(f"{path}: no columns; expected a header row naming the columns.")
    if len(frame) == 0:
        raise DataError(f"{path}: has a header but no data rows.")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _open_binary(path: Path):
    """The file's bytes, decompressed as its suffix says (as pandas reads it)."""
    suffix = path.suffix.lower()
    if suffix == ".gz":
        import gzip

        return gzip.open(path, "rb")
    if suffix == ".bz2":
        import bz2

        return bz2.open(path, "rb")
    if suffix == ".xz":
        import lzma

        return lzma.open(path, "rb")
    if suffix == ".zip":
        import zipfile

        archive = zipfile.ZipFile(path)
        return archive.open(archive.namelist()[0])
    if suffix == ".zst":
        import zstandard  # pandas needs it too; read_csv reports its absence

        return zstandard.open(path, "rb")
    return open(path, "rb")


def iter_table(path: Path, chunk_rows: int, *, parsed_columns=None, text_columns=()):
    """Read a table in chunks of `chunk_rows` rows (memory stays flat); rows keep their file index.

    Yields DataFrames. `text_columns` are read as text in every chunk (a category column of
    digits must not turn into numbers in one chunk and stay text in another). With
    `parsed_columns`, every other column is carried exactly as written: CSV cells as their
    text (`00017` stays `00017`), Parquet columns with their Arrow types.
    """
    import pandas as pd

    path = Path(path)
    kind = _existing_table(path)
    if kind == "parquet":
        yield from _iter_parquet(path, chunk_rows, parsed_columns)
        return
    sep = "\t" if kind == "tsv" else ","
    with _csv_errors(path, kind):
        _check_text(path)
        header = _check_header(path, sep)
        parsed = set(header) if parsed_columns is None else set(parsed_columns)
        raw = [c for c in header if c not in parsed]
        reader = pd.read_csv(
            path, sep=sep, chunksize=chunk_rows, encoding="utf-8", low_memory=False,
            keep_default_na=False, na_values={c: MISSING_MARKERS for c in header if c in parsed},
            dtype={c: str for c in [*raw, *text_columns] if c in header},
        )
        produced = False
        for frame in reader:
            if len(frame) == 0:
                continue
            frame.columns = [str(c) for c in frame.columns]
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
        raise DataError(f"{path}: not UTF-8 text ({_undecodable(path, error)}); save it as UTF-8.") from None
    except pd.errors.ParserError as error:
        raise DataError(f"{path}: not a well-formed {kind.upper()} table: {_one_line(error)}.") from None
    except ImportError as error:  # .zst needs the zstandard package
        raise DataError(f"{path}: reading it needs a package that is not installed ({_one_line(error)}).") from None
    except (ValueError, OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read it as {kind.upper()}: {_one_line(error)}.") from None


def _iter_parquet(path: Path, chunk_rows: int, parsed_columns):
    import pandas as pd
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
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
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).metadata.num_rows
    except Exception:  # iter_table reports an unreadable file properly
        return None


def _check_text(path: Path) -> None:
    try:
        with _open_binary(path) as stream:
            head = stream.read(8192)
    except ImportError:
        return  # read_csv says what is missing
    except Exception as error:  # a corrupt archive: gzip.BadGzipFile, zipfile.BadZipFile, EOFError, ...
        raise DataError(f"{path}: cannot be decompressed ({_one_line(error)}).") from None
    if b"\x00" in head:
        raise DataError(f"{path}: holds binary data, not a text table. Is it a Parquet or compressed file with the wrong extension?")


def _undecodable(path: Path, error: UnicodeDecodeError) -> str:
    """Where the first byte that is not UTF-8 is: `byte 0xe9 on line 2`."""
    try:
        with _open_binary(path) as stream:
            for number, line in enumerate(stream, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as bad:
                    return f"byte 0x{line[bad.start]:02x} on line {number}"
    except (OSError, ImportError, EOFError):
        pass
    return f"byte 0x{error.object[error.start]:02x}"


def _check_header(path: Path, sep: str) -> list[str]:
    """The header's column names; a name given twice is an error (pandas would rename it `x.1`)."""
    with _open_binary(path) as stream:
        first = stream.readline().decode("utf-8-sig", "replace")
    header = next(csv.reader(io.StringIO(first), delimiter=sep), [])
    seen = set()
    for name in header:
        if name in seen:
            raise DataError(f"{path}: the header names column {name!r} twice; give each column its own name.")
        seen.add(name)
    return header


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()).rstrip(".") or type(error).__name__


def sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------
# Columns


def feature_columns(data: DataSpec, columns: Sequence[str], path: Path) -> list[str]:
    """The input columns: `features`, or every column but the target and `drop`."""
    wanted = [data.target, *(data.features or ()), *data.drop]
    missing = [c for c in dict.fromkeys(wanted) if c not in columns]
    if missing:
        raise DataError(f"{path}: {_missing_message(missing, columns)}")
    if data.features is not None:
        return list(data.features)
    features = [c for c in columns if c != data.target and c not in data.drop]
    if not features:
        raise DataError(f"{path}: no feature columns are left after removing the target {data.target!r} and `drop`.")
    return features


def _missing_message(missing: Sequence[str], columns: Sequence[str]) -> str:
    def one(column):
        matches = close_matches(column, list(columns))
        return f"{column!r}" + (f" (did you mean {matches[0]!r}?)" if matches else "")

    noun = "column" if len(missing) == 1 else "columns"
    shown = ", ".join(columns[:30]) + (f", ... ({len(columns)} in all)" if len(columns) > 30 else "")
    return f"no {noun} {', '.join(one(c) for c in missing)}. The file has: {shown}."


def _row_label(path: Path, series, position: int) -> str:
    """`row 17 (line 18)` for CSV files, whose first line is the header; `row 17` otherwise.

    Rows are counted in the file (the frame's index), whichever split they are in.
    """
    label = series.index[position]
    row = (int(label) if isinstance(label, (int, np.integer)) else position) + 1
    return f"row {row} (line {row + 1})" if table_format(path) != "parquet" else f"row {row}"


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
    """Dates, durations and complex numbers have no one meaning as model inputs: say so."""
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype) or isinstance(dtype, pd.PeriodDtype):
        raise DataError(
            f"{path}: {role} {column!r} holds dates or times ({dtype}); nnflow does not turn them into numbers for you. "
            "Convert them (day of year, hours since start, ...) or list the column under `data.drop`."
        )
    if pd.api.types.is_complex_dtype(dtype):
        raise DataError(f"{path}: {role} {column!r} holds complex numbers; convert them or list the column under `data.drop`.")


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
    return repr(value)


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
