"""Data files as files: their format by suffix, opened only when regular, decompressed, read as text.

Standard library only. `headers.py` (column names, before pandas) and `data.py` (pandas)
open and read files through this module, so both say the same thing about a file.

- `open_table` opens only a regular file (a FIFO would block, a device never end) and
  decompresses it as its suffix says.
- `check_text` and `undecodable` tell a binary or non-UTF-8 file in the words of both readers.
- `row_line` finds the physical line a data row starts on, for messages.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, cast

from .errors import DataError
from .fileio import NotReadable, file_kind, open_regular, os_reason

COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zip", ".xz", ".zst")
# Python's csv module refuses longer fields; nnflow refuses longer cells everywhere (header and
# rows alike), so that what `check` reads, `train` reads.
CELL_LIMIT = 131_072
BINARY_PROBE = 8192  # bytes looked at for binary content


# ---------------------------------------------------------------------------
# Opening


def table_format(path: Path) -> str:
    """'csv', 'tsv' or 'parquet' from the file name, or DataError."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in COMPRESSION_SUFFIXES:
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last in (".parquet", ".pq"):
        return "parquet"
    if last == ".tsv":
        return "tsv"
    if last in (".csv", ".txt"):
        return "csv"
    raise DataError(
        f"{path}: unknown file type {last or '(no extension)'!r}; use .csv, .tsv (optionally .gz) or .parquet."
    )


def existing_table(path: Path) -> str:
    """The table's format, once `path` is known to name a regular file (symbolic links followed)."""
    kind = table_format(path)
    _check_regular(path)
    return kind


