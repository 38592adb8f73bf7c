"""`compare CANDIDATE --baseline BASE`: gate one run against a baseline (the main branch's run, its
metrics.json, or an MLflow run), failing when a metric is worse than the baseline's beyond a tolerance.

Pure Python, like `compare`: run folders are read through `nnflow.runs` (checked; a damaged one is
exit 6), a user's metrics.json is checked here (a malformed one is exit 2, naming the file).
"""

from __future__ import annotations

import difflib
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError, Problem
from ..spec import GATE_PATTERN, Gate
from .compare import RunRow, experiment_differences, metric_names, run_row
from .sweep_rank import LOWER_IS_BETTER

MLFLOW_PREFIX = "runs:/"
BASE_FORMS = "a run folder, runs/NAME, a metrics.json file, or runs:/RUN_ID with --mlflow"
_DIRECTION_OF = {">=": "higher", ">": "higher", "<=": "lower", "<": "lower", "==": "same"}


def metric_direction(metric: str, gates: Iterable[Gate] = ()) -> str:
    """Which way `metric` is better: "higher", "lower", or "same" (it must not move).

    From the candidate's `expect:` gate on the metric when it has one: `>=`/`>` higher, `<=`/`<`
    lower, `==` same (a move either way beyond the tolerance is a regression). Else from its name,
    as the sweep ranks (`workflows.sweep_rank`): losses and errors (loss, error, mse, mae, mape,
    msle, crossentropy, hinge, divergence, poisson, logcosh, kld, huber) lower; the rest
    (accuracy, auc, precision, recall, f1, r2, ...) higher.
    """
    for gate in gates:
        if gate.metric == metric:
            return _DIRECTION_OF[gate.operator]
    name = metric.removeprefix("val_").removeprefix("test_")
    return "lower" if LOWER_IS_BETTER.search(name) else "higher"


@dataclass(frozen=True)
class Tolerance:
    """How much worse than the baseline a metric may be: `0.01` (absolute) or `2%` (of the baseline's value)."""

    amount: float
    relative: bool = False
    text: str = "0"

    @classmethod
    def parse(cls, text: str, where: str) -> Tolerance:
        """`"0.01"` -> absolute 0.01; `"2%"` -> relative 0.02; anything else is a ConfigError at `where`."""
        number = text.strip().removesuffix("%").strip()
        try:
            amount = float(number)
        except ValueError:
            amount = math.nan
        if not math.isfinite(amount) or amount < 0:
            wrong = "is negative" if amount < 0 else "is not a number"
            raise ConfigError(
                Problem(
                    f"the tolerance {text.strip()!r} {wrong}; write an absolute one (test_accuracy=0.01) "
                    f"or a percentage of the baseline's value (test_loss=5%).",
                    where=where,
                )
            )
        relative = text.strip().endswith("%")
        return cls(amount / 100 if relative else amount, relative, text.strip())

    def allowed(self, baseline: float) -> float:
        """The tolerance in the metric's units: a relative one is |baseline| * percentage."""
        return abs(baseline) * self.amount if self.relative else self.amount

    def describe(self, baseline: float) -> str:
        """`0.01`, or `2% = 0.0187` for a relative tolerance."""
        return f"{self.text} = {self.allowed(baseline):.4g}" if self.relative else self.text


NO_TOLERANCE = Tolerance(0.0)


def parse_tolerance(text: str) -> tuple[str, Tolerance]:
    """`--tolerance METRIC=DELTA`: `"test_accuracy=0.01"` -> ("test_accuracy", Tolerance(0.01))."""
    metric, equals, delta = text.partition("=")
    if not equals or not metric.strip() or not delta.strip():
        raise ConfigError(
            Problem(
                f"a tolerance is METRIC=DELTA, like test_accuracy=0.01 or test_loss=5%; received {text!r}.",
                where="--tolerance",
            )
        )
    return metric.strip(), Tolerance.parse(delta, f"--tolerance {text}")


