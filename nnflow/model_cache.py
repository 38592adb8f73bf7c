"""Compiled models kept by a process that trains run after run (a sweep's warm worker), so that a run
whose model differs from an earlier one only in its learning rate (or epochs, or data values) reuses
that model's traced `tf.function`s instead of tracing them again: on a small model, tracing is about
a third of a run.

The run still builds its own model, as a fresh process would (the same seeds, the same initial
weights, a new optimizer). `ModelCache.reuse` then copies every variable of that fresh model and of
its optimizer (weights, Normalization statistics, Dropout's seed states, the optimizer's slots, step
and learning rate) into the kept model of the same shape, and hands that one to training. Its
numbers are the fresh model's to the last bit (tests/test_model_cache.py trains both ways).
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

KEPT = 4  # models kept, the most recently used; each is a few MB on a sweep's models


def _without_learning_rate(optimizer: Any) -> Any:
    """The optimizer's setting with a plain-number learning rate left out (it is a variable in Keras 3)."""
    if isinstance(optimizer, Mapping):
        return {
            name: (
                {k: v for k, v in args.items() if not (k == "learning_rate" and isinstance(v, (int, float)))}
                if isinstance(args, Mapping)
                else args
            )
            for name, args in optimizer.items()
        }
    return optimizer


def shape_key(resolved: Mapping[str, Any], input_shape: tuple, steps_per_execution: int, normalized: bool) -> str:
    """What decides the traced functions: the layers, the compile settings (but a plain learning rate),
    the input shape, steps per execution and whether the data is normalised in the model."""
    compile_settings = dict(resolved.get("compile", {}))
    compile_settings["optimizer"] = _without_learning_rate(compile_settings.get("optimizer"))
    shape = {
        "name": resolved.get("name"),
        "layers": resolved.get("layers"),
        "compile": compile_settings,
        "input_shape": list(input_shape),
        "steps_per_execution": steps_per_execution,
        "normalized": normalized,
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True, default=repr).encode()).hexdigest()


class ModelCache:
    def __init__(self, kept: int = KEPT) -> None:
        self.kept = kept
        self.models: OrderedDict[str, Any] = OrderedDict()
        self.reused = 0

    def reuse(self, key: str, fresh: Any) -> Any:
        """The kept model of this shape, holding `fresh`'s variables; else `fresh` itself, now kept."""
        kept = self.models.get(key)
        if kept is None or not _same_layout(kept, fresh):
            self._keep(key, fresh)
            return fresh
        fresh.optimizer.build(fresh.trainable_variables)
        if not kept.optimizer.built:
            kept.optimizer.build(kept.trainable_variables)
        for target, source in (
            *zip(kept.variables, fresh.variables),
            *zip(kept.optimizer.variables, fresh.optimizer.variables),
        ):
            target.assign(source.value)
        kept.stop_training = False
        self.models.move_to_end(key)
        self.reused += 1
        return kept

    def _keep(self, key: str, model: Any) -> None:
        self.models[key] = model
        self.models.move_to_end(key)
        while len(self.models) > self.kept:
            self.models.popitem(last=False)


def _same_layout(kept: Any, fresh: Any) -> bool:
    """Variable for variable, the same names, shapes and dtypes (a last check on the key)."""

    def layout(variables) -> list[tuple]:
        return [(v.path, tuple(v.shape), str(v.dtype)) for v in variables]

    if layout(kept.variables) != layout(fresh.variables):
        return False
    if type(kept.optimizer) is not type(fresh.optimizer):
        return False
    return True
