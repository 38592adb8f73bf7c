"""The `fit:` section: the arguments of `model.fit`, diagnostics and distribution."""

from __future__ import annotations

from typing import Any

from ..yamlio import KeyPath
from .experiment import FitSpec
from .fields import INVALID, Boolean, Choice, Custom, Field, Integer, Number, Section
from .keras_objects import keras_object
from .keras_schema import object_list_schema
from .problems import MAX_COUNT, MAX_JOIN_TIMEOUT, ProblemCollector, describe

DISTRIBUTE_MODES = ("none", "mirrored", "multi_worker")


def check_callbacks(found: ProblemCollector, value: Any, path: KeyPath) -> Any:
    if not isinstance(value, list):
        found.report(path, f"expected a list of callbacks; received {describe(value)}.")
        return INVALID
    callbacks = [keras_object(found, "callback", item, path + (index,)) for index, item in enumerate(value)]
    return INVALID if None in callbacks else tuple(callbacks)


DIAGNOSTICS = Section(
    "`fit.diagnostics`",
    (Field("gradient_norms", Boolean(), False, "record each weight's gradient norm every epoch (gradients.csv)"),),
)

FIT = Section(
    "`fit`",
    (
        Field("batch_size", Integer(1, MAX_COUNT, "a positive integer"), 32),
        Field("epochs", Integer(1, MAX_COUNT, "a positive integer"), 1),
        Field("shuffle", Boolean(), True),
        Field("callbacks", Custom(check_callbacks, lambda: object_list_schema("callback")), []),
        Field("diagnostics", DIAGNOSTICS, DIAGNOSTICS.defaults),
        Field(
            "distribute", Choice(DISTRIBUTE_MODES, "one of " + ", ".join(DISTRIBUTE_MODES), suggest=True), "none",
            "tf.distribute strategy: mirrored (local GPUs) or multi_worker (TF_CONFIG)",
        ),
        Field(
            "join_timeout", Number(0, MAX_JOIN_TIMEOUT, f"a number of seconds above 0 and at most {MAX_JOIN_TIMEOUT:,} (a day)"), 300,
            "multi_worker: seconds every worker waits for the others to join before it gives up (exit 4)",
        ),
    ),
)  # fmt: skip


def check_fit(found: ProblemCollector, value: Any, path: KeyPath) -> tuple[FitSpec | None, Any]:
    """The `fit:` section: (its FitSpec, or None after a problem; the section resolved)."""
    checked, merged = FIT.check(found, value, path)
    if checked is None:
        return None, merged
    resolved = {
        **merged,
        "diagnostics": checked["diagnostics"],
        "callbacks": [c.to_data() for c in checked["callbacks"]],
    }
    fit = FitSpec(
        batch_size=checked["batch_size"],
        epochs=checked["epochs"],
        shuffle=checked["shuffle"],
        callbacks=checked["callbacks"],
        gradient_norms=checked["diagnostics"]["gradient_norms"],
        distribute=checked["distribute"],
        join_timeout=float(checked["join_timeout"]),
    )
    return fit, resolved
