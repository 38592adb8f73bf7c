"""`nnflow --help`, `nnflow train --help` and `nnflow check` never import TensorFlow, Keras or pandas.

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
for args in (["--help"], ["train", "--help"], ["fit", "--help"], ["evaluate", "--help"], ["predict", "--help"], ["runs"], ["check", sys.argv[1]],
             ["check", sys.argv[1], "--set", "fit.epochs=2", "--json"], ["schema"]):
    try:
        cli.main(args=args, prog_name="nnflow", standalone_mode=False)
    except SystemExit as stop:
        assert not stop.code, (args, stop.code)
    results[" ".join(a for a in args[:2] if a.startswith("-") or a.isalpha())] = sorted({"tensorflow", "keras", "pandas"} & set(sys.modules))
print("\n" + json.dumps(results))
"""


def test_help_and_check_import_nothing_heavy():
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, str(CONFIGS / "iris.yaml")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    results = json.loads(completed.stdout.strip().splitlines()[-1])
    assert results == {
        "--help": [], "train --help": [], "fit --help": [], "evaluate --help": [], "predict --help": [], "runs": [],
        "check": [], "schema": [],
    }
