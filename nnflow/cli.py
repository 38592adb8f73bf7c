"""The `nnflow` command: parse, call one workflow, print. The only module that prints or exits.

Imports nothing heavy at module level: `nnflow --help` and `nnflow check` never load
TensorFlow, Keras or pandas.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading

import click

from . import __version__
from . import render
from .errors import NnflowError, Terminated, interrupt_exit_code

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


JSON_FORMAT = 1  # the version of every --json document's shape (docs/ci.md, docs/json/)


class _Group(click.Group):
    """Maps nnflow's exceptions to SPEC.md's exit codes, in one place.

    Under --json an error is also one JSON document on stdout, so a pipeline always has one.
    """

    def invoke(self, ctx: click.Context):
        try:
            with sigterm_raises():
                return super().invoke(ctx)
        except NnflowError as error:
            click.echo(f"Error: {error}", err=True)
            command = ctx.meta.get("nnflow.json")
            if command:
                emit_json(command, {"ok": False, "exit_code": error.exit_code, "error": _error_json(error)})
            sys.exit(error.exit_code)
        except KeyboardInterrupt as interrupt:  # a command that keeps no state to save: 130 (143 for SIGTERM), not click's "Aborted!" (1)
            click.echo("\n" + _interrupted(interrupt) + ".", err=True)
            sys.exit(interrupt_exit_code(interrupt))


@contextlib.contextmanager
def sigterm_raises():
    """While a command runs, SIGTERM raises `Terminated` (a KeyboardInterrupt) where the process is,
    so that it gets the clean-up Ctrl-C gets and exits 143. The previous handler comes back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:  # None: a handler set from C, which Python cannot put back; the default is the nearest
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _interrupted(interrupt: BaseException) -> str:
    return "Terminated (SIGTERM)" if isinstance(interrupt, Terminated) else "Interrupted"


def _error_json(error: NnflowError) -> dict:
    problems = getattr(error, "problems", None)
    document = {"kind": error.title, "message": str(error)}
    if problems:
        document["problems"] = [{"where": p.where, "path": p.path, "message": p.message} for p in problems]
    return document


def emit_json(command: str, document: dict) -> None:
    """One JSON document on stdout: `{"command": ..., "format": 1, ...}`; never a second one."""
    context = click.get_current_context(silent=True)
    if context is not None:
        context.meta.pop("nnflow.json", None)  # a gate failing after this is said on stderr only
    from .runs import finite

    # NaN and Infinity are not JSON: they are written as null, as in the run's own files.
    click.echo(json.dumps(finite({"command": command, "format": JSON_FORMAT, **document}), indent=2, allow_nan=False))


def json_mode(command: str, as_json: bool) -> None:
    """Remember that this command answers in JSON, errors included."""
    if as_json:
        click.get_current_context().meta["nnflow.json"] = command


def write_summary(markdown: str, summary: str | None) -> None:
    """Append a Markdown summary to --summary FILE and to GitHub's step summary when it is set.

    A side output: a summary that cannot be written is a warning, never a failed job.
    """
    from .runs import append_text

    targets = {os.path.realpath(t): t for t in (summary, os.environ.get("GITHUB_STEP_SUMMARY")) if t}
    for target in targets.values():
        try:
            append_text(target, markdown + "\n")
        except OSError as error:
            click.echo(f"warning: cannot write the summary to {target}: {error.strerror or error}", err=True)


def raise_failed_gates(result) -> None:
    """Exit 5, naming each failing gate with its value, once the result has been shown."""
    from .errors import GateError

    failed = result.failed_gates
    if failed:
        raise GateError(f"{len(failed)} of {len(result.gates)} expect: gate(s) failed: " + "; ".join(map(str, failed)) + ".")


