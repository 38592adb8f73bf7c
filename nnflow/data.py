"""The data (pandas): read CSV/TSV/Parquet, check it, split it, encode it.

Nothing is silently dropped or coerced. A missing value, a stray word in a numeric
column or a target with one class is a `DataError` naming the file, the column and
the first bad row. What nnflow does transform (one-hot columns, label encoding,
booleans as 0/1, categories unseen in training) is reported in `notes`.

The fitted state (`Preprocessing`) is plain data that travels with the run as JSON,
so `predict` and `evaluate` transform new rows exactly as training did.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .catalog import close_matches
from .errors import DataError
from .spec import DataSpec, Spec

COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zip", ".xz", ".zst")
SPLIT_SEEDS = {"test": 1, "validation": 2}  # independent streams from the one experiment seed
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


def read_table(path: Path, *, nrows: int | None = None):
    """Read a table into a DataFrame; every way it can fail is a DataError naming the file."""
    import pandas as pd

    path = Path(path)
    kind = table_format(path)
    if not path.exists():
        raise DataError(f"{path}: no such file. Paths in `data:` are relative to the experiment file.")
    if path.is_dir():
        raise DataError(f"{path}: is a directory; expected a CSV or Parquet file.")
    if kind == "parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as error:  # pyarrow raises its own ArrowInvalid/OSError family
            raise DataError(f"{path}: not a readable Parquet file ({_one_line(error)}).") from None
        frame = frame if nrows is None else frame.head(nrows)
    else:
        _check_text(path)
        sep = "\t" if kind == "tsv" else ","
        try:
            frame = pd.read_csv(
                path, sep=sep, nrows=nrows, encoding="utf-8", low_memory=False,
                keep_default_na=False, na_values=MISSING_MARKERS,
            )
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
    kind = table_format(path)
    if not path.exists():
        raise DataError(f"{path}: no such file.")
    if path.is_dir():
        raise DataError(f"{path}: is a directory; expected a CSV or Parquet file.")
    if kind == "parquet":
        yield from _iter_parquet(path, chunk_rows, parsed_columns)
        return
    sep = "\t" if kind == "tsv" else ","
    try:
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
    missing = series.isna().to_numpy()
    if missing.any():
        first, count = _first_bad(missing)
        raise DataError(
            f"{path}: {_row_label(path, series, first)}, {role} {column!r}: missing value"
            + (f" ({count:,} rows in all)" if count > 1 else "")
            + ". nnflow does not guess values: fill them or drop those rows, or list the column under `data.drop`."
        )
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
    if _is_bool(series):
        _check_no_missing(series, path, column, "feature")
    elif _is_text_column(series):
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
            + ". nnflow does not guess values: fill them or drop those rows."
        )


# ---------------------------------------------------------------------------
# The fitted preprocessing that travels with a run


@dataclass
class Preprocessing:
    """How rows become model inputs and targets; fitted on the training split only."""

    feature_columns: list[str]
    categories: dict[str, list[str]]  # text column -> its vocabulary in the training split (one-hot, in order)
    booleans: list[str]
    target: str
    task: str  # "classification" or "regression"
    target_encoding: str | None  # "sparse" (ids), "onehot", "binary" (0/1) or None
    class_names: list[Any] | None
    input_shape: list[int]  # what the model receives per row
    normalize: bool
    mean: list[float] | None = None  # per input column (one-hot columns: 0)
    variance: list[float] | None = None  # per input column (one-hot columns: 1)

    @property
    def input_width(self) -> int:
        return sum(len(self.categories[c]) if c in self.categories else 1 for c in self.feature_columns)

    @property
    def input_names(self) -> list[str]:
        names = []
        for column in self.feature_columns:
            if column in self.categories:
                names += [f"{column}={value}" for value in self.categories[column]]
            else:
                names.append(column)
        return names

    def to_json(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict) -> "Preprocessing":
        return cls(**data)

    # -- transforming rows ---------------------------------------------------

    def features(self, frame, path: Path, unseen: "UnseenCategories | None" = None) -> np.ndarray:
        """The model inputs of `frame` as float32, shaped `(rows, *input_shape)`.

        Categories the training split did not have become all-zero rows, counted in `unseen`.
        """
        missing = [c for c in self.feature_columns if c not in frame.columns]
        if missing:
            raise DataError(f"{path}: {_missing_message(missing, list(frame.columns))}")
        blocks = []
        for column in self.feature_columns:
            series = frame[column]
            if column in self.categories:
                _check_no_missing(series, path, column, "feature")
                vocabulary = self.categories[column]
                codes = _category_codes(series, vocabulary)
                absent = codes < 0
                if absent.any() and unseen is not None:
                    unseen.add(path, column, series, absent)
                block = np.zeros((len(series), len(vocabulary)), dtype="float32")
                rows = np.flatnonzero(~absent)
                block[rows, codes[rows]] = 1.0
                blocks.append(block)
            else:
                if _is_text_column(series) and not _is_bool(series):
                    raise DataError(
                        f"{path}: feature {column!r} holds text ({_examples(series)}), but it was numeric in training."
                    )
                blocks.append(_numeric(series, path, column, "feature").astype("float32")[:, None])
        matrix = np.concatenate(blocks, axis=1) if len(blocks) > 1 else blocks[0]
        return matrix.reshape((len(frame), *self.input_shape))

    def targets(self, frame, path: Path) -> np.ndarray:
        """The target column encoded as the loss expects (ids, one-hot, 0/1, or floats)."""
        if self.target not in frame.columns:
            raise DataError(f"{path}: {_missing_message([self.target], list(frame.columns))}")
        series = frame[self.target]
        if self.task == "regression":
            return _numeric(series, path, self.target, "target").astype("float32")[:, None]
        _check_no_missing(series, path, self.target, "target")
        codes = _category_codes(series, self.class_names)
        unknown = codes < 0
        if unknown.any():
            first, count = _first_bad(unknown)
            raise DataError(
                f"{path}: {_row_label(path, series, first)}, target {self.target!r}: class {_show(series.iloc[first])} "
                f"is not one of the training classes ({_list(self.class_names)})"
                + (f"; {count:,} such rows" if count > 1 else "")
                + "."
            )
        if self.target_encoding == "onehot":
            onehot = np.zeros((len(codes), len(self.class_names)), dtype="float32")
            onehot[np.arange(len(codes)), codes] = 1.0
            return onehot
        if self.target_encoding == "binary":
            return codes.astype("float32")[:, None]
        return codes.astype("int32")

    def class_of(self, ids: np.ndarray) -> list:
        """Class names for predicted class ids."""
        return [self.class_names[int(i)] for i in ids]


class UnseenCategories:
    """Counts, per file and column, the rows whose category training never saw (across chunks)."""

    def __init__(self):
        self.seen: dict[tuple[str, str], list] = {}  # (file, column) -> [count, first value, first row]

    def add(self, path: Path, column: str, series, mask) -> None:
        first, count = _first_bad(mask)
        entry = self.seen.setdefault((path.name, column), [0, _show(series.iloc[first]), _row_label(path, series, first)])
        entry[0] += count

    @property
    def rows(self) -> int:
        return sum(count for count, _, _ in self.seen.values())

    def notes(self) -> list[str]:
        return [
            f"{file}: column {column!r} has {count:,} row(s) with categories not seen in training "
            f"(first: {value} at {row}); encoded as all zeros."
            for (file, column), (count, value, row) in self.seen.items()
        ]


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


# ---------------------------------------------------------------------------
# Fitting the preprocessing and splitting


@dataclass
class Split:
    """One split's model-ready arrays."""

    x: np.ndarray
    y: np.ndarray
    rows: int
    source: str  # "train.csv", "20% of train.csv", "val.csv"


