"""One function per command, composing the library; `cli` wraps these and prints.

- check.py: check, compile_experiment (validate; build and describe the model)
- train.py: train (the checks before training: experiment, run folder, data, workers' agreement)
- train_steps.py: run_training (build, open the record, fit)
- train_outcome.py: how a fitted run ends (final metrics, completed or pruned, TrainResult)
- train_failures.py: mark_stopped (a run stopped by an error: marked interrupted or failed)
- new_run.py: new_run_info, resolved_yaml (a new run's run.json and experiment.yaml)
- trained_run.py: load_run (a trained run's model, loaded safely)
- evaluate.py: evaluate (metrics on the test split or a labelled file; the gates)
- predict.py: predict (predictions for a table, streamed)
- compare.py: list_runs, compare_runs (what is in runs/, how runs differ; no TensorFlow)
- baseline.py: compare_to_baseline (one run gated against a baseline: a run, a metrics.json, an MLflow run)
- sweep.py: sweep (an Optuna study of the experiment, trained by warm workers, ranked on a leaderboard)
- sweep_plan.py: make_plan (the space, sampler, pruner, metric, trials and study, from the file and flags)
- sweep_pool.py: Pool (the warm worker processes, watched and replaced; stopped cleanly)
- sweep_worker.py: the worker process (claims trials, trains each in a fresh Keras session, prunes)
- sweep_members.py: Member, SweepResult (each trial read back from the study; the leaderboard files)
- sweep_grid.py, sweep_rank.py: --grid texts; the metric's direction and the worst exit code
- show.py: plot, report (pictures and a shareable page of runs; matplotlib)
- export.py: export (SavedModel, TFLite, ONNX, checked against the run)

The run folder itself (atomic writes, the lock, the checkpoint, reading back) is `nnflow.runs`;
the `expect:` gates (`GateResult`, `check_gates`) sit beside `Gate` in `nnflow.spec`.
"""

from ..spec import GateResult, check_gates
from .baseline import (
    BaselineComparison,
    BaselineGate,
    Tolerance,
    compare_to_baseline,
    metric_direction,
    parse_tolerance,
    parse_tolerances,
)
from .check import CheckResult, CompileResult, LayerRow, check, compile_experiment, describe_model
from .compare import Comparison, RunRow, compare_runs, list_runs
from .evaluate import EvaluateResult, evaluate
from .export import ExportResult, export
from .predict import PredictResult, predict
from .show import PlotResult, ReportResult, plot, report
from .sweep import Member, SweepResult, sweep
from .train import Progress, TrainResult, train

__all__ = [
    "BaselineComparison",
    "BaselineGate",
    "Tolerance",
    "compare_to_baseline",
    "metric_direction",
    "parse_tolerance",
    "parse_tolerances",
    "CheckResult",
    "Comparison",
    "RunRow",
    "compare_runs",
    "list_runs",
    "CompileResult",
    "EvaluateResult",
    "ExportResult",
    "export",
    "GateResult",
    "LayerRow",
    "Member",
    "SweepResult",
    "sweep",
    "PlotResult",
    "PredictResult",
    "ReportResult",
    "Progress",
    "TrainResult",
    "check",
    "check_gates",
    "compile_experiment",
    "describe_model",
    "evaluate",
    "plot",
    "predict",
    "report",
    "train",
]