def parse_tolerances(texts: Iterable[str]) -> dict[str, Tolerance]:
    """Every `--tolerance METRIC=DELTA`, one per metric."""
    tolerances: dict[str, Tolerance] = {}
    for text in texts:
        metric, tolerance = parse_tolerance(text)
        if metric in tolerances:
            raise ConfigError(
                Problem(
                    f"{metric} has two tolerances ({tolerances[metric].text} and {tolerance.text}); give one.",
                    where=f"--tolerance {text}",
                )
            )
        tolerances[metric] = tolerance
    return tolerances


@dataclass(frozen=True)
class Baseline:
    """What a candidate is compared with: its kind, where it came from, its metrics (and its run, if one)."""

    kind: str  # "run" | "metrics.json" | "mlflow"
    source: str  # the run folder, the file, or the runs:/ URI
    metrics: Mapping[str, float | None]
    row: RunRow | None = None

    def to_json(self) -> dict:
        if self.row is not None:
            return self.row.to_json()
        return {"run": None, "kind": self.kind, "source": self.source, "metrics": dict(self.metrics)}


@dataclass(frozen=True)
class BaselineGate:
    """One gated metric: the candidate's value against the baseline's, judged with its tolerance."""

    metric: str
    baseline: float | None
    candidate: float | None
    tolerance: Tolerance
    direction: str  # "higher" | "lower" | "same"
    problem: str | None  # why the gate failed; None when it passed

    @property
    def passed(self) -> bool:
        return self.problem is None

    @property
    def delta(self) -> float | None:
        """candidate - baseline (negative: the candidate's value is lower)."""
        return None if self.baseline is None or self.candidate is None else self.candidate - self.baseline

    @property
    def allowed(self) -> float | None:
        return None if self.baseline is None else self.tolerance.allowed(self.baseline)

    def __str__(self) -> str:
        return self.problem or f"{self.metric} holds against the baseline"

    def to_json(self) -> dict:
        return {
            "metric": self.metric,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "delta": self.delta,
            "tolerance": self.allowed,
            "tolerance_text": self.tolerance.text,
            "direction": self.direction,
            "passed": self.passed,
            "problem": self.problem,
        }


@dataclass(frozen=True)
class BaselineComparison:
    """A candidate run gated against a baseline; `compare`'s document, with a `baseline` section."""

    candidate: RunRow
    baseline: Baseline
    gates: tuple[BaselineGate, ...]
    gated_by: str  # "--tolerance" | "expect"
    differences: dict[str, list[Any]] = field(default_factory=dict)  # when the baseline is a run too

    @property
    def failed_gates(self) -> list[BaselineGate]:
        return [gate for gate in self.gates if not gate.passed]

    @property
    def passed(self) -> bool:
        return not self.failed_gates

    @property
    def failure(self) -> str:
        """The exit-5 message: each failed gate's problem."""
        failed = self.failed_gates
        problems = "; ".join(gate.problem or "" for gate in failed)
        return f"{len(failed)} of {len(self.gates)} baseline gate(s) failed: {problems}."

    def to_json(self) -> dict:
        sides = [self.candidate.metrics, self.baseline.metrics]
        return {
            "ok": self.passed,
            "runs": [self.candidate.to_json(), self.baseline.to_json()],
            "metrics": {name: [side.get(name) for side in sides] for name in metric_names(sides)},
            "differences": self.differences,
            "baseline": {
                "source": self.baseline.source,
                "kind": self.baseline.kind,
                "candidate": str(self.candidate.folder),
                "gated_by": self.gated_by,
                "gates": [gate.to_json() for gate in self.gates],
                "passed": self.passed,
            },
        }