def _check_regular(path: Path) -> None:
    """DataError unless `path` is a regular file: says what it is instead (a FIFO, a link loop, ...)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        if error.errno == errno.ENOENT and os.path.islink(path):
            raise DataError(f"{path}: a symbolic link to {os.readlink(path)}, which does not exist.") from None
        if error.errno == errno.ENOENT:
            raise DataError(
                f"{path}: no such file (paths in an experiment's `data:` are relative to the experiment file)."
            ) from None
        raise DataError(f"{path}: {os_reason(error)}.") from None
    if stat.S_ISDIR(mode):
        raise DataError(f"{path}: is a directory; expected a CSV or Parquet file.")
    if not stat.S_ISREG(mode):
        raise DataError(f"{path}: is {file_kind(mode)}, not a regular file; expected a CSV or Parquet file.")


@contextlib.contextmanager
def open_table(path: Path, *, decompress: bool = True) -> Iterator[IO[bytes]]:
    """The file's bytes, decompressed as its suffix says; only a regular file is opened.

    Every problem (a FIFO, a folder, a corrupt or many-file archive, a missing package) is a DataError.
    """
    path = Path(path)
    try:
        raw = open_regular(path)
    except NotReadable as error:
        _check_regular(path)  # the words of `existing_table` for what stat can see
        raise DataError(f"{path}: {error.reason}.") from None
    with contextlib.ExitStack() as stack:
        stack.enter_context(raw)
        yield _decompressed(path, raw, stack) if decompress else raw


def _decompressed(path: Path, raw: IO[bytes], stack: contextlib.ExitStack) -> IO[bytes]:
    suffix = path.suffix.lower()
    if suffix == ".gz":
        import gzip

        return cast(IO[bytes], stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb")))
    if suffix == ".bz2":
        import bz2

        return cast(IO[bytes], stack.enter_context(bz2.BZ2File(raw, "rb")))
    if suffix == ".xz":
        import lzma

        return cast(IO[bytes], stack.enter_context(lzma.LZMAFile(raw, "rb")))
    if suffix == ".zip":
        import zipfile

        try:
            archive = stack.enter_context(zipfile.ZipFile(raw))
            names = [name for name in archive.namelist() if not name.endswith("/")]
            if len(names) == 1:
                return stack.enter_context(archive.open(names[0]))
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:
            raise DataError(f"{path}: cannot be decompressed ({one_line(error)}).") from None
        raise DataError(f"{path}: the ZIP archive holds {len(names)} files; put the one table alone in it.")
    if suffix == ".zst":
        try:
            import zstandard
        except ImportError:
            raise DataError(
                f"{path}: reading .zst files needs the zstandard package (pip install zstandard)."
            ) from None
        return stack.enter_context(zstandard.open(raw, "rb"))
    return raw


def damaged_archive_errors() -> tuple[type[BaseException], ...]:
    """What the decompressors raise on damaged data (their modules are imported only when used)."""
    import sys
    import zlib

    errors: list[type[BaseException]] = [OSError, EOFError, zlib.error]
    for module, name in (("lzma", "LZMAError"), ("zipfile", "BadZipFile"), ("zstandard", "ZstdError")):
        if module in sys.modules and isinstance(getattr(sys.modules[module], name, None), type):
            errors.append(getattr(sys.modules[module], name))
    return tuple(errors)


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split()).rstrip(".") or type(error).__name__


def blank_line(line: str, separator: str) -> bool:
    """A line of spaces and tabs only (not the separator): readers skip it."""
    whitespace = " \t".replace(separator, "")
    return line.rstrip("\r\n").strip(whitespace) == ""


def check_text(path: Path) -> None:
    """The file decompresses, and its start holds no NUL byte (a binary file with a table's name)."""
    try:
        with open_table(path) as stream:
            head = stream.read(BINARY_PROBE)
    except damaged_archive_errors() as error:  # gzip.BadGzipFile, EOFError, zlib.error, ...
        raise DataError(f"{path}: cannot be decompressed ({one_line(error)}).") from None
    if b"\x00" in head:
        raise DataError(
            f"{path}: holds binary data, not a text table. Is it a Parquet or compressed file with the wrong extension?"
        )


def undecodable(path: Path, error: UnicodeDecodeError) -> str:
    """Where the first byte that is not UTF-8 is: `byte 0xe9 on line 2` (read in pieces of 1 MiB)."""
    import codecs

    try:
        with open_table(path) as stream:
            decoder = codecs.getincrementaldecoder("utf-8")()
            number = 1
            while piece := stream.readline(1 << 20):
                end = piece.endswith(b"\n")
                try:
                    decoder.decode(piece, final=end)
                except UnicodeDecodeError as bad:
                    return f"byte 0x{bad.object[bad.start]:02x} on line {number}"
                if end:
                    number += 1
    except (DataError, OSError, EOFError, ValueError):
        pass
    return f"byte 0x{error.object[error.start]:02x}"


# ---------------------------------------------------------------------------
# Lines of rows, for messages


def row_line(path: Path, row: int) -> int | None:
    """The physical line on which data row `row` (1-based) of a CSV/TSV file starts.

    It is `row + 1` (line 1 is the header) unless quoted cells span lines, blank lines (which
    readers skip) come before it or the header takes several lines: the file is then read up
    to that row with the csv module. None when the file cannot be read again.
    """
    separator = "\t" if table_format(path) == "tsv" else ","
    try:
        if _one_line_per_row(path, row):
            return row + 1
        return _scan_row_line(path, row, separator)
    except (DataError, OSError, EOFError, ValueError, csv.Error):
        return None


# A quote, a lone carriage return or a blank line: lines and rows may part ways from here.
_IRREGULAR = re.compile(rb'"|\r(?!\n)|(?:^|\n)[ \t]*\r?\n')


def _one_line_per_row(path: Path, row: int) -> bool:
    """Whether the first `row + 1` lines hold no quote, lone carriage return or blank line (read in blocks, fast)."""
    wanted = row + 1
    carry = b""
    with open_table(path) as stream:
        while wanted > 0:
            chunk = stream.read(1 << 20)
            if not chunk:
                return not _IRREGULAR.search(carry)
            block = carry + chunk
            end = block.rfind(b"\n") + 1
            block, carry = block[:end], block[end:]
            lines = block.count(b"\n")
            if lines >= wanted:
                block = b"\n".join(block.split(b"\n", wanted)[:wanted]) + b"\n"
            if _IRREGULAR.search(block):
                return False
            wanted -= lines
    return True


def _scan_row_line(path: Path, row: int, separator: str) -> int | None:
    # Runs of ordinary characters are shortened to one: the quoting is kept, and no cell
    # grows past the csv module's field limit.
    ordinary = re.compile(f'[^"{re.escape(separator)}\\r\\n]+')
    with (
        open_table(path) as stream,
        io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="") as text,
    ):
        state = {"lines": 0, "blank": False}

        def lines():
            pieces = []
            blank = True
            while True:
                piece = text.readline(1 << 20)
                if piece:
                    blank = blank and blank_line(piece, separator)
                    pieces.append(ordinary.sub("x", piece))
                if piece and not piece.endswith(("\n", "\r")):
                    continue
                if not pieces:
                    return
                state["lines"] += 1
                state["blank"] = blank
                yield "".join(pieces)
                pieces, blank = [], True

        reader = csv.reader(lines(), delimiter=separator)
        header_seen = False
        rows = 0
        before = 0
        for record in reader:
            start = before + 1
            used = state["lines"] - before
            before = state["lines"]
            if not record or (used == 1 and len(record) == 1 and state["blank"]):
                continue
            if not header_seen:
                header_seen = True
                continue
            rows += 1
            if rows == row:
                return start
    return None
