"""Sweeps as Optuna studies: where a study lives (`storage`), what it searches (`search`), and how its
trials are claimed and finished by many processes at once (`trials`). Optuna is imported only when a
function here needs it."""

from .search import GridValues, StudyPlan, encode, finite, make_pruner, make_sampler, open_study, set_texts
from .storage import Storage, open_storage
from .trials import HOST, Counts, claim, counts, fail_lost, heartbeat, record_outcome, requeue_interrupted, wanted

__all__ = [
    "HOST",
    "Counts",
    "GridValues",
    "Storage",
    "StudyPlan",
    "claim",
    "counts",
    "encode",
    "fail_lost",
    "finite",
    "heartbeat",
    "make_pruner",
    "make_sampler",
    "open_storage",
    "open_study",
    "record_outcome",
    "requeue_interrupted",
    "set_texts",
    "wanted",
]