def compare_to_baseline(
    candidate: str | Path,
    base: str | Path,
    tolerances: Mapping[str, str | Tolerance] | None = None,
    *,
    mlflow: bool = False,
) -> BaselineComparison:
    """Gate the run `candidate` against `base` (BASE_FORMS): each gated metric may be worse by its tolerance.

    The gated metrics are those of `tolerances` (metric -> `"0.01"`, `"2%"` or a Tolerance), else the
    candidate's `expect:` metrics with no tolerance; neither is a ConfigError. A metric that either side
    lacks fails its gate. A regression is a failed gate in the result, not an exception.
    """
    from ..runs import find_run

    checked = {
        metric: tolerance
        if isinstance(tolerance, Tolerance)
        else Tolerance.parse(tolerance, f"--tolerance {metric}={tolerance}")
        for metric, tolerance in (tolerances or {}).items()
    }
    _check_form(base, mlflow)  # a usage error before any file is read
    folder = find_run(candidate)
    row = run_row(folder)
    expect = _expect_gates(folder)
    if not (checked or expect):
        raise ConfigError(
            Problem(
                f"nothing to gate: {folder} has no expect: section. Pass --tolerance METRIC=DELTA "
                "(e.g. --tolerance test_accuracy=0.01), or add an expect: section to the experiment file.",
                where="--baseline",
            )
        )
    baseline = read_baseline(base, mlflow=mlflow)
    gated = checked or {gate.metric: NO_TOLERANCE for gate in expect}
    gates = tuple(
        _judge(metric, tolerance, metric_direction(metric, expect), row, baseline)
        for metric, tolerance in gated.items()
    )
    differences = experiment_differences([folder, baseline.row.folder]) if baseline.row else {}
    return BaselineComparison(row, baseline, gates, "--tolerance" if checked else "expect", differences)


def _expect_gates(folder: Path) -> list[Gate]:
    """The candidate's `expect:` gates, from its resolved experiment.yaml (what it was trained to meet)."""
    from ..runs import damaged, read_experiment

    section = read_experiment(folder).get("expect") or {}
    if not isinstance(section, dict):
        raise damaged(folder / "experiment.yaml", "`expect` must be a mapping of metric -> condition")
    gates = []
    for metric, condition in section.items():
        match = GATE_PATTERN.match(condition) if isinstance(condition, str) else None
        if match is None:
            raise damaged(folder / "experiment.yaml", f"`expect.{metric}` is not a condition such as '>= 0.9'")
        gates.append(Gate(str(metric), match.group(1), float(match.group(2))))
    return gates


def read_baseline(base: str | Path, *, mlflow: bool = False) -> Baseline:
    """BASE as a Baseline: an MLflow run (`runs:/RUN_ID`), a metrics file, or a run folder (`runs/NAME`: the newest)."""
    from ..runs import RUN_FILE, find_run

    text = str(base)
    if _check_form(base, mlflow) == "mlflow":
        from ..tracking import mlflow_run_metrics

        return Baseline("mlflow", text, _finite(mlflow_run_metrics(text)))
    path = Path(base)
    if not os.path.lexists(path):
        raise ConfigError(Problem(f"{path}: no such file or folder. BASE is {BASE_FORMS}.", where="--baseline"))
    in_run = os.path.lexists(path.parent / RUN_FILE) and path.suffix != ".json"  # a run's model.keras
    if not path.is_dir() and not in_run:
        return Baseline("metrics.json", text, read_metrics_file(path))
    try:
        folder = find_run(path)
    except ConfigError as error:
        raise ConfigError([replace(problem, where="--baseline") for problem in error.problems]) from None
    row = run_row(folder)
    return Baseline("run", str(folder), row.metrics, row)


def _check_form(base: str | Path, mlflow: bool) -> str:
    """The form of BASE: "mlflow" for `runs:/...` (never a folder; needs --mlflow), else "path" (no --mlflow)."""
    text = str(base)
    if not text.strip():
        raise ConfigError(Problem(f"BASE is empty; it is {BASE_FORMS}.", where="--baseline"))
    if text.startswith(MLFLOW_PREFIX):
        if not mlflow:
            raise ConfigError(
                Problem(f"{text} is an MLflow run: add --mlflow to read its metrics.", where="--baseline")
            )
        if not text.removeprefix(MLFLOW_PREFIX).strip("/"):
            raise ConfigError(Problem(f"{text} names no run: write runs:/RUN_ID.", where="--baseline"))
        return "mlflow"
    if mlflow:
        raise ConfigError(
            Problem(
                f"--mlflow reads a runs:/RUN_ID baseline from MLflow; {text} is not one. Drop --mlflow.",
                where="--mlflow",
            )
        )
    return "path"


