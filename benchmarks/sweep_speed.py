"""A 12-point grid on iris: `nnflow sweep` against one process per member and KerasTuner.

Run it from the project root with the project's interpreter (KerasTuner is needed for
the third side: pip install -e '.[bench]'):

    .venv/bin/python benchmarks/sweep_speed.py              # one round
    .venv/bin/python benchmarks/sweep_speed.py --repeat 3   # min and median of 3 rounds
    .venv/bin/python benchmarks/sweep_speed.py --json       # JSON document

The job: benchmarks/configs/sweep_iris.yaml (iris, Dense(units, relu) then Dense(3,
softmax), features standardised inside the model, Adam, batch 16, 60 epochs,
validation 0.2, test 0.2), over units 8/16/32/64 x Adam learning rate 0.003/0.01/0.03:
12 trainings. Three sides, each a whole process (or processes), timed from outside:

  sweep         `nnflow sweep CONFIG --grid layers.0.units=8,16,32,64
                 --grid compile.optimizer.Adam.learning_rate=0.003,0.01,0.03 --jobs 2 --out TMP --json`
  per-member    12 x `nnflow train CONFIG --set layers.0.units=U
                 --set compile.optimizer.Adam.learning_rate=LR --out TMP/NN --quiet`,
                 at most 2 at once, each with TF_NUM_INTRAOP_THREADS as `nnflow sweep` gives
                 its members (the cores shared between the 2 jobs): a sweep of one cold
                 process per member
  kerastuner    `python benchmarks/handwritten/sweep_kerastuner.py`: GridSearch, the 12
                 trials one after another in one process, then the best model on the test rows

Every side uses the same interpreter (sys.executable), the `nnflow` next to it and the
same environment (TF_CPP_MIN_LOG_LEVEL=2). Before round 1 an untimed process imports
Keras, KerasTuner and pandas, so no side pays for a cold page cache. Each of the --repeat
rounds (default 1) runs the three sides in turn, the order rotating every round. It
reports min and median per side, the ratios of the sweep's median to the others', the
load average, each member's fit seconds (run.json) and the floor they set, and checks
that every side did the same job: 12 trials, each completed, the same grid, with the
best validation loss and its test accuracy for each side.

Targets: the sweep's median at most 0.25 x KerasTuner's and at most 0.4 x per-member's.
Exit status: 2 if keras_tuner is not installed, 1 if a side fails (its output is shown),
otherwise 0, whether or not the targets hold. It is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import BENCHMARKS, HANDWRITTEN, bench_env, fail, last_json_line, nnflow_command, read_run, run_side

CONFIG = BENCHMARKS / "configs" / "sweep_iris.yaml"
SCRIPT = HANDWRITTEN / "sweep_kerastuner.py"
UNITS, LEARNING_RATE = "layers.0.units", "compile.optimizer.Adam.learning_rate"
GRID = {UNITS: ["8", "16", "32", "64"], LEARNING_RATE: ["0.003", "0.01", "0.03"]}
JOBS = 2
TARGETS = {"kerastuner": 0.25, "per-member": 0.4}  # the sweep's median at most this times the side's
SIDES = ("sweep", "per-member", "kerastuner")
LABELS = {
    "sweep": f"nnflow sweep --jobs {JOBS}",
    "per-member": f"nnflow train x {len(GRID[UNITS]) * len(GRID[LEARNING_RATE])}, {JOBS} at once",
    "kerastuner": "KerasTuner GridSearch",
}
WARM_UP = "import keras, keras_tuner, pandas"


def grid_points() -> list[dict[str, str]]:
    """Every combination, in `nnflow sweep`'s order (the first --grid outermost)."""
    return [dict(zip(GRID, values)) for values in itertools.product(*GRID.values())]


def point_key(units: object, learning_rate: object) -> tuple[float, float]:
    """A grid point that compares equal whether it was written "0.01", 0.01 or 1e-2."""
    return float(str(units)), float(str(learning_rate))


EXPECTED = sorted(point_key(point[UNITS], point[LEARNING_RATE]) for point in grid_points())


