"""How fast `nnflow serve` answers over HTTP, against a hand-written floor and MLflow's scoring server.

Run it from the project root with the project's interpreter:

    .venv/bin/python benchmarks/serve_latency.py                  # every side, about 80 s
    .venv/bin/python benchmarks/serve_latency.py --quick          # a smoke run: every phase shortened
    .venv/bin/python benchmarks/serve_latency.py --side nnflow --side floor --json

It trains configs/iris.yaml into a temporary folder (with --mlflow when MLflow is importable, so
that MLflow holds the very same model as runs:/<id>/model), then starts each side in turn on
127.0.0.1 and measures it with one client harness, on the same rows (data/iris.csv's features):

  nnflow  `nnflow serve RUN --port 0 --json`; POST /predict {"rows": [{...}, ...]}
  floor   handwritten/serve_floor.py: FastAPI on uvicorn parsing JSON and a 4x3 numpy product
  mlflow  `mlflow models serve -m runs:/<id>/model --env-manager local`; POST /invocations
          {"dataframe_records": [{...}, ...]}; it predicts per request, so its phases are capped

Phases: (1) one-row requests in sequence on one keep-alive connection (p50, p99); (2) 8 client
threads, each on its own keep-alive connection sending one-row requests (requests/s, p50, p99);
(3) 1,000-row requests in sequence (rows/s). nnflow's targets (issue 16): p50 <= 3 ms, p99 <= 15 ms,
>= 1,000 requests/s, >= 100,000 rows/s. A measurement, not a test: it exits 0 whether or not they
hold, 1 when a side fails to start or answers wrongly, 130 on Ctrl-C (servers stopped all the same).

The client harness (a lean HTTP client, the phases and their arithmetic) is in _serve_client.py.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path

from _common import HANDWRITTEN, ROOT, bench_env, fail, nnflow_command
from _serve_client import (
    QUICK,
    TARGETS,
    Connection,
    HttpFailure,
    Plan,
    capped_for_mlflow,
    get,
    measure,
    ratios,
    species_of,
    verdicts,
)

SIDES = ("nnflow", "floor", "mlflow")
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
START_SECONDS = 120.0  # MLflow's server takes 10-20 s here
ISSUE_FLOOR = {"p50_ms": 0.47, "requests_per_s": 3765.0, "rows_per_s": 322_000.0}  # issue 16, this machine


# ---------------------------------------------------------------------------
# The servers


@dataclass
class Server:
    """One side's process, in a session of its own (Ctrl-C reaches only us; we stop it), and its folder."""

    name: str
    cmd: list[str]
    folder: Path
    process: subprocess.Popen
    started: float
    exit_code: int | None = None

    def output(self, stream: str) -> str:
        return (self.folder / stream).read_text(errors="replace")

    def fail(self, what: str) -> None:
        fail(self.name, what, self.cmd, self.output("stdout"), self.output("stderr"))


def start(name: str, cmd: list[str], folder: Path, env: dict[str, str]) -> Server:
    """Start a side with its output in files (an undrained pipe would block it) and TMPDIR in its folder."""
    (folder / "tmp").mkdir(parents=True)
    env = dict(
        env, TMPDIR=str(folder / "tmp"), PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', os.defpath)}"
    )
    with open(folder / "stdout", "wb") as out, open(folder / "stderr", "wb") as err:
        process = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=folder, start_new_session=True
        )
    return Server(name, cmd, folder, process, time.perf_counter())


