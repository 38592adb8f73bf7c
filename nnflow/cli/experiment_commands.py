"""The commands that read an experiment file: check, compile, train (and its alias fit), sweep."""

from __future__ import annotations

import sys

import click

from .. import render
from ..errors import interrupt_exit_code
from .group import (
    cli,
    config_argument,
    emit_json,
    interrupted_text,
    json_mode,
    json_option,
    mlflow_option,
    needs_mlflow,
    raise_failed_gates,
    say,
    set_option,
    summary_option,
    write_summary,
)


@cli.command()
@config_argument
@set_option
@click.option(
    "--no-data",
    "no_data",
    is_flag=True,
    help="Do not read the data files' headers (for a file whose data does not exist yet).",
)
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
    from ..workflows import check as run_check

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
    if result.data is not None and spec.data is not None:
        count = len(result.data.features)
        data = f"; data: {count} feature column{'s' if count != 1 else ''}, target {spec.data.target!r}"
    elif spec.data is not None and no_data:
        data = "; data not read (--no-data)"
    click.echo(
        f"{config}: OK - {spec.name}: {len(spec.layers)} layers, {input_shape}, loss {spec.compile.loss.name}"
        + (f", {len(spec.expect)} gate(s)" if spec.expect else "")
        + data
        + _sweep_summary(spec.sweep)
    )


def _sweep_summary(sweep) -> str:
    """`; sweep: tpe over 4 keys, median pruner, 12 trials` for a file with a sweep: section."""
    from ..spec import DEFAULT_TRIALS

    if sweep is None:
        return ""
    keys = len(sweep.space)
    trials = sweep.trials or (sweep.grid_size if sweep.sampler == "grid" else None) or DEFAULT_TRIALS
    pruner = f", {sweep.pruner} pruner" if sweep.pruner != "none" else ""
    return f"; sweep: {sweep.sampler} over {keys} key{'s' if keys != 1 else ''}{pruner}, {trials} trials"


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
    from .._tf import quiet_tensorflow
    from ..workflows import compile_experiment

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
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Write the run here (a new or empty folder) instead of runs/NAME/TIMESTAMP.",
)
@click.option(
    "--resume",
    metavar="RUN",
    help="Continue an interrupted run from its last completed epoch (a run folder, or runs/NAME for the newest).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress or notes; print only the run folder.")
@mlflow_option
@json_option
@summary_option
def train(config, overrides, out, resume, quiet, mlflow, as_json, summary):
    """Train the model of CONFIG and save a run folder (`nnflow fit` is the same command).

    Reads the data, fits with the file's batch size, epochs and callbacks, evaluates the
    final model on each split, and checks the `expect:` gates. The run folder
    (runs/NAME/TIMESTAMP) holds model.keras, the resolved experiment.yaml,
    preprocessing.json, history.csv, metrics.json and run.json.

    With `fit.distribute: multi_worker`, start the same command on every worker, each
    with its TF_CONFIG; only the chief writes the run folder (docs/distributed.md).

    With --mlflow, the run is also logged to MLflow as it trains (params, each epoch's
    metrics, final metrics, files, and the model as `runs:/<id>/model`); an MLflow that
    cannot be reached is a warning, and training goes on (docs/tracking.md).

    Exit codes: 3 bad data, 4 the loss became NaN (or a worker was lost), 5 a gate failed.

    \b
    Examples:
        nnflow train configs/iris.yaml
        nnflow train configs/iris.yaml --set fit.epochs=5 --out /tmp/iris-run
        nnflow train --resume runs/iris-mlp
        MLFLOW_TRACKING_URI=http://mlflow.internal:5000 nnflow train configs/iris.yaml --mlflow
    """
    from .._tf import quiet_tensorflow
    from ..workflows import train as run_train

    json_mode("train", as_json)
    _check_train_arguments(config, overrides, out, resume)
    tracker = _tracker(mlflow)
    progress = _train_progress(quiet, as_json)
    try:
        with quiet_tensorflow():
            result = run_train(config, overrides, out=out, resume=resume, progress=progress, tracker=tracker)
        _show_training(result, as_json=as_json, quiet=quiet, summary=summary)
    except KeyboardInterrupt as interrupt:
        run_dir = getattr(interrupt, "run_dir", None)
        click.echo(
            f"\n{interrupted_text(interrupt)}."
            + (f" Continue with: nnflow train --resume {run_dir}" if run_dir else ""),
            err=True,
        )
        sys.exit(interrupt_exit_code(interrupt))
    raise_failed_gates(result)


cli.add_command(train, "fit")


def _show_training(result, *, as_json: bool, quiet: bool, summary: str | None) -> None:
    if as_json:
        emit_json("train", result.to_json())
    elif quiet:
        if result.run_dir is not None:  # a multi-worker run's other workers have none
            say(str(result.run_dir))
    else:
        say(render.train_summary(result))
    if result.run_dir is not None:  # the chief's summary speaks for the run
        write_summary(render.train_markdown(result), summary)


def _tracker(mlflow: bool):
    """An MLflow tracker for --mlflow, the extra checked first (exit 2 naming the install command)."""
    if not needs_mlflow(mlflow):
        return None
    from ..workflows.tracking_live import MlflowTracker

    return MlflowTracker()


def _check_train_arguments(config, overrides, out, resume) -> None:
    from ..errors import ConfigError, Problem

    if (config is None) == (resume is None):
        raise ConfigError(
            Problem(
                "give an experiment file (nnflow train CONFIG) or a run to continue (--resume RUN), not both."
                if config
                else "missing CONFIG: the experiment file to train (nnflow train configs/iris.yaml), or --resume RUN."
            )
        )
    if resume is not None and (overrides or out):
        raise ConfigError(
            Problem(
                "--resume continues a run with its own experiment.yaml and folder; --set and --out cannot change them."
            )
        )


