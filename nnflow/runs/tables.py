"""Tables written in chunks (predictions): CSV/TSV to a file or a stream, or Parquet; atomic for files."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ConfigError, Problem
from .atomic import FILE_MODE, output_error, remove_file


class TableWriter:
    """Writes a table in chunks: CSV/TSV to a file or a text stream, or Parquet. Atomic for files.

    The file is made beside `output` at the first chunk and renamed into place by `close()`;
    `abort()` drops it, so an error part-way leaves nothing under the output's name.
    """

    def __init__(self, output: Path | None, stream=None):
        from ..headers import table_format

        if output is None and stream is None:
            raise ValueError("TableWriter needs an output file or a text stream")
        self.output = output
        self.stream = stream
        self.kind = table_format(output) if output is not None else "csv"
        self.temporary: Path | None = None
        self.parquet: Any = None  # pyarrow.parquet.ParquetWriter
        self.handle: Any = None  # the text stream written to
        self.rows = 0

    def _open(self) -> None:
        if self.output is None:
            self.handle = self.stream
            return
        try:
            self.output.parent.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(prefix=f".{self.output.name}.", suffix=".tmp", dir=self.output.parent)
        except OSError as error:
            raise ConfigError(
                Problem(f"cannot write {self.output}: {error.strerror or error}.", where="--output")
            ) from None
        os.close(handle)
        self.temporary = Path(name)
        if self.kind != "parquet":
            self.handle = open(self.temporary, "w", encoding="utf-8", newline="")

    def write(self, frame) -> None:
        try:
            self._write(frame)
        except OSError as error:
            if self.output is None or isinstance(error, BrokenPipeError):
                raise
            raise output_error(self.output, error) from None

    def _write(self, frame) -> None:
        first = self.handle is None and self.parquet is None
        if first:
            self._open()
        if self.kind == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.temporary, table.schema)
            else:
                table = table.cast(self.parquet.schema)  # a column all null in one chunk keeps the first chunk's type
            self.parquet.write_table(table)
        else:
            frame.to_csv(
                self.handle, index=False, header=first, sep="\t" if self.kind == "tsv" else ",", lineterminator="\n"
            )
        self.rows += len(frame)

    def close(self) -> None:
        try:
            if self.parquet is not None:
                self.parquet.close()
            if self.handle is not None:
                self.handle.flush()
                if self.output is not None:
                    os.fsync(self.handle.fileno())
                    self.handle.close()
            if self.temporary is not None and self.output is not None:  # a file (not a stream) was written
                os.chmod(self.temporary, FILE_MODE)
                os.replace(self.temporary, self.output)
                self.temporary = None
        except OSError as error:
            if self.output is None:  # the stream (stdout) went away: `| head`, a closed pipe
                raise
            raise output_error(self.output, error) from None

    def abort(self) -> None:
        try:
            if self.parquet is not None:
                self.parquet.close()
            if self.handle is not None and self.output is not None:
                self.handle.close()
        finally:
            if self.temporary is not None:
                remove_file(self.temporary)