def read_metrics_file(path: Path) -> dict[str, float | None]:
    """A user's metrics.json (metric -> number), checked: a file that is not one is a ConfigError naming it.

    null and non-finite values are kept as None: a metric without a value, which fails its gate.
    """
    from .. import fileio
    from ..runs import JSON_LIMIT, describe

    where = f"--baseline {path}"
    try:
        document = json.loads(fileio.read_bounded(path, JSON_LIMIT).decode("utf-8"))
    except fileio.NotReadable as error:
        raise ConfigError(Problem(f"cannot read it: {error.reason}.", where=where)) from None
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ConfigError(Problem(f"not a JSON file ({error}); BASE is {BASE_FORMS}.", where=where)) from None
    if not isinstance(document, dict):
        raise ConfigError(
            Problem(f"must be a JSON object of metric -> number; received {describe(document)}.", where=where)
        )
    wrong = [
        Problem(f"must be a number (or null); received {describe(value)}.", path=str(name), where=where)
        for name, value in document.items()
        if not (value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)))
    ]
    if wrong and isinstance(document.get("metrics"), dict) and "command" in document:
        wrong.insert(0, Problem("this is an nnflow --json document: pass the run folder instead.", where=where))
    if wrong:
        raise ConfigError(wrong[:10], source=str(path))
    return _finite(document)


def _finite(metrics: Mapping[str, Any]) -> dict[str, float | None]:
    return {
        str(name): float(value) if value is not None and math.isfinite(value) else None
        for name, value in metrics.items()
    }


def _judge(metric: str, tolerance: Tolerance, direction: str, row: RunRow, baseline: Baseline) -> BaselineGate:
    """One gate: the candidate may be worse than the baseline by the tolerance (exactly the tolerance passes)."""
    ours, theirs = row.metrics.get(metric), baseline.metrics.get(metric)
    problem = _missing(metric, row, baseline)
    if ours is not None and theirs is not None:
        delta = ours - theirs
        worse = {"higher": -delta, "lower": delta, "same": abs(delta)}[direction]
        allowed = tolerance.allowed(theirs)
        # Within rounding, exactly at the tolerance passes: 0.9233 - 0.9333 is -0.010000000000000009.
        if worse > allowed and not math.isclose(worse, allowed, rel_tol=1e-9, abs_tol=1e-12):
            verb = "changed" if direction == "same" else "regressed"
            note = {"higher": "", "lower": "; lower is better", "same": "; an == gate: it must not move"}[direction]
            problem = (
                f"{metric} {verb}: {theirs:.4f} on the baseline, {ours:.4f} here "
                f"({delta:+.4f}, tolerance {tolerance.describe(theirs)}{note})"
            )
    return BaselineGate(metric, theirs, ours, tolerance, direction, problem)


def _missing(metric: str, row: RunRow, baseline: Baseline) -> str | None:
    """Which side lacks `metric` (has no value for it), said plainly; None when both have it."""
    status = "" if row.status == "completed" else f", status {row.status}"
    candidate = f"the candidate run ({row.folder}{status})"
    where = f"the baseline ({baseline.source})"
    lacks = [
        side for side, metrics in ((candidate, row.metrics), (where, baseline.metrics)) if metrics.get(metric) is None
    ]
    if not lacks:
        return None
    if len(lacks) == 2:
        names = list(row.metrics) + [name for name in baseline.metrics if name not in row.metrics]
        close = difflib.get_close_matches(metric, names, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        return f"neither {candidate} nor {where} has {metric}{hint}"
    null = " (it is null: not a finite number)" if metric in (baseline.metrics if lacks[0] == where else {}) else ""
    return f"{lacks[0]} has no {metric}{null}"