def _train_progress(quiet: bool, as_json: bool):
    """Notes and one line per epoch (Keras's own progress bar on a terminal); none with --quiet."""
    from ..workflows import Progress

    progress = Progress()
    if not quiet:
        to_stderr = as_json  # under --json, stdout holds the JSON document only
        progress.on_note = lambda note: say(f"note: {note}", err=to_stderr)
        if sys.stdout.isatty() and not as_json:
            progress.verbose = 1
        else:
            progress.on_epoch = lambda row, epochs: say(render.epoch_line(row, epochs), err=to_stderr)
    return progress


@cli.command()
@config_argument
@click.option(
    "--grid",
    "grids",
    multiple=True,
    metavar="KEY=V1,V2,...",
    help="Try exactly these values of a key (repeatable; every combination is a trial). Replaces the file's sweep.space.",
)
@set_option
@click.option(
    "--trials", type=int, metavar="N", help="Finished trials wanted (default: sweep.trials, else 20; a grid: its size)."
)
@click.option("--sampler", metavar="NAME", help="grid, random, tpe, cmaes or qmc (default: sweep.sampler, else tpe).")
@click.option(
    "--pruner", metavar="NAME", help="none, median, hyperband or successive_halving (default: sweep.pruner, else none)."
)
@click.option(
    "--jobs",
    "-j",
    type=int,
    default=1,
    show_default=True,
    help="Warm worker processes on this machine (each imports TensorFlow once).",
)
@click.option(
    "--storage",
    metavar="URL",
    help="Where the study lives: a journal file's path (default SWEEP/study.journal), or postgresql://, mysql+pymysql://, sqlite:///.",
)
@click.option("--study", metavar="NAME", help="The study to make or join (default: the experiment's name).")
@click.option(
    "--metric",
    metavar="NAME",
    help="Rank by this metric (default: sweep.metric, the first expect: key, else val_loss).",
)
@click.option("--out", type=click.Path(file_okay=False), help="The sweep folder (default runs/NAME/sweep-STUDY).")
@mlflow_option
@click.option(
    "--mlflow-models",
    type=click.Choice(["best", "all"]),
    default="best",
    show_default=True,
    help="With --mlflow: which trials log their model (the best, once the sweep ends; or every trial).",
)
@json_option
@summary_option
def sweep(config, grids, overrides, as_json, summary, **flags):
    """Search the experiment's sweep: space (or the --grid values) with Optuna, and rank the trials.

    Trials are trained by --jobs warm worker processes, each a complete run folder in the sweep
    folder. The study is kept in --storage: run the same command again to continue it, or on
    another machine (with a shared --storage) to add workers to it. A trial that fails is recorded
    and the study goes on. The leaderboard is printed and written as leaderboard.csv and
    leaderboard.json in the sweep folder.

    Exit code: 0 when --trials trials finished (pruned ones count); past sweep.max_failures failed
    trials, the worst trial's code; 2 when a --grid value is refused; 5 when the best trial misses
    an expect: gate. Ctrl-C stops every worker cleanly (the study and the runs can be continued).

    \b
    Examples:
        nnflow sweep configs/iris_sweep.yaml --jobs 2
        nnflow sweep configs/iris.yaml --grid compile.optimizer.Adam.learning_rate=0.001,0.01 \\
            --grid layers.0.units=8,32 --jobs 2
        nnflow sweep configs/iris_sweep.yaml --storage postgresql://user@db/sweeps --study iris-1
        nnflow sweep configs/iris_sweep.yaml --jobs 2 --mlflow

    With --mlflow the sweep is one MLflow run, each trial a run nested under it (pruned ones
    tagged nnflow.status=pruned); the best trial logs the model.
    """
    from ..workflows import sweep as run_sweep

    json_mode("sweep", as_json)
    needs_mlflow(flags["mlflow"])
    try:
        result = run_sweep(
            config,
            grids,
            overrides,
            **flags,  # jobs, trials, sampler, pruner, metric, storage, study, out, mlflow, mlflow_models
            on_event=_sweep_event,
            on_note=lambda note: click.echo(f"note: {note}", err=True),
        )
    except KeyboardInterrupt as interrupt:
        partial = getattr(interrupt, "sweep", None)
        if partial is not None:
            click.echo(render.leaderboard(partial), err=True)
        click.echo(
            f"\n{interrupted_text(interrupt)}: the workers were stopped and their trials marked interrupted; "
            "run the same command again to continue the study.",
            err=True,
        )
        sys.exit(interrupt_exit_code(interrupt))
    if as_json:
        emit_json("sweep", {"ok": result.exit_code == 0, **result.to_json()})
    else:
        click.echo(render.leaderboard(result))
    write_summary(render.sweep_markdown(result), summary)
    if result.exit_code:
        click.echo(render.sweep_verdict(result), err=True)
        sys.exit(result.exit_code)


def _sweep_event(kind: str, member) -> None:
    """A trial started or finished: one line on stderr."""
    tag = f"{member.index:02d}" if member.index else "--"  # a refused grid point is not a trial
    if kind == "started":
        click.echo(f"[{tag}] started   {member.label}", err=True)
    else:
        outcome = member.status if member.exit_code == 0 else f"{member.status} (exit {member.exit_code})"
        click.echo(
            f"[{tag}] {outcome}  {member.label}" + (f": {member.error}" if member.error else ""),
            err=True,
        )
