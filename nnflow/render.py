"""Text for people: the tables and summaries the commands print, and Markdown for CI step summaries.

Functions here return strings; the `cli` package prints them.
"""

from __future__ import annotations


def layer_table(result) -> str:
    header = ("Layer", "Class", "Output shape", "Params")
    rows = [(r.name, r.layer_class, r.output_shape, f"{r.params:,}") for r in result.layers]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(4)]

    def line(row):
        return "  ".join(
            str(cell).rjust(widths[i]) if i == 3 else str(cell).ljust(widths[i]) for i, cell in enumerate(row)
        ).rstrip()

    rule = "-" * len(line(header))
    out = [f"Model: {result.spec.name}", rule, line(header), rule, *map(line, rows), rule]
    out.append(
        f"Total params: {result.total_params:,} (trainable {result.trainable_params:,}, non-trainable {result.non_trainable_params:,})"
    )
    out.append(
        f"Compiled with optimizer {result.optimizer}, loss {result.loss}"
        + (f", metrics {', '.join(result.metrics)}" if result.metrics else "")
    )
    return "\n".join(out)


def epoch_line(row: dict, epochs: int) -> str:
    """`epoch  3/100  loss 0.5123  accuracy 0.8100  val_loss 0.4981  val_accuracy 0.8333  (0.02s)`"""
    width = len(str(epochs))
    keys = [key for key in row if key not in ("epoch", "seconds", "learning_rate")]
    keys.sort(key=lambda key: (key.startswith("val_"), key.removeprefix("val_") != "loss"))
    values = "  ".join(f"{key} {row[key]:.4f}" for key in keys)
    return f"epoch {row['epoch']:>{width}}/{epochs}  {values}  ({row['seconds']:.2f}s)"


def train_summary(result) -> str:
    spec = result.spec
    epochs = spec.fit.epochs
    ran = (
        f"{result.epochs_completed} of {epochs} epochs (stopped early)" if result.stopped_early else f"{epochs} epochs"
    )
    resumed = f", resumed after epoch {result.resumed_at}" if result.resumed_at else ""
    lines = [f"Trained {spec.name}: {ran}{resumed}{_distribution(result.distribution)} in {result.seconds:.1f} s."]
    if result.run_dir is not None:
        lines += [f"Run folder: {result.run_dir}", *_tracking_lines(result.tracking), ""]
    else:
        lines += [f"This is {result.distribution['task']}; the chief wrote the run folder.", ""]
    from .spec import SPLIT_PREFIXES

    names = [name for name in spec.metric_names]
    rows = []
    for split, prefix in SPLIT_PREFIXES:
        if any(prefix + name in result.metrics for name in names):
            label = "val" if split == "validation" else split  # the short label of the terminal table
            rows.append([label] + [metric(result.metrics.get(prefix + name)) for name in names])
    header = ["", *names]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        lines.append(
            "  "
            + "  ".join(
                cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
            ).rstrip()
        )
    if result.gates:
        lines += ["", "Gates:", *_gate_lines(result.gates)]
    return "\n".join(lines)


def _distribution(distribution: dict | None) -> str:
    """` (mirrored, 2 replicas)`, ` (multi_worker, 2 workers, 2 replicas)`, or nothing on one device."""
    if not distribution:
        return ""
    workers = f", {distribution['workers']} workers" if distribution["mode"] == "multi_worker" else ""
    replicas = distribution["replicas"]
    return f" ({distribution['mode']}{workers}, {replicas} replica{'s' if replicas != 1 else ''})"


def _gate_lines(gates) -> list[str]:
    return [
        f"  {'ok  ' if gate.passed else 'FAIL'}  {gate.metric} {gate.condition}  ({'not reported' if gate.value is None else metric(gate.value)})"
        for gate in gates
    ]


def metric(value) -> str:
    """A metric as printed: four decimals, `-` when missing (or not a number)."""
    return f"{value:.4f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def value_text(text: str) -> str:
    """A swept value as shown (tables, folder names): a long float to 4 significant digits; the rest as written."""
    try:
        number = float(text)
    except ValueError:
        return text
    return f"{number:.4g}" if "." in text and len(text) > 8 and number == number else text


def evaluation_text(result) -> str:
    lines = [f"Evaluated {result.run_dir} on {result.data}: {result.rows:,} rows.", ""]
    names = list(result.metrics)
    width = max(len(name) for name in names)
    lines += [f"  {name.ljust(width)}  {metric(value)}" for name, value in result.metrics.items()]
    report = result.report
    if report:
        classes = [str(c) for c in report["classes"]]
        cell = max(6, *(len(c) for c in classes))
        lines += ["", "Confusion matrix (rows: true class, columns: predicted):"]
        lines.append("  " + " " * cell + "  " + "  ".join(c.rjust(cell) for c in classes))
        for name, row in zip(classes, report["confusion_matrix"]):
            lines.append("  " + name.ljust(cell) + "  " + "  ".join(str(v).rjust(cell) for v in row))
        lines += ["", "  " + "class".ljust(cell) + "  precision  recall      f1  support"]
        for row in report["per_class"]:
            lines.append(
                f"  {str(row['class']).ljust(cell)}  {row['precision']:9.4f}  {row['recall']:6.4f}  {row['f1']:6.4f}  {row['support']:7d}"
            )
        lines.append(f"  {'macro F1'.ljust(cell)}  {report['macro_f1']:.4f}")
    if result.gates:
        lines += [
            "",
            "Gates (test_ metrics from this evaluation, the others from training):",
            *_gate_lines(result.gates),
        ]
    lines += ["", f"Written to {result.written}"]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Markdown, for GitHub's step summary (and --summary FILE)


