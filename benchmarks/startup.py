"""Start-up latency of the nnflow CLI, measured against `import keras`.

Run it from the project root with the project's interpreter:

    .venv/bin/python benchmarks/startup.py                  # table + ratios
    .venv/bin/python benchmarks/startup.py --json           # JSON document
    .venv/bin/python benchmarks/startup.py --repeat 15 --config configs/tutorial.yaml

What it measures: the wall-clock time (time.perf_counter) of three whole
processes, each started with subprocess:

  help   `nnflow --help`
  check  `nnflow check <config>`
  keras  `python -c "import keras"`   (the baseline)

All three use the same interpreter (sys.executable) and the same environment,
with TF_CPP_MIN_LOG_LEVEL=2 so TensorFlow's log chatter costs nothing. After
one warm-up round, the commands run round-robin (help, check, keras, help, ...)
so machine noise hits all sides equally. It reports min and median per command
and the ratios nnflow-median / keras-median. The target is a ratio <= 0.10:
commands that need no model must not pay for importing Keras/TensorFlow.

Exit status: non-zero if any command fails (a benchmark of a failing command is
meaningless); otherwise 0, whether or not the target holds.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.10


def default_config() -> Path:
    iris = ROOT / "configs" / "iris.yaml"
    return iris if iris.exists() else ROOT / "configs" / "tutorial.yaml"


def nnflow_command() -> list[str]:
    """The `nnflow` script next to sys.executable, else `python -m nnflow`."""
    bindir = Path(sys.executable).parent
    found = shutil.which("nnflow", path=str(bindir))
    return [found] if found else [sys.executable, "-m", "nnflow"]


def run_once(name: str, cmd: list[str], env: dict[str, str]) -> float:
    """Wall-clock seconds for one whole process; exits loudly if it fails."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, check=False, env=env, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(
            f"benchmark aborted: {name!r} failed with exit code {proc.returncode}\n"
            f"  command: {shlex.join(cmd)}\n"
            f"  stdout: {proc.stdout.strip()[-2000:]}\n"
            f"  stderr: {proc.stderr.strip()[-2000:]}"
        )
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat", type=int, default=7, metavar="N", help="measured runs per command, after 1 warm-up (default: 7)"
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=default_config(),
        metavar="PATH",
        help="experiment file for `nnflow check` (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON document")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if not args.config.is_file():
        parser.error(f"config not found: {args.config}")

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    nnflow = nnflow_command()
    commands = {
        "help": nnflow + ["--help"],
        "check": nnflow + ["check", str(args.config.resolve())],
        "keras": [sys.executable, "-c", "import keras"],
    }

    times: dict[str, list[float]] = {name: [] for name in commands}
    for round_no in range(1 + args.repeat):  # round 0 is the warm-up
        for name, cmd in commands.items():
            elapsed = run_once(name, cmd, env)
            if round_no > 0:
                times[name].append(elapsed)

    stats = {name: {"min": min(t), "median": statistics.median(t), "runs": t} for name, t in times.items()}
    keras_median = stats["keras"]["median"]
    ratios = {name: stats[name]["median"] / keras_median for name in ("help", "check")}
    target_met = all(r <= TARGET for r in ratios.values())

    if args.json:
        print(
            json.dumps(
                {
                    "python": sys.executable,
                    "nnflow": nnflow,
                    "config": str(args.config),
                    "warmup": 1,
                    "repeat": args.repeat,
                    "commands": {name: shlex.join(cmd) for name, cmd in commands.items()},
                    "seconds": stats,
                    "ratios": ratios,
                    "target": TARGET,
                    "target_met": target_met,
                },
                indent=2,
            )
        )
        return 0

    print(f"1 warm-up + {args.repeat} measured runs each, round-robin; config: {args.config}")
    print(f"{'command':<34} {'min (s)':>9} {'median (s)':>11}")
    labels = {"help": "nnflow --help", "check": f"nnflow check {args.config.name}", "keras": 'python -c "import keras"'}
    for name, label in labels.items():
        print(f"{label:<34} {stats[name]['min']:>9.3f} {stats[name]['median']:>11.3f}")
    print()
    for name in ("help", "check"):
        verdict = "ok" if ratios[name] <= TARGET else "OVER TARGET"
        print(f"ratio {labels[name]} / import keras (medians): {ratios[name]:.3f}  [{verdict}]")
    print(f"target (ratio <= {TARGET:.2f}): {'met' if target_met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
