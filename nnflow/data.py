"""Reading tables (pandas) and checking their cells: CSV/TSV (compressed too) and Parquet.

Nothing is silently dropped or coerced. A missing value, a stray word in a numeric
column, a date, an undecodable byte is a `DataError` naming the file, the column and
the first bad row. `preprocessing.py` fits and applies the encodings on top of this.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .columns import first_bad, is_text_column, row_label
from .errors import DataError
from .headers import csv_header, feature_columns
from .table_files import CELL_LIMIT, existing_table, open_table, table_format, undecodable
from .table_files import one_line as _one_line

if TYPE_CHECKING:
    from .spec import DataSpec

# What a CSV cell may say to be missing. Not pandas's longer default list: `NA` (Namibia)
# and `None` are words in real categorical columns.
MISSING_MARKERS = ["", "nan", "NaN", "NAN", "null", "NULL", "N/A", "n/a", "#N/A"]
# How every text table is read: UTF-8, whole columns typed at once, decompressed by nnflow
# itself (open_table), and only MISSING_MARKERS meaning missing.
_CSV_OPTIONS = {"encoding": "utf-8", "low_memory": False, "compression": None, "keep_default_na": False}


# ---------------------------------------------------------------------------
# Reading
#
# Files are opened by `table_files.open_table` (regular files only, decompressed there) and handed
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
                stream,
                sep=sep,
                nrows=nrows,
                na_values=MISSING_MARKERS,
                **_CSV_OPTIONS,
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
            stream,
            sep=sep,
            chunksize=chunk_rows,
            **_CSV_OPTIONS,
            na_values={c: MISSING_MARKERS for c in header if c in parsed},
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
            first, count = first_bad(lengths > CELL_LIMIT)
            raise DataError(
                f"{path}: {row_label(path, series, first)}, column {column!r}: a cell of {int(lengths[first]):,} characters"
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
            raise DataError(
                f"{path}: names column(s) {', '.join(map(repr, duplicated))} twice; give each column its own name."
            )
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


def input_width(data: DataSpec) -> int:
    """How many numbers the model receives per row (for `nnflow compile`, which does not split)."""
    frame = read_table(data.train)
    columns = feature_columns(data, list(frame.columns), data.train)
    return sum(frame[c].nunique() if is_text_column(frame[c]) else 1 for c in columns)
