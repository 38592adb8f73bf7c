"""`predict`: a trained run's predictions for every row of a table, streamed in chunks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .trained_run import check_not_same, check_suffix, load_run


@dataclass(frozen=True)
class PredictResult:
    run_dir: Path
    rows: int
    output: Path | None  # None: CSV went to the stream
    columns: list[str]
    notes: tuple[str, ...]


def predict(
    run,
    input: str | Path,
    output: str | Path | None = None,
    *,
    stream=None,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> PredictResult:
    """Predict for every row of `input` (CSV or Parquet), streamed in chunks, into `output` or CSV on `stream`.

    Feature columns are matched by name; the input's other columns (ids, ...) are carried
    through exactly as written, followed by `predicted_<target>` and, for classes,
    `probability_<class>`.
    """
    from ..runs import TABLE_SUFFIXES, TableWriter, check_output, find_run
    from ..scoring import PredictionColumns, predict_stream

    output_path = Path(output) if output is not None else None
    if output_path is None and stream is None:
        raise ValueError("predict needs an output file or a text stream")
    if output_path is not None:
        check_suffix(output_path, TABLE_SUFFIXES, "write predictions to a .csv, .tsv or .parquet file (not compressed)")
        check_not_same(
            output_path, Path(input), "is the input file; predictions would replace it. Choose another --output."
        )
        check_output(output_path, "predict", [find_run(run)])
    trained = load_run(run)
    writer = TableWriter(output_path, stream=stream)
    try:
        rows, unseen = predict_stream(
            trained.model, trained.preprocessing, Path(input), writer, on_progress=on_progress
        )
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return PredictResult(
        trained.run_dir, rows, output_path, PredictionColumns.of(trained.preprocessing).names, tuple(unseen.notes())
    )
