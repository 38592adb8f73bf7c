"""`check` and `compile`: validate an experiment file, build and describe its model."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from ..headers import DataCheck, check_data
from ..spec import Spec, load_spec


@dataclass(frozen=True)
class CheckResult:
    spec: Spec
    data: DataCheck | None = None  # the data files' headers, when they were read
    data_read: bool = True  # False under `--no-data`

    @property
    def notes(self) -> tuple[str, ...]:
        return self.data.notes if self.data else ()

    def to_json(self) -> dict:
        spec = self.spec
        if spec.data is None:
            data = None
        elif self.data is None:
            data = {"checked": False}
        else:
            data = self.data.to_json()
        return {
            "ok": True,
            "config": str(spec.source) if spec.source else None,
            "name": spec.name,
            "layers": len(spec.layers),
            "input_shape": list(spec.input_shape) if spec.input_shape else None,
            "metrics": spec.metric_names,
            "gates": [str(g) for g in spec.expect],
            "data": data,
            "resolved": spec.to_dict(),
        }


def check(config: str | Path, overrides: Iterable[str] = (), *, data: bool = True) -> CheckResult:
    """Validate an experiment file and its overrides, then the headers of its data files.

    The data's columns (target, features, drop) are checked against the files' headers, with
    `data=False` (`--no-data`) they are not read. Never imports TensorFlow, pandas or numpy
    (pyarrow, for a Parquet file's schema).
    """
    spec = load_spec(config, overrides)
    if not data or spec.data is None:
        return CheckResult(spec, None, data_read=data)
    return CheckResult(spec, check_data(spec.data))


@dataclass(frozen=True)
class LayerRow:
    name: str
    layer_class: str
    output_shape: str
    params: int


@dataclass(frozen=True)
class CompileResult:
    spec: Spec
    layers: tuple[LayerRow, ...]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    optimizer: str
    loss: str
    metrics: tuple[str | None, ...]  # each compiled metric's output name (None: Keras names it)

    def to_json(self) -> dict:
        return {
            "name": self.spec.name,
            "layers": [asdict(row) for row in self.layers],
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "optimizer": self.optimizer,
            "loss": self.loss,
            "metrics": list(self.metrics),
        }


def compile_experiment(config: str | Path, overrides: Iterable[str] = ()) -> CompileResult:
    """Build and compile the model of an experiment file and describe it."""
    from ..builder import build_model

    spec = load_spec(config, overrides)
    input_shape = None
    normalizer = None
    if spec.input_shape is None and spec.data is not None:
        from ..data import input_width

        input_shape = (input_width(spec.data),)
    if spec.data is not None and spec.data.normalize:
        from .._tf import import_keras

        normalizer = import_keras().layers.Normalization(name="normalization")
    model = build_model(spec, input_shape=input_shape, normalizer=normalizer)
    return describe_model(model, spec)


def describe_model(model, spec: Spec) -> CompileResult:
    import numpy as np

    def count(weights) -> int:
        return int(sum(np.prod(w.shape) for w in weights))

    rows = tuple(
        LayerRow(
            layer.name,
            type(layer).__name__,
            str(tuple(layer.output.shape)).replace(",)", ")"),
            int(layer.count_params()),
        )
        for layer in model.layers
    )
    optimizer = model.optimizer
    return CompileResult(
        spec=spec,
        layers=rows,
        total_params=int(model.count_params()),
        trainable_params=count(model.trainable_weights),
        non_trainable_params=count(model.non_trainable_weights),
        optimizer=f"{type(optimizer).__name__}(learning_rate={float(optimizer.learning_rate.numpy()) if hasattr(optimizer.learning_rate, 'numpy') else optimizer.learning_rate:g})",
        loss=spec.compile.loss.name,
        metrics=tuple(m.output_name for m in spec.compile.metrics),
    )