@dataclass
class PreparedData:
    preprocessing: Preprocessing
    train: Split
    validation: Split | None
    test: Split | None
    files: dict[str, Path]  # role -> file, for run.json's checksums
    notes: list[str] = field(default_factory=list)

    @property
    def splits(self) -> dict[str, Split]:
        return {name: split for name, split in (("train", self.train), ("validation", self.validation), ("test", self.test)) if split is not None}


def classification_encoding(spec: Spec) -> str | None:
    """How the loss wants class labels: 'sparse' ids, 'onehot' rows, 'binary' 0/1; None for regression losses."""
    from .catalog import snake_case

    loss = spec.compile.loss
    name = snake_case(loss.target if loss.is_class else loss.name).lower()
    if "sparse" in name:
        return "sparse"
    if "binary" in name or "hinge" in name and "categorical" not in name:
        return "binary"
    if "categorical" in name or name in ("kl_divergence", "kld", "kullback_leibler_divergence"):
        return "onehot"
    return None


# Layers that leave the width of their input unchanged: looking back past them finds the output's units.
_SAME_WIDTH = {
    "Activation", "Dropout", "Softmax", "ReLU", "LeakyReLU", "ELU", "PReLU", "BatchNormalization",
    "LayerNormalization", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization",
}


def output_activation(spec: Spec) -> str | None:
    """The last activation of the model as the file writes it (`softmax`, `sigmoid`, ...), if any."""
    for layer in reversed(spec.layers):
        if layer.name == "Softmax":
            return "softmax"
        activation = layer.args.get("activation")
        if activation is not None:
            return getattr(activation, "name", activation)
        if layer.name not in _SAME_WIDTH:
            return None
    return None


