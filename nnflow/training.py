"""Fit and evaluate on arrays, fast, with the semantics the file asks for.

Where the time goes in a hand-written `model.fit(x, y, validation_split=...)` on a small
table is not arithmetic but per-step and per-epoch overhead. nnflow keeps the user's
batch size, epochs, shuffling, callbacks and per-epoch validation, and removes the
overhead:

- the data is one `tf.data` stream across all epochs: batches gathered by shuffled
  index (what Keras does for arrays, without rebuilding the pipeline every epoch);
- `steps_per_execution: auto` runs up to 32 steps per call into TensorFlow (a whole
  epoch of a tutorial-sized table) instead of one;
- op determinism is on, so a seed gives the same metrics every run (and Keras then
  leaves XLA off on CPU, where it is slower for these small models).

Shuffling is a function of (seed, epoch), so a resumed run sees the batches the
uninterrupted run would have.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._keras_compat import CALLBACK_STATE, global_seed_state, op_determinism, restore_global_seeds, set_op_determinism  # noqa: F401  (CALLBACK_STATE: re-exported)
from ._tf import import_keras
from .callback_state import callback_state, restore_callbacks  # noqa: F401  (resume's half of training; re-exported)
from .errors import DataError, TrainingError

GATHER_ROWS = 65_536  # from this many rows on, evaluation batches are sliced rather than cached
AUTO_STEPS_PER_EXECUTION = 32


def seed_everything(seed: int) -> None:
    """Python, NumPy and TensorFlow seeds, and deterministic TensorFlow ops, for the rest of the process.

    A library caller wants `seeded(seed)`, which puts them back afterwards.
    """
    keras = import_keras()
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


@contextlib.contextmanager
def seeded(seed: int):
    """`seed_everything(seed)` for the block only: on leaving it, the global seeds (Python,
    NumPy, TensorFlow, Keras) and op determinism are as they were, as Keras scopes its own
    flags (`SafeModeScope`)."""
    import_keras()
    seeds, deterministic = global_seed_state(), op_determinism()
    try:
        seed_everything(seed)
        yield
    finally:
        restore_global_seeds(seeds)
        set_op_determinism(deterministic)


def fresh_session() -> None:
    """Let the next training in this process start as it would in a new one: Keras's global state
    (its automatic names, `input_layer_1`, `adam_1`, ...) cleared.

    A worker that trains run after run in one process calls it before each; never while a model
    it made is still in use. Seeds and op determinism need nothing: each run sets its own. The old
    models are freed by Python's collector in its own time: a full collection here would cost
    about 0.2 s a trial, more than a tenth of a small trial."""
    keras = import_keras()
    keras.backend.clear_session(free_memory=False)


@contextlib.contextmanager
def deterministic_ops():
    """TensorFlow's deterministic ops for the block only, as training runs: `evaluate` then gives
    training's own numbers to the last bit. Op determinism is put back as it was on leaving."""
    import_keras()
    before = op_determinism()
    set_op_determinism(True)
    try:
        yield
    finally:
        set_op_determinism(before)


def steps_per_execution(setting: int | str, rows: int, batch_size: int) -> int:
    """The file's `compile.steps_per_execution`, with `auto` resolved for this data.

    `auto` runs a whole epoch per call when it has at most 32 steps; otherwise the
    largest divisor of the epoch's steps from 8 to 32 (so one stream can run across
    epochs), or 32.
    """
    if setting != "auto":
        return int(setting)
    steps = math.ceil(rows / batch_size)
    if steps <= AUTO_STEPS_PER_EXECUTION:
        return steps
    divisors = [d for d in range(AUTO_STEPS_PER_EXECUTION, 7, -1) if steps % d == 0]
    return divisors[0] if divisors else AUTO_STEPS_PER_EXECUTION


def check_output(model, preprocessing, spec) -> None:
    """The model's output must fit the target: one unit per class, or one for 0/1 and regression."""
    shape = tuple(model.output_shape[1:])
    target = preprocessing.target
    last = spec.layers[-1] if spec.layers else None
    where = spec.locations.get(last.path, str(spec.source)) + f" {last.path}" if last else str(spec.source)
    if len(shape) != 1:
        raise DataError(
            f"{where}: the model outputs shape {list(shape)} per row, but the target {target!r} is one column. "
            "Add a Flatten layer and a Dense output layer."
        )
    units = shape[0]
    if preprocessing.target_encoding in ("sparse", "onehot"):
        wanted, why = (
            len(preprocessing.class_names),
            f"the target {target!r} has {len(preprocessing.class_names)} classes",
        )
    else:
        wanted = 1
        why = f"the target {target!r} is {'0/1' if preprocessing.target_encoding == 'binary' else 'one number'} per row"
    if units != wanted:
        hint = ""
        if preprocessing.task == "regression":
            hint = (
                " If the target holds classes, use a classification loss instead "
                "(sparse_categorical_crossentropy with a softmax output of one unit per class)."
            )
        raise DataError(
            f"{where}: the last layer has {units} units, but {why}. "
            f"Give the last layer {wanted} unit{'s' if wanted > 1 else ''} (--set layers.-1.units={wanted})." + hint
        )


