"""`fit.distribute`: mirrored and multi-worker training, and what is refused before it starts.

The multi-worker tests run real workers: one `nnflow train` process each, on localhost
ports, with a TF_CONFIG each (a cluster is two processes that must all be running).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from click.testing import CliRunner

from conftest import CONFIGS, ROOT
from nnflow import distribute
from nnflow.cli import cli
from nnflow.errors import ConfigError

IRIS = CONFIGS / "iris.yaml"


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def start_workers(args: list, cwd, addresses: list[str], *, per_worker_args=None, env=None) -> list[subprocess.Popen]:
    """`nnflow train ARGS` on each worker of a localhost cluster, with its TF_CONFIG."""
    processes = []
    for index in range(len(addresses)):
        worker_env = {
            **{key: value for key, value in os.environ.items() if key != "GITHUB_STEP_SUMMARY"},  # not CI's real summary
            **(env or {}),
            "TF_CONFIG": json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}),
        }
        extra = per_worker_args[index] if per_worker_args else []
        command = [sys.executable, "-m", "nnflow", "train", *map(str, args), *extra]
        processes.append(subprocess.Popen(command, cwd=cwd, env=worker_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return processes


def finish(processes: list[subprocess.Popen], timeout: float = 240) -> list[tuple[int, str, str]]:
    """(exit code, stdout, stderr) of each worker; none is left running."""
    try:
        outputs = [process.communicate(timeout=timeout) for process in processes]
        return [(process.returncode, *output) for process, output in zip(processes, outputs)]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()


def localhost_cluster(workers: int = 2) -> list[str]:
    return [f"localhost:{port}" for port in free_ports(workers)]


def test_two_workers_train_one_run_that_only_the_chief_writes(tmp_path):
    out = tmp_path / "run"
    args = [
        IRIS, "--out", out, "--json",
        "--set", "fit.distribute=multi_worker", "--set", "fit.epochs=3", "--set", "expect={}",
        # No seed in the file: each worker draws one and the chief's is used by all of them.
        "--set", "seed=null",
        "--set", "fit.callbacks=[{CSVLogger: {filename: epochs.csv}}]",
    ]
    scratch = tmp_path / "tmp"  # where the other worker's scratch folder goes
    scratch.mkdir()
    (chief_code, chief_out, chief_err), (worker_code, worker_out, worker_err) = finish(
        start_workers(args, tmp_path, localhost_cluster(), env={"TMPDIR": str(scratch)})
    )
    assert chief_code == 0, chief_err
    assert worker_code == 0, worker_err
    chief_doc, worker_doc = json.loads(chief_out), json.loads(worker_out)

    assert chief_doc["run"] == str(out) and worker_doc["run"] is None
    assert chief_doc["distribute"] == {"mode": "multi_worker", "replicas": 2, "workers": 2, "task": "worker:0", "chief": True}
    assert worker_doc["distribute"] == {"mode": "multi_worker", "replicas": 2, "workers": 2, "task": "worker:1", "chief": False}
    assert chief_doc["metrics"] == worker_doc["metrics"]  # evaluated by both, summed over both
    assert chief_doc["epochs"]["completed"] == 3

    # The chief's run folder is complete, and says how it was trained.
    names = {path.name for path in out.iterdir()}
    assert {"run.json", "experiment.yaml", "preprocessing.json", "history.csv", "metrics.json", "model.keras", "epochs.csv"} <= names
    assert "checkpoint.npz" not in names
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "completed" and info["distribute"] == {"mode": "multi_worker", "replicas": 2, "workers": 2}
    assert info["steps_per_execution"] == 1
    assert json.loads((out / "metrics.json").read_text()) == pytest.approx(chief_doc["metrics"])
    assert len((out / "epochs.csv").read_text().splitlines()) == 4  # header + 3 epochs, written once

    # The other worker wrote nothing that stays: no runs/ folder, no scratch folder left.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "tmp"]
    assert not list((tmp_path / "tmp").glob("nnflow-*"))  # (TensorFlow's autograph leaves its own files there)

    # The run is an ordinary run: evaluate reproduces the chief's test metrics on one device.
    evaluated = CliRunner().invoke(cli, ["evaluate", str(out), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["metrics"]["accuracy"] == pytest.approx(chief_doc["metrics"]["test_accuracy"])


def test_a_lost_worker_leaves_a_run_every_worker_can_resume(tmp_path):
    out = tmp_path / "run"
    addresses = localhost_cluster()
    args = [IRIS, "--out", out, "--set", "fit.distribute=multi_worker", "--set", "fit.epochs=40", "--set", "expect={}", "--set", "fit.callbacks=[]"]
    chief, worker = start_workers(args, tmp_path, addresses)
    deadline = time.monotonic() + 120
    history = out / "history.csv"
    while not (history.is_file() and len(history.read_text().splitlines()) > 3) and time.monotonic() < deadline and chief.poll() is None:
        time.sleep(0.05)
    worker.kill()  # a machine lost mid-run
    (code, _, stderr), _ = finish([chief, worker])
    assert code == 4, stderr
    assert "lost contact with worker:1" in stderr and f"nnflow train --resume {out}" in stderr and "Traceback" not in stderr
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "interrupted" and info["epochs"]["completed"] >= 3
    assert (out / "checkpoint.npz").is_file() and not (out / "model.keras").exists()

    results = finish(start_workers(["--resume", out, "--json"], tmp_path, addresses))
    for code, stdout, stderr in results:
        assert code == 0, stderr
    chief_doc, worker_doc = (json.loads(stdout) for _, stdout, _ in results)
    assert chief_doc["resumed_after"] == worker_doc["resumed_after"] == info["epochs"]["completed"]
    assert chief_doc["run"] == str(out) and worker_doc["run"] is None  # it read the run folder, but the chief owns it
    assert json.loads((out / "run.json").read_text())["status"] == "completed"
    epochs = [int(line.split(",")[0]) for line in history.read_text().splitlines()[1:]]
    assert epochs == list(range(1, 41))  # none lost, none repeated


def test_workers_that_disagree_are_all_refused(tmp_path):
    common = [IRIS, "--set", "fit.distribute=multi_worker", "--set", "fit.epochs=2"]
    results = finish(start_workers(common, tmp_path, localhost_cluster(), per_worker_args=[["--set", "fit.batch_size=16"], ["--set", "fit.batch_size=32"]]))
    for code, _, stderr in results:
        assert code == 2, stderr
        assert "not training the same experiment" in stderr
        assert "Traceback" not in stderr
    assert not (tmp_path / "runs").exists()


def test_a_chief_that_refuses_to_start_stops_the_other_workers_too(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("the user's")
    args = [IRIS, "--out", out, "--set", "fit.distribute=multi_worker"]
    (chief_code, _, chief_err), (worker_code, _, worker_err) = finish(start_workers(args, tmp_path, localhost_cluster()))
    assert chief_code == 2 and "already exists and is not an empty folder" in chief_err, chief_err
    assert worker_code == 2 and "worker:0 stopped (exit 2; its output says why), so this worker stops too." in worker_err, worker_err
    assert "Traceback" not in chief_err + worker_err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_mirrored_over_two_devices_splits_each_global_batch(tmp_path):
    """Two logical CPU devices stand in for two GPUs (TensorFlow allows that split only at start-up)."""
    script = textwrap.dedent(f"""
        import json, sys
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import nnflow
        from nnflow.errors import ConfigError
        overrides = ["fit.distribute=mirrored", "fit.epochs=3", "expect={{}}", "fit.diagnostics.gradient_norms=true"]
        result = nnflow.train({str(IRIS)!r}, overrides, out=sys.argv[1])
        try:
            nnflow.train({str(IRIS)!r}, [*overrides, "fit.batch_size=1"], out=sys.argv[1] + "-small")
        except ConfigError as error:
            refused = str(error)
        print(json.dumps({{"result": result.to_json(), "refused": refused}}))
    """)
    out = tmp_path / "run"
    completed = subprocess.run([sys.executable, "-c", script, str(out)], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    result = report["result"]
    assert result["distribute"] == {"mode": "mirrored", "replicas": 2, "workers": 1, "task": None, "chief": True}
    assert result["epochs"]["completed"] == 3 and result["metrics"]["test_accuracy"] > 0.5
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "completed" and info["distribute"]["replicas"] == 2 and info["steps_per_execution"] == 1
    assert (out / "model.keras").is_file() and len((out / "gradients.csv").read_text().splitlines()) > 3
    assert "fit.batch_size is 1, fewer rows than the 2 replicas" in report["refused"]
    assert not (tmp_path / "run-small").exists()


def test_mirrored_on_this_machine_trains_and_says_so(tmp_path):
    result = CliRunner().invoke(cli, ["train", str(IRIS), "--set", "fit.distribute=mirrored", "--set", "fit.epochs=2", "--out", str(tmp_path / "run")])
    assert result.exit_code in (0, 5), result.output
    import tensorflow as tf

    replicas = len(tf.config.list_logical_devices("GPU")) or 1  # without a GPU, the one CPU device
    assert f"(mirrored, {replicas} replica" in result.stdout
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["distribute"] == {"mode": "mirrored", "replicas": replicas, "workers": 1}


# ---------------------------------------------------------------------------
# Refused before any TensorFlow work: TF_CONFIG, the setting itself.


@pytest.mark.parametrize(
    "tf_config, message",
    [
        (None, "TF_CONFIG is not set"),
        ("{cluster: 1}", "TF_CONFIG is not JSON"),
        ('{"cluster": {"worker": ["a:1"]}}', "needs a `cluster` and a `task`"),
        ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}}', "uses only `chief` and `worker`"),
        ('{"cluster": {"worker": "a:1"}, "task": {"type": "worker", "index": 0}}', 'list of "host:port" addresses'),
        ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}', "0 to 1"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}', "not a job of its cluster"),
        ('{"cluster": {"chief": ["a:1", "b:1"], "worker": ["c:1"]}, "task": {"type": "worker", "index": 0}}', "exactly one address"),
    ],
)
def test_bad_tf_config_is_a_clear_usage_error(tf_config, message, tmp_path, monkeypatch):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    result = CliRunner().invoke(cli, ["train", str(IRIS), "--set", "fit.distribute=multi_worker", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "TF_CONFIG" in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_port_in_use_is_said_so(tmp_path):
    """Run in a process of its own: a strategy can only start before TensorFlow has run anything."""
    with socket.socket() as taken:
        taken.bind(("localhost", 0))
        taken.listen()
        port = taken.getsockname()[1]
        tf_config = {"cluster": {"worker": [f"localhost:{port}", "localhost:1"]}, "task": {"type": "worker", "index": 0}}
        completed = subprocess.run(
            [sys.executable, "-m", "nnflow", "train", str(IRIS), "--set", "fit.distribute=multi_worker"],
            cwd=tmp_path, env={**os.environ, "TF_CONFIG": json.dumps(tf_config)}, capture_output=True, text=True, timeout=120,
        )
    code, stderr = completed.returncode, completed.stderr
    assert code == 2, stderr
    assert f"could not start this worker (worker:0 at localhost:{port})" in stderr and f"is port {port} in use" in stderr
    assert not (tmp_path / "runs").exists()


def test_the_chief_is_chief_0_or_else_worker_0():
    cluster = {"worker": ["a:1", "b:1"]}
    assert distribute.is_chief({"cluster": cluster, "task": {"type": "worker", "index": 0}})
    assert not distribute.is_chief({"cluster": cluster, "task": {"type": "worker", "index": 1}})
    with_chief = {"chief": ["c:1"], **cluster}
    assert distribute.is_chief({"cluster": with_chief, "task": {"type": "chief", "index": 0}})
    assert not distribute.is_chief({"cluster": with_chief, "task": {"type": "worker", "index": 0}})


def fake_cluster(monkeypatch, others: list[list[int]], workers: int):
    """This process as worker:0 of a cluster whose other workers contribute `others` to each all-reduce."""
    def summed(distribution, values):
        return [sum(column) for column in zip(values, *others)]

    monkeypatch.setattr(distribute, "_sum_over_workers", summed)
    tasks = tuple(f"worker:{i}" for i in range(workers))
    return distribute.Distribution("multi_worker", replicas=workers, workers=workers, task="worker:0", chief=True, tasks=tasks)


def contribution(fingerprint: str, code: int = 0, workers: int = 2, rank: int = 1) -> list[int]:
    f = int(hashlib.sha256(fingerprint.encode()).hexdigest()[:5], 16)
    codes = [0] * workers
    codes[rank] = code
    return [f, f * f, 1, *codes]


@pytest.mark.parametrize("others, agree", [(["a"], True), (["b"], False), (["a", "b"], False), (["b", "b"], False)])
def test_workers_that_differ_are_found(monkeypatch, others, agree):
    workers = len(others) + 1
    cluster = fake_cluster(monkeypatch, [contribution(x, workers=workers, rank=i + 1) for i, x in enumerate(others)], workers)
    if agree:
        distribute.check_same_experiment(cluster, "a")
    else:
        with pytest.raises(ConfigError, match="not training the same experiment"):
            distribute.check_same_experiment(cluster, "a")


def test_a_worker_that_failed_its_checks_stops_all_of_them(monkeypatch):
    from nnflow.errors import DataError

    cluster = fake_cluster(monkeypatch, [contribution("a", code=3)], 2)  # worker:1 could not read its data
    with pytest.raises(DataError, match=r"worker:1 stopped \(exit 3; its output says why\)"):
        distribute.check_same_experiment(cluster, "a")
    cluster = fake_cluster(monkeypatch, [contribution("a")], 2)
    with pytest.raises(DataError, match="train.csv is missing"):  # its own error, after telling the others
        distribute.check_same_experiment(cluster, "", DataError("train.csv is missing"))
    cluster = fake_cluster(monkeypatch, [[0, 0, 0]], 2)  # the seed: the chief's, whatever the others drew
    assert distribute.agree_seed(cluster, 1234) == 1234


def test_a_worker_lost_while_the_others_agree_is_a_clear_error(monkeypatch):
    import tensorflow as tf

    from nnflow.errors import TrainingError

    def lost(distribution, values):
        raise tf.errors.UnavailableError(None, None, "The following tasks are unhealthy (stopped sending heartbeats):\n/job:worker/replica:0/task:1")

    cluster = fake_cluster(monkeypatch, [], 2)
    monkeypatch.setattr(distribute, "_sum_over_workers", lost)
    with pytest.raises(TrainingError, match="lost contact with worker:1 .*Start every worker again"):
        distribute.agree_seed(cluster, 7)


def test_distribute_is_checked_with_the_file(write):
    result = CliRunner().invoke(cli, ["check", str(IRIS), "--set", "fit.distribute=multiworker"])
    assert result.exit_code == 2
    assert "fit.distribute: expected one of none, mirrored, multi_worker" in result.stderr and "Did you mean 'multi_worker'?" in result.stderr


def test_other_workers_keep_callback_files_in_their_scratch_folder(tmp_path):
    from nnflow.builder import build_callbacks
    from nnflow.spec import load_spec

    logs = tmp_path / "shared" / "log.csv"
    spec = load_spec(IRIS, [f"fit.callbacks=[{{CSVLogger: {{filename: {logs}}}}}, {{TensorBoard: {{log_dir: tb}}}}]"])
    chief = build_callbacks(spec, base_dir=tmp_path / "run")
    assert chief[0].filename == str(logs) and chief[1].log_dir == str(tmp_path / "run" / "tb")
    other = build_callbacks(spec, base_dir=tmp_path / "scratch", every_path=True)
    assert other[0].filename == str(tmp_path / "scratch" / logs.relative_to("/"))
    assert other[1].log_dir == str(tmp_path / "scratch" / "tb")
