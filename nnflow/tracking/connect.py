"""Where runs are tracked: MLflow, imported only for `--mlflow`, its extra checked before any work, its
HTTP retries capped so that an unreachable server is a warning within seconds rather than minutes."""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, Problem

INSTALL = "pip install 'nnflow[mlflow]'"

# MLflow retries a failed request for minutes by default (7 retries, backoff factor 2, 120 s timeout):
# right for a rate-limited hosted server, wrong for a training run whose tracking server is down. These
# give one retry and a 5 s timeout (per socket operation: an upload that keeps moving is not cut): a
# server that does not answer costs at most about 11 seconds, once. Set the variables yourself to
# choose otherwise.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
}


def require_mlflow(where: str = "--mlflow") -> None:
    """Exit 2, naming the install command, when the `mlflow` extra is missing (checked without importing it)."""
    if importlib.util.find_spec("mlflow") is None:
        raise ConfigError(Problem(f"tracking in MLflow needs the `mlflow` extra: {INSTALL}", where=where))


def import_mlflow() -> Any:
    """`mlflow`, with nnflow's HTTP limits (unless the environment sets its own) and its logging quiet."""
    require_mlflow()
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    # MLflow prints "View run ... at: URL" on stdout when a run ends: stdout is nnflow's (--json).
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # bars on stderr, per file
    import mlflow

    for name in ("mlflow", "alembic"):  # store migrations and "created experiment" chatter
        logging.getLogger(name).setLevel(logging.WARNING)
    return mlflow


@dataclass(frozen=True)
class Target:
    """An MLflow tracking store and experiment: `MLFLOW_TRACKING_URI` (else MLflow's own default, a
    SQLite file `mlflow.db` in the current folder) and `MLFLOW_EXPERIMENT_NAME` (else the run's name)."""

    uri: str | None = None
    experiment: str | None = None

    @classmethod
    def from_environment(cls) -> Target:
        return cls(os.environ.get("MLFLOW_TRACKING_URI") or None, os.environ.get("MLFLOW_EXPERIMENT_NAME") or None)

    def client(self) -> Any:
        mlflow = import_mlflow()
        return mlflow.MlflowClient(tracking_uri=self.resolved_uri())

    def resolved_uri(self) -> str:
        """The tracking URI in use: ours, or MLflow's default (`sqlite:///<absolute path>/mlflow.db`)."""
        if self.uri:
            return self.uri
        import mlflow

        return str(mlflow.get_tracking_uri())

    def experiment_id(self, client: Any, default_name: str) -> str:
        """The experiment's id, the experiment made if it is new (another process may make it at the same time)."""
        from mlflow.exceptions import MlflowException

        name = self.experiment or default_name
        found = client.get_experiment_by_name(name)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                raise ConfigError(
                    Problem(
                        f"the MLflow experiment {name!r} is deleted; restore it (mlflow experiments restore) "
                        "or choose another with MLFLOW_EXPERIMENT_NAME.",
                        where="MLFLOW_EXPERIMENT_NAME" if self.experiment else "--mlflow",
                    )
                )
            return found.experiment_id
        try:
            return client.create_experiment(name)
        except MlflowException:  # made meanwhile by another process
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id


def shown_uri(uri: str) -> str:
    """A tracking URI as run.json and messages show it: without a password (`http://user:***@host`)."""
    return re.sub(r"(//[^/:@]+):[^/@]*@", r"\1:***@", uri)


def short_error(error: BaseException) -> str:
    """One line of an MLflow or network error (MLflow's own messages run to several paragraphs):
    `cannot reach http://host:5000 (Connection refused)` for a server that does not answer."""
    text = " ".join(str(error).split()) or type(error).__name__
    if "Max retries exceeded" in text or "timed out" in text.lower():
        host = re.search(r"host='([^']+)', port=(\d+)", text)
        reason = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text) or re.search(r"(Read timed out|timed out)", text)
        where = f"http://{host.group(1)}:{host.group(2)}" if host else "the tracking server"
        return f"cannot reach {where} ({reason.group(1).strip() if reason else 'no answer'})"
    return text if len(text) <= 300 else text[:300] + " ..."