def output_units(spec: Spec) -> int | None:
    """The width of the model's output when the file says it (the last `units`)."""
    for layer in reversed(spec.layers):
        units = layer.args.get("units")
        if isinstance(units, int):
            return units
        if layer.name not in _SAME_WIDTH:
            return None
    return None


def target_encoding(spec: Spec, target_is_label: bool) -> str | None:
    """How the target is encoded: the loss decides ('sparse', 'onehot', 'binary'); with another loss,
    a softmax or sigmoid output makes a text, integer or boolean target classes too (SPEC.md): one-hot
    rows, or 0/1 for a single unit, as the tutorial's sigmoid + mse networks expect."""
    encoding = classification_encoding(spec)
    if encoding is None and target_is_label and output_activation(spec) in ("softmax", "sigmoid"):
        encoding = "binary" if output_units(spec) == 1 else "onehot"
    return encoding


def prepare(spec: Spec, seed: int) -> PreparedData:
    """Read the data of `spec`, check it, split it and fit the preprocessing on the training split."""
    import pandas as pd

    data = spec.data
    notes: list[str] = []
    frame = read_table(data.train)
    columns = feature_columns(data, list(frame.columns), data.train)
    frame = frame[[*columns, data.target]]
    for column in columns:  # the whole file first, so an error names its first bad row
        _check_feature(frame[column], data.train, column)
    text_columns = {column for column in columns if _is_text_column(frame[column])}
    for column in columns:
        if column.startswith("Unnamed: "):
            notes.append(
                f"column {column!r} has no name in the header (a saved row index?); it is used as a feature. "
                "If it is an index, list it under `data.drop`."
            )
    target = frame[data.target]
    encoding = target_encoding(spec, not pd.api.types.is_float_dtype(target.dtype))
    task, class_names = _target_kind(target, data.train, data.target, encoding)

    # Test first, then validation, from what is left; stratified by class when classifying.
    strata = _category_codes(frame[data.target], class_names) if task == "classification" else None
    remaining = np.arange(len(frame))
    held_out: dict[str, np.ndarray] = {}
    for role in ("test", "validation"):
        fraction = getattr(data, role)
        if isinstance(fraction, Path) or not fraction:
            continue
        rng = np.random.default_rng([seed, SPLIT_SEEDS[role]])
        # Both fractions are of the whole file: `validation: 0.2, test: 0.1` leaves 70% to train on.
        share = min(1.0, fraction * len(frame) / len(remaining))
        keep, take = _split(remaining, share, None if strata is None else strata[remaining], rng)
        if len(take) == 0:
            raise DataError(f"{data.train}: `data.{role}: {fraction}` of {len(remaining)} rows is no rows; use a larger fraction or a file.")
        held_out[role], remaining = take, keep
    if len(remaining) == 0:
        raise DataError(f"{data.train}: no rows are left to train on after the test and validation splits.")
    train_frame = frame.iloc[remaining]

    preprocessing = _fit(spec, train_frame, columns, text_columns, task, encoding, class_names, data.train, notes)
    if task == "classification":
        present = set(_category_codes(train_frame[data.target], class_names).tolist())
        absent = [class_names[i] for i in range(len(class_names)) if i not in present]
        if absent:
            raise DataError(f"{data.train}: class(es) {_list(absent)} have no rows left in the training split; use more data or smaller splits.")

    unseen = UnseenCategories()

    def make(part, path, source) -> Split:
        return Split(preprocessing.features(part, path, unseen), preprocessing.targets(part, path), len(part), source)

    name = data.train.name
    train = make(train_frame, data.train, name if not held_out else f"{len(remaining):,} of {len(frame):,} rows of {name}")
    files = {"train": data.train}
    splits: dict[str, Split | None] = {}
    for role in ("validation", "test"):
        value = getattr(data, role)
        if isinstance(value, Path):
            other = read_table(value)
            splits[role] = make(other, value, value.name)
            files[role] = value
        elif role in held_out:
            part = frame.iloc[np.sort(held_out[role])]
            splits[role] = make(part, data.train, f"{len(part):,} rows of {name}")
        else:
            splits[role] = None
    notes.extend(unseen.notes())
    return PreparedData(preprocessing, train, splits["validation"], splits["test"], files, notes)


