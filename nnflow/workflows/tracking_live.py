"""`--mlflow`: a run logged into MLflow while it trains.

Training never waits for MLflow. A thread of the tracker's own makes (or, on `--resume`, finds) the
run's MLflow run and sends each epoch's metrics as they come; when the run ends, its folder is
mirrored (`tracking_log.sync_folder`: final metrics, files, the model) and the MLflow run ends as
the run did. A server that cannot be reached is a warning within seconds; training goes on, and
run.json says that tracking failed, so that `nnflow log RUN --mlflow` can mirror it later.
"""

from __future__ import annotations

import copy
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..tracking import Target
from ..tracking.connect import short_error, shown_uri
from ..tracking.content import mlflow_entry
from .tracking_log import LogOptions, record_tracking, sync_folder

_FINISH = object()  # the queue's last item
FINISH_WAIT_SECONDS = 60.0  # at most, for the epochs still queued when training ends
INTERRUPTED_WAIT_SECONDS = 5.0  # ... when it was interrupted: the user is waiting for the prompt
# Epochs are sent at most once a second: a request per epoch (short epochs: dozens a second) would
# take the interpreter from training for as long as the requests take.
SEND_SECONDS = 1.0


class MlflowTracker:
    """Logs one run into MLflow as it trains; give it to `train(..., tracker=)`.

    `parent_run_id` nests the run (a sweep's trial), `log_model` and `pictures` say whether it logs
    the pyfunc model and the curves and report at its end, `tags` are added to its own.
    """

    def __init__(
        self,
        target: Target | None = None,
        *,
        parent_run_id: str | None = None,
        log_model: bool = True,
        pictures: bool = True,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.target = target or Target.from_environment()
        self.options = LogOptions(model=log_model, pictures=pictures, parent_run_id=parent_run_id, tags=tags or {})
        self.rows: queue.Queue = queue.Queue()
        self.thread: threading.Thread | None = None
        self.client: Any = None
        self.run_id: str | None = None
        self.error: str | None = None
        self.on_note: Callable[[str], None] | None = None
        self.folder: Path | None = None

    def start(self, folder: Path, info: dict, on_note: Callable[[str], None] | None) -> None:
        """The run folder exists and run.json says running (`info`): the MLflow run is made, or found
        (a resumed run's), in the background. Nothing is added to `info` until `finish`."""
        from ..tracking import import_mlflow

        import_mlflow()  # here, not in the thread: two threads importing TensorFlow's and MLflow's modules at once can deadlock
        self.on_note = self.options.on_note = on_note
        self.folder = folder
        self.options.run_id = mlflow_entry(info).get("run_id")  # a resumed run's
        started = copy.deepcopy(info)
        self.thread = threading.Thread(target=self._send, args=(folder, started), name="nnflow-mlflow", daemon=True)
        self.thread.start()

    def epoch(self, row: dict) -> None:
        if self.thread is not None:
            self.rows.put(dict(row))

    def finish(self, folder: Path | None, info: dict) -> None:
        """The run has ended (run.json says how): the epochs still queued are sent, the folder mirrored,
        and `info` (run.json, written again by the caller) says where it is logged or why not.

        An interrupted run is mirrored briefly (no pictures, no model: it has none). Interrupted
        while it logs (a second Ctrl-C), `info` says so and the interrupt goes on."""
        if self.thread is None or folder is None:
            return
        interrupted = info.get("status") == "interrupted"
        try:
            self.rows.put(_FINISH)
            self.thread.join(INTERRUPTED_WAIT_SECONDS if interrupted else FINISH_WAIT_SECONDS)
            if self.thread.is_alive() and self.error is None:
                self._failed("MLflow did not take the epochs' metrics in time")
            if self.client is not None:  # MLflow answered once: the folder may go now even after a failed batch
                self.options.pictures = self.options.pictures and not interrupted
                logged = sync_folder(self.client, self.target, folder, self.options)
                self.run_id, self.error = logged.run_id, None
        except Exception as error:  # noqa: BLE001 - tracking never fails the run
            self._failed(short_error(error))
        except BaseException:
            self.error = "interrupted while logging to MLflow"
            raise
        finally:
            record_tracking(info, self.target, self.run_id, self.error)

    def _send(self, folder: Path, info: dict) -> None:
        from ..tracking import content, mirror

        try:
            client = self.target.client()
            run = content.content_of(folder, info, [], {}, extra_tags=self.options.tags)
            experiment_id = self.target.experiment_id(client, info["name"])
            where = mirror.find_or_create(
                client, experiment_id, run, run_id=self.options.run_id, parent_run_id=self.options.parent_run_id
            )
            self.run_id = self.options.run_id = where.run_id
            mirror.log_params_and_tags(client, where.run_id, run)
            if not where.created:  # resumed: MLflow shows it running again
                client.update_run(where.run_id, status="RUNNING")
            self.client = client
            self._send_epochs(run, resumed=not where.created)
        except Exception as error:  # noqa: BLE001
            self._failed(short_error(error))

    def _send_epochs(self, run, *, resumed: bool) -> None:
        """Each epoch's numbers, a request at most every SEND_SECONDS; a resumed run's epochs that
        MLflow holds already (trained again after the last checkpoint) are not sent twice."""
        from ..tracking import mirror

        assert self.run_id is not None
        held: dict[str, set[int]] = {}
        done = False
        while not done:
            rows = [self.rows.get()]
            deadline = time.monotonic() + SEND_SECONDS  # what comes meanwhile goes in the same request
            while rows[-1] is not _FINISH and (left := deadline - time.monotonic()) > 0:
                try:
                    rows.append(self.rows.get(timeout=left))
                except queue.Empty:
                    break
            done = rows[-1] is _FINISH
            points = run.epoch_metrics([row for row in rows if row is not _FINISH])
            if resumed:
                for key in {key for key, _, _ in points} - held.keys():
                    held[key] = {metric.step for metric in self.client.get_metric_history(self.run_id, key)}
                points = [(key, value, step) for key, value, step in points if step not in held[key]]
            mirror.log_points(self.client, self.run_id, points)

    def _failed(self, error: str) -> None:
        if self.error is not None:
            return
        self.error = error
        if self.on_note:
            self.on_note(
                f"MLflow tracking stopped ({shown_uri(self.target.resolved_uri())}): {error}. Training goes on; "
                f"run.json records it. Once MLflow is back: nnflow log {self.folder or 'RUN'} --mlflow"
            )