# ---------------------------------------------------------------------------
# Input pipelines


class TrainingStream:
    """The training batches of every epoch, shuffled as a function of (seed, epoch).

    Each epoch's order is a stateless shuffle of the row indices seeded by (seed, epoch);
    batches are gathered from the arrays by index. When the epoch's steps divide evenly
    into executions, one stream runs across all epochs (`steps_per_epoch`), which saves
    rebuilding the pipeline every epoch; otherwise each epoch's stream is built from the
    epoch number a callback sets. Either way a resumed run sees the batches the
    uninterrupted run would have.
    """

    def __init__(
        self,
        x,
        y,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int,
        epochs: int,
        initial_epoch: int,
        steps_per_execution: int,
    ):
        import tensorflow as tf

        self.rows = len(x)
        self.steps = math.ceil(self.rows / batch_size)
        self.persistent = self.steps % steps_per_execution == 0
        self.epoch = tf.Variable(initial_epoch, dtype=tf.int64, trainable=False)
        rows, full = self.rows, self.rows // batch_size
        seed = tf.constant(seed, tf.int64)

        def epoch_batches(epoch, arrays):
            indices = tf.range(rows, dtype=tf.int64)
            if shuffle:
                indices = tf.random.experimental.stateless_shuffle(indices, seed=tf.stack([seed, epoch]))
            batches = tf.data.Dataset.from_tensor_slices(tf.reshape(indices[: full * batch_size], [full, batch_size]))
            if rows > full * batch_size:
                batches = batches.concatenate(tf.data.Dataset.from_tensors(indices[full * batch_size :]))
            return batches.map(
                lambda i: (tf.gather(arrays[0], i), tf.gather(arrays[1], i)),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )

        if self.persistent:
            epochs_dataset = tf.data.Dataset.range(initial_epoch, epochs)
        else:
            epochs_dataset = tf.data.Dataset.range(1).map(lambda _: self.epoch.read_value())
        arrays = tf.data.Dataset.from_tensors((tf.convert_to_tensor(x), tf.convert_to_tensor(y))).repeat()
        dataset = tf.data.Dataset.zip((epochs_dataset, arrays)).flat_map(epoch_batches)
        if not self.persistent:
            dataset = dataset.apply(tf.data.experimental.assert_cardinality(self.steps))
        options = tf.data.Options()
        options.experimental_optimization.apply_default_optimizations = False  # nothing to gain; costs a graph rewrite
        self.dataset = dataset.with_options(options).prefetch(tf.data.AUTOTUNE)

    @property
    def steps_per_epoch(self) -> int | None:
        return self.steps if self.persistent else None

    def callback(self):
        keras = import_keras()
        stream = self

        Callback: Any = keras.callbacks.Callback  # a class made at run time: Keras loads only here

        class EpochSeed(Callback):
            def on_epoch_begin(self, epoch, logs=None):
                stream.epoch.assign(epoch)

        return EpochSeed()


