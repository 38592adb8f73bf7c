"""How the target is encoded for the loss and output layer the file gives: decided from the spec alone."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .spec import Spec


def classification_encoding(spec: Spec) -> str | None:
    """How the loss wants class labels: 'sparse' ids, 'onehot' rows, 'binary' 0/1; None for regression losses."""
    from .catalog import snake_case

    loss = spec.compile.loss
    name = snake_case(loss.target if loss.is_class else loss.name).lower()
    if "sparse" in name:
        return "sparse"
    if "binary" in name or "hinge" in name and "categorical" not in name:
        return "binary"
    if "categorical" in name or name in ("kl_divergence", "kld", "kullback_leibler_divergence"):
        return "onehot"
    return None


# Layers that leave the width of their input unchanged: looking back past them finds the output's units.
_SAME_WIDTH = {
    "Activation",
    "Dropout",
    "Softmax",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "PReLU",
    "BatchNormalization",
    "LayerNormalization",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
}


def output_activation(spec: Spec) -> str | None:
    """The last activation of the model as the file writes it (`softmax`, `sigmoid`, ...), if any."""
    for layer in reversed(spec.layers):
        if layer.name == "Softmax":
            return "softmax"
        activation = layer.args.get("activation")
        if activation is not None:
            return getattr(activation, "name", activation)
        if layer.name not in _SAME_WIDTH:
            return None
    return None


def output_units(spec: Spec) -> int | None:
    """The width of the model's output when the file says it (the last `units`)."""
    for layer in reversed(spec.layers):
        units = layer.args.get("units")
        if isinstance(units, int):
            return units
        if layer.name not in _SAME_WIDTH:
            return None
    return None


def target_encoding(spec: Spec, target_is_label: bool) -> str | None:
    """How the target is encoded: the loss decides ('sparse', 'onehot', 'binary'); with another loss,
    a softmax or sigmoid output makes a text, integer or boolean target classes too (docs/experiment-file.md): one-hot
    rows, or 0/1 for a single unit, as the tutorial's sigmoid + mse networks expect."""
    encoding = classification_encoding(spec)
    if encoding is None and target_is_label and output_activation(spec) in ("softmax", "sigmoid"):
        encoding = "binary" if output_units(spec) == 1 else "onehot"
    return encoding
