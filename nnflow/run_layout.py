"""The run folder's layout: where runs go, the names of the files nnflow keeps in one.

runs/NAME/2026-11-27_08-00-21/
    run.json            status, seed, times, versions, data checksums, command line
    experiment.yaml     the resolved file: defaults, overrides and drawn seed applied
    preprocessing.json  feature columns, vocabularies, class names, normalisation
    history.csv         one row per epoch
    metrics.json        final metrics of the saved model on each split
    model.keras         the trained model (written last, only when training succeeded)
    checkpoint.npz      while training: the last completed epoch, for --resume
"""

from __future__ import annotations

from pathlib import Path

RUN_FORMAT = 1  # the layout of a run folder; raise it when an older nnflow could misread a new one
RUNS_ROOT = Path("runs")

RUN_FILE = "run.json"
CHECKPOINT_FILE = "checkpoint.npz"
LOCK_FILE = ".nnflow.lock"
# Every name nnflow itself keeps at the top of a run folder: nothing else may write over them.
RUN_FILES = frozenset(
    {
        RUN_FILE,
        CHECKPOINT_FILE,
        LOCK_FILE,
        "experiment.yaml",
        "preprocessing.json",
        "history.csv",
        "gradients.csv",
        "metrics.json",
        "model.keras",
        "evaluation.json",
        "report.html",
        "curves.png",
        "gradients.png",
        "export",
    }
)


def is_nnflow_name(name: str) -> bool:
    """Whether `name`, at the top of a run folder, is one nnflow writes: its files, and the
    temporary files beside them (`.history.csv.x1y2.tmp`, `.model.x1y2.keras`) that a resume clears."""
    return (
        name in RUN_FILES
        or (name.startswith(".") and name.endswith(".tmp"))
        or (name.startswith(".model.") and name.endswith(".keras"))
    )
