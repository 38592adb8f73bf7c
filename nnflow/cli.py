"""The `nnflow` command: parse, call one workflow, print. The only module that prints or exits.

Imports nothing heavy at module level: `nnflow --help` and `nnflow check` never load
TensorFlow, Keras or pandas.
"""

from __future__ import annotations

import json
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
    cli.main(args=argv, prog_name="nnflow")