def wait_ready(server: Server, ping: str | None, port: int | None) -> tuple[str, int]:
    """The address once ready: the URL of its first stdout line, or the first 200 from GET `ping` on `port`."""
    deadline = server.started + START_SECONDS
    while time.perf_counter() < deadline:
        if server.process.poll() is not None:
            server.fail(f"exit code {server.process.returncode} before it was ready")
        if ping is None and "\n" in (line := server.output("stdout")):
            try:
                host, port_text = json.loads(line.splitlines()[0])["url"].removeprefix("http://").rsplit(":", 1)
                return host, int(port_text)
            except (ValueError, KeyError, TypeError, AttributeError):
                server.fail("its first stdout line is not JSON with a url")
        if ping is not None:
            try:
                if get(("127.0.0.1", port), ping)[0] == 200:
                    return "127.0.0.1", port
            except (OSError, HttpFailure):
                pass
        time.sleep(0.1)
    server.fail(f"not ready after {START_SECONDS:.0f} s")


def stop(server: Server, grace: float = 10.0) -> None:
    """SIGTERM to its process group, SIGKILL to whatever is left after `grace` seconds; keeps the exit code."""
    deadline = time.monotonic() + grace
    for number in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(server.process.pid, number)
            while time.monotonic() < deadline:
                os.killpg(server.process.pid, 0)  # ProcessLookupError once the whole group is gone
                server.process.poll()
                time.sleep(0.05)
        except ProcessLookupError:
            break
    server.exit_code = server.process.wait()


def free_port() -> int:
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def iris_rows() -> tuple[list[dict], list[str]]:
    """data/iris.csv's features (as the JSON rows every side gets) and species."""
    with open(ROOT / "data" / "iris.csv", newline="") as stream:
        records = list(csv.DictReader(stream))
    return [{name: float(record[name]) for name in FEATURES} for record in records], [r["species"] for r in records]


def train(folder: Path, with_mlflow: bool) -> tuple[Path, dict]:
    """Train configs/iris.yaml into folder/runs/iris; with MLflow, also its run (run_id, tracking_uri)."""
    run_dir = folder / "runs" / "iris"
    cmd = [*nnflow_command(), "train", str(ROOT / "configs" / "iris.yaml"), "--out", str(run_dir), "-q"]
    env = dict(bench_env(), MLFLOW_TRACKING_URI=f"sqlite:///{folder / 'mlflow.db'}")
    done = subprocess.run(cmd + ["--mlflow"] * with_mlflow, env=env, cwd=folder, capture_output=True, text=True)
    if done.returncode != 0:
        fail("nnflow train", f"exit code {done.returncode}", cmd, done.stdout, done.stderr)
    tracking = json.loads((run_dir / "run.json").read_text()).get("tracking", {}).get("mlflow", {})
    if with_mlflow and not {"run_id", "tracking_uri"} <= tracking.keys():
        fail("nnflow train --mlflow", f"no MLflow run in run.json: {tracking}", cmd, done.stdout, done.stderr)
    return run_dir, tracking


