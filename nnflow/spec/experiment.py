"""The frozen experiment: `Spec` and its parts, as validation builds them. Nothing here checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import catalog

if TYPE_CHECKING:
    from .expect import Gate
    from .sweep import SweepSpec

# The prefix of each split's metrics, in the order a run reports them.
SPLIT_PREFIXES = (("train", ""), ("validation", "val_"), ("test", "test_"))


@dataclass(frozen=True)
class KerasObject:
    """A Keras object named in the file: `adam`, `{Adam: {learning_rate: 0.01}}`, a layer."""

    kind: str
    name: str  # as written in the file
    target: str  # the Keras class (or function, for string ids) it resolves to
    is_class: bool
    args: Mapping[str, Any]  # keyword arguments; nested Keras objects are KerasObjects
    path: str  # where it sits in the file, for error messages
    output_name: str | None = None  # metrics: the name Keras reports it under
    entry: catalog.Entry | None = field(default=None, compare=False, repr=False)
    bare: bool = False  # written as a bare name (`adam`), not `{Name: args}`

    def accepts(self, argument: str) -> bool:
        """Whether the Keras class itself has this argument."""
        return self.entry is not None and self.entry.param(argument) is not None

    def to_data(self) -> Any:
        """The object as the file would write it, in its explicit `{Name: {args}}` form."""
        if self.bare:
            return self.name
        return {self.name: {key: _to_data(value) for key, value in self.args.items()}}


def _to_data(value: Any) -> Any:
    if isinstance(value, KerasObject):
        return value.to_data()
    if isinstance(value, (list, tuple)):
        return [_to_data(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _to_data(item) for key, item in value.items()}
    return value


@dataclass(frozen=True)
class DataSpec:
    train: Path
    target: str
    features: tuple[str, ...] | None
    drop: tuple[str, ...]
    validation: float | Path
    test: float | Path
    normalize: bool


@dataclass(frozen=True)
class CompileSpec:
    optimizer: KerasObject
    loss: KerasObject
    metrics: tuple[KerasObject, ...]
    steps_per_execution: int | str  # or "auto": nnflow picks it from the data when training
    jit_compile: bool | str
    run_eagerly: bool

    @property
    def metric_names(self) -> list[str]:
        """The names Keras reports for each split: `loss` and each compiled metric."""
        return ["loss"] + [m.output_name for m in self.metrics if m.output_name]


@dataclass(frozen=True)
class FitSpec:
    batch_size: int
    epochs: int
    shuffle: bool
    callbacks: tuple[KerasObject, ...]
    gradient_norms: bool = False  # fit.diagnostics.gradient_norms: record them every epoch
    distribute: str = "none"  # none | mirrored | multi_worker (tf.distribute)
    join_timeout: float = 300.0  # multi_worker: seconds to wait for every worker to join


def reported_metric_names(
    metric_names: list[str], data: DataSpec | None, splits: tuple[str, ...] = ("train", "validation", "test")
) -> list[str]:
    """Every metric a run reports: each name once per split (`val_`, `test_`) that the data has.

    With `data` None (no `data:` section, or one not known to be valid) every split in `splits` counts.
    """
    prefixes = [
        prefix
        for role, prefix in SPLIT_PREFIXES
        if role in splits
        and (data is None or role == "train" or (data.validation if role == "validation" else data.test))
    ]
    return [prefix + name for prefix in prefixes for name in metric_names]


@dataclass(frozen=True)
class Spec:
    """A validated experiment. Build a model from it with `nnflow.build_model(spec)`."""

    name: str
    description: str
    seed: int | None
    data: DataSpec | None
    input_shape: tuple | None  # from `Input` or the first layer's input_dim/input_shape
    layers: tuple[KerasObject, ...]  # without the Input item
    compile: CompileSpec
    fit: FitSpec
    expect: tuple[Gate, ...]
    input_options: Mapping[str, Any] = field(default_factory=dict)  # Input's dtype, batch_size, sparse, name
    sweep: SweepSpec | None = None  # the `sweep:` section, for `nnflow sweep`; training ignores it
    source: Path | None = None
    overrides: tuple[str, ...] = ()
    resolved: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    locations: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)  # key path -> file:line:col

    @property
    def metric_names(self) -> list[str]:
        """The names Keras will report: `loss` and each compiled metric."""
        return self.compile.metric_names

    @property
    def reported_metrics(self) -> list[str]:
        """Every metric name a run reports, per split its data has: `loss`, ..., `val_loss`, ..., `test_loss`, ...

        Without a `data:` section (arrays given in Python), every split is listed.
        """
        return reported_metric_names(self.metric_names, self.data)

    def to_dict(self) -> dict:
        """The resolved experiment file (defaults and overrides applied), as plain data."""
        return _plain(self.resolved)


def _plain(value):
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
