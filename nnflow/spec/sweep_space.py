"""`sweep.space`: each entry's form (a list, an int range, a float range), then its candidates, checked.

A candidate is checked as the trial would use it: written as `--set KEY=VALUE` (`set_text`),
applied to a copy of the file and judged by the same checks as the file, so the messages are
the file's own ("Dense has no argument 'unitz'. Did you mean 'units'?"), moved to the space's
key, the list item or the range's end that lets the value through.
"""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..catalog import did_you_mean
from ..errors import Problem
from ..yamlio import Document, KeyPath, render_path
from .experiment import reported_metric_names
from .problems import MAX_INT64, ProblemCollector, boolean, describe, integer, is_int_or_float, number
from .sweep import Choice, Dimension, FloatRange, IntRange, exact, flow_text, set_text

RANGE_KEYS = ("int", "float", "log", "step")
SMALL_INT_RANGE = 8  # an int range of at most this many values has each of them checked


@dataclass(frozen=True)
class Outcome:
    """What checking the file with some `--set` texts found."""

    problems: list[Problem]
    checked: dict  # check_experiment's values: "compile", "data", ... (None where invalid)
    document: Document  # the copy the texts were applied to


CandidateCheck = Callable[[Sequence[str]], Outcome]


def copy_document(document: Document) -> Document:
    """A copy whose data `apply_overrides` may change; the positions are shared (never changed)."""
    return Document(
        data=copy.deepcopy(document.data),
        source=document.source,
        positions=document.positions,
        key_positions=document.key_positions,
        overridden=dict(document.overridden),
    )


def check_dimension(found: ProblemCollector, value: Any, path: KeyPath) -> Dimension | None:
    """A list of candidates or a range; None when there is none to check (a list that
    lists a value twice is reported, and returned: its candidates can still be checked)."""
    if isinstance(value, list):
        return _check_choice(found, value, path)
    if isinstance(value, dict):
        return _check_range(found, value, path)
    found.report(
        path,
        f"expected a list of candidates (`[16, 32]`) or a range (`{{int: [8, 128]}}`, `{{float: [0.0, 0.5]}}`); "
        f"received {describe(value)}. A value that does not vary belongs in the file itself.",
    )
    return None


def _check_choice(found: ProblemCollector, values: list, path: KeyPath) -> Choice | None:
    if not values:
        found.report(path, "an empty list has no candidates; list at least one value.")
        return None
    seen: set[str] = set()
    for index, value in enumerate(values):
        text = flow_text(value)  # the same text is the same value, type included (`1` is not `1.0`)
        if text in seen:
            found.report(path + (index,), f"the candidate {text} is listed twice.")
        seen.add(text)
    return Choice(tuple(copy.deepcopy(values)))


def _check_range(found: ProblemCollector, value: dict, path: KeyPath) -> Dimension | None:
    unknown = [key for key in value if key not in RANGE_KEYS]
    for key in unknown:
        hint = did_you_mean(key, list(RANGE_KEYS)) or _same_letters(key)
        found.report(
            path + (key,),
            f"unknown key {key!r} in a range. {hint or 'Allowed: ' + ', '.join(RANGE_KEYS) + '.'}".rstrip(),
            key=True,
        )
    kinds = [kind for kind in ("int", "float") if kind in value]
    if len(kinds) != 1:
        if len(kinds) == 2:
            found.report(path, "a range is either `int: [low, high]` or `float: [low, high]`, not both.")
        elif not unknown:
            found.report(path, f"a range needs `int: [low, high]` or `float: [low, high]`; received {describe(value)}.")
        return None
    kind = kinds[0]
    bounds = value[kind]
    if not isinstance(bounds, list) or len(bounds) != 2:
        found.report(path + (kind,), f"expected [low, high]; received {describe(bounds)}.")
        return None
    low, high = (_check_bound(found, kind, bound, path + (kind, index)) for index, bound in enumerate(bounds))
    log = value.get("log", False)
    if boolean(found, log, path + ("log",)) is None:
        return None
    step = _check_step(found, kind, value.get("step"), path + ("step",))
    if low is None or high is None or step is None:
        return None
    if not _range_holds(found, kind, low, high, log, step, path):
        return None
    if kind == "int":
        return IntRange(low, high, log, 1 if step is _NO_STEP else step)
    return FloatRange(float(low), float(high), log, None if step is _NO_STEP else float(step))


