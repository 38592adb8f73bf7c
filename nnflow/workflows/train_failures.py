"""How a training run that stops with an error is marked: interrupted (resumable) or failed, and what
is said to continue it. Called while the error is being handled, so a bare `raise` re-raises it as it was."""

from __future__ import annotations

from typing import NoReturn

from ..errors import OutputError


def mark_stopped(error: BaseException, record, distribution) -> NoReturn:
    """Mark the run as `error` leaves it, then raise: the error, or one that says how to continue the run.

    Called while `error` is being handled, so a bare `raise` re-raises it as it was.
    """
    from .. import distribute
    from ..errors import DamagedRunError, NnflowError, TrainingError

    if isinstance(error, KeyboardInterrupt):  # Ctrl-C, or SIGTERM (errors.Terminated)
        record.finish("interrupted", checkpointed=True, best_effort=True)
        if record.running:
            error.run_dir = record.run_dir  # type: ignore[attr-defined]  # for the message that says how to resume
        raise
    if isinstance(error, (OutputError, OSError)):
        _mark_write_failure(error, record)
    if isinstance(error, DamagedRunError):
        raise  # a run file is damaged: the run's status stays as it was
    if isinstance(error, NnflowError):
        if not record.finished:  # a NaN loss has marked the run already
            record.finish("failed", error=str(error))
        raise
    lost = distribute.lost_worker(distribution, error)
    if lost is None:
        record.finish("failed", error=f"{type(error).__name__}: {error}")
        raise
    # Not this run's fault: keep it resumable, from the last epoch every worker finished.
    record.finish("interrupted", error=lost, checkpointed=True)
    run_dir = record.run_dir
    how = (
        f"`nnflow train --resume {run_dir}`"
        if run_dir is not None
        else "`nnflow train --resume` and the chief's run folder"
    )
    raise TrainingError(
        f"{lost}; training stopped. The run is kept as interrupted: start every worker again "
        f"with {how} (each with its TF_CONFIG) to continue it."
    ) from None


def _mark_write_failure(error: OutputError | OSError, record) -> NoReturn:
    """A write that failed (a full disk: nnflow's writes, or a callback's own file) leaves the run
    resumable: every file nnflow wrote is whole, the last checkpoint too. Any other OSError is a bug."""
    import errno

    from .. import runs

    full = error if isinstance(error, OutputError) else runs.disk_error(error)
    if full is None:  # not a write that failed: a bug
        record.finish("failed", error=f"{type(error).__name__}: {error}")
        raise
    record.finish("interrupted", error=str(full), checkpointed=True, best_effort=True)
    if record.running:
        cause = getattr(full, "errno", None)
        fix = "Free some space" if cause in (None, errno.ENOSPC, errno.EDQUOT) else "Fix that"
        raise OutputError(
            f"{full} Training stopped; the run is kept as interrupted. {fix}, then continue it "
            f"with `nnflow train --resume {record.run_dir}`."
        ) from None
    raise full from None
