"""`plot` and `report`: pictures and a shareable page of trained runs."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, Problem
from ..spec.experiment import SPLIT_PREFIXES


@dataclass(frozen=True)
class PlotResult:
    output: Path
    runs: list[Path]


def plot(runs: list[str | Path], output: str | Path | None = None, *, gradients: bool = False) -> PlotResult:
    """Learning curves of one run or several overlaid, or one run's gradient norms, as a PNG.

    The output is checked before anything is drawn: a .png that can be written, never over
    a file of a run folder (in a plotted run's folder, only a .png).
    """
    from .. import plots
    from ..runs import check_output, find_run, present, write_bytes_atomic

    folders = [find_run(run) for run in runs]
    if gradients and len(folders) != 1:
        raise ConfigError(Problem("--gradients draws one run; give a single RUN.", where="RUN"))
    name = "gradients.png" if gradients else "curves.png"
    path = Path(output) if output else (folders[0] / name if len(folders) == 1 else Path(name))
    if path.suffix.lower() != ".png":
        raise ConfigError(Problem(f"{path}: plots are written as PNG; give a .png file.", where="--output"))
    check_output(path, "plot", folders, where="--output" if output else "RUN")
    if gradients:
        if not present(folders[0] / "gradients.csv"):
            raise ConfigError(
                Problem(
                    f"{folders[0]} has no gradients.csv: train with `--set fit.diagnostics.gradient_norms=true` to record them.",
                    where="RUN",
                )
            )
        figure = plots.gradient_norms(folders[0])
    else:
        missing = [folder for folder in folders if not present(folder / "history.csv")]
        if missing:
            raise ConfigError(Problem(f"{missing[0]} has no history.csv yet: no epoch has completed.", where="RUN"))
        figure = plots.learning_curves(folders)
    write_bytes_atomic(path, plots.png(figure))
    return PlotResult(path, folders)


@dataclass(frozen=True)
class ReportResult:
    output: Path
    run: Path
    sections: list[str]
    notes: list[str]


def report(run: str | Path, output: str | Path | None = None) -> ReportResult:
    """One self-contained HTML page (images embedded): curves, gradients, metrics, gates,
    the confusion matrix for classifiers, and the experiment file."""
    from .. import plots, runs

    folder = runs.find_run(run)
    path = Path(output) if output else folder / "report.html"
    if path.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(Problem(f"{path}: the report is an HTML page; give a .html file.", where="--output"))
    runs.check_output(path, "report", [folder], where="--output" if output else "RUN")
    info = runs.read_run_info(folder)
    metrics = runs.read_metrics(folder, optional=True) or {}
    name = info["name"]
    parts: list[str] = [_facts_table(folder, info)]
    sections: list[str] = []
    notes: list[str] = []

    def add(section: str, part: str | None) -> None:
        if part is not None:
            sections.append(section)
            parts.append(part)

    add("metrics", _metrics_table(metrics))
    add("gates", _gates_table(info.get("gates", [])))
    if runs.present(folder / "history.csv"):
        add("curves", "<h2>Learning curves</h2>" + _image(plots.png(plots.learning_curves([folder]))))
    if runs.present(folder / "gradients.csv"):
        add("gradients", "<h2>Gradient norms</h2>" + _image(plots.png(plots.gradient_norms(folder))))
    add("confusion matrix", _confusion_matrix(folder, notes))
    if runs.present(folder / "experiment.yaml"):
        add("experiment", "<h2>Experiment</h2><pre>" + _e(runs.read_experiment_text(folder)) + "</pre>")
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>nnflow report: {_e(name)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{_e(name)}</h1>" + "".join(parts) + "<footer>made by nnflow report</footer></body></html>\n"
    )
    runs.write_text_atomic(path, page)
    return ReportResult(path, folder, sections, notes)


def _facts_table(folder: Path, info: dict) -> str:
    epochs = info["epochs"]
    facts = [
        ("run folder", str(folder)),
        ("status", info.get("status")),
        ("started", info.get("started")),
        ("epochs", f"{epochs.get('completed', '?')} of {epochs.get('configured', '?')}"),
        ("seed", info.get("seed")),
        ("versions", ", ".join(f"{k} {v}" for k, v in info.get("versions", {}).items())),
    ]
    return "<table class=facts>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts) + "</table>"


def _metrics_table(metrics: dict) -> str | None:
    """A row per split (train, validation, test), a column per metric."""
    if not metrics:
        return None
    names = [n for n in metrics if not n.startswith(("val_", "test_"))]
    rows = [(label, prefix) for label, prefix in SPLIT_PREFIXES if any(prefix + n in metrics for n in names)]
    return (
        "<h2>Metrics</h2><table><tr><th></th>"
        + "".join(f"<th>{_e(n)}</th>" for n in names)
        + "</tr>"
        + "".join(
            f"<tr><th>{label}</th>" + "".join(f"<td>{_num(metrics.get(prefix + n))}</td>" for n in names) + "</tr>"
            for label, prefix in rows
        )
        + "</table>"
    )


def _gates_table(gates: list[dict]) -> str | None:
    if not gates:
        return None
    return (
        "<h2>Gates</h2><table>"
        + "".join(
            f"<tr><td>{'✓' if g.get('passed') else '✗'}</td><td><code>{_e(g.get('metric'))} {_e(g.get('condition'))}</code></td>"
            f"<td>{_num(g.get('value'))}</td></tr>"
            for g in gates
        )
        + "</table>"
    )


def _confusion_matrix(folder: Path, notes: list[str]) -> str | None:
    """From the run's evaluation.json; a classifier without one is evaluated on its test split now."""
    from .. import runs

    evaluation = runs.read_evaluation(folder / "evaluation.json", optional=True) or {}
    classifier = (
        runs.present(folder / "preprocessing.json") and runs.read_preprocessing(folder).task == "classification"
    )
    if not evaluation and classifier and runs.present(folder / "model.keras"):
        from ..errors import NnflowError
        from .evaluate import evaluate

        try:
            evaluation = evaluate(folder).to_json()
        except NnflowError as error:
            notes.append(f"no confusion matrix: {error}")
    classification = evaluation.get("classification")
    if not classification:
        return None
    classes = [str(c) for c in classification["classes"]]
    matrix = classification["confusion_matrix"]
    return (
        f"<h2>Confusion matrix</h2><p>{_e(evaluation.get('data', ''))}; rows: true class, columns: predicted.</p>"
        "<table><tr><th></th>"
        + "".join(f"<th>{_e(c)}</th>" for c in classes)
        + "</tr>"
        + "".join(
            f"<tr><th>{_e(c)}</th>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>"
            for c, row in zip(classes, matrix)
        )
        + "</table>"
    )


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}"
    "th{background:#f4f4f4}table.facts th,table.facts td{text-align:left}img{max-width:100%}"
    "pre{background:#f7f7f7;padding:1em;overflow:auto}footer{color:#888;margin-top:2em;font-size:.85em}"
)


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _num(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def _image(data: bytes) -> str:
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
