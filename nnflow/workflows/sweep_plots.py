"""`nnflow plot SWEEP`: a sweep's study drawn by Optuna's matplotlib visualisations, as PNGs in the
sweep folder: the optimisation history, and the parameters' importances."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, Problem
from .sweep_plan import MARKER


@dataclass(frozen=True)
class SweepPlots:
    folder: Path
    written: list[Path]
    notes: list[str] = field(default_factory=list)


def is_sweep_folder(path: str | Path) -> bool:
    return (Path(path) / MARKER).is_file()


def plot_sweep(folder: str | Path, storage: str | None = None) -> SweepPlots:
    """Draw the study of the sweep folder `folder` (its storage from sweep.json, or `storage`)."""
    import optuna

    from .. import plots
    from ..runs import read_json_file, write_bytes_atomic
    from ..studies import open_storage

    folder = Path(folder)
    info = read_json_file(folder / MARKER)
    if not isinstance(info, dict) or not isinstance(info.get("study"), str):
        raise ConfigError(Problem(f"{folder / MARKER} does not name a study.", where="RUN"))
    store = open_storage(storage or info.get("storage"), folder / "study.journal")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        try:
            study = optuna.load_study(study_name=info["study"], storage=store.optuna())
        except KeyError:
            raise ConfigError(
                Problem(f"the study {info['study']!r} is not in {store.display}.", where="--storage")
            ) from None
        plots.pyplot()  # matplotlib on its headless backend, before Optuna draws
        written, notes = [], []
        for name, draw in (
            ("optimization_history.png", optuna.visualization.matplotlib.plot_optimization_history),
            ("param_importances.png", optuna.visualization.matplotlib.plot_param_importances),
        ):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
                try:
                    axes = draw(study)
                except (ValueError, RuntimeError) as error:  # too few completed trials to tell
                    notes.append(f"{name}: not drawn ({error})")
                    continue
            figure = axes.get_figure(root=True)
            assert figure is not None
            figure.set_size_inches(8, 5)
            figure.tight_layout()
            write_bytes_atomic(folder / name, plots.png(figure))
            written.append(folder / name)
        return SweepPlots(folder, written, notes)
    finally:
        store.close()
