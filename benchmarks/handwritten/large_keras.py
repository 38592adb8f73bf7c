"""Large tabular MLP (64-64-1): the hand-written Keras baseline of benchmarks/train_large.py.

Written the way the Keras guides show it: pandas to read the Parquet file,
numpy arrays, a Normalization layer adapted on the training rows, and
model.fit with validation_split (validation after every epoch). No speed tricks.

    .venv/bin/python benchmarks/handwritten/large_keras.py DATA.parquet [TARGET_COLUMN]

Prints one JSON line on stdout: fit_seconds (wall time of model.fit only),
train_rows, epochs, rows_per_second (train_rows * epochs / fit_seconds) and
val_accuracy (of the final model, on the validation rows), plus
import_seconds and prep_seconds for the time spent before fit.
"""

import json
import sys
import time

# `import keras` is timed on its own: for small workloads it is much of the wait.
t0 = time.perf_counter()
import keras
import pandas as pd

t_import = time.perf_counter()

path = sys.argv[1]
target = sys.argv[2] if len(sys.argv) > 2 else "label"
keras.utils.set_random_seed(0)

df = pd.read_parquet(path)
y = df.pop(target).to_numpy(dtype="float32")
x = df.to_numpy(dtype="float32")

n_train = int(len(x) * (1 - 0.2))  # validation_split=0.2 holds out the LAST 20% of rows
normalizer = keras.layers.Normalization()
normalizer.adapt(x[:n_train])

model = keras.Sequential(
    [
        keras.Input(shape=(x.shape[1],)),
        normalizer,
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ]
)
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
t_prep = time.perf_counter()

epochs = 2
history = model.fit(x, y, batch_size=256, epochs=epochs, validation_split=0.2, verbose=0)
t_fit = time.perf_counter()

fit_seconds = t_fit - t_prep
print(
    json.dumps(
        {
            "fit_seconds": fit_seconds,
            "train_rows": n_train,
            "epochs": epochs,
            "rows_per_second": n_train * epochs / fit_seconds,
            "val_accuracy": history.history["val_accuracy"][-1],
            "import_seconds": t_import - t0,
            "prep_seconds": t_prep - t_import,
        }
    )
)
