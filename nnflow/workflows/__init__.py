"""One function per command, composing the library; `cli.py` wraps these and prints.

    check.py   check, compile_experiment   (validate; build and describe the model)
    run.py     train                       (fit into a run folder, resume, gates)
    score.py   evaluate, predict           (a trained run's model, loaded safely)
    compare.py list_runs, compare_runs     (what is in runs/, how runs differ; no TensorFlow)
    sweep.py   sweep                       (a grid of overrides, each member a train process)
    show.py    plot, report                (pictures and a shareable page of runs; matplotlib)
    export.py  export                      (SavedModel, TFLite, ONNX, checked against the run)
"""

from .compare import Comparison, RunRow, compare_runs, list_runs
from .check import CheckResult, CompileResult, LayerRow, check, compile_experiment, describe_model
from .run import GateResult, Progress, TrainResult, check_gates, train
from .score import EvaluateResult, PredictResult, evaluate, predict
from .export import ExportResult, export
from .show import PlotResult, ReportResult, plot, report
from .sweep import Member, SweepResult, sweep

__all__ = [
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
