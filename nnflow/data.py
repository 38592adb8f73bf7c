"""Reading tables (pandas): CSV/TSV (optionally compressed) and Parquet, columns checked by name."""

from __future__ import annotations

from pathlib import Path

from .catalog import did_you_mean
from .errors import DataError
from .spec import DataSpec

COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zip", ".xz", ".zst")


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


def read_table(path: Path, *, nrows: int | None = None):
    """Read a whole table, or its first `nrows` rows, into a DataFrame."""
    import pandas as pd

    kind = table_format(path)
    if not path.exists():
        raise DataError(f"{path}: no such file. Paths in `data:` are relative to the experiment file.")
    try:
        if kind == "parquet":
            frame = pd.read_parquet(path)
            return frame if nrows is None else frame.head(nrows)
        return pd.read_csv(path, sep="\t" if kind == "tsv" else ",", nrows=nrows)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty; expected a header row and data rows.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as error:
        raise DataError(f"{path}: cannot read it as {kind.upper()}: {' '.join(str(error).split())}") from None


def feature_columns(data: DataSpec, columns: list[str], path: Path) -> list[str]:
    """The input columns: `features`, or every column but the target and `drop`."""
    missing = [c for c in [data.target, *(data.features or ()), *data.drop] if c not in columns]
    if missing:
        hints = [f"{c!r}" + (f" ({did_you_mean(c, columns)})" if did_you_mean(c, columns) else "") for c in missing]
        raise DataError(f"{path}: missing column(s) {', '.join(hints)}. The file has: {', '.join(columns)}.")
    if data.features is not None:
        return list(data.features)
    features = [c for c in columns if c != data.target and c not in data.drop]
    if not features:
        raise DataError(f"{path}: no feature columns are left after removing the target {data.target!r} and `drop`.")
    return features


def input_width(data: DataSpec) -> int:
    """How many numbers the model receives per row: numeric features, plus one-hot widths of text columns."""
    frame = read_table(data.train)
    columns = feature_columns(data, [str(c) for c in frame.columns], data.train)
    width = 0
    for column in columns:
        series = frame[column]
        if series.dtype.kind in "biuf":
            width += 1
        else:
            width += int(series.dropna().nunique())
    return width
