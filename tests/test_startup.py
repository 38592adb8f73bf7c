"""`nnflow --help`, `nnflow train --help` and `nnflow check` never import TensorFlow, Keras, pandas, Optuna, SQLAlchemy or MLflow.

Run in one fresh interpreter (the only reliable way to see what an import pulls in).
"""

import json
import subprocess
import sys

from conftest import CONFIGS, ROOT

PROBE = r"""
import json, sys
from nnflow.cli import cli
results = {}
for args in (["--help"], ["train", "--help"], ["fit", "--help"], ["evaluate", "--help"], ["predict", "--help"], ["log", "--help"], ["sweep", "--help"], ["serve", "--help"], ["runs"], ["check", sys.argv[1]],
             ["check", sys.argv[1], "--set", "fit.epochs=2", "--json"], ["check", sys.argv[2]], ["schema"]):
    try:
        cli.main(args=args, prog_name="nnflow", standalone_mode=False)
    except SystemExit as stop:
        assert not stop.code, (args, stop.code)
    label = " ".join(a for a in args[:2] if a.startswith("-") or a.isalpha()) + (" (sweep)" if sys.argv[2] in args else "")
    results[label] = sorted({"tensorflow", "keras", "pandas", "optuna", "sqlalchemy", "mlflow", "fastapi", "uvicorn"} & set(sys.modules))
print("\n" + json.dumps(results))
"""


def test_help_and_check_import_nothing_heavy():
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, str(CONFIGS / "iris.yaml"), str(CONFIGS / "iris_sweep.yaml")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    results = json.loads(completed.stdout.strip().splitlines()[-1])
    assert results == {
        "--help": [],
        "train --help": [],
        "fit --help": [],
        "evaluate --help": [],
        "predict --help": [],
        "log --help": [],
        "sweep --help": [],
        "serve --help": [],
        "runs": [],
        "check": [],
        "check (sweep)": [],
        "schema": [],
    }


CHECK_PROBE = r"""
import json, sys
from nnflow.cli import cli
for config in sys.argv[1:]:
    try:
        cli.main(args=["check", config], prog_name="nnflow", standalone_mode=False)
    except SystemExit as stop:
        assert not stop.code, (config, stop.code)
print("\n" + json.dumps(sorted({"tensorflow", "keras", "pandas", "optuna", "sqlalchemy", "mlflow"} & set(sys.modules))))
"""

HEADERS_PROBE = r"""
import json, sys
from nnflow.headers import check_data
from nnflow.spec import load_spec
for config in sys.argv[1:]:
    check_data(load_spec(config).data)
print("\n" + json.dumps(sorted({"tensorflow", "keras", "pandas", "numpy", "pyarrow"} & set(sys.modules))))
"""


def _configs_with_data(folder):
    """Experiments whose train, validation and test files are compressed CSV and TSV files, and Parquet."""
    import bz2
    import gzip
    import io
    import lzma
    import zipfile

    text = (ROOT / "data" / "iris.csv").read_text()
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("test.csv", text)
    files = {
        "train.csv.gz": gzip.compress(text.encode()),
        "valid.tsv.bz2": bz2.compress(text.replace(",", "\t").encode()),
        "test.csv.zip": zipped.getvalue(),
        "more.csv.xz": lzma.compress(text.encode()),
    }
    for name, content in files.items():
        (folder / name).write_bytes(content)
    model = "layers: [{Dense: {units: 3, activation: softmax}}]\ncompile: {optimizer: adam, loss: sparse_categorical_crossentropy}\n"
    text_config = folder / "text.yaml"
    text_config.write_text(
        "data: {train: train.csv.gz, target: species, validation: valid.tsv.bz2, test: test.csv.zip}\n" + model
    )
    xz_config = folder / "xz.yaml"
    xz_config.write_text("data: {train: more.csv.xz, target: species, drop: [sepal_width]}\n" + model)
    import pandas as pd  # only to write the Parquet file, in this process

    pd.read_csv(ROOT / "data" / "iris.csv").to_parquet(folder / "train.parquet")
    parquet_config = folder / "parquet.yaml"
    parquet_config.write_text("data: {train: train.parquet, target: species}\n" + model)
    return [text_config, xz_config], parquet_config


def test_check_reads_data_headers_without_pandas(tmp_path):
    text_configs, parquet_config = _configs_with_data(tmp_path)
    configs = [
        str(CONFIGS / "iris.yaml"),
        str(CONFIGS / "iris_sweep.yaml"),
        *map(str, text_configs),
        str(parquet_config),
    ]
    completed = subprocess.run(
        [sys.executable, "-c", CHECK_PROBE, *configs], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []


def test_reading_text_headers_imports_neither_numpy_nor_pyarrow(tmp_path):
    """The header reader itself (the CLI's `nnflow.workflows` package imports more; see export.py)."""
    text_configs, _ = _configs_with_data(tmp_path)
    configs = [str(CONFIGS / "iris.yaml"), *map(str, text_configs)]
    completed = subprocess.run(
        [sys.executable, "-c", HEADERS_PROBE, *configs], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []


def test_check_imports_no_numpy_either(tmp_path):
    text_configs, _ = _configs_with_data(tmp_path)
    probe = CHECK_PROBE.replace('"pandas", "optuna"', '"pandas", "numpy", "optuna"')
    assert probe != CHECK_PROBE
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            probe,
            str(CONFIGS / "iris.yaml"),
            str(CONFIGS / "iris_sweep.yaml"),
            *map(str, text_configs),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []
