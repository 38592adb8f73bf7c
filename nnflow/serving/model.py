"""The model behind the service: one compiled function, and the batcher that feeds it.

`model.predict` builds a dataset and a loop per call (66 ms for one iris row here); the
model's traced `tf.function` takes a fraction of a millisecond. Requests that wait while the
model runs go to it together, up to `max_batch` rows; a request that finds the model idle
runs at once. No timed window: it would add its length to every lone request.
"""

from __future__ import annotations

import asyncio
from collections import deque

import numpy as np

CHUNK_ROWS = 4096  # one call's most rows for a single large request: memory stays bounded


class CompiledModel:
    """A Keras model's inference as one concrete TensorFlow function of any batch size."""

    def __init__(self, model, input_shape):
        import tensorflow as tf

        spec = tf.TensorSpec([None, *input_shape], tf.float32)
        self._function = tf.function(lambda x: model(x, training=False), input_signature=[spec], autograph=False)
        self._concrete = None
        self.input_shape = tuple(input_shape)
        self.output_shape = tuple(model.output_shape[1:])
        self.calls = 0

    def warm_up(self, max_batch: int) -> None:
        """Trace the function and run it at 1 row and at the most rows one call takes, so no request pays for it."""
        self._concrete = self._function.get_concrete_function()
        for rows in sorted({1, max(1, min(max_batch, CHUNK_ROWS))}):
            self._concrete(np.zeros((rows, *self.input_shape), dtype="float32"))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The model's outputs for `x` as float32, in chunks of CHUNK_ROWS rows."""
        assert self._concrete is not None, "warm_up() first"
        parts = []
        for start in range(0, max(len(x), 1), CHUNK_ROWS):
            part = x[start : start + CHUNK_ROWS]
            parts.append(np.asarray(self._concrete(part)))
            self.calls += 1
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def no_rows(self) -> np.ndarray:
        """The outputs for no rows, without a call (an empty request is answered without the model)."""
        return np.zeros((0, *self.output_shape), dtype="float32")


class Batcher:
    """Runs the model on the event loop's thread, batching the requests that queue while it is busy.

    A request's rows join the queue; the first one in schedules a run for the loop's next turn.
    The run takes whole requests, oldest first, up to `max_batch` rows (a larger request goes
    alone), and schedules another turn while requests remain. Requests whose handlers reached
    the queue during one turn of the loop (those that arrived while the model was running) go
    to the model in one call.
    """

    def __init__(self, model: CompiledModel, max_batch: int):
        self.model = model
        self.max_batch = max_batch
        self._queue: deque[tuple[np.ndarray, asyncio.Future]] = deque()
        self._scheduled = False

    async def predict(self, x: np.ndarray) -> np.ndarray:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append((x, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._run)
        return await future

    def _run(self) -> None:
        taken = [self._queue.popleft()]
        rows = len(taken[0][0])
        while self._queue and rows + len(self._queue[0][0]) <= self.max_batch:
            taken.append(self._queue.popleft())
            rows += len(taken[-1][0])
        if self._queue:
            asyncio.get_running_loop().call_soon(self._run)
        else:
            self._scheduled = False
        try:
            inputs = taken[0][0] if len(taken) == 1 else np.concatenate([x for x, _ in taken])
            outputs = self.model(inputs)
        except Exception as error:  # a model failure fails its requests, never the service
            for _, future in taken:
                if not future.done():
                    future.set_exception(error)
            return
        start = 0
        for x, future in taken:
            if not future.done():  # a client gone meanwhile cancelled its future
                future.set_result(outputs[start : start + len(x)])
            start += len(x)