_NO_STEP = object()


def _same_letters(key: Any) -> str:
    """`itn` -> int: the range keys are too short for a spelling distance to catch swapped letters."""
    matches = [name for name in RANGE_KEYS if isinstance(key, str) and sorted(key.lower()) == sorted(name)]
    return f"Did you mean {matches[0]!r}?" if matches else ""


def _check_bound(found: ProblemCollector, kind: str, bound: Any, path: KeyPath) -> Any:
    if kind == "int":
        return integer(found, bound, path, minimum=-MAX_INT64 - 1, maximum=MAX_INT64, what="an integer (an int range)")
    if is_int_or_float(bound) and abs(bound) <= sys.float_info.max:  # NaN fails this too
        return bound
    found.report(path, f"expected a finite number; received {describe(bound)}.")
    return None


def _check_step(found: ProblemCollector, kind: str, step: Any, path: KeyPath) -> Any:
    if step is None:
        return _NO_STEP
    if kind == "int":
        return integer(found, step, path, minimum=1, maximum=MAX_INT64, what="a positive integer step")
    if is_int_or_float(step) and 0 < step <= sys.float_info.max:
        return step
    found.report(path, f"expected a step above 0; received {describe(step)}.")
    return None


def _range_holds(found: ProblemCollector, kind: str, low: Any, high: Any, log: bool, step: Any, path: KeyPath) -> bool:
    """low <= high; a log range above 0 and without a step; a step that lands on high."""
    if low > high:
        found.report(path + (kind,), f"the low end {number(low)} is above the high end {number(high)}.")
        return False
    if log and low <= 0:
        found.report(path + (kind, 0), f"a log range needs a low end above 0; received {number(low)}.")
        return False
    if log and step is not _NO_STEP and not (kind == "int" and step == 1):
        found.report(
            path + ("step",), "a log range takes no step: it is drawn on the log scale. Remove `step` or `log`."
        )
        return False
    if step is not _NO_STEP and (exact(high) - exact(low)) % exact(step) != 0:
        found.report(
            path + ("step",),
            f"the step {number(step)} does not divide the range from {number(low)} to {number(high)}; "
            "choose a step, or an end, so that the steps land on the high end.",
        )
        return False
    return True


def candidates(dimension: Dimension, path: KeyPath) -> list[tuple[Any, KeyPath, str]]:
    """The values to check for an entry: (value, where the file writes it, how a message names it).

    Every value of a list. For a range, its two ends and its middle: the file's numeric rules
    are bounds (a positive size, a rate in [0, 1), a number at most N), so a range whose ends
    pass holds nothing they refuse; the middle guards the rare rule that is not a bound.
    A small int range has every value checked.
    """
    if isinstance(dimension, Choice):
        return [
            (value, path + (index,), f"the candidate {flow_text(value)}")
            for index, value in enumerate(dimension.values)
        ]
    kind = "int" if isinstance(dimension, IntRange) else "float"
    ends = [
        (dimension.low, path + (kind, 0), f"the low end {number(dimension.low)}"),
        (dimension.high, path + (kind, 1), f"the high end {number(dimension.high)}"),
    ]
    if isinstance(dimension, IntRange) and dimension.size <= SMALL_INT_RANGE:
        inside = dimension.values()[1:-1]
    else:
        inside = [_middle(dimension)]
    found = (
        ends[:1] + [(value, path + (kind,), f"the value {number(value)} of the range") for value in inside] + ends[1:]
    )
    unique: dict[str, tuple[Any, KeyPath, str]] = {}
    for item in found:
        unique.setdefault(flow_text(item[0]), item)
    return list(unique.values())