def _cell(value) -> str:
    """Text safe inside a Markdown table cell: no `|` to split it, no line breaks."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _gates_markdown(gates) -> list[str]:
    if not gates:
        return []
    lines = ["", "| gate | value | |", "| --- | ---: | :---: |"]
    for gate in gates:
        value = "not reported" if gate.value is None else f"{gate.value:.4g}"
        lines.append(f"| {_cell(gate.metric + ' ' + gate.condition)} | {value} | {'✓' if gate.passed else '✗'} |")
    return lines


def _tracking_lines(tracking: dict | None) -> list[str]:
    """Where --mlflow logged the run, or why not (`failed`; `outdated`: resumed without --mlflow)."""
    entry = (tracking or {}).get("mlflow")
    if not isinstance(entry, dict):
        return []
    run, status, error = entry.get("run_id"), entry.get("status"), entry.get("error")
    if status == "logged":
        return [f"MLflow: run {run} in {entry.get('tracking_uri')} (model: runs:/{run}/model)"]
    return [
        f"MLflow: run {run} is out of date ({error})"
        if status == "outdated"
        else f"MLflow: not logged ({error}); later: nnflow log RUN --mlflow"
    ]


def train_markdown(result) -> str:
    """`nnflow train`'s result as a Markdown section: metrics per split, gates, run folder."""
    spec = result.spec
    failed = result.failed_gates
    verdict = (
        "✓ all gates passed"
        if result.gates and not failed
        else (f"✗ {len(failed)} gate(s) failed" if failed else "no gates")
    )
    lines = [f"### nnflow train: {spec.name} ({verdict})", ""]
    lines.append(
        f"{result.epochs_completed} of {spec.fit.epochs} epochs{_distribution(result.distribution)} in {result.seconds:.1f} s; run folder {_cell(result.run_dir)}."
    )
    from .spec import SPLIT_PREFIXES

    names = spec.metric_names
    lines += ["", "| split | " + " | ".join(map(_cell, names)) + " |", "| --- |" + " ---: |" * len(names)]
    for label, prefix in SPLIT_PREFIXES:
        if any(prefix + name in result.metrics for name in names):
            lines.append(
                f"| {label} | " + " | ".join(metric(result.metrics.get(prefix + name)) for name in names) + " |"
            )
    lines += _gates_markdown(result.gates)
    return "\n".join(lines) + "\n"


def evaluation_markdown(result) -> str:
    """`nnflow evaluate`'s result as a Markdown section: metrics, per-class scores, gates."""
    failed = result.failed_gates
    verdict = (
        "✓ all gates passed"
        if result.gates and not failed
        else (f"✗ {len(failed)} gate(s) failed" if failed else "no gates")
    )
    lines = [
        f"### nnflow evaluate: {result.spec.name} ({verdict})",
        "",
        f"{result.rows:,} rows of {_cell(result.data)}; run folder {_cell(result.run_dir)}.",
        "",
    ]
    lines += ["| metric | value |", "| --- | ---: |"] + [
        f"| {_cell(name)} | {metric(value)} |" for name, value in result.metrics.items()
    ]
    if result.report:
        lines += ["", "| class | precision | recall | F1 | support |", "| --- | ---: | ---: | ---: | ---: |"]
        for row in result.report["per_class"]:
            lines.append(
                f"| {_cell(row['class'])} | {row['precision']:.4f} | {row['recall']:.4f} | {row['f1']:.4f} | {row['support']} |"
            )
    lines += _gates_markdown(result.gates)
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# runs and compare


def _table(header: list[str], rows: list[list[str]], right: frozenset[int] | set[int] = frozenset()) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row):
        return "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(row)
        ).rstrip()

    return [line(header), *map(line, rows)]


def runs_table(rows) -> str:
    """`nnflow runs`: one line per run, oldest first."""
    if not rows:
        return "No runs yet: `nnflow train CONFIG` makes runs/NAME/TIMESTAMP."
    lines = []
    for row in rows:
        epochs = f"{row.epochs.get('completed', '?')}/{row.epochs.get('configured', '?')}" if row.epochs else "-"
        gates = {None: "-", True: "ok", False: "FAIL"}[row.gates_passed]
        metrics = "  ".join(f"{name} {metric(value)}" for name, value in row.key_metrics.items())
        lines.append([str(row.folder), row.status, epochs, gates, metrics])
    damaged = [f"  {row.folder}: {row.problem}" for row in rows if getattr(row, "problem", None)]
    table = _table(["run", "status", "epochs", "gates", "key metrics"], lines, right={2})
    return "\n".join(table + (["", "Damaged runs:", *damaged] if damaged else []))


