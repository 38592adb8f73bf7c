"""The commands that work on trained runs: evaluate, predict, plot, report, export, runs, compare; and schema."""

from __future__ import annotations

import json
import os
import sys

import click

from .. import render, render_baseline
from .group import (
    cli,
    emit_json,
    json_mode,
    json_option,
    mlflow_option,
    needs_mlflow,
    raise_failed_gates,
    run_argument,
    summary_option,
    write_summary,
)


@cli.command()
@run_argument
@click.option(
    "--data",
    "data",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="A labelled CSV/Parquet file to evaluate on, instead of the run's test split.",
)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), help="Write the results here instead of into the run folder."
)
@mlflow_option
@json_option
@summary_option
def evaluate(run, data, output, mlflow, as_json, summary):
    """Metrics of a trained RUN on its test split (or --data FILE), and its gates.

    RUN is a run folder, its model.keras, or runs/NAME for the newest run of that name.
    The data is preprocessed exactly as in training. For classes, also the confusion
    matrix and per-class precision, recall and F1. Results are written to the run
    folder (evaluation.json). Exit 5 when an `expect:` gate fails. With --mlflow, the
    metrics (eval_test_*, or eval_<file>_*) are added to the run's MLflow run.

    \b
    Examples:
        nnflow evaluate runs/iris-mlp
        nnflow evaluate runs/iris-mlp --data new_flowers.csv --json
    """
    from .._tf import quiet_tensorflow
    from ..workflows import evaluate as run_evaluate

    json_mode("evaluate", as_json)
    needs_mlflow(mlflow)
    logged = None
    with quiet_tensorflow():
        result = run_evaluate(run, data, output=output)
        if mlflow:
            from ..workflows.tracking_log import log_evaluation

            logged = log_evaluation(result, data, on_note=lambda note: click.echo(f"warning: {note}", err=True))
    if as_json:
        emit_json("evaluate", result.to_json())
    else:
        for note in result.notes:
            click.echo(f"note: {note}")
        click.echo(render.evaluation_text(result))
    if logged:
        click.echo(f"MLflow: the evaluation is logged to run {logged}", err=as_json)
    write_summary(render.evaluation_markdown(result), summary)
    raise_failed_gates(result)


@cli.command()
@run_argument
@click.option(
    "--input",
    "-i",
    "input_path",
    required=True,
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="The rows to predict for (CSV or Parquet); columns are matched by name.",
)
@click.option(
    "--output",
    "-o",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Write here (.csv, .tsv or .parquet) instead of CSV on stdout.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress or notes.")
def predict(run, input_path, output, quiet):
    """Predict with a trained RUN for every row of an input file, streamed in chunks.

    Feature columns are matched by name (order and extra columns do not matter). The
    input's other columns (ids, ...) are carried through, then `predicted_<target>` and,
    for classes, one `probability_<class>` column per class. In CSV output, text cells a
    spreadsheet would run as a formula are escaped with a leading '.

    \b
    Examples:
        nnflow predict runs/iris-mlp --input new_flowers.csv --output predictions.csv
        nnflow predict runs/iris-mlp --input big.parquet --output out.parquet
    """
    from .._tf import quiet_tensorflow
    from ..workflows import predict as run_predict

    progress = None
    if not quiet and sys.stderr.isatty():
        progress = _ProgressLine()
    try:
        with quiet_tensorflow():
            result = run_predict(run, input_path, output, stream=sys.stdout, on_progress=progress)
    except BrokenPipeError:  # `nnflow predict ... | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    finally:
        if progress:
            progress.done()
    if not quiet:
        for note in result.notes:
            click.echo(f"note: {note}", err=True)
        if output:
            click.echo(f"Predicted {result.rows:,} rows into {output} ({', '.join(result.columns)}).", err=True)


class _ProgressLine:
    """`predicted 300,000 of 1,000,000 rows (30%, 152,113 rows/s)` rewritten in place on a terminal."""

    def __init__(self):
        import time

        self.clock = time.perf_counter
        self.started = self.clock()

    def __call__(self, rows: int, total: int | None) -> None:
        rate = rows / max(self.clock() - self.started, 1e-9)
        done = f"{rows:,} of {total:,} rows ({rows / total:.0%}, " if total else f"{rows:,} rows ("
        click.echo(f"\rpredicted {done}{rate:,.0f} rows/s)", err=True, nl=False)

    def done(self) -> None:
        click.echo("", err=True)


@cli.command()
@click.argument("runs", metavar="RUN...", nargs=-1, required=True)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    help="The PNG to write (default: RUN/curves.png, or ./curves.png for several runs).",
)
@click.option(
    "--gradients",
    is_flag=True,
    help="Draw the gradient norms per layer (needs fit.diagnostics.gradient_norms) instead.",
)
def plot(runs, output, gradients):
    """Learning curves of runs (training and validation, each metric), overlaid; or --gradients.

    Given a sweep folder, draws its study instead, with Optuna's visualisations:
    optimization_history.png and param_importances.png, written into the sweep folder.

    \b
    Examples:
        nnflow plot runs/iris-mlp
        nnflow plot runs/lesson-deep-sigmoid runs/lesson-deep-relu -o deep.png
        nnflow plot runs/lesson-deep-sigmoid --gradients
        nnflow plot runs/iris-search/sweep-iris-search
    """
    from ..errors import ConfigError, Problem
    from ..workflows import plot as run_plot
    from ..workflows.sweep_plots import is_sweep_folder, plot_sweep

    if len(runs) == 1 and is_sweep_folder(runs[0]):
        if output or gradients:
            raise ConfigError(
                Problem("a sweep's plots are written into its folder; drop --output and --gradients.", where="RUN")
            )
        drawn = plot_sweep(runs[0])
        for note in drawn.notes:
            click.echo(f"note: {note}", err=True)
        for path in drawn.written:
            click.echo(f"wrote {path}")
        return
    result = run_plot(list(runs), output, gradients=gradients)
    click.echo(f"wrote {result.output}")