def _middle(dimension: IntRange | FloatRange) -> Any:
    if isinstance(dimension, IntRange):
        return dimension.low + (dimension.size - 1) // 2 * dimension.step
    if dimension.step is not None:
        return float(exact(dimension.low) + (dimension.size - 1) // 2 * exact(dimension.step))
    if dimension.log:
        return math.sqrt(dimension.low) * math.sqrt(dimension.high)
    return dimension.low / 2 + dimension.high / 2


def check_candidates(
    found: ProblemCollector,
    space: dict[str, Dimension],
    path: KeyPath,
    check: CandidateCheck,
    metric: str | None,
) -> None:
    """Each candidate of each entry, judged as the file's checks judge `--set KEY=VALUE`.

    A problem every candidate of an entry shares (a key that addresses nothing) is reported once,
    at the key; one that depends on the value, at the list item or the range's end.
    """
    base = {(problem.path, problem.message) for problem in check(()).problems}
    landed: dict[KeyPath, str] = {}
    for key, dimension in space.items():
        runs = []
        for value, where, what in candidates(dimension, path + (key,)):
            text = set_text(key, value)
            outcome = check([text])
            new = [problem for problem in outcome.problems if (problem.path, problem.message) not in base]
            runs.append((where, what, new + _metric_problems(outcome, metric)))
            target = _landing(outcome.document, text)
        shared = set.intersection(*({(p.path, p.message) for p in problems} for _, _, problems in runs))
        for problem_path, message in sorted(shared):
            found.report(path + (key,), f"{problem_path}: {message}" if problem_path else message, key=True)
        refused = [
            (where, what, [p for p in problems if (p.path, p.message) not in shared]) for where, what, problems in runs
        ]
        if any(problems for where, _, problems in refused if _is_end(where)):
            refused = [run for run in refused if _is_end(run[0])]  # a refused end says it; the values inside repeat it
        for where, what, problems in refused:
            for problem in problems:
                found.report(where, f"{what} is refused: {_told(problem)}")
        if not shared:
            _check_overlap(found, path + (key,), target, landed)


def _is_end(where: KeyPath) -> bool:
    """A list item or a range's end (`int[0]`), not a value inside a range (located at `int`)."""
    return isinstance(where[-1], int)


def _told(problem: Problem) -> str:
    return f"{problem.path}: {problem.message}" if problem.path else problem.message


def _metric_problems(outcome: Outcome, metric: str | None) -> list[Problem]:
    """With this value, the runs still report the sweep's metric."""
    compile_spec = outcome.checked.get("compile")
    if metric is None or compile_spec is None:
        return []
    if metric in reported_metric_names(compile_spec.metric_names, outcome.checked.get("data")):
        return []
    return [Problem(f"the runs would not report {metric!r}, the sweep's `metric`.")]


def _landing(document: Document, text: str) -> KeyPath | None:
    """The key path a `--set` text landed on: the longest it is recorded for."""
    paths = [path for path, label in document.overridden.items() if label == f"--set {text}"]
    return max(paths, key=len) if paths else None


def _check_overlap(found: ProblemCollector, path: KeyPath, target: KeyPath | None, landed: dict[KeyPath, str]) -> None:
    """Two entries may not set the same key, or one a key inside the other's."""
    if target is None:
        return
    for other_target, other in landed.items():
        shorter = min(len(target), len(other_target))
        if target[:shorter] == other_target[:shorter]:
            how = "the same key as" if len(target) == len(other_target) else "a key that overlaps what"
            found.report(
                path,
                f"sets {how} `{other}` sets ({render_path(target)}): a space varies each key once; remove one of the two.",
                key=True,
            )
            return
    landed[target] = str(path[-1])