def evaluation_dataset(x: np.ndarray, y: np.ndarray | None, batch_size: int):
    """Batches in file order, cached after the first pass."""
    import tensorflow as tf

    if len(x) >= GATHER_ROWS:
        steps = math.ceil(len(x) / batch_size)
        arrays = (x,) if y is None else (x, y)

        def batch(i):
            return tuple(tensor[i * batch_size : (i + 1) * batch_size] for tensor in tensors)

        tensors = tuple(tf.convert_to_tensor(a) for a in arrays)
        dataset = tf.data.Dataset.range(steps).map(batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return dataset.apply(tf.data.experimental.assert_cardinality(steps)).prefetch(tf.data.AUTOTUNE)
    parts = x if y is None else (x, y)
    return tf.data.Dataset.from_tensor_slices(parts).batch(batch_size).cache().prefetch(tf.data.AUTOTUNE)


# ---------------------------------------------------------------------------
# Callbacks nnflow adds


@dataclass
class FitOutcome:
    history: list[dict[str, float]]  # one row per epoch, `epoch` first (1-based)
    fit_seconds: float
    epochs_run: int  # in this process
    nan_epoch: int | None  # the epoch (1-based) whose loss was not finite


def nan_guard():
    """Stops training at the first batch whose loss is NaN or infinite; remembers the epoch."""
    keras = import_keras()

    Callback: Any = keras.callbacks.Callback  # a class made at run time: Keras loads only here

    class NanGuard(Callback):
        epoch = 0
        failed_epoch = None

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.failed_epoch = self.epoch + 1
                self.model.stop_training = True

    return NanGuard()


def epoch_recorder(history: list[dict], on_epoch: Callable[[dict], None] | None, guard):
    """Appends each completed epoch's logs to `history` and calls `on_epoch` (checkpoint, progress)."""
    keras = import_keras()

    Callback: Any = keras.callbacks.Callback  # a class made at run time: Keras loads only here

    class EpochRecorder(Callback):
        started = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            row = {"epoch": epoch + 1, **{key: _number(value) for key, value in (logs or {}).items()}}
            row["seconds"] = round(time.perf_counter() - self.started, 4)
            history.append(row)
            if guard.failed_epoch is None and on_epoch is not None:
                on_epoch(row)

    return EpochRecorder()


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


GRADIENT_BATCH = 256  # rows of the fixed batch the gradient norms are measured on


def gradient_norms(
    x: np.ndarray, y: np.ndarray, rows: list[dict], on_epoch: Callable[[list[dict]], None] | None = None
):
    """Every epoch, the gradient norm of each trainable weight on a fixed batch, as long-format rows.

    The batch is the first rows of the training split; the forward pass runs in inference
    mode (no dropout: the RNG is not touched) and no variable is updated, so training's
    results are exactly those without the diagnostics.
    """
    keras = import_keras()
    import tensorflow as tf

    batch_x = tf.constant(x[:GRADIENT_BATCH])
    batch_y = tf.constant(y[:GRADIENT_BATCH])

    Callback: Any = keras.callbacks.Callback  # a class made at run time: Keras loads only here

    class GradientNorms(Callback):
        def on_epoch_end(self, epoch, logs=None):
            model = self.model
            weights = [
                (f"{layer.name}/{weight.name}", weight) for layer in model.layers for weight in layer.trainable_weights
            ]
            with tf.GradientTape() as tape:
                # The compiled loss as Keras computes it: `crossentropy` resolved, regularizers added.
                prediction = model(batch_x, training=False)
                loss_value = model.compute_loss(x=batch_x, y=batch_y, y_pred=prediction, training=False)
            gradients = tape.gradient(loss_value, [weight for _, weight in weights])
            new = [
                {
                    "epoch": epoch + 1,
                    "layer": name,
                    "norm": float(tf.norm(gradient).numpy()) if gradient is not None else 0.0,
                }
                for (name, _), gradient in zip(weights, gradients)
            ]
            rows.extend(new)
            if on_epoch is not None:
                on_epoch(rows)

    return GradientNorms()


# ---------------------------------------------------------------------------
# Fit and evaluate


def fit(
    model,
    stream: TrainingStream,
    validation,
    *,
    epochs: int,
    initial_epoch: int,
    callbacks: list,
    history: list[dict],
    on_epoch: Callable[[dict], None] | None = None,
    verbose: int = 0,
) -> FitOutcome:
    """`model.fit` over the stream; stops (and reports) at a NaN or infinite loss."""
    guard = nan_guard()
    extra = [guard, stream.callback(), epoch_recorder(history, on_epoch, guard)]
    started = time.perf_counter()
    before = len(history)
    model.fit(
        stream.dataset,
        steps_per_epoch=stream.steps_per_epoch,
        validation_data=validation,
        epochs=epochs,
        initial_epoch=initial_epoch,
        callbacks=[*callbacks, *extra],
        shuffle=False,  # the stream shuffles, as a function of (seed, epoch)
        verbose=verbose,
    )
    seconds = time.perf_counter() - started
    return FitOutcome(history, seconds, len(history) - before, guard.failed_epoch)


def evaluate(model, dataset) -> dict[str, float]:
    """The compiled loss and metrics of `model` on a dataset, as plain floats."""
    results = model.evaluate(dataset, verbose=0, return_dict=True)
    return {key: _number(value) for key, value in results.items()}


def nan_error(epoch: int, history: list[dict], spec) -> TrainingError:
    last_good = [row for row in history if math.isfinite(row.get("loss", float("nan")))]
    before = f" (it was {last_good[-1]['loss']:.4g} after epoch {last_good[-1]['epoch']})" if last_good else ""
    optimizer = spec.compile.optimizer
    rate = optimizer.args.get("learning_rate")
    hint = (
        f"lower the learning rate (--set compile.optimizer.{optimizer.name}.learning_rate={rate / 10:g})"
        if isinstance(rate, (int, float))
        else "lower the learning rate"
    )
    return TrainingError(
        f"the loss became NaN or infinite in epoch {epoch}{before}; training stopped. "
        f"Try to {hint}, keep `data.normalize: true`, or check the data for extreme values."
    )