def _target_kind(series, path: Path, column: str, encoding: str | None) -> tuple[str, list | None]:
    """('classification', class names) or ('regression', None), from the loss and the target's values."""
    import pandas as pd

    _check_kind(series, path, column, "target")
    _check_no_missing(series, path, column, "target")
    text = not (_is_number(series) or _is_bool(series))
    if encoding is None:
        if text:
            if not _is_text_column(series):
                _numeric(series, path, column, "target")  # raises at the first non-number
            raise DataError(
                f"{path}: target {column!r} holds class names ({_examples(series)}), but the loss is a regression loss "
                "and the output is not softmax or sigmoid. Use a classification loss such as "
                "sparse_categorical_crossentropy (with a softmax output) or binary_crossentropy (two classes, sigmoid output)."
            )
        _numeric(series, path, column, "target")
        return "regression", None
    if pd.api.types.is_float_dtype(series.dtype):
        values = _numeric(series, path, column, "target")
        fractional = values != np.round(values)
        if fractional.any():
            first, _ = _first_bad(fractional)
            raise DataError(
                f"{path}: {_row_label(path, series, first)}, target {column!r}: {_show(values[first])} is not a class label, "
                "but the loss is a classification loss. Use a regression loss (mse) for continuous targets."
            )
        series = series.astype("int64")
    unique = series.unique().tolist()
    if _is_bool(series):
        class_names = sorted({bool(v) for v in unique})
    elif _is_number(series):
        class_names = sorted({int(v) for v in unique})
    else:
        class_names = sorted({_key(v) for v in unique})
    if len(class_names) < 2:
        raise DataError(f"{path}: target {column!r} has a single class ({_show(class_names[0])}); a classifier needs at least two.")
    if encoding == "binary" and len(class_names) != 2:
        raise DataError(
            f"{path}: target {column!r} has {len(class_names)} classes ({_list(class_names)}), but the loss is binary. "
            "Use sparse_categorical_crossentropy with a softmax output of that many units."
        )
    return "classification", class_names