def comparison_text(comparison) -> str:
    """`nnflow compare`: a legend, the metrics side by side, then the differing keys."""
    labels = [chr(ord("A") + i) if i < 26 else f"R{i}" for i in range(len(comparison.runs))]
    lines = [f"{label} = {row.folder} ({row.status})" for label, row in zip(labels, comparison.runs)]
    if comparison.metric_names:
        rows = [[name, *(metric(row.metrics.get(name)) for row in comparison.runs)] for name in comparison.metric_names]
        lines += ["", *_table(["metric", *labels], rows, right=set(range(1, len(labels) + 1)))]
    lines.append("")
    if comparison.differences:
        rows = [[key, *(_value(v) for v in values)] for key, values in comparison.differences.items()]
        lines += ["Differences in the experiment files:", *_table(["key", *labels], rows)]
    else:
        lines.append("The experiment files are the same.")
    return "\n".join(lines)


def _value(value) -> str:
    text = value if isinstance(value, str) else repr(value) if value is not None else "null"
    return text if len(text) <= 40 else text[:37] + "..."


def leaderboard(result) -> str:
    """`nnflow sweep`: the study, its best trial, and every trial ranked by the metric (the others last)."""
    order = "higher is better" if result.higher_is_better else "lower is better"
    lines = [
        f"Study {result.study} ({result.storage}): {result.finished} of {result.trials} trials finished, "
        f"sampler {result.sampler}, pruner {result.pruner}.",
        f"Sweep folder {result.folder}; ranked by {result.metric} ({order}).",
        "",
    ]
    keys = list(result.members[0].grid) if result.members else []
    rows = []
    for rank, member in enumerate(result.members, start=1):
        status = member.status if not member.exit_code else f"{member.status} (exit {member.exit_code})"
        rows.append(
            [
                str(rank),
                f"{member.index:02d}",
                *(value_text(member.grid.get(key, "")) for key in keys),
                metric(member.metrics.get(result.metric)),
                status,
                member.folder.name if member.folder else "",
            ]
        )
    header = ["rank", "trial", *(key.split(".")[-1] for key in keys), result.metric, "status", "run"]
    lines += _table(header, rows, right={0, 1})
    if result.best is not None:
        best = result.best
        lines += [
            "",
            f"Best: trial {best.index:02d}, {result.metric} = {metric(best.metrics.get(result.metric))}: {best.label}",
            f"      {best.folder}",
        ]
    if result.mlflow:
        lines.append(f"MLflow: the sweep is run {result.mlflow['run_id']} in {result.mlflow['tracking_uri']}")
    return "\n".join(lines)


def sweep_verdict(result) -> str:
    """Why a sweep's exit code is not 0, in one line."""
    failed = [m for m in result.members if m.status == "failed"]
    if result.best is not None and result.exit_code == 5:
        missed = "; ".join(
            f"{g.get('metric')} = {metric(g.get('value'))}, expected {g.get('condition')}"
            for g in result.best.gates
            if isinstance(g, dict) and not g.get("passed")
        )
        return f"The best trial ({result.best.index:02d}) misses its expect: gates ({missed}); exit 5."
    return (
        f"{result.finished} of {result.trials} trials finished, {len(failed)} failed; "
        f"exit {result.exit_code} (the worst trial's)."
    )


def sweep_markdown(result) -> str:
    """`nnflow sweep`'s leaderboard as a Markdown section."""
    failed = sum(1 for m in result.members if m.status == "failed")
    verdict = "✓ exit 0" if not result.exit_code else f"✗ exit {result.exit_code}, {failed} trial(s) failed"
    keys = list(result.members[0].grid) if result.members else []
    lines = [
        f"### nnflow sweep: study {_cell(result.study)}, {result.finished} of {result.trials} trials finished ({verdict})",
        "",
        f"Ranked by {result.metric} ({'higher' if result.higher_is_better else 'lower'} is better); sweep folder {_cell(result.folder)}.",
        "",
        "| rank | " + " | ".join(_cell(key) for key in keys) + f" | {_cell(result.metric)} | status |",
        "| ---: |" + " --- |" * len(keys) + " ---: | --- |",
    ]
    for rank, member in enumerate(result.members, start=1):
        status = member.status if not member.exit_code else f"{member.status} (exit {member.exit_code})"
        lines.append(
            f"| {rank} | "
            + " | ".join(_cell(value_text(member.grid.get(key, ""))) for key in keys)
            + f" | {metric(member.metrics.get(result.metric))} | {status} |"
        )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# compare --baseline
