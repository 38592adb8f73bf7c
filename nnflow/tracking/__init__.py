"""Tracking runs in MLflow: where (`Target`), what a run folder gives it (`content`), and copying it
there idempotently (`mirror`). The workflows compose them: `workflows.tracking_live` (--mlflow),
`tracking_log` (nnflow log), `tracking_sweep` (a sweep's parent run), `tracking_model` (the pyfunc model).

Nothing here imports MLflow at import time: only `--mlflow` (and `nnflow log`) do, through
`import_mlflow`, after `require_mlflow` has checked the extra is installed (exit 2 otherwise).
"""

from __future__ import annotations

from .connect import INSTALL, Target, import_mlflow, require_mlflow

__all__ = ["INSTALL", "Target", "import_mlflow", "mlflow_run_metrics", "require_mlflow"]


def mlflow_run_metrics(uri: str) -> dict[str, float]:
    """The final metrics of the MLflow run `runs:/<run_id>` (for a logged nnflow run: its metrics.json),
    from the tracking store of MLFLOW_TRACKING_URI. A run that is not there is exit 2."""
    from ..errors import ConfigError, Problem
    from .connect import short_error, shown_uri

    run_id = uri.removeprefix("runs:/").strip("/").split("/")[0]
    if not uri.startswith("runs:/") or not run_id:
        raise ConfigError(Problem(f"{uri!r} is not an MLflow run: write runs:/<run_id>.", where="--baseline"))
    import_mlflow()
    from mlflow.exceptions import MlflowException

    target = Target.from_environment()
    try:
        run = target.client().get_run(run_id)
    except MlflowException as error:
        raise ConfigError(
            Problem(
                f"no MLflow run {run_id} in {shown_uri(target.resolved_uri())}: {short_error(error)}. "
                "Set MLFLOW_TRACKING_URI to the store that holds it.",
                where="--baseline",
            )
        ) from None
    return dict(run.data.metrics)