def _fit(spec: Spec, frame, columns, text_columns, task, encoding, class_names, path: Path, notes: list[str]) -> Preprocessing:
    """The preprocessing, from the training split; which columns are text was decided on the whole file."""
    categories: dict[str, list[str]] = {}
    booleans: list[str] = []
    for column in columns:
        series = frame[column]
        if _is_bool(series):
            booleans.append(column)
        elif column in text_columns:
            categories[column] = sorted({_key(v) for v in series.tolist()})
    if booleans:
        notes.append(f"column(s) {', '.join(booleans)}: true/false read as 1/0.")
    for column, vocabulary in categories.items():
        notes.append(f"column {column!r}: one-hot encoded, {len(vocabulary)} categories ({_list(vocabulary, 5)}).")
    if task == "classification":
        how = {"sparse": "ids", "onehot": "one-hot rows", "binary": "0/1"}[encoding]
        mapping = ", ".join(f"{name}={index}" for index, name in enumerate(class_names[:10]))
        notes.append(f"target {spec.data.target!r}: {len(class_names)} classes encoded as {how} ({mapping}{', ...' if len(class_names) > 10 else ''}).")
    preprocessing = Preprocessing(
        feature_columns=list(columns),
        categories=categories,
        booleans=booleans,
        target=spec.data.target,
        task=task,
        target_encoding=encoding if task == "classification" else None,
        class_names=class_names,
        input_shape=[],
        normalize=spec.data.normalize,
    )
    width = preprocessing.input_width
    shape = list(spec.input_shape) if spec.input_shape else [width]
    if math.prod(shape) != width:
        names = preprocessing.input_names
        raise DataError(
            f"{path}: the model's input shape {shape} takes {math.prod(shape)} numbers per row, but the data gives "
            f"{width} ({_list(names, 8)}). Change the input shape or `data.features`."
        )
    preprocessing.input_shape = shape
    if spec.data.normalize:
        matrix = preprocessing.features(frame, path).reshape(len(frame), width).astype("float64")
        mean = matrix.mean(axis=0)
        variance = matrix.var(axis=0)
        start = 0
        for column in columns:  # one-hot columns pass through unchanged
            size = len(categories[column]) if column in categories else 1
            if column in categories:
                mean[start:start + size], variance[start:start + size] = 0.0, 1.0
            start += size
        preprocessing.mean, preprocessing.variance = mean.tolist(), variance.tolist()
    return preprocessing


def _split(indices: np.ndarray, fraction: float, strata: np.ndarray | None, rng) -> tuple[np.ndarray, np.ndarray]:
    """Hold out `fraction` of `indices` (per class when `strata` is given); returns (kept, taken), sorted."""
    total = int(round(len(indices) * fraction))
    if strata is None:
        chosen = rng.permutation(len(indices))[:total]
    else:
        # Largest remainder: each class gives its share, and the shares add up to `total`.
        classes, counts = np.unique(strata, return_counts=True)
        exact = counts * fraction
        shares = np.floor(exact).astype(int)
        for position in np.argsort(-(exact - shares), kind="stable")[: total - shares.sum()]:
            shares[position] += 1
        chosen = np.concatenate(
            [rng.permutation(np.flatnonzero(strata == label))[:share] for label, share in zip(classes, shares)]
        )
    mask = np.zeros(len(indices), dtype=bool)
    mask[chosen] = True
    return indices[~mask], indices[mask]


def input_width(data: DataSpec) -> int:
    """How many numbers the model receives per row (for `nnflow compile`, which does not split)."""
    frame = read_table(data.train)
    columns = feature_columns(data, list(frame.columns), data.train)
    return sum(frame[c].nunique() if _is_text_column(frame[c]) else 1 for c in columns)
