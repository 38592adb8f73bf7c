"""Batch prediction with a trained model: the hand-written baseline of predict_speed.py and predict_memory.py.

Written the way a Keras user would: pandas reads the whole CSV, Keras loads
the saved model (it standardises the features itself: a Normalization layer
inside), model.predict with its default batch size, and pandas writes the
predictions with the same columns as `nnflow predict`. No speed tricks.

    .venv/bin/python benchmarks/handwritten/predict_keras.py RUN_DIR INPUT.csv OUTPUT.csv

RUN_DIR is a folder written by `nnflow train`, holding model.keras, trained on
the binary 0/1 target `label` with features x00..x19. The output has every
input column that is not a feature (here `id`), then predicted_label (the class,
probability > 0.5) and probability_0, probability_1.

Prints one JSON line on stdout: rows and where the time went (seconds):
import_seconds (`import keras` and pandas), read_seconds (read the CSV),
load_seconds (load the model), predict_seconds (model.predict only) and
write_seconds (build the output and write it). Interpreter start-up and exit
are not included; the benchmarks measure the whole process from outside.
"""

import json
import sys
import time
from pathlib import Path

t0 = time.perf_counter()
import keras
import numpy as np
import pandas as pd

t_import = time.perf_counter()

run_dir, input_path, output_path = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
features = [f"x{i:02d}" for i in range(20)]
target = "label"
class_names = [0, 1]

df = pd.read_csv(input_path)
t_read = time.perf_counter()

model = keras.saving.load_model(run_dir / "model.keras")
t_load = time.perf_counter()

p = model.predict(df[features].to_numpy("float32"), verbose=0)[:, 0]  # P(class 1), from the sigmoid
t_predict = time.perf_counter()

out = df.drop(columns=features)  # what is left: the id column
out[f"predicted_{target}"] = np.where(p > 0.5, class_names[1], class_names[0])
out[f"probability_{class_names[0]}"] = 1 - p
out[f"probability_{class_names[1]}"] = p
out.to_csv(output_path, index=False)
t_write = time.perf_counter()

print(
    json.dumps(
        {
            "rows": len(df),
            "import_seconds": t_import - t0,
            "read_seconds": t_read - t_import,
            "load_seconds": t_load - t_read,
            "predict_seconds": t_predict - t_load,
            "write_seconds": t_write - t_predict,
        }
    )
)
