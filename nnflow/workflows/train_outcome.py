"""How a run that fitted ends: the final metrics, the run marked `completed` (or `pruned`: a sweep's
pruner stopped it after an epoch; its folder is just as complete), and the `TrainResult`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..spec import GateResult, Spec
from ..spec.experiment import SPLIT_PREFIXES


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path | None  # None on a multi-worker run's other workers: only the chief writes one
    spec: Spec
    metrics: dict
    gates: tuple[GateResult, ...]
    epochs_completed: int
    stopped_early: bool
    resumed_at: int | None  # the epoch a resumed run continued after
    seconds: float
    timing: dict
    notes: tuple[str, ...]
    status: str  # "completed", or "pruned": `Progress.should_prune` stopped it (its folder is complete all the same)
    distribution: dict | None = None  # fit.distribute as it ran: mode, replicas, workers, task, chief
    tracking: dict | None = None  # run.json's `tracking`: where --mlflow logged the run, or why not

    @property
    def failed_gates(self) -> list[GateResult]:
        return [gate for gate in self.gates if not gate.passed]

    def to_json(self) -> dict:
        return {
            "ok": not self.failed_gates,
            "status": self.status,
            "run": str(self.run_dir) if self.run_dir is not None else None,
            "name": self.spec.name,
            "epochs": {"configured": self.spec.fit.epochs, "completed": self.epochs_completed},
            "stopped_early": self.stopped_early,
            "resumed_after": self.resumed_at,
            "seconds": round(self.seconds, 3),
            "metrics": self.metrics,
            "gates": [gate.to_json() for gate in self.gates],
            "timing": self.timing,
            "distribute": self.distribution,
            "tracking": self.tracking,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Fitted:
    """What fitting left: the history (and gradient norms), and the epoch it was pruned at (None: it was not)."""

    history: list[dict]
    gradients: list[dict] | None
    epochs_completed: int
    initial_epoch: int
    pruned_at: int | None = None

    @property
    def status(self) -> str:
        return "completed" if self.pruned_at is None else "pruned"


def final_metrics(model, prepared, batch_size: int) -> dict[str, float]:
    """The trained model on each split: `loss`, `val_loss`, `test_loss`, ... Every worker evaluates its share:
    the metrics combine all of them."""
    from .. import training

    metrics: dict[str, float] = {}
    for role, prefix in SPLIT_PREFIXES:
        split = prepared.splits.get(role)
        if split is not None:
            scores = training.evaluate(model, training.evaluation_dataset(split.x, split.y, batch_size))
            metrics.update({prefix + key: value for key, value in scores.items()})
    return metrics


def complete(record, fitted: Fitted, metrics: dict, model) -> None:
    """The results written, then the run marked completed (or pruned, with the epoch it stopped after)."""
    record.save_results(fitted.history, fitted.gradients, metrics, model)
    if fitted.pruned_at is not None:
        record.info["pruned_at_epoch"] = fitted.pruned_at
    record.finish(fitted.status)


def outcome(
    spec: Spec,
    record,
    fitted: Fitted,
    metrics: dict,
    gates: tuple[GateResult, ...],
    distribution,
    *,
    notes: list[str],
    resumed: bool,
    started_clock: float,
) -> TrainResult:
    return TrainResult(
        run_dir=record.run_dir if record.writes else None,  # a resumed run's other workers know it, but do not write it
        spec=spec,
        metrics=metrics,
        gates=gates,
        epochs_completed=fitted.epochs_completed,
        stopped_early=fitted.epochs_completed < spec.fit.epochs,
        resumed_at=fitted.initial_epoch if resumed else None,
        seconds=time.perf_counter() - started_clock,
        timing=record.info["timing"],
        notes=tuple(notes),
        status=fitted.status,
        distribution=distribution.to_json() if distribution.mode != "none" else None,
        tracking=record.info.get("tracking"),  # this run's tracking, or an older one's (then `outdated`)
    )
