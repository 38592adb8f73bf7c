"""Importing Keras/TensorFlow quietly: hide TensorFlow's C++ start-up chatter, never real errors."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading

# Lines TensorFlow's C++ runtime prints on every start on a CPU-only machine. Only these are
# dropped; anything else written to stderr (errors, Python warnings, tracebacks) passes through.
_NOISE = re.compile(
    r"^(?:WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} [\d:. ]+\s*\d+ \S+\.(?:cc|h):\d+\] "
    r"|E\d{4} [\d:. ]+\s*\d+ cuda_(?:platform|executor|driver)\.cc:\d+\] failed call to cuInit"
    # a dataset op traced by this TensorFlow, read back by its runtime (a model loaded again in one process)
    r"|E\d{4} [\d:. ]+\s*\d+ node_def_util\.cc:\d+\] NodeDef mentions attribute use_unbounded_threadpool"
    r"|To enable the following instructions: .* rebuild TensorFlow"
    r"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$"
    r")"
)


def is_noise(line: str) -> bool:
    return bool(_NOISE.match(line))


@contextlib.contextmanager
def quiet_tensorflow():
    """Filter TensorFlow's C++ log noise out of stderr (fd 2) while the block runs.

    Honours the user's own `TF_CPP_MIN_LOG_LEVEL`: set it to 0 or 1 to see everything.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] not in ("2", "3"):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (embedded interpreters, some test runners)
        yield
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump():
        with os.fdopen(read_end, "rb", closefd=True) as source:
            for raw in source:
                if not is_noise(raw.decode("utf-8", "replace")):
                    os.write(saved, raw)

    thread = threading.Thread(target=pump, name="nnflow-stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        try:
            sys.stderr.flush()
        except Exception:
            pass
        os.dup2(saved, 2)  # closes the pipe's last write end, so the pump sees EOF
        thread.join(timeout=5)
        os.close(saved)


def import_keras():
    """Import Keras (and TensorFlow behind it) with the default log level set."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    return keras
