"""Iris, 4-16-3 MLP: the hand-written Keras baseline of benchmarks/train_tutorial.py.

Written the way the Keras guides show it: pandas to read the CSV, numpy arrays,
a Normalization layer adapted on the training rows, and model.fit with
validation_split. No speed tricks.

    .venv/bin/python benchmarks/handwritten/iris_keras.py [path/to/iris.csv]

Prints one JSON line on stdout: the final validation accuracy and where the
time went (seconds): import_seconds (`import keras`), prep_seconds (read the
CSV, encode, build and compile the model), fit_seconds (model.fit only).
Interpreter start-up and exit are not included; the benchmark measures the
whole process from outside.
"""

import json
import sys
import time
from pathlib import Path

# `import keras` is timed on its own: for small workloads it is much of the wait.
t0 = time.perf_counter()
import keras
import pandas as pd

t_import = time.perf_counter()

csv = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "data" / "iris.csv"
keras.utils.set_random_seed(0)

df = pd.read_csv(csv)
# The file is sorted by species and validation_split takes the LAST 20% of the
# rows, so shuffle once first (otherwise validation would be all virginica).
df = df.sample(frac=1.0, random_state=0).reset_index(drop=True)
y = df.pop("species").astype("category").cat.codes.to_numpy()
x = df.to_numpy(dtype="float32")

n_train = int(len(x) * (1 - 0.2))  # the rows validation_split=0.2 leaves for training
normalizer = keras.layers.Normalization()
normalizer.adapt(x[:n_train])

model = keras.Sequential(
    [
        keras.Input(shape=(x.shape[1],)),
        normalizer,
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(3, activation="softmax"),
    ]
)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
t_prep = time.perf_counter()

history = model.fit(x, y, batch_size=16, epochs=100, validation_split=0.2, verbose=0)
t_fit = time.perf_counter()

print(
    json.dumps(
        {
            "val_accuracy": history.history["val_accuracy"][-1],
            "train_rows": n_train,
            "epochs": len(history.history["loss"]),
            "import_seconds": t_import - t0,
            "prep_seconds": t_prep - t_import,
            "fit_seconds": t_fit - t_prep,
        }
    )
)