def summary_option(function):
    return click.option(
        "--summary", metavar="FILE", type=click.Path(dir_okay=False),
        help="Append a Markdown summary here (also done to $GITHUB_STEP_SUMMARY when it is set).",
    )(function)


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
    nnflow sweep configs/iris.yaml --grid layers.0.units=8,32 --jobs 2   # a grid of runs, ranked
    nnflow plot runs/iris-mlp           # learning curves (PNG); --gradients for gradient norms
    nnflow report runs/iris-mlp         # one HTML page: curves, metrics, gates, confusion matrix
    nnflow export runs/iris-mlp -f tflite   # SavedModel, TFLite or ONNX, checked against the run
    nnflow runs                         # the runs under runs/, with status and key metrics
    nnflow compare RUN RUN              # metrics side by side, and how the experiment files differ
    nnflow schema > nnflow.schema.json  # JSON Schema for your editor

    Exit codes: 0 ok, 1 internal error, 2 bad command line or experiment file,
    3 bad data, 4 training failed, 5 an expect: gate failed, 6 model or run file
    refused (unsafe or damaged), 7 an output could not be written (disk full),
    130 Ctrl-C, 143 SIGTERM.
    """


@cli.command()
@config_argument
@set_option
@click.option("--no-data", "no_data", is_flag=True, help="Do not read the data files' headers (for a file whose data does not exist yet).")
@json_option
def check(config, overrides, no_data, as_json):
    """Validate CONFIG, and its data files' headers, without importing TensorFlow.

    Every problem in the file is reported, with its line, column and key path. The data
    files must exist (exit 3 otherwise); their headers must hold the target, `features`
    and `drop` columns. --no-data skips the data files.

    \b
    Example:
        nnflow check configs/iris.yaml --set fit.epochs=5
    """
    from .workflows import check as run_check

    json_mode("check", as_json)
    result = run_check(config, overrides, data=not no_data)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if as_json:
        emit_json("check", result.to_json())
        return
    spec = result.spec
    input_shape = f"input {list(spec.input_shape)}" if spec.input_shape else "input from data"
    data = ""
    if result.data is not None:
        count = len(result.data.features)
        data = f"; data: {count} feature column{'s' if count != 1 else ''}, target {spec.data.target!r}"
    elif spec.data is not None and no_data:
        data = "; data not read (--no-data)"
    click.echo(f"{config}: OK - {spec.name}: {len(spec.layers)} layers, {input_shape}, loss {spec.compile.loss.name}"
               + (f", {len(spec.expect)} gate(s)" if spec.expect else "") + data)


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

    json_mode("compile", as_json)
    with quiet_tensorflow():
        result = compile_experiment(config, overrides)
    if as_json:
        emit_json("compile", {"ok": True, **result.to_json()})
        return
    click.echo(render.layer_table(result))


@cli.command()
@click.argument("config", metavar="CONFIG", required=False, type=click.Path(dir_okay=False))
@set_option
@click.option("--out", type=click.Path(file_okay=False), help="Write the run here (a new or empty folder) instead of runs/NAME/TIMESTAMP.")
@click.option("--resume", metavar="RUN", help="Continue an interrupted run from its last completed epoch (a run folder, or runs/NAME for the newest).")
@click.option("-q", "--quiet", is_flag=True, help="No progress or notes; print only the run folder.")
@json_option
@summary_option
def train(config, overrides, out, resume, quiet, as_json, summary):
    """Train the model of CONFIG and save a run folder (`nnflow fit` is the same command).

    Reads the data, fits with the file's batch size, epochs and callbacks, evaluates the
    final model on each split, and checks the `expect:` gates. The run folder
    (runs/NAME/TIMESTAMP) holds model.keras, the resolved experiment.yaml,
    preprocessing.json, history.csv, metrics.json and run.json.

    With `fit.distribute: multi_worker`, start the same command on every worker, each
    with its TF_CONFIG; only the chief writes the run folder (docs/distributed.md).

    Exit codes: 3 bad data, 4 the loss became NaN (or a worker was lost), 5 a gate failed.

    \b
    Examples:
        nnflow train configs/iris.yaml
        nnflow train configs/iris.yaml --set fit.epochs=5 --out /tmp/iris-run
        nnflow train --resume runs/iris-mlp
    """
    from ._tf import quiet_tensorflow
    from .errors import ConfigError, Problem
    from .workflows import Progress, train as run_train

    json_mode("train", as_json)
    if (config is None) == (resume is None):
        raise ConfigError(Problem("give an experiment file (nnflow train CONFIG) or a run to continue (--resume RUN), not both." if config else "missing CONFIG: the experiment file to train (nnflow train configs/iris.yaml), or --resume RUN."))
    if resume is not None and (overrides or out):
        raise ConfigError(Problem("--resume continues a run with its own experiment.yaml and folder; --set and --out cannot change them."))
    progress = Progress()
    if not quiet:
        to_stderr = as_json  # under --json, stdout holds the JSON document only
        progress.on_note = lambda note: _say(f"note: {note}", err=to_stderr)
        if sys.stdout.isatty() and not as_json:
            progress.verbose = 1
        else:
            progress.on_epoch = lambda row, epochs: _say(render.epoch_line(row, epochs), err=to_stderr)
    try:
        with quiet_tensorflow():
            result = run_train(config, overrides, out=out, resume=resume, progress=progress)
        if as_json:
            emit_json("train", result.to_json())
        elif quiet:
            if result.run_dir is not None:  # a multi-worker run's other workers have none
                _say(str(result.run_dir))
        else:
            _say(render.train_summary(result))
        if result.run_dir is not None:  # the chief's summary speaks for the run
            write_summary(render.train_markdown(result), summary)
    except KeyboardInterrupt as interrupt:
        run_dir = getattr(interrupt, "run_dir", None)
        click.echo(f"\n{_interrupted(interrupt)}." + (f" Continue with: nnflow train --resume {run_dir}" if run_dir else ""), err=True)
        sys.exit(interrupt_exit_code(interrupt))
    raise_failed_gates(result)


cli.add_command(train, "fit")


def _say(text: str, *, err: bool = False) -> None:
    """Progress and results: a reader that went away (`nnflow train ... | head`) stops the printing, not the training."""
    try:
        click.echo(text, err=err)
    except BrokenPipeError:
        stream = sys.stderr if err else sys.stdout
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
        except (OSError, ValueError):  # not a real file (a test runner's capture)
            pass


def run_argument(function):
    return click.argument("run", metavar="RUN")(function)


@cli.command()
@run_argument
@click.option("--data", "data", metavar="FILE", type=click.Path(dir_okay=False), help="A labelled CSV/Parquet file to evaluate on, instead of the run's test split.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the results here instead of into the run folder.")
@json_option
@summary_option
def evaluate(run, data, output, as_json, summary):
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
    from .workflows import evaluate as run_evaluate

    json_mode("evaluate", as_json)
    with quiet_tensorflow():
        result = run_evaluate(run, data, output=output)
    if as_json:
        emit_json("evaluate", result.to_json())
    else:
        for note in result.notes:
            click.echo(f"note: {note}")
        click.echo(render.evaluation_text(result))
    write_summary(render.evaluation_markdown(result), summary)
    raise_failed_gates(result)


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
@config_argument
@click.option("--grid", "grids", multiple=True, metavar="KEY=V1,V2,...", help="Values to sweep for a key (repeatable; every combination is a run). Values are read as YAML.")
@set_option
@click.option("--jobs", "-j", type=int, default=1, show_default=True, help="Members trained at once, each in its own process.")
@click.option("--metric", metavar="NAME", help="Rank by this metric (default: the first expect: key, else val_loss).")
@click.option("--out", type=click.Path(file_okay=False), help="The sweep folder (default runs/NAME/sweep-TIMESTAMP).")
@json_option
@summary_option
def sweep(config, grids, overrides, jobs, metric, out, as_json, summary):
    """Train every combination of --grid values, in parallel, and rank the runs.

    Each combination is `nnflow train CONFIG --set KEY=VALUE ...` in a process of its own;
    a member that fails (bad override, NaN, failed gate) is reported and the others go on.
    The leaderboard is printed and written as leaderboard.csv and leaderboard.json in the
    sweep folder. Exit code: 0 when every member succeeded, else the worst member's.
    Ctrl-C stops every member cleanly (their runs can be resumed).

    \b
    Example:
        nnflow sweep configs/iris.yaml --grid compile.optimizer.Adam.learning_rate=0.001,0.01 \\
            --grid layers.0.units=8,32 --jobs 2
    """
    from .workflows import sweep as run_sweep

    json_mode("sweep", as_json)

    def event(kind, member):
        if kind == "started":
            click.echo(f"[{member.index:02d}] started   {member.label}", err=True)
        else:
            outcome = member.status if member.exit_code == 0 else f"{member.status} (exit {member.exit_code})"
            click.echo(f"[{member.index:02d}] {outcome}  {member.label}" + (f": {member.error}" if member.error else ""), err=True)

    try:
        result = run_sweep(config, grids, overrides, jobs=jobs, metric=metric, out=out, on_event=event)
    except KeyboardInterrupt as interrupt:
        result = getattr(interrupt, "sweep", None)
        if result is not None:
            click.echo(render.leaderboard(result), err=True)
        click.echo(f"\n{_interrupted(interrupt)}: running members were stopped and marked interrupted; finished runs are intact.", err=True)
        sys.exit(interrupt_exit_code(interrupt))
    if as_json:
        emit_json("sweep", {"ok": result.exit_code == 0, **result.to_json()})
    else:
        click.echo(render.leaderboard(result))
    write_summary(render.sweep_markdown(result), summary)
    if result.exit_code:
        failed = sum(1 for m in result.members if m.exit_code)
        click.echo(f"{failed} of {len(result.members)} member(s) did not succeed; exit {result.exit_code} (the worst).", err=True)
        sys.exit(result.exit_code)


@cli.command()
@click.argument("runs", metavar="RUN...", nargs=-1, required=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="The PNG to write (default: RUN/curves.png, or ./curves.png for several runs).")
@click.option("--gradients", is_flag=True, help="Draw the gradient norms per layer (needs fit.diagnostics.gradient_norms) instead.")
def plot(runs, output, gradients):
    """Learning curves of runs (training and validation, each metric), overlaid; or --gradients.

    \b
    Examples:
        nnflow plot runs/iris-mlp
        nnflow plot runs/lesson-deep-sigmoid runs/lesson-deep-relu -o deep.png
        nnflow plot runs/lesson-deep-sigmoid --gradients
    """
    from .workflows import plot as run_plot

    result = run_plot(list(runs), output, gradients=gradients)
    click.echo(f"wrote {result.output}")


@cli.command()
@run_argument
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="The HTML page to write (default: RUN/report.html).")
def report(run, output):
    """One self-contained HTML page of a run: curves, gradients, metrics, gates, confusion matrix, experiment.

    Images are embedded, so the page can be attached to a CI run or sent as it is. A
    classifier's confusion matrix comes from its evaluation.json (made now if missing).

    \b
    Example:
        nnflow report runs/iris-mlp -o iris-report.html
    """
    from .workflows import report as run_report

    from ._tf import quiet_tensorflow

    with quiet_tensorflow():  # a classifier not evaluated yet is evaluated for its confusion matrix
        result = run_report(run, output)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"wrote {result.output} ({', '.join(result.sections)})")


@cli.command()
@run_argument
@click.option("--format", "-f", "export_format", required=True, type=click.Choice(["savedmodel", "tflite", "onnx"]), help="What serving system the export is for.")
@click.option("--output", "-o", type=click.Path(), help="Where to write it (default: RUN/export/savedmodel, model.tflite or model.onnx).")
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
    from ._tf import quiet_tensorflow
    from .workflows import export as run_export

    with quiet_tensorflow():
        result = run_export(run, export_format, output)
    click.echo(f"wrote {result.output} ({result.format}; {result.rows_checked} rows checked, max difference {result.max_difference:.2g})")


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
    from .workflows import list_runs

    json_mode("runs", as_json)
    rows = list_runs(name)
    if as_json:
        emit_json("runs", {"ok": True, "runs": [row.to_json() for row in rows]})
    else:
        click.echo(render.runs_table(rows))


@cli.command()
@click.argument("runs", metavar="RUN RUN...", nargs=-1, required=True)
@json_option
def compare(runs, as_json):
    """Compare runs: their metrics side by side, and every key where their experiment files differ.

    Each RUN is a run folder or runs/NAME (the newest of that name).

    \b
    Example:
        nnflow compare runs/iris-mlp/2026-11-27_08-02-37 runs/iris-mlp
    """
    from .workflows import compare_runs

    json_mode("compare", as_json)
    comparison = compare_runs(list(runs))
    if as_json:
        emit_json("compare", {"ok": True, **comparison.to_json()})
    else:
        click.echo(render.comparison_text(comparison))


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
    from .errors import ConfigError, Problem
    from .fileio import output_problem
    from .runs import write_text_atomic
    from .schema import json_schema

    if output and (problem := output_problem(output)):
        raise ConfigError(Problem(f"cannot write {output}: {problem}.", where="--output"))
    text = json.dumps(json_schema(), indent=1) + "\n"
    if output:
        write_text_atomic(output, text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


def main(argv=None):
    """Entry point of the `nnflow` console script."""
    code = run(argv)
    if "tensorflow" in sys.modules:
        # Tearing TensorFlow down at interpreter exit takes half a second and does nothing
        # for us: every file we keep is already written, fsynced and renamed. Flush, then go.
        import logging

        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    sys.exit(code)


def run(argv=None) -> int:
    """Run the command line `argv` and return its exit code (without exiting).

    Click runs without its standalone mode so that a Ctrl-C (or SIGTERM) that lands while
    it parses the command line is exit 130 (143), not click's "Aborted!" with exit 1.
    """
    try:
        with sigterm_raises():
            code = cli.main(args=argv, prog_name="nnflow", standalone_mode=False)
    except SystemExit as stop:
        code = stop.code
    except click.exceptions.Abort as abort:  # Ctrl-C or SIGTERM before a command ran
        interrupt = abort.__cause__ if isinstance(abort.__cause__, KeyboardInterrupt) else KeyboardInterrupt()
        click.echo(f"{_interrupted(interrupt)}.", err=True)  # click has ended the ^C line
        return interrupt_exit_code(interrupt)
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except KeyboardInterrupt as interrupt:
        click.echo(f"\n{_interrupted(interrupt)}.", err=True)
        return interrupt_exit_code(interrupt)
    if code is None:
        return 0
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    if isinstance(code, str):  # sys.exit("message"): printed, exit 1 (as Python does)
        click.echo(code, err=True)
        return 1
    return 0  # a command's return value, not an exit code
