"""The `nnflow` click group: its options, its JSON documents, and the one place nnflow's
exceptions become exit codes. The commands are in experiment_commands.py (an experiment file)
and run_commands.py (a trained run).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading

import click

from ..errors import NnflowError, Terminated, interrupt_exit_code
from ..version import __version__

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


JSON_FORMAT = 1  # the version of every --json document's shape (docs/ci.md, docs/json/)


class _Group(click.Group):
    """Maps nnflow's exceptions to their exit codes (docs/experiment-file.md), in one place.

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
        except (
            KeyboardInterrupt
        ) as interrupt:  # a command that keeps no state to save: 130 (143 for SIGTERM), not click's "Aborted!" (1)
            click.echo("\n" + interrupted_text(interrupt) + ".", err=True)
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


def interrupted_text(interrupt: BaseException) -> str:
    return "Terminated (SIGTERM)" if isinstance(interrupt, Terminated) else "Interrupted"


def _error_json(error: NnflowError) -> dict:
    problems = getattr(error, "problems", None)
    document: dict[str, object] = {"kind": error.title, "message": str(error)}
    if problems:
        document["problems"] = [{"where": p.where, "path": p.path, "message": p.message} for p in problems]
    return document


def emit_json(command: str, document: dict) -> None:
    """One JSON document on stdout: `{"command": ..., "format": 1, ...}`; never a second one."""
    context = click.get_current_context(silent=True)
    if context is not None:
        context.meta.pop("nnflow.json", None)  # a gate failing after this is said on stderr only
    from ..runs import finite

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
    from ..runs import append_text

    targets = {os.path.realpath(t): t for t in (summary, os.environ.get("GITHUB_STEP_SUMMARY")) if t}
    for target in targets.values():
        try:
            append_text(target, markdown + "\n")
        except OSError as error:
            click.echo(f"warning: cannot write the summary to {target}: {error.strerror or error}", err=True)


def raise_failed_gates(result) -> None:
    """Exit 5, naming each failing gate with its value, once the result has been shown."""
    from ..errors import GateError

    failed = result.failed_gates
    if failed:
        raise GateError(
            f"{len(failed)} of {len(result.gates)} expect: gate(s) failed: " + "; ".join(map(str, failed)) + "."
        )


def summary_option(function):
    return click.option(
        "--summary",
        metavar="FILE",
        type=click.Path(dir_okay=False),
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


def mlflow_option(function):
    return click.option(
        "--mlflow",
        is_flag=True,
        help="Also log to MLflow: the store of $MLFLOW_TRACKING_URI (default ./mlflow.db), the experiment of "
        "$MLFLOW_EXPERIMENT_NAME (default the file's name). Needs pip install 'nnflow[mlflow]'.",
    )(function)


def needs_mlflow(mlflow: bool) -> bool:
    """With --mlflow, the `mlflow` extra must be installed (exit 2 naming the install command); the flag, as given."""
    if mlflow:
        from ..tracking import require_mlflow

        require_mlflow()
    return mlflow


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
    nnflow serve runs/iris-mlp          # predictions over HTTP: POST /predict, GET /health
    nnflow runs                         # the runs under runs/, with status and key metrics
    nnflow compare RUN RUN              # metrics side by side, and how the experiment files differ
    nnflow schema > nnflow.schema.json  # JSON Schema for your editor

    Exit codes: 0 ok, 1 internal error, 2 bad command line or experiment file,
    3 bad data, 4 training failed, 5 an expect: gate failed, 6 model or run file
    refused (unsafe or damaged), 7 an output could not be written (disk full),
    130 Ctrl-C, 143 SIGTERM.
    """


def say(text: str, *, err: bool = False) -> None:
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
        click.echo(f"{interrupted_text(interrupt)}.", err=True)  # click has ended the ^C line
        return interrupt_exit_code(interrupt)
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except KeyboardInterrupt as interrupt:
        click.echo(f"\n{interrupted_text(interrupt)}.", err=True)
        return interrupt_exit_code(interrupt)
    if code is None:
        return 0
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    if isinstance(code, str):  # sys.exit("message"): printed, exit 1 (as Python does)
        click.echo(code, err=True)
        return 1
    return 0  # a command's return value, not an exit code
