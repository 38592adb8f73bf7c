"""The `nnflow` command: parse, call one workflow, print. The only module that prints or exits.

Imports nothing heavy at module level: `nnflow --help` and `nnflow check` never load
TensorFlow, Keras or pandas.
"""

from __future__ import annotations

import json
import os
import sys

import click

from . import __version__
from .errors import NnflowError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _Group(click.Group):
    """Maps nnflow's exceptions to SPEC.md's exit codes, in one place."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except NnflowError as error:
            click.echo(f"Error: {error}", err=True)
            sys.exit(error.exit_code)


def set_option(function):
    return click.option(
        "--set",
        "overrides",
        metavar="KEY=VALUE",
        multiple=True,
        help="Override a key of the file (repeatable): fit.epochs=5, layers.0.units=32, "
        "compile.optimizer.Adam.learning_rate=1e-3. VALUE is read as YAML.",
    )(function)


def json_option(function):
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")(function)


def config_argument(function):
    return click.argument("config", metavar="CONFIG", type=click.Path(dir_okay=False))(function)


@click.group(cls=_Group, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", "-V", prog_name="nnflow", message="%(prog)s %(version)s")
def cli():
    """Run the Keras workflow from a YAML experiment file.

    \b
    nnflow check configs/iris.yaml      # validate the file (fast: no TensorFlow)
    nnflow compile configs/iris.yaml    # build + compile, show the layers and parameters
    nnflow train configs/iris.yaml      # fit, evaluate, check gates; saves runs/NAME/TIMESTAMP
    nnflow evaluate runs/iris-mlp       # metrics, confusion matrix and gates of the newest run
    nnflow predict runs/iris-mlp -i new.csv -o predictions.csv
    nnflow schema > nnflow.schema.json  # JSON Schema for your editor

    Exit codes: 0 ok, 1 internal error, 2 bad command line or experiment file,
    3 bad data, 4 training failed, 5 an expect: gate failed, 6 model file refused.
    """


@cli.command()
@config_argument
@set_option
@json_option
def check(config, overrides, as_json):
    """Validate CONFIG without importing TensorFlow.

    Every problem in the file is reported, with its line, column and key path.

    \b
    Example:
        nnflow check configs/iris.yaml --set fit.epochs=5
    """
    from .workflows import check as run_check

    result = run_check(config, overrides)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    spec = result.spec
    input_shape = f"input {list(spec.input_shape)}" if spec.input_shape else "input from data"
    click.echo(f"{config}: OK - {spec.name}: {len(spec.layers)} layers, {input_shape}, loss {spec.compile.loss.name}"
               + (f", {len(spec.expect)} gate(s)" if spec.expect else ""))


@cli.command("compile")
@config_argument
@set_option
@json_option
def compile_command(config, overrides, as_json):
    """Build and compile the model of CONFIG; print its layers and parameter counts.

    \b
    Example:
        nnflow compile configs/tutorial.yaml
    """
    from ._tf import quiet_tensorflow
    from .workflows import compile_experiment

    with quiet_tensorflow():
        result = compile_experiment(config, overrides)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    click.echo(_layer_table(result))


def _layer_table(result) -> str:
    header = ("Layer", "Class", "Output shape", "Params")
    rows = [(r.name, r.layer_class, r.output_shape, f"{r.params:,}") for r in result.layers]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(4)]

    def line(row):
        return "  ".join(
            str(cell).rjust(widths[i]) if i == 3 else str(cell).ljust(widths[i]) for i, cell in enumerate(row)
        ).rstrip()

    rule = "-" * len(line(header))
    out = [f"Model: {result.spec.name}", rule, line(header), rule, *map(line, rows), rule]
    out.append(f"Total params: {result.total_params:,} (trainable {result.trainable_params:,}, non-trainable {result.non_trainable_params:,})")
    out.append(f"Compiled with optimizer {result.optimizer}, loss {result.loss}"
               + (f", metrics {', '.join(result.metrics)}" if result.metrics else ""))
    return "\n".join(out)


@cli.command()
@click.argument("config", metavar="CONFIG", required=False, type=click.Path(dir_okay=False))
@set_option
@click.option("--out", type=click.Path(file_okay=False), help="Write the run here (a new or empty folder) instead of runs/NAME/TIMESTAMP.")
@click.option("--resume", metavar="RUN", help="Continue an interrupted run from its last completed epoch (a run folder, or runs/NAME for the newest).")
@click.option("-q", "--quiet", is_flag=True, help="No progress or notes; print only the run folder.")
def train(config, overrides, out, resume, quiet):
    """Train the model of CONFIG and save a run folder (`nnflow fit` is the same command).

    Reads the data, fits with the file's batch size, epochs and callbacks, evaluates the
    final model on each split, and checks the `expect:` gates. The run folder
    (runs/NAME/TIMESTAMP) holds model.keras, the resolved experiment.yaml,
    preprocessing.json, history.csv, metrics.json and run.json.

    Exit codes: 3 bad data, 4 the loss became NaN, 5 a gate failed.

    \b
    Examples:
        nnflow train configs/iris.yaml
        nnflow train configs/iris.yaml --set fit.epochs=5 --out /tmp/iris-run
        nnflow train --resume runs/iris-mlp
    """
    from ._tf import quiet_tensorflow
    from .errors import ConfigError, GateError, Problem
    from .workflows import Progress, train as run_train

    if (config is None) == (resume is None):
        raise ConfigError(Problem("give an experiment file (nnflow train CONFIG) or a run to continue (--resume RUN), not both." if config else "missing CONFIG: the experiment file to train (nnflow train configs/iris.yaml), or --resume RUN."))
    if resume is not None and (overrides or out):
        raise ConfigError(Problem("--resume continues a run with its own experiment.yaml and folder; --set and --out cannot change them."))
    progress = Progress()
    if not quiet:
        progress.on_note = lambda note: click.echo(f"note: {note}")
        if sys.stdout.isatty():
            progress.verbose = 1
        else:
            progress.on_epoch = lambda row, epochs: click.echo(_epoch_line(row, epochs))
    try:
        with quiet_tensorflow():
            result = run_train(config, overrides, out=out, resume=resume, progress=progress)
    except KeyboardInterrupt as interrupt:
        run_dir = getattr(interrupt, "run_dir", None)
        click.echo("\nInterrupted." + (f" Continue with: nnflow train --resume {run_dir}" if run_dir else ""), err=True)
        sys.exit(130)
    if quiet:
        click.echo(str(result.run_dir))
    else:
        click.echo(_train_summary(result))
    if result.failed_gates:
        failed = result.failed_gates
        raise GateError(f"{len(failed)} of {len(result.gates)} expect: gate(s) failed: " + "; ".join(map(str, failed)) + ".")


cli.add_command(train, "fit")


def _epoch_line(row: dict, epochs: int) -> str:
    """`epoch  3/100  loss 0.5123  accuracy 0.8100  val_loss 0.4981  val_accuracy 0.8333  (0.02s)`"""
    width = len(str(epochs))
    keys = [key for key in row if key not in ("epoch", "seconds", "learning_rate")]
    keys.sort(key=lambda key: (key.startswith("val_"), key.removeprefix("val_") != "loss"))
    values = "  ".join(f"{key} {row[key]:.4f}" for key in keys)
    return f"epoch {row['epoch']:>{width}}/{epochs}  {values}  ({row['seconds']:.2f}s)"


def _train_summary(result) -> str:
    spec = result.spec
    epochs = spec.fit.epochs
    ran = f"{result.epochs_completed} of {epochs} epochs (stopped early)" if result.stopped_early else f"{epochs} epochs"
    resumed = f", resumed after epoch {result.resumed_at}" if result.resumed_at else ""
    lines = [f"Trained {spec.name}: {ran}{resumed} in {result.seconds:.1f} s.", f"Run folder: {result.run_dir}", ""]
    names = [name for name in spec.metric_names]
    rows = []
    for label, prefix in (("train", ""), ("val", "val_"), ("test", "test_")):
        if any(prefix + name in result.metrics for name in names):
            rows.append([label] + [_metric(result.metrics.get(prefix + name)) for name in names])
    header = ["", *names]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        lines.append("  " + "  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)).rstrip())
    if result.gates:
        lines += ["", "Gates:"]
        for gate in result.gates:
            value = "not reported" if gate.value is None else _metric(gate.value)
            lines.append(f"  {'ok  ' if gate.passed else 'FAIL'}  {gate.metric} {gate.condition}  ({value})")
    return "\n".join(lines)


def _metric(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def run_argument(function):
    return click.argument("run", metavar="RUN")(function)


@cli.command()
@run_argument
@click.option("--data", "data", metavar="FILE", type=click.Path(dir_okay=False), help="A labelled CSV/Parquet file to evaluate on, instead of the run's test split.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the results here instead of into the run folder.")
@json_option
def evaluate(run, data, output, as_json):
    """Metrics of a trained RUN on its test split (or --data FILE), and its gates.

    RUN is a run folder, its model.keras, or runs/NAME for the newest run of that name.
    The data is preprocessed exactly as in training. For classes, also the confusion
    matrix and per-class precision, recall and F1. Results are written to the run
    folder (evaluation.json). Exit 5 when an `expect:` gate fails.

    \b
    Examples:
        nnflow evaluate runs/iris-mlp
        nnflow evaluate runs/iris-mlp --data new_flowers.csv --json
    """
    from ._tf import quiet_tensorflow
    from .errors import GateError
    from .workflows import evaluate as run_evaluate

    with quiet_tensorflow():
        result = run_evaluate(run, data, output=output)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        for note in result.notes:
            click.echo(f"note: {note}")
        click.echo(_evaluation_text(result))
    if result.failed_gates:
        failed = result.failed_gates
        raise GateError(f"{len(failed)} of {len(result.gates)} expect: gate(s) failed: " + "; ".join(map(str, failed)) + ".")


def _evaluation_text(result) -> str:
    lines = [f"Evaluated {result.run_dir} on {result.data}: {result.rows:,} rows.", ""]
    names = list(result.metrics)
    width = max(len(name) for name in names)
    lines += [f"  {name.ljust(width)}  {_metric(value)}" for name, value in result.metrics.items()]
    report = result.report
    if report:
        classes = [str(c) for c in report["classes"]]
        cell = max(6, *(len(c) for c in classes))
        lines += ["", "Confusion matrix (rows: true class, columns: predicted):"]
        lines.append("  " + " " * cell + "  " + "  ".join(c.rjust(cell) for c in classes))
        for name, row in zip(classes, report["confusion_matrix"]):
            lines.append("  " + name.ljust(cell) + "  " + "  ".join(str(v).rjust(cell) for v in row))
        lines += ["", "  " + "class".ljust(cell) + "  precision  recall      f1  support"]
        for row in report["per_class"]:
            lines.append(f"  {str(row['class']).ljust(cell)}  {row['precision']:9.4f}  {row['recall']:6.4f}  {row['f1']:6.4f}  {row['support']:7d}")
        lines.append(f"  {'macro F1'.ljust(cell)}  {report['macro_f1']:.4f}")
    if result.gates:
        lines += ["", "Gates (test_ metrics from this evaluation, the others from training):"]
        for gate in result.gates:
            value = "not reported" if gate.value is None else _metric(gate.value)
            lines.append(f"  {'ok  ' if gate.passed else 'FAIL'}  {gate.metric} {gate.condition}  ({value})")
    lines += ["", f"Written to {result.written}"]
    return "\n".join(lines)


@cli.command()
@run_argument
@click.option("--input", "-i", "input_path", required=True, metavar="FILE", type=click.Path(dir_okay=False), help="The rows to predict for (CSV or Parquet); columns are matched by name.")
@click.option("--output", "-o", metavar="FILE", type=click.Path(dir_okay=False), help="Write here (.csv, .tsv or .parquet) instead of CSV on stdout.")
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
    from ._tf import quiet_tensorflow
    from .workflows import predict as run_predict

    progress = None
    if not quiet and sys.stderr.isatty():
        progress = _ProgressLine()
    try:
        with quiet_tensorflow():
            result = run_predict(run, input_path, output, stream=sys.stdout, on_progress=progress)
    except BrokenPipeError:  # `nnflow predict ... | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
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
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="Write to this file instead of stdout.")
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
    from .runs import write_text_atomic
    from .schema import json_schema

    text = json.dumps(json_schema(), indent=1) + "\n"
    if output:
        write_text_atomic(output, text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


def main(argv=None):
    """Entry point of the `nnflow` console script."""
    try:
        cli.main(args=argv, prog_name="nnflow")
    except SystemExit as stop:
        code = stop.code
    else:
        code = 0
    if "tensorflow" in sys.modules and isinstance(code, (int, type(None))):
        # Tearing TensorFlow down at interpreter exit takes half a second and does nothing
        # for us: every file we keep is already written, fsynced and renamed. Flush, then go.
        import logging

        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code or 0)
    sys.exit(code)