@cli.command()
@run_argument
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), help="The HTML page to write (default: RUN/report.html)."
)
def report(run, output):
    """One self-contained HTML page of a run: curves, gradients, metrics, gates, confusion matrix, experiment.

    Images are embedded, so the page can be attached to a CI run or sent as it is. A
    classifier's confusion matrix comes from its evaluation.json (made now if missing).

    \b
    Example:
        nnflow report runs/iris-mlp -o iris-report.html
    """
    from .._tf import quiet_tensorflow
    from ..workflows import report as run_report

    with quiet_tensorflow():  # a classifier not evaluated yet is evaluated for its confusion matrix
        result = run_report(run, output)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"wrote {result.output} ({', '.join(result.sections)})")


@cli.command()
@run_argument
@click.option(
    "--format",
    "-f",
    "export_format",
    required=True,
    type=click.Choice(["savedmodel", "tflite", "onnx"]),
    help="What serving system the export is for.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(),
    help="Where to write it (default: RUN/export/savedmodel, model.tflite or model.onnx).",
)
def export(run, export_format, output):
    """Export a trained RUN's model for serving, checked to predict as the run does.

    savedmodel: a TensorFlow SavedModel (TF Serving, `tf.saved_model.load(...).serve`);
    tflite: a TensorFlow Lite flatbuffer; onnx: input `inputs`, output `outputs`; needs `pip install 'nnflow[onnx]'`.
    The export is written only once its predictions on a few of the run's rows match.

    \b
    Examples:
        nnflow export runs/iris-mlp --format savedmodel
        nnflow export runs/iris-mlp --format tflite -o iris.tflite
    """
    from .._tf import quiet_tensorflow
    from ..workflows import export as run_export

    with quiet_tensorflow():
        result = run_export(run, export_format, output)
    click.echo(
        f"wrote {result.output} ({result.format}; {result.rows_checked} rows checked, max difference {result.max_difference:.2g})"
    )


@cli.command("runs")
@click.argument("name", metavar="NAME", required=False)
@json_option
def runs_command(name, as_json):
    """List the runs under runs/ (or those named NAME): time, status, epochs, key metrics.

    \b
    Examples:
        nnflow runs
        nnflow runs iris-mlp --json
    """
    from ..workflows import list_runs

    json_mode("runs", as_json)
    rows = list_runs(name)
    if as_json:
        emit_json("runs", {"ok": True, "runs": [row.to_json() for row in rows]})
    else:
        click.echo(render.runs_table(rows))


