"""Pictures of runs (matplotlib, headless): learning curves and gradient norms.

Functions return matplotlib Figures drawn from a run's own files (history.csv,
gradients.csv, read and checked by `nnflow.runs`: a damaged one is a DamagedRunError);
`png` turns one into bytes. Imported only by `plot` and `report`.
"""

from __future__ import annotations

import io
import math
from pathlib import Path


def pyplot():
    """matplotlib.pyplot, headless (the Agg backend): for figures drawn elsewhere, such as Optuna's."""
    return _matplotlib()


def _matplotlib():
    import matplotlib

    matplotlib.use("Agg")  # no display needed: CI machines, servers
    import matplotlib.pyplot as plt

    return plt


def run_labels(run_dirs: list[Path]) -> list[str]:
    """Each run's name (from its run.json), with its folder added where two names are the same."""
    from .runs import read_run_info

    names = [read_run_info(run)["name"] for run in run_dirs]
    return [f"{name} ({run.name})" if names.count(name) > 1 else name for name, run in zip(names, run_dirs)]


def learning_curves(run_dirs: list[Path], labels: list[str] | None = None):
    """One panel per metric (loss first): training solid, validation dashed, one colour per run."""
    from .runs import read_history

    histories = [read_history(run) for run in run_dirs]
    labels = labels or run_labels(run_dirs)
    plt = _matplotlib()
    names: list[str] = []
    for rows in histories:
        for key in rows[0] if rows else {}:
            base = key.removeprefix("val_")
            if key not in ("epoch", "seconds", "learning_rate") and base not in names:
                names.append(base)
    names.sort(key=lambda name: name != "loss")
    columns = min(3, max(1, len(names)))
    rows_count = math.ceil(len(names) / columns) if names else 1
    figure, axes = plt.subplots(rows_count, columns, figsize=(5 * columns, 3.6 * rows_count), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, name in enumerate(names):
        axis = axes[index // columns][index % columns]
        for run_index, (rows, label) in enumerate(zip(histories, labels)):
            colour = colours[run_index % len(colours)]
            epochs = [row["epoch"] for row in rows]
            for key, style, suffix in ((name, "-", "train"), (f"val_{name}", "--", "validation")):
                if rows and key in rows[0]:
                    axis.plot(
                        epochs,
                        [row[key] for row in rows],
                        style,
                        color=colour,
                        label=f"{label} {suffix}" if len(run_dirs) > 1 else suffix,
                    )
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    for index in range(len(names), rows_count * columns):
        axes[index // columns][index % columns].set_visible(False)
    figure.suptitle("Learning curves: " + ", ".join(labels), fontsize=10)
    figure.tight_layout()
    return figure


def gradient_norms(run_dir: Path):
    """Each weight's gradient norm per epoch, log scale: a vanishing gradient shows as a fan of lines."""
    from .runs import read_gradients

    rows = read_gradients(run_dir)
    label = run_labels([run_dir])[0]
    plt = _matplotlib()
    series: dict[str, tuple[list[float], list[float]]] = {}
    for row in rows:
        epochs, norms = series.setdefault(row["layer"], ([], []))
        epochs.append(row["epoch"])
        norms.append(row["norm"] if math.isnan(row["norm"]) else max(row["norm"], 1e-30))  # a log scale cannot show 0
    figure, axis = plt.subplots(figsize=(8.5, 4.5))
    layers = list(dict.fromkeys(name.rsplit("/", 1)[0] for name in series))
    palette = plt.get_cmap("viridis")
    for name, (epochs, norms) in series.items():
        layer = name.rsplit("/", 1)[0]
        colour = palette(layers.index(layer) / max(1, len(layers) - 1))  # first layer dark, last light
        axis.plot(epochs, norms, "-" if name.endswith("/kernel") else ":", color=colour, label=name)
    axis.set_yscale("log")
    axis.set_xlabel("epoch")
    axis.set_ylabel("gradient norm (fixed batch)")
    axis.set_title(f"Gradient norms per layer (solid: kernel, dotted: bias): {label}")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    figure.tight_layout()
    return figure


def png(figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (and the figure closed)."""
    plt = _matplotlib()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    plt.close(figure)
    return buffer.getvalue()
