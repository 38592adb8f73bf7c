"""`nnflow compare CANDIDATE --baseline BASE` as text and Markdown: the gates per metric, a verdict."""

from __future__ import annotations

from .render import _cell, _table, _value, metric


def _baseline_rows(result) -> list[list[str]]:
    """Per gate: metric, better, baseline, candidate, delta, tolerance, ✓/✗."""
    return [
        [
            gate.metric,
            gate.direction,
            metric(gate.baseline),
            metric(gate.candidate),
            "-" if gate.delta is None else f"{gate.delta:+.4f}",
            gate.tolerance.text if gate.baseline is None else gate.tolerance.describe(gate.baseline),
            "✓" if gate.passed else "✗",
        ]
        for gate in result.gates
    ]


def _baseline_verdict(result) -> str:
    failed = result.failed_gates
    if failed:
        return f"✗ {len(failed)} of {len(result.gates)} gated metric(s) failed against the baseline"
    return f"✓ no regression against the baseline ({len(result.gates)} gated metric(s))"


def baseline_text(result) -> str:
    """`nnflow compare CANDIDATE --baseline BASE`: the gates (better: which way), a verdict, the differing keys."""
    baseline = result.baseline
    lines = [f"candidate = {result.candidate.folder} ({result.candidate.status})"]
    lines += [f"baseline  = {baseline.source} ({baseline.kind})", ""]
    header = ["metric", "better", "baseline", "candidate", "delta", "tolerance", ""]
    lines += _table(header, _baseline_rows(result), right={2, 3, 4})
    gated_by = "--tolerance" if result.gated_by == "--tolerance" else "the candidate's expect: metrics, no tolerance"
    lines += ["", f"{_baseline_verdict(result)}; gated by {gated_by}."]
    lines += [f"  {gate.problem}" for gate in result.failed_gates]
    if baseline.row is not None:
        rows = [[key, *(_value(v) for v in values)] for key, values in result.differences.items()]
        difference = ["Differences in the experiment files:", *_table(["key", "candidate", "baseline"], rows)]
        lines += ["", *(difference if rows else ["The experiment files are the same."])]
    return "\n".join(lines)


def baseline_markdown(result) -> str:
    """`nnflow compare --baseline` as a Markdown section: baseline, candidate, delta and ✓/✗ per metric."""
    verdict = "✓ no regression" if result.passed else f"✗ {len(result.failed_gates)} regression(s)"
    lines = [
        f"### nnflow compare: {_cell(result.candidate.folder)} against {_cell(result.baseline.source)} ({verdict})",
        "",
        "| metric | better | baseline | candidate | delta | tolerance | |",
        "| --- | --- | ---: | ---: | ---: | ---: | :---: |",
    ]
    lines += ["| " + " | ".join(map(_cell, row)) + " |" for row in _baseline_rows(result)]
    if result.failed_gates:
        lines += ["", *(f"- {_cell(gate.problem)}" for gate in result.failed_gates)]
    return "\n".join(lines) + "\n"