@cli.command()
@click.argument("runs", metavar="RUN RUN... | CANDIDATE --baseline BASE", nargs=-1, required=True)
@click.option(
    "--baseline",
    metavar="BASE",
    help="Gate one CANDIDATE run against BASE: a run folder, runs/NAME, a metrics.json file, "
    "or runs:/RUN_ID (with --mlflow). Exit 5 when a gated metric got worse.",
)
@click.option(
    "--tolerance",
    "tolerances",
    metavar="METRIC=DELTA",
    multiple=True,
    help="With --baseline: gate METRIC, which may be worse by DELTA (0.01, or 2% of the baseline's value); "
    "repeatable. Default: the candidate's expect: metrics, with no tolerance.",
)
@click.option("--mlflow", is_flag=True, help="With --baseline runs:/RUN_ID: read the baseline from that MLflow run.")
@json_option
@summary_option
def compare(runs, baseline, tolerances, mlflow, as_json, summary):
    """Compare runs: their metrics side by side, and every key where their experiment files differ.

    Each RUN is a run folder or runs/NAME (the newest of that name).

    With --baseline, gate one CANDIDATE run against BASE instead (a pull request against the
    main branch): each metric of --tolerance (else of the candidate's expect: section) may be
    worse than the baseline's by its tolerance, and no more; a metric that either side lacks
    fails. Higher is better unless the metric's expect: gate or its name (loss, error, mse, ...)
    says lower. Exit 5 when a gate fails.

    \b
    Examples:
        nnflow compare runs/iris-mlp/2026-11-27_08-02-37 runs/iris-mlp
        nnflow compare ci-runs/train --baseline baseline/metrics.json --tolerance test_accuracy=0.02
        nnflow compare runs/iris-mlp --baseline runs/iris-mlp/2026-11-27_08-02-37 --tolerance val_loss=5%
    """
    from ..errors import ConfigError, GateError, Problem
    from ..workflows import compare_runs, compare_to_baseline, parse_tolerances

    json_mode("compare", as_json)
    if baseline is None:
        flag = next(
            (f for f, given in (("--tolerance", tolerances), ("--mlflow", mlflow), ("--summary", summary)) if given),
            None,
        )
        if flag:
            raise ConfigError(
                Problem(f"needs --baseline: nnflow compare CANDIDATE --baseline BASE {flag} ...", where=flag)
            )
        comparison = compare_runs(list(runs))
        if as_json:
            emit_json("compare", {"ok": True, **comparison.to_json()})
        else:
            click.echo(render.comparison_text(comparison))
        return
    if len(runs) != 1:
        raise ConfigError(
            Problem(f"--baseline gates one CANDIDATE run; received {len(runs)}: {' '.join(runs)}.", where="RUN")
        )
    result = compare_to_baseline(runs[0], baseline, parse_tolerances(tolerances), mlflow=mlflow)
    if as_json:
        emit_json("compare", result.to_json())
    else:
        click.echo(render_baseline.baseline_text(result))
    write_summary(render_baseline.baseline_markdown(result), summary)
    if not result.passed:
        raise GateError(result.failure)


@cli.command()
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, writable=True), help="Write to this file instead of stdout."
)
def schema(output):
    """Print the JSON Schema of the experiment file format, for editors.

    With the YAML language server (VS Code's YAML extension and others), put this
    first line in an experiment file:

    \b
        # yaml-language-server: $schema=./nnflow.schema.json
    \b
    Example:
        nnflow schema -o nnflow.schema.json
    """
    from ..errors import ConfigError, Problem
    from ..fileio import output_problem
    from ..runs import write_text_atomic
    from ..schema import json_schema

    if output and (problem := output_problem(output)):
        raise ConfigError(Problem(f"cannot write {output}: {problem}.", where="--output"))
    text = json.dumps(json_schema(), indent=1) + "\n"
    if output:
        write_text_atomic(output, text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