def sweep_command(out: Path) -> list[str]:
    grids = [arg for key, values in GRID.items() for arg in ("--grid", f"{key}={','.join(values)}")]
    return [*nnflow_command(), "sweep", str(CONFIG), *grids, "--jobs", str(JOBS), "--out", str(out), "--json"]


def train_commands(out: Path) -> list[list[str]]:
    """One `nnflow train` per grid point, into out/01 ... out/12."""
    commands = []
    for number, point in enumerate(grid_points(), start=1):
        sets = [arg for key, value in point.items() for arg in ("--set", f"{key}={value}")]
        commands.append(
            [*nnflow_command(), "train", str(CONFIG), *sets, "--out", str(out / f"{number:02d}"), "--quiet"]
        )
    return commands


def kerastuner_command() -> list[str]:
    return [sys.executable, str(SCRIPT)]


def member_environment(jobs: int, members: int) -> dict[str, str]:
    """bench_env, plus the intra-op threads `nnflow sweep` gives each of its processes: the cores shared by the jobs."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return dict(bench_env(), TF_NUM_INTRAOP_THREADS=str(max(1, cores // max(1, min(jobs, members)))))


def ratios(medians: dict[str, float]) -> dict[str, float]:
    """The sweep's median over each other side's median."""
    return {side: medians["sweep"] / medians[side] for side in TARGETS}


def verdict(ratio: dict[str, float]) -> dict[str, bool]:
    return {side: ratio[side] <= target for side, target in TARGETS.items()}


def check_job(name: str, cmd: list[str], points: list[tuple[float, float]], completed: int) -> None:
    """Stop the benchmark unless the side ran the 12 grid points, each to completion."""
    if sorted(points) != EXPECTED or completed != len(EXPECTED):
        fail(name, f"not the same job: {completed} of {len(points)} trials completed, grid {sorted(points)}", cmd)


def best_of(results: list[dict]) -> dict:
    """The member with the lowest val_loss: its grid point, val_loss and test accuracy."""
    best = min(results, key=lambda r: r["val_loss"])
    return {"grid": best["grid"], "val_loss": best["val_loss"], "test_accuracy": best["test_accuracy"]}


def fit_seconds(run: str | None) -> float | None:
    """run.json's fit seconds, or None for a member without a readable run folder."""
    if not run:
        return None
    try:
        return float(json.loads((Path(run) / "run.json").read_text())["timing"]["fit_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def sweep_member(member: dict) -> dict:
    """One member of `nnflow sweep --json`: its grid point, outcome, scores and fit seconds.

    The scores are the member's "metrics", else its run folder's metrics.json.
    """
    metrics = member.get("metrics") or {}
    if not {"val_loss", "test_accuracy"} <= metrics.keys() and member.get("run"):
        try:
            metrics = json.loads((Path(member["run"]) / "metrics.json").read_text())
        except (OSError, ValueError):
            pass
    return {
        "grid": member["grid"],
        "completed": member["status"] == "completed" and not member.get("exit_code"),
        "val_loss": float(metrics["val_loss"]),
        "test_accuracy": float(metrics["test_accuracy"]),
        "fit_seconds": fit_seconds(member.get("run")),
        "seconds": member.get("seconds"),
    }


def run_sweep(out: Path) -> dict:
    cmd = sweep_command(out)
    elapsed, stdout = run_side("nnflow sweep", cmd)
    try:
        document = json.loads(stdout)
        members = [sweep_member(member) for member in document["members"]]
        points = [point_key(m["grid"][UNITS], m["grid"][LEARNING_RATE]) for m in members]
        completed = sum(m["completed"] for m in members) if document["exit_code"] == 0 else 0
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        fail("nnflow sweep", f"unexpected JSON document: {type(error).__name__}: {error}", cmd, stdout)
    check_job("nnflow sweep", cmd, points, completed)
    return {"total": elapsed, "best": best_of(members), "members": members}


def run_per_member(out: Path) -> dict:
    """The 12 `nnflow train` processes, JOBS at a time; wall time from the first start to the last exit."""
    commands = train_commands(out)
    env = member_environment(JOBS, len(commands))
    waiting, running = list(enumerate(commands)), {}
    start = time.perf_counter()
    while waiting or running:
        while waiting and len(running) < JOBS:
            index, cmd = waiting.pop(0)
            log = tempfile.TemporaryFile()
            process = subprocess.Popen(cmd, stdout=log, stderr=log, env=env, cwd=BENCHMARKS.parent)
            running[process.pid] = (process, cmd, log)
        pid, status = os.wait()  # whichever member ends first; our only children are these
        process, cmd, log = running.pop(pid)
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        with log:
            log.seek(0)
            output = log.read().decode(errors="replace")
        if process.returncode != 0:
            for other, *_ in running.values():
                other.terminate()
                other.wait()
            fail("nnflow train (per member)", f"exit code {process.returncode}", cmd, stderr=output)
    elapsed = time.perf_counter() - start
    members = []
    for point, cmd in zip(grid_points(), commands):
        run_dir = Path(cmd[cmd.index("--out") + 1])
        timing, metrics = read_run("nnflow train (per member)", cmd, run_dir)
        if "test_accuracy" not in metrics or "val_loss" not in metrics:
            fail("nnflow train (per member)", f"no val_loss or test_accuracy in {run_dir}/metrics.json", cmd)
        members.append(
            {
                "grid": point,
                "val_loss": metrics["val_loss"],
                "test_accuracy": metrics["test_accuracy"],
                "fit_seconds": float(timing["fit_seconds"]),
            }
        )
    return {"total": elapsed, "best": best_of(members), "members": members}


def run_kerastuner() -> dict:
    cmd = kerastuner_command()
    elapsed, stdout = run_side("KerasTuner GridSearch", cmd)
    result = last_json_line("KerasTuner GridSearch", cmd, stdout)
    try:
        points = [point_key(point["units"], point["learning_rate"]) for point in result["grid"]]
        best = {
            "grid": result["best"],
            "val_loss": float(result["best_val_loss"]),
            "test_accuracy": float(result["test_accuracy"]),
        }
        trials, completed = int(result["trials"]), int(result["completed"])
    except (ValueError, KeyError, TypeError) as error:
        fail("KerasTuner GridSearch", f"unexpected result line: {type(error).__name__}: {error}", cmd, stdout)
    if trials != len(points):
        fail("KerasTuner GridSearch", f"{trials} trials but {len(points)} grid points", cmd, stdout)
    check_job("KerasTuner GridSearch", cmd, points, completed)
    keys = ("import_seconds", "search_seconds", "evaluate_seconds")
    return {"total": elapsed, "best": best, "trials": trials, **{key: result[key] for key in keys}}


def summarize(runs: list[dict]) -> dict:
    totals = [r["total"] for r in runs]
    return {"min": min(totals), "median": statistics.median(totals), "runs": runs}


def floor_figures(rounds: dict[str, list[dict]]) -> dict:
    """Each member's fit seconds (run.json), from the sweep's runs where they have one, else per-member's."""
    source = "sweep"
    last = rounds["sweep"][-1]["members"]
    if any(m["fit_seconds"] is None for m in last):
        source, last = "per-member", rounds["per-member"][-1]["members"]
    last = sorted(last, key=lambda m: point_key(m["grid"][UNITS], m["grid"][LEARNING_RATE]))  # grid order
    fits = [m["fit_seconds"] for m in last]
    mean = statistics.mean(fits)
    return {
        "source": source,
        "fit_seconds": {f"{m['grid'][UNITS]} x {m['grid'][LEARNING_RATE]}": m["fit_seconds"] for m in last},
        "mean_fit_seconds": mean,
        "sum_fit_seconds": sum(fits),
        "floor_seconds": sum(fits) / JOBS,  # fitting alone, JOBS at a time, nothing else paid
    }


def measure(repeat: int, quiet: bool) -> dict[str, list[dict]]:
    rounds: dict[str, list[dict]] = {side: [] for side in SIDES}
    run_side("warm-up (page cache)", [sys.executable, "-c", WARM_UP])
    with tempfile.TemporaryDirectory(prefix="nnflow-bench-sweep-") as tmp:
        for round_no in range(1, repeat + 1):
            order = SIDES[(round_no - 1) % 3 :] + SIDES[: (round_no - 1) % 3]
            for side in order:
                folder = Path(tmp) / f"{side}-{round_no}"
                load = os.getloadavg()[0]  # the machine is shared: say how busy it was
                if side == "sweep":
                    result = run_sweep(folder)
                elif side == "per-member":
                    result = run_per_member(folder)
                else:
                    result = run_kerastuner()
                rounds[side].append(dict(result, load_before=load))
                if not quiet:
                    print(
                        f"  round {round_no}: {LABELS[side]:<32} {result['total']:6.1f} s  (load before {load:.2f})",
                        file=sys.stderr,
                    )
    return rounds


def report(args, rounds: dict[str, list[dict]], load: dict[str, list[float]]) -> dict:
    seconds = {side: summarize(rounds[side]) for side in SIDES}
    ratio = ratios({side: seconds[side]["median"] for side in SIDES})
    return {
        "python": sys.executable,
        "nnflow": nnflow_command(),
        "config": str(CONFIG),
        "script": str(SCRIPT),
        "grid": GRID,
        "jobs": JOBS,
        "repeat": args.repeat,
        "load_average": load,
        "seconds": seconds,
        "best": {side: rounds[side][-1]["best"] for side in SIDES},
        "floor": floor_figures(rounds),
        "ratios": ratio,
        "targets": TARGETS,
        "target_met": verdict(ratio),
    }


def print_table(figures: dict) -> None:
    seconds, best, floor = figures["seconds"], figures["best"], figures["floor"]
    load = figures["load_average"]
    print(
        f"iris, 12-point grid (units 8/16/32/64 x Adam lr 0.003/0.01/0.03), 60 epochs, batch 16; "
        f"{figures['repeat']} round(s); load average (1 min) {load['before'][0]:.2f} before, {load['after'][0]:.2f} after"
    )
    print(
        f"{'whole process(es)':<34} {'min (s)':>8} {'median (s)':>11} {'best val_loss':>14} {'its test acc':>13} "
        f"{'load at start':>14}"
    )
    for side in SIDES:
        s, b = seconds[side], best[side]
        loads = ", ".join(f"{run['load_before']:.1f}" for run in s["runs"] if "load_before" in run)
        print(
            f"{LABELS[side]:<34} {s['min']:>8.1f} {s['median']:>11.1f} {b['val_loss']:>14.4f} "
            f"{b['test_accuracy']:>13.3f} {loads:>14}"
        )
    print("each side: 12 trials, each completed, the same grid (checked); KerasTuner's val_loss is its best epoch's")
    print()
    print(f"fit seconds per member (run.json, {floor['source']} runs):")
    print("  " + ", ".join(f"{point}: {value:.2f}" for point, value in floor["fit_seconds"].items()))
    sweep = seconds["sweep"]["median"]
    print(
        f"  mean {floor['mean_fit_seconds']:.2f} s; sum {floor['sum_fit_seconds']:.1f} s; floor with {JOBS} jobs "
        f"{floor['floor_seconds']:.1f} s (fitting only); the sweep's median is {sweep:.1f} s, "
        f"{sweep - floor['floor_seconds']:.1f} s above it (start-up, imports, data, run folders)"
    )
    print()
    for side, target in TARGETS.items():
        ratio, met = figures["ratios"][side], figures["target_met"][side]
        print(
            f"ratio sweep / {side} (medians): {ratio:.3f}  target <= {target:.2f} "
            f"(<= {target * seconds[side]['median']:.1f} s): {'met' if met else 'NOT met'}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, metavar="N", help="rounds of the three sides (default: 1)")
    parser.add_argument("--json", action="store_true", help="print a JSON document")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if importlib.util.find_spec("keras_tuner") is None:  # found, not imported: the harness never loads Keras
        print(
            "benchmarks/sweep_speed.py needs keras-tuner for its KerasTuner side; "
            "install the benchmark extra: pip install -e '.[bench]'",
            file=sys.stderr,
        )
        return 2
    load = {"before": list(os.getloadavg())}
    rounds = measure(args.repeat, quiet=args.json)
    load["after"] = list(os.getloadavg())
    figures = report(args, rounds, load)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print_table(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
