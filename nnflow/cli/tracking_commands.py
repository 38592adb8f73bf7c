"""The command that copies finished runs into a tracking store: log."""

from __future__ import annotations

import click

from .group import cli, emit_json, json_mode, json_option, mlflow_option, needs_mlflow, say


@cli.command("log")
@click.argument("runs", metavar="RUN...", nargs=-1, required=True)
@mlflow_option
@json_option
def log_command(runs, mlflow, as_json):
    """Copy finished run folders (or sweep folders) into MLflow, as `--mlflow` would have.

    For runs trained without --mlflow, or whose logging failed (run.json says so). Each
    run's MLflow run is found by the run's id and brought up to date: logging twice
    creates no duplicates. A sweep folder becomes one parent run with a nested run per
    trial; its best trial logs the model. Where: $MLFLOW_TRACKING_URI (default
    ./mlflow.db) and $MLFLOW_EXPERIMENT_NAME (default the run's name).

    Exit 7 when a run could not be logged (MLflow unreachable), 6 when a run file is damaged; the
    other runs are logged all the same.

    \b
    Examples:
        nnflow log runs/iris-mlp --mlflow
        MLFLOW_TRACKING_URI=http://mlflow.internal:5000 nnflow log runs/iris-mlp/* --mlflow
        nnflow log runs/iris-search/sweep-iris-search --mlflow
    """
    from .._tf import quiet_tensorflow
    from ..errors import ConfigError, Problem, error_for_exit_code
    from ..workflows.log_runs import log_runs

    json_mode("log", as_json)
    if not mlflow:
        raise ConfigError(
            Problem("say where to log: --mlflow (the only tracking store nnflow logs to).", where="--mlflow")
        )
    needs_mlflow(mlflow)
    with quiet_tensorflow():  # the model logged is loaded once to check it predicts
        logged = log_runs(list(runs), on_note=lambda note: say(f"note: {note}", err=True))
    failed = [entry for entry in logged if entry.error]
    if as_json:
        emit_json("log", {"ok": not failed, "runs": [entry.to_json() for entry in logged]})
    else:
        for entry in logged:
            say(_line(entry))
    if failed:
        codes = {entry.exit_code for entry in failed}
        code = next((known for known in (6, 7) if known in codes), max(codes))  # a damaged run file first
        raise error_for_exit_code(code)(
            f"{len(failed)} of {len(logged)} run(s) could not be logged to MLflow: "
            + "; ".join(f"{entry.folder}: {entry.error}" for entry in failed)
            + ". Run the same command again once that is mended: it continues where it stopped."
        )


def _line(entry) -> str:
    if entry.error:
        return f"FAILED  {entry.folder}: {entry.error}"
    if entry.parent:
        return f"sweep   {entry.folder} -> MLflow run {entry.run_id}"
    parts = [f"{entry.points} epoch metric points"] if entry.points or entry.created else []
    parts += ["model"] if entry.model else []
    done = ("new, " if entry.created else "completed: ") + ", ".join(parts) if parts else "up to date"
    return f"logged  {entry.folder} -> MLflow run {entry.run_id} ({done})"
