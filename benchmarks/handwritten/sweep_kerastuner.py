"""Iris, 12-point grid with KerasTuner's GridSearch: the baseline of benchmarks/sweep_speed.py.

Written the way the KerasTuner guides show it: a build function with hp.Choice,
GridSearch with objective val_loss, tuner.search, then the best model evaluated on
the test rows. One process, the trials one after another. The data are split as
nnflow splits benchmarks/configs/sweep_iris.yaml (validation 0.2, test 0.2, both
fractions of the whole file, stratified by species): 30 test rows, 30 validation
rows, 90 to train on; the features are standardised by a Normalization layer
adapted on the training rows, like nnflow's `normalize: true`. No speed tricks.

    .venv/bin/python benchmarks/handwritten/sweep_kerastuner.py [path/to/iris.csv]

Needs keras-tuner (pip install -e '.[bench]'). Prints one JSON line on stdout: the
number of trials and of completed ones, the best trial's hyperparameters and
val_loss, the best model's test accuracy, and where the time went (seconds):
import_seconds, search_seconds (tuner.search), evaluate_seconds (best model on the
test rows). Interpreter start-up and exit are not included; the benchmark measures
the whole process from outside.
"""

import json
import sys
import tempfile
import time
from pathlib import Path

t0 = time.perf_counter()
import keras
import keras_tuner
import pandas as pd

t_import = time.perf_counter()

csv = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "data" / "iris.csv"
keras.utils.set_random_seed(42)

df = pd.read_csv(csv)
df["species"] = df["species"].astype("category").cat.codes
# Stratified, like nnflow: 20% of each class for test, then 20% of the whole file for validation.
test = df.groupby("species").sample(frac=0.2, random_state=1)
rest = df.drop(test.index)
val = rest.groupby("species").sample(frac=0.25, random_state=2)  # 0.25 of the 80% left = 0.2 of the file
train = rest.drop(val.index)


def arrays(frame):
    return frame.drop(columns="species").to_numpy(dtype="float32"), frame["species"].to_numpy()


(x_train, y_train), (x_val, y_val), (x_test, y_test) = arrays(train), arrays(val), arrays(test)


def build_model(hp):
    normalizer = keras.layers.Normalization()
    normalizer.adapt(x_train)
    model = keras.Sequential(
        [
            keras.Input(shape=(x_train.shape[1],)),
            normalizer,
            keras.layers.Dense(hp.Choice("units", [8, 16, 32, 64]), activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=hp.Choice("learning_rate", [0.003, 0.01, 0.03])),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


class GridSearch(keras_tuner.GridSearch):
    """GridSearch as it is, save one fix: keras-tuner 1.4 imports tensorboard on every trial with the
    TensorFlow backend, even with no TensorBoard callback to configure, and TensorFlow no longer
    installs tensorboard. Without a TensorBoard callback there is nothing to configure."""

    def _configure_tensorboard_dir(self, callbacks, trial, execution=0):
        if any(type(callback).__name__ == "TensorBoard" for callback in callbacks):
            super()._configure_tensorboard_dir(callbacks, trial, execution)


with tempfile.TemporaryDirectory(prefix="kerastuner-") as directory:
    tuner = GridSearch(
        build_model,
        objective="val_loss",
        max_trials=12,
        executions_per_trial=1,
        overwrite=True,
        directory=directory,
        project_name="iris",
    )
    t_search = time.perf_counter()
    tuner.search(x_train, y_train, epochs=60, batch_size=16, validation_data=(x_val, y_val), verbose=0)
    t_searched = time.perf_counter()

    trials = list(tuner.oracle.trials.values())
    best_trial = tuner.oracle.get_best_trials(1)[0]
    best_model = tuner.get_best_models(1)[0]
    test_loss, test_accuracy = best_model.evaluate(x_test, y_test, verbose=0)
    t_evaluated = time.perf_counter()

print(
    json.dumps(
        {
            "trials": len(trials),
            "completed": sum(trial.status == "COMPLETED" for trial in trials),
            "grid": sorted([trial.hyperparameters.values for trial in trials], key=lambda v: sorted(v.items())),
            "best": best_trial.hyperparameters.values,
            "best_val_loss": best_trial.score,
            "test_accuracy": test_accuracy,
            "test_loss": test_loss,
            "rows": {"train": len(train), "validation": len(val), "test": len(test)},
            "import_seconds": t_import - t0,
            "search_seconds": t_searched - t_search,
            "evaluate_seconds": t_evaluated - t_searched,
        }
    )
)