def side_command(name: str, run_dir: Path | None, tracking: dict, port: int | None) -> list[str]:
    if name == "nnflow":
        return [*nnflow_command(), "serve", str(run_dir), "--port", "0", "--json"]
    if name == "floor":
        return [sys.executable, str(HANDWRITTEN / "serve_floor.py"), "--port", "0"]
    found = shutil.which("mlflow", path=str(Path(sys.executable).parent))
    model = f"runs:/{tracking['run_id']}/model"
    serve = ["models", "serve", "-m", model, "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]
    return [found] + serve if found else [sys.executable, "-m", "mlflow", *serve]


def run_side(name: str, folder: Path, plan: Plan, rows: list[dict], run_dir: Path | None, tracking: dict) -> dict:
    """Start one side, measure it, stop it: its figures, answers, start time and exit code."""
    env = bench_env() | ({"MLFLOW_TRACKING_URI": tracking["tracking_uri"]} if name == "mlflow" else {})
    port = free_port() if name == "mlflow" else None
    path, key = ("/invocations", "dataframe_records") if name == "mlflow" else ("/predict", "rows")
    server = start(name, side_command(name, run_dir, tracking, port), folder / name, env)
    figures: dict = {"load_average_before": os.getloadavg()[0]}  # the machine is shared: say how busy it was
    try:
        address = wait_ready(server, "/ping" if name == "mlflow" else None, port)
        figures["start_seconds"] = time.perf_counter() - server.started
        print(f"{name}: ready after {figures['start_seconds']:.1f} s; measuring", file=sys.stderr)
        sent_before = Connection.sent_total
        if name == "nnflow":
            figures["health_status_when_ready"] = get(address, "/health")[0]
        figures["species"] = species_of(address, path, key, rows)
        plan = capped_for_mlflow(plan) if name == "mlflow" else plan
        figures["plan"] = asdict(plan)
        figures |= measure(address, path, key, rows, plan, metrics=name == "nnflow")
        figures["requests_sent"] = Connection.sent_total - sent_before
    except (OSError, HttpFailure) as error:
        server.fail(f"answered wrongly: {type(error).__name__}: {error}")
    finally:
        stop(server)
    figures["exit_code"] = server.exit_code
    stderr = server.output("stderr").splitlines()
    figures["stderr_lines"] = len(stderr)
    # nnflow's access log: "2026-12-02T00:40:58Z 127.0.0.1:46970 POST /predict 200 rows=1 4.27ms"
    figures["access_log_lines"] = sum(line.split(" ")[2:3] in (["GET"], ["POST"]) for line in stderr)
    return figures


# ---------------------------------------------------------------------------
# The report


def report(sides: dict, labels: list[str], seconds: float, plan: Plan) -> dict:
    """The JSON document: every side's figures, nnflow's ratios and targets, and what looked odd."""
    notes = []
    species = {name: figures.pop("species") for name, figures in sides.items()}
    for name in set(species) - {"floor"}:
        sides[name]["accuracy"] = sum(map(str.__eq__, species[name], labels)) / len(labels)
    if {"nnflow", "mlflow"} <= species.keys() and (
        differ := sum(map(str.__ne__, species["nnflow"], species["mlflow"]))
    ):
        notes.append(f"nnflow and MLflow predict another species for {differ} of the {len(labels)} rows")
    document: dict = {"date": datetime.date.today().isoformat(), "cores": os.cpu_count(), "plan": asdict(plan)}
    document |= {"seconds": seconds, "sides": sides, "issue_floor": ISSUE_FLOOR}
    if nnflow := sides.get("nnflow"):
        document["ratios"] = {f"nnflow/{other}": ratios(nnflow, sides[other]) for other in SIDES[1:] if other in sides}
        met = verdicts(nnflow)
        document["targets"] = {name: [op, bound, met[name]] for name, (op, bound) in TARGETS.items()}
        if nnflow["exit_code"] != 0:
            notes.append(f"nnflow serve exited {nnflow['exit_code']} on SIGTERM (expected 0)")
        if nnflow["access_log_lines"] != nnflow["requests_sent"]:
            notes.append(
                f"nnflow's access log has {nnflow['access_log_lines']} lines for {nnflow['requests_sent']} requests"
            )
        if nnflow["health_status_when_ready"] != 200:
            notes.append(f"nnflow's /health answered {nnflow['health_status_when_ready']} after its ready line")
    document["notes"] = notes
    return document


def render(document: dict) -> str:
    """The figures as a table, then the ratios, the answers and the notes."""
    sides = document["sides"]
    names = [name for name in SIDES if name in sides]
    targets = document.get("targets", {})
    lines = [
        f"{document['date']}, {document['cores']} cores, 127.0.0.1, iris rows"
        + " (--quick)" * (document["plan"] == asdict(QUICK)),
        f"{'':<31}" + "".join(f"{name:>10}" for name in names) + "   nnflow's target",
    ]
    for label, phase, figure, target in SHOWN:
        row = f"{label:<31}" + "".join(f"{number(sides[name][phase][figure]):>10}" for name in names)
        if target in targets:
            op, bound, met = targets[target]
            row += f"   {op} {number(bound)}  {'ok' if met else 'MISSED'}"
        lines.append(row)
    floor = document["issue_floor"]
    for other, ratio in document.get("ratios", {}).items():
        if other == "nnflow/floor":
            lines.append(
                f"nnflow/floor: p50 x{ratio['p50_ms']:.2f}, requests/s x{ratio['requests_per_s']:.2f}, rows/s x"
                f"{ratio['rows_per_s']:.2f} (issue 16's floor here: p50 {floor['p50_ms']} ms, "
                f"{floor['requests_per_s']:,.0f} requests/s, {floor['rows_per_s']:,.0f} rows/s)"
            )
        else:
            lines.append(
                f"{other}: {1 / ratio['p50_ms']:.1f}x faster (p50), requests/s x{ratio['requests_per_s']:.1f}, "
                f"rows/s x{ratio['rows_per_s']:.1f}"
            )
    for name in names:
        figures = sides[name]
        accuracy = f", accuracy {figures['accuracy']:.3f} on data/iris.csv" if "accuracy" in figures else ""
        calls = figures["concurrent"].get("model_calls_per_request")
        lines.append(
            f"{name}: load {figures['load_average_before']:.1f} before, ready after {figures['start_seconds']:.1f} s"
            f"{accuracy}; {figures['requests_sent']:,} requests, "
            f"{figures['stderr_lines']:,} stderr lines; exit code {figures['exit_code']} on SIGTERM"
            + ("" if calls is None else f"; {calls:.3f} model calls per request at 8 clients")
        )
    lines += [f"note: {note}" for note in document["notes"]] + [
        f"{document['seconds']:.0f} s in all"
        + (f", {document['train_seconds']:.0f} s of it training" if document.get("train_seconds") else "")
    ]
    return "\n".join(lines)


SHOWN = [  # label, phase, figure, target
    ("one row, sequential: p50 (ms)", "sequential", "p50_ms", "p50_ms"),
    ("one row, sequential: p99 (ms)", "sequential", "p99_ms", "p99_ms"),
    ("8 clients: requests/s", "concurrent", "requests_per_s", "requests_per_s"),
    ("8 clients: p50 (ms)", "concurrent", "p50_ms", None),
    ("8 clients: p99 (ms)", "concurrent", "p99_ms", None),
    ("1,000-row requests: rows/s", "bulk", "rows_per_s", "rows_per_s"),
    ("1,000-row requests: p50 (ms)", "bulk", "p50_ms", None),
    ("one-row requests timed", "sequential", "requests", None),
]


def number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or isinstance(value, int) else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", action="append", choices=SIDES, help="measure this side only (repeatable)")
    parser.add_argument("--quick", action="store_true", help="shorten every phase (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    sides = [name for name in SIDES if name in (args.side or SIDES)]
    if "mlflow" in sides and importlib.util.find_spec("mlflow") is None:
        if args.side:
            print("The mlflow side needs MLflow: pip install -e '.[mlflow]'", file=sys.stderr)
            return 2
        print("MLflow is not installed: no mlflow side (pip install -e '.[mlflow]')", file=sys.stderr)
        sides.remove("mlflow")
    rows, labels = iris_rows()
    began = time.perf_counter()
    results = {}
    try:
        with tempfile.TemporaryDirectory(prefix="nnflow-bench-serve-") as tmp:
            run_dir, tracking = None, {}
            if "nnflow" in sides or "mlflow" in sides:
                print("training configs/iris.yaml" + " with --mlflow" * ("mlflow" in sides), file=sys.stderr)
                run_dir, tracking = train(Path(tmp), "mlflow" in sides)
            trained = time.perf_counter() - began if run_dir else None
            for name in sides:
                results[name] = run_side(name, Path(tmp), QUICK if args.quick else Plan(), rows, run_dir, tracking)
    except KeyboardInterrupt:
        print("interrupted; every server started was stopped", file=sys.stderr)
        return 130
    document = report(results, labels, time.perf_counter() - began, QUICK if args.quick else Plan())
    document["train_seconds"] = trained
    print(json.dumps(document, indent=2) if args.json else render(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
