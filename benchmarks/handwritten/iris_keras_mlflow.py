"""Iris, 4-16-3 MLP, tracked in MLflow: the hand-written side of benchmarks/tracking_overhead.py.

benchmarks/handwritten/iris_keras.py with the two lines MLflow's Keras guide adds: `import
mlflow` and `mlflow.keras.autolog()` (params, each epoch's metrics, the model), inside
`mlflow.start_run()`. It logs to $MLFLOW_TRACKING_URI.

    MLFLOW_TRACKING_URI=sqlite:///tmp/m.db .venv/bin/python benchmarks/handwritten/iris_keras_mlflow.py

Prints one JSON line on stdout: the final validation accuracy, the MLflow run id and where the
time went (seconds): import_seconds (keras and mlflow), fit_seconds (model.fit with autolog, which
logs the model when fit ends). Interpreter start-up and exit are measured from outside.
"""

import json
import sys
import time
from pathlib import Path

t0 = time.perf_counter()
import keras
import mlflow
import pandas as pd

t_import = time.perf_counter()

csv = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "data" / "iris.csv"
keras.utils.set_random_seed(0)
mlflow.keras.autolog()

df = pd.read_csv(csv)
df = df.sample(frac=1.0, random_state=0).reset_index(drop=True)  # validation_split takes the last rows
y = df.pop("species").astype("category").cat.codes.to_numpy()
x = df.to_numpy(dtype="float32")

n_train = int(len(x) * (1 - 0.2))
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

with mlflow.start_run() as run:
    history = model.fit(x, y, batch_size=16, epochs=100, validation_split=0.2, verbose=0)
t_fit = time.perf_counter()

print(
    json.dumps(
        {
            "val_accuracy": history.history["val_accuracy"][-1],
            "run_id": run.info.run_id,
            "epochs": len(history.history["loss"]),
            "import_seconds": t_import - t0,
            "fit_seconds": t_fit - t_prep,
        }
    )
)
