"""`fit.distribute`: mirrored and multi-worker training, and what is refused before it starts.

The multi-worker tests run real workers: one `nnflow train` process each, on localhost
ports, with a TF_CONFIG each (a cluster is two processes that must all be running).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
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
    return [
        start_worker(args + (per_worker_args[index] if per_worker_args else []), cwd, addresses, index, env=env)
        for index in range(len(addresses))
    ]


def start_worker(args: list, cwd, addresses: list[str], index: int, *, env=None) -> subprocess.Popen:
    """`nnflow train ARGS` as worker:INDEX of a localhost cluster."""
    worker_env = {
        **{key: value for key, value in os.environ.items() if key != "GITHUB_STEP_SUMMARY"},  # not CI's real summary
        **(env or {}),
        "TF_CONFIG": json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}),
    }
    command = [sys.executable, "-m", "nnflow", "train", *map(str, args)]
    return subprocess.Popen(command, cwd=cwd, env=worker_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


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


@pytest.mark.slow
def test_two_workers_train_one_run_that_only_the_chief_writes(tmp_path):
    out = tmp_path / "run"
    args = [
        IRIS,
        "--out",
        out,
        "--json",
        "--set",
        "fit.distribute=multi_worker",
        "--set",
        "fit.epochs=3",
        "--set",
        "expect={}",
        # No seed in the file: each worker draws one and the chief's is used by all of them.
        "--set",
        "seed=null",
        "--set",
        "fit.callbacks=[{CSVLogger: {filename: epochs.csv}}]",
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
    assert chief_doc["distribute"] == {
        "mode": "multi_worker",
        "replicas": 2,
        "workers": 2,
        "task": "worker:0",
        "chief": True,
    }
    assert worker_doc["distribute"] == {
        "mode": "multi_worker",
        "replicas": 2,
        "workers": 2,
        "task": "worker:1",
        "chief": False,
    }
    assert chief_doc["metrics"] == worker_doc["metrics"]  # evaluated by both, summed over both
    assert chief_doc["epochs"]["completed"] == 3

    # The chief's run folder is complete, and says how it was trained.
    names = {path.name for path in out.iterdir()}
    assert {
        "run.json",
        "experiment.yaml",
        "preprocessing.json",
        "history.csv",
        "metrics.json",
        "model.keras",
        "epochs.csv",
    } <= names
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


@pytest.mark.slow
def test_a_lost_worker_leaves_a_run_every_worker_can_resume(tmp_path):
    out = tmp_path / "run"
    addresses = localhost_cluster()
    args = [
        IRIS,
        "--out",
        out,
        "--set",
        "fit.distribute=multi_worker",
        "--set",
        "fit.epochs=40",
        "--set",
        "expect={}",
        "--set",
        "fit.callbacks=[]",
    ]
    chief, worker = start_workers(args, tmp_path, addresses)
    deadline = time.monotonic() + 120
    history = out / "history.csv"
    while (
        not (history.is_file() and len(history.read_text().splitlines()) > 3)
        and time.monotonic() < deadline
        and chief.poll() is None
    ):
        time.sleep(0.05)
    worker.kill()  # a machine lost mid-run
    (code, _, stderr), _ = finish([chief, worker])
    assert code == 4, stderr
    assert (
        "lost contact with worker:1" in stderr
        and f"nnflow train --resume {out}" in stderr
        and "Traceback" not in stderr
    )
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "interrupted" and info["epochs"]["completed"] >= 3
    assert (out / "checkpoint.npz").is_file() and not (out / "model.keras").exists()

    results = finish(start_workers(["--resume", out, "--json"], tmp_path, addresses))
    for code, _, stderr in results:
        assert code == 0, stderr
    chief_doc, worker_doc = (json.loads(stdout) for _, stdout, _ in results)
    assert chief_doc["resumed_after"] == worker_doc["resumed_after"] == info["epochs"]["completed"]
    assert chief_doc["run"] == str(out) and worker_doc["run"] is None  # it read the run folder, but the chief owns it
    assert json.loads((out / "run.json").read_text())["status"] == "completed"
    epochs = [int(line.split(",")[0]) for line in history.read_text().splitlines()[1:]]
    assert epochs == list(range(1, 41))  # none lost, none repeated


@pytest.mark.slow
def test_workers_that_disagree_are_all_refused(tmp_path):
    common = [IRIS, "--set", "fit.distribute=multi_worker", "--set", "fit.epochs=2"]
    results = finish(
        start_workers(
            common,
            tmp_path,
            localhost_cluster(),
            per_worker_args=[["--set", "fit.batch_size=16"], ["--set", "fit.batch_size=32"]],
        )
    )
    for code, _, stderr in results:
        assert code == 2, stderr
        assert "not training the same experiment" in stderr
        assert "Traceback" not in stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_chief_that_refuses_to_start_stops_the_other_workers_too(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("the user's")
    args = [IRIS, "--out", out, "--set", "fit.distribute=multi_worker"]
    (chief_code, _, chief_err), (worker_code, _, worker_err) = finish(
        start_workers(args, tmp_path, localhost_cluster())
    )
    assert chief_code == 2 and "already exists and is not an empty folder" in chief_err, chief_err
    assert (
        worker_code == 2 and "worker:0 stopped (exit 2; its output says why), so this worker stops too." in worker_err
    ), worker_err
    assert "Traceback" not in chief_err + worker_err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


@pytest.mark.slow
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
    completed = subprocess.run(
        [sys.executable, "-c", script, str(out)], cwd=ROOT, capture_output=True, text=True, timeout=240
    )
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
    result = CliRunner().invoke(
        cli,
        [
            "train",
            str(IRIS),
            "--set",
            "fit.distribute=mirrored",
            "--set",
            "fit.epochs=2",
            "--out",
            str(tmp_path / "run"),
        ],
    )
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
        (
            '{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}}',
            "uses only `chief` and `worker`",
        ),
        ('{"cluster": {"worker": "a:1"}, "task": {"type": "worker", "index": 0}}', 'list of "host:port" addresses'),
        ('{"cluster": {"worker": ["a:http"]}, "task": {"type": "worker", "index": 0}}', "a port from 1 to 65535"),
        ('{"cluster": {"worker": ["a:0"]}, "task": {"type": "worker", "index": 0}}', "a port from 1 to 65535"),
        ('{"cluster": {"worker": ["a:65536"]}, "task": {"type": "worker", "index": 0}}', "a port from 1 to 65535"),
        ('{"cluster": {"worker": [":1"]}, "task": {"type": "worker", "index": 0}}', "a port from 1 to 65535"),
        ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}', "0 to 1"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}', "not a job of its cluster"),
        (
            '{"cluster": {"chief": ["a:1", "b:1"], "worker": ["c:1"]}, "task": {"type": "worker", "index": 0}}',
            "exactly one address",
        ),
    ],
)
def test_bad_tf_config_is_a_clear_usage_error(tf_config, message, tmp_path, monkeypatch):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    result = CliRunner().invoke(
        cli, ["train", str(IRIS), "--set", "fit.distribute=multi_worker", "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "TF_CONFIG" in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("index", [0, 1], ids=["the chief", "another worker"])
def test_a_port_in_use_is_said_so_before_joining(index, tmp_path, monkeypatch):
    """Found before the worker joins (and before TensorFlow loads): the others then time out."""
    with socket.socket() as taken:
        taken.bind(("localhost", 0))
        taken.listen()
        port = taken.getsockname()[1]
        addresses = [f"localhost:{port}", "localhost:1"] if index == 0 else ["localhost:1", f"localhost:{port}"]
        monkeypatch.setenv(
            "TF_CONFIG", json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}})
        )
        result = CliRunner().invoke(
            cli, ["train", str(IRIS), "--set", "fit.distribute=multi_worker", "--out", str(tmp_path / "run")]
        )
    assert result.exit_code == 2, result.output
    assert (
        f"could not start this worker (worker:{index} at localhost:{port}): port {port} is in use by another process"
        in result.stderr
    )
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------
# Joining: every worker says hello to the chief, in Python and with a timeout, before any of
# them builds the strategy (whose constructor would wait inside TensorFlow, deaf to signals).


def worker_config(addresses: list[str], index: int) -> dict:
    return {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}


def join_in_thread(
    addresses: list[str], index: int, timeout: float, results: dict, config: dict | None = None
) -> threading.Thread:
    """worker:INDEX joins the localhost cluster in a thread; results[index] becomes "go" or the error."""
    config = config or worker_config(addresses, index)

    def join():
        deadline = time.monotonic() + timeout
        try:
            with distribute.hold_port(config) as port:
                distribute.join_cluster(config, port, deadline, timeout)
            results[index] = "go"
        except Exception as error:
            results[index] = error

    thread = threading.Thread(target=join)
    thread.start()
    return thread


def say_hello(addresses: list[str], task: str, within: float = 30) -> socket.socket:
    """A raw connection to the chief that says it is TASK (retried until the chief listens)."""
    digest = distribute._cluster_digest(worker_config(addresses, 0))
    host, port = addresses[0].rsplit(":", 1)
    deadline = time.monotonic() + within
    while True:
        try:
            connection = socket.create_connection((host, int(port)), timeout=within)
            break
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, "the chief never listened"
            time.sleep(0.05)
    connection.sendall(f"nnflow-join 1 {task} {digest}\n".encode())
    return connection


def heard(connection: socket.socket) -> list[str]:
    """Every line the chief sends on CONNECTION until it closes it."""
    received = b""
    while data := connection.recv(1024):
        received += data
    return received.decode().splitlines()


def first_line(connection: socket.socket) -> str:
    received = b""
    while not received.endswith(b"\n"):
        data = connection.recv(1)
        assert data, f"the chief closed the connection after {received!r}"
        received += data
    return received.decode().strip()


@pytest.mark.parametrize("chief_job", [False, True], ids=["worker:0 is the chief", "chief:0 is the chief"])
def test_every_worker_goes_once_all_of_them_have_joined(chief_job):
    addresses, results = localhost_cluster(3), {}
    if chief_job:
        tasks = [("chief", 0), ("worker", 0), ("worker", 1)]
        configs = [
            {"cluster": {"chief": addresses[:1], "worker": addresses[1:]}, "task": {"type": job, "index": i}}
            for job, i in tasks
        ]
    else:
        configs = [worker_config(addresses, index) for index in range(3)]
    threads = [
        join_in_thread(addresses, index, 10, results, configs[index]) for index in (2, 1)
    ]  # before the chief listens: they retry
    time.sleep(0.3)
    threads.append(join_in_thread(addresses, 0, 10, results, configs[0]))
    for thread in threads:
        thread.join()
    assert results == {0: "go", 1: "go", 2: "go"}


def test_a_missing_worker_is_named_by_the_chief_and_by_the_workers_that_joined():
    from nnflow.errors import TrainingError

    addresses, results = localhost_cluster(3), {}
    started = time.monotonic()
    for thread in [join_in_thread(addresses, index, 1.0, results) for index in (0, 1)]:
        thread.join()
    assert time.monotonic() - started < 2.5
    chief, worker = results[0], results[1]
    assert isinstance(chief, TrainingError) and isinstance(worker, TrainingError)
    missing = f"worker:2 ({addresses[2]}) did not join within 1 s (fit.join_timeout"
    assert str(chief).startswith(missing + "): it is not running, or failed before joining")
    assert str(worker).startswith(missing + ", says the chief worker:0)")


def test_a_worker_that_leaves_before_all_have_joined_is_missing_again():
    addresses, results = localhost_cluster(3), {}
    chief = join_in_thread(addresses, 0, 2.0, results)
    with say_hello(addresses, "worker:1") as first:
        assert first_line(first) == "waiting worker:2"
    time.sleep(0.3)  # the chief sees it leave
    with say_hello(addresses, "worker:2") as second:
        assert first_line(second) == "waiting worker:1"  # worker:1 left: the chief waits for it again
        chief.join()
        assert heard(second) == ["missing worker:1"]  # the chief's last word, at its deadline
    assert str(results[0]).startswith(f"worker:1 ({addresses[1]}) did not join within 2 s")


@pytest.mark.parametrize(
    "answer", [None, b"SSH-2.0-OpenSSH_9.6\r\n"], ids=["nothing listens", "another program answers"]
)
def test_a_worker_whose_chief_does_not_answer_names_the_chief(answer):
    from nnflow.errors import TrainingError

    addresses, results = localhost_cluster(2), {}
    stop = threading.Event()
    if answer is not None:  # another program holds the chief's port
        other = socket.create_server(("localhost", int(addresses[0].rsplit(":", 1)[1])))
        other.settimeout(0.05)

        def serve():
            while not stop.is_set():
                try:
                    connection, _ = other.accept()
                except TimeoutError:
                    continue
                with connection:
                    connection.sendall(answer)

        threading.Thread(target=serve, daemon=True).start()
    try:
        join_in_thread(addresses, 1, 0.6, results).join()
    finally:
        stop.set()
    error = results[1]
    assert isinstance(error, TrainingError)
    assert str(error).startswith(
        f"the chief, worker:0 at {addresses[0]}, did not answer within 0.6 s (fit.join_timeout): "
    )
    assert ("something other than an nnflow worker answers" in str(error)) == (answer is not None)


@pytest.mark.parametrize(
    "said, message",
    [
        (
            b"waiting worker:2\nstopped\n",
            "stopped before every worker had joined (its output says why), so this worker stops too.",
        ),
        (
            b"waiting worker:2\n",
            "did not answer within 0.8 s (fit.join_timeout): it went away before every worker had joined",
        ),
    ],
    ids=["it stopped", "it went away"],
)
def test_a_worker_hears_that_its_chief_stopped_waiting(said, message):
    from nnflow.errors import TrainingError

    addresses = localhost_cluster(3)
    fake = socket.create_server(("localhost", int(addresses[0].rsplit(":", 1)[1])))

    def chief():
        with fake:
            connection, _ = fake.accept()
            with connection:
                connection.recv(1024)  # the hello
                connection.sendall(said)

    thread = threading.Thread(target=chief)
    thread.start()
    with pytest.raises(TrainingError) as error:
        distribute.join_cluster(worker_config(addresses, 1), None, time.monotonic() + 0.8, 0.8)
    thread.join()
    assert f"the chief, worker:0 at {addresses[0]}, {message}" in str(error.value)


@pytest.mark.parametrize("impostor", ["same task", "other cluster"])
def test_the_chief_turns_away_a_worker_that_cannot_be_one_of_its_own(impostor):
    addresses, results = localhost_cluster(3), {}
    chief = join_in_thread(addresses, 0, 1.5, results)
    with say_hello(addresses, "worker:1") as joined:
        assert first_line(joined) == "waiting worker:2"
        cluster = addresses if impostor == "same task" else [*addresses[:2], "localhost:1"]
        with pytest.raises(ConfigError) as refused:
            distribute.join_cluster(
                worker_config(cluster, 1 if impostor == "same task" else 2), None, time.monotonic() + 5, 5
            )
        chief.join()
        assert heard(joined) == ["missing worker:2"]
    assert f"the chief, worker:0 at {addresses[0]}, refused this worker" in str(refused.value)
    if impostor == "same task":
        assert "another process has joined as worker:1 already: give each worker its own task index" in str(
            refused.value
        )
    else:
        assert "its TF_CONFIG has another cluster than the chief's" in str(refused.value)
        assert "A process claiming to be worker:2 was turned away: its TF_CONFIG has another cluster" in str(results[0])


# TensorFlow 2.21's own words when its registration barrier times out (the chief's error, then a worker's).
BARRIER_TIMEOUT = """Barrier timed out. Id: [Init]Wait_for_all_tasks_to_register::0. This usually happens because a task triggered the barrier too early or too slowly. Please look at the task logs (both timed out and first task) to debug further.
# of tasks that reached the barrier: 1/3.
The first task at the barrier: /job:worker/replica:0/task:0. Some timed out task names:
/job:worker/replica:0/task:2

Additional GRPC error information from remote target /job:worker/replica:0/task:0 while calling /tensorflow.CoordinationService/RegisterTask:
:UNKNOWN:Error received from peer  {grpc_message:"Barrier timed out. ... The first task at the barrier: /job:worker/replica:0/task:0. Some timed out task names:\\n/job:worker/replica:0/task:2\\n", grpc_status:4}"""
REGISTER_DEADLINE = "Deadline Exceeded\n\nRPC: /tensorflow.CoordinationService/RegisterTask"


@pytest.mark.parametrize(
    "index, text, said",
    [
        (
            0,
            BARRIER_TIMEOUT,
            "worker:2 (localhost:3) joined, then did not start TensorFlow's side within 5 s (fit.join_timeout): it failed",
        ),
        (1, BARRIER_TIMEOUT, "worker:2 (localhost:3) joined, then did not start TensorFlow's side within 5 s"),
        (1, REGISTER_DEADLINE, "worker:0 (localhost:1) joined, then did not start TensorFlow's side within 5 s"),
        (
            0,
            REGISTER_DEADLINE,
            "worker:1 (localhost:2), worker:2 (localhost:3) joined, then did not start TensorFlow's side within 5 s (fit.join_timeout): one of them",
        ),
        (
            1,
            "Could not start gRPC server",
            "could not start this worker (worker:1 at localhost:2): Could not start gRPC server (is port 2 in use by another process?)",
        ),
    ],
)
def test_tensorflows_own_refusals_to_start_are_said_plainly(index, text, said):
    from nnflow.errors import TrainingError

    error = distribute._start_error(
        RuntimeError(text), worker_config(["localhost:1", "localhost:2", "localhost:3"], index), 5.0
    )
    assert said in str(error)
    assert isinstance(error, ConfigError if "gRPC" in text else TrainingError)


def test_tensorflows_registration_barrier_is_still_there():
    """`_bound_registration` relies on it: without it, the chief would wait for a worker lost
    between joining and TensorFlow for ever (the other workers time out either way)."""
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2

    assert (
        "cluster_register_with_barrier" in coordination_config_pb2.CoordinationServiceConfig.DESCRIPTOR.fields_by_name
    )


def wait_for_note(process: subprocess.Popen) -> str:
    """The worker's first line on stdout: the note it prints as it starts waiting for the others."""
    line = process.stdout.readline()
    assert line.startswith("note: this is worker:"), line + process.stderr.read()
    return line


@pytest.mark.slow
def test_a_peer_killed_before_it_joins_stops_the_chief_within_the_timeout(tmp_path):
    work, out = tmp_path / "work", tmp_path / "run"
    work.mkdir()
    addresses, timeout = localhost_cluster(2), 8
    args = [IRIS, "--out", out, "--set", "fit.distribute=multi_worker", "--set", f"fit.join_timeout={timeout}"]
    started = time.monotonic()
    chief = start_worker(args, work, addresses, 0)
    assert "waiting up to 8 s (fit.join_timeout) for all of them to join" in wait_for_note(chief)
    peer = start_worker(args, work, addresses, 1)
    time.sleep(0.5)
    peer.kill()  # long before it has loaded TensorFlow and joined
    (code, stdout, stderr), (peer_code, peer_stdout, _) = finish([chief, peer])
    elapsed = time.monotonic() - started
    assert peer_code == -9 and "note:" not in peer_stdout  # it never said which worker it is: it never joined
    assert code == 4, stderr
    assert (
        f"Error: worker:1 ({addresses[1]}) did not join within 8 s (fit.join_timeout): it is not running, or failed before joining"
        in stderr
    )
    assert "Traceback" not in stderr
    assert timeout <= elapsed <= timeout + 6  # the start-up before the clock, and the exit, are the margin
    assert not out.exists() and list(work.iterdir()) == []  # the chief stopped before making anything


@pytest.mark.slow
@pytest.mark.parametrize(
    "number, code, said", [(signal.SIGINT, 130, "Interrupted."), (signal.SIGTERM, 143, "Terminated (SIGTERM).")]
)
def test_a_signal_while_waiting_stops_the_worker_at_once_and_the_joined_ones_with_it(number, code, said, tmp_path):
    addresses = localhost_cluster(3)
    chief = start_worker(
        [IRIS, "--set", "fit.distribute=multi_worker", "--out", tmp_path / "run"], tmp_path, addresses, 0
    )
    with say_hello(addresses, "worker:1") as joined:
        assert first_line(joined) == "waiting worker:2"  # the chief waits in its join loop
        signalled = time.monotonic()
        chief.send_signal(number)
        ((chief_code, _, stderr),) = finish([chief], timeout=30)
        assert time.monotonic() - signalled < 3
        assert chief_code == code, stderr
        assert said in stderr and "Traceback" not in stderr
        assert heard(joined) == ["stopped"]  # the joined worker stops too, with exit 4
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_peer_lost_between_joining_and_tensorflow_is_caught_by_tensorflows_own_timeout(tmp_path):
    """The window after the join: the chief builds the strategy, and TensorFlow's registration
    (bounded by fit.join_timeout too) gives up on a worker that said hello and then vanished.

    The chief's own `import tensorflow` counts against fit.join_timeout (the others wait meanwhile):
    15 s leaves it room on a loaded machine, where 5 s made the chief give up before its join."""
    addresses, timeout = localhost_cluster(2), 15
    chief = start_worker(
        [IRIS, "--set", "fit.distribute=multi_worker", "--set", f"fit.join_timeout={timeout}"], tmp_path, addresses, 0
    )
    distribute.join_cluster(
        worker_config(addresses, 1), None, time.monotonic() + 60, 60
    )  # says hello, hears go, then never starts TensorFlow
    joined = time.monotonic()
    ((code, _, stderr),) = finish([chief], timeout=60)
    assert code == 4, stderr
    assert (
        f"Error: worker:1 ({addresses[1]}) joined, then did not start TensorFlow's side within {timeout} s (fit.join_timeout)"
        in stderr
    )
    assert "Traceback" not in stderr
    assert time.monotonic() - joined <= timeout + 5
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
    return distribute.Distribution(
        "multi_worker", replicas=workers, workers=workers, task="worker:0", chief=True, tasks=tasks
    )


def contribution(fingerprint: str, code: int = 0, workers: int = 2, rank: int = 1) -> list[int]:
    f = int(hashlib.sha256(fingerprint.encode()).hexdigest()[:5], 16)
    codes = [0] * workers
    codes[rank] = code
    return [f, f * f, 1, *codes]


@pytest.mark.parametrize("others, agree", [(["a"], True), (["b"], False), (["a", "b"], False), (["b", "b"], False)])
def test_workers_that_differ_are_found(monkeypatch, others, agree):
    workers = len(others) + 1
    cluster = fake_cluster(
        monkeypatch, [contribution(x, workers=workers, rank=i + 1) for i, x in enumerate(others)], workers
    )
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
        raise tf.errors.UnavailableError(
            None, None, "The following tasks are unhealthy (stopped sending heartbeats):\n/job:worker/replica:0/task:1"
        )

    cluster = fake_cluster(monkeypatch, [], 2)
    monkeypatch.setattr(distribute, "_sum_over_workers", lost)
    with pytest.raises(TrainingError, match="lost contact with worker:1 .*Start every worker again"):
        distribute.agree_seed(cluster, 7)


def test_distribute_is_checked_with_the_file(write):
    result = CliRunner().invoke(cli, ["check", str(IRIS), "--set", "fit.distribute=multiworker"])
    assert result.exit_code == 2
    assert (
        "fit.distribute: expected one of none, mirrored, multi_worker" in result.stderr
        and "Did you mean 'multi_worker'?" in result.stderr
    )


def test_other_workers_keep_callback_files_in_their_scratch_folder(tmp_path):
    from nnflow.builder import build_callbacks
    from nnflow.spec import load_spec

    logs = tmp_path / "shared" / "log.csv"
    logs.parent.mkdir()  # an absolute path's folder must exist
    spec = load_spec(
        IRIS, [f"fit.callbacks=[{{CSVLogger: {{filename: {logs}}}}}, {{ModelCheckpoint: {{filepath: best.keras}}}}]"]
    )
    chief = build_callbacks(spec, base_dir=tmp_path / "run")
    assert chief[0].filename == str(logs) and chief[1].filepath == str(tmp_path / "run" / "best.keras")
    other = build_callbacks(spec, base_dir=tmp_path / "scratch", every_path=True)
    assert other[0].filename == str(tmp_path / "scratch" / logs.relative_to("/"))
    assert other[1].filepath == str(tmp_path / "scratch" / "best.keras")


def test_a_worker_whose_own_deadline_passes_first_names_the_missing_worker():
    """The usual case: a worker started before its chief reaches its deadline first, still connected."""
    from nnflow.errors import TrainingError

    addresses = localhost_cluster(3)
    fake = socket.create_server(("localhost", int(addresses[0].rsplit(":", 1)[1])))
    release = threading.Event()

    def chief():
        with fake:
            connection, _ = fake.accept()
            with connection:
                connection.recv(1024)  # the hello
                connection.sendall(b"waiting worker:2\n")
                release.wait(10)  # still waiting, still connected

    thread = threading.Thread(target=chief)
    thread.start()
    try:
        with pytest.raises(TrainingError) as error:
            distribute.join_cluster(worker_config(addresses, 1), None, time.monotonic() + 0.8, 0.8)
    finally:
        release.set()
        thread.join()
    assert str(error.value).startswith(f"worker:2 ({addresses[2]}) did not join within 0.8 s")
    assert "went away" not in str(error.value)


def test_a_peer_failing_with_a_damaged_or_full_disk_is_reported_with_its_exit_code(monkeypatch):
    from nnflow.errors import DamagedRunError, GateError, OutputError

    distribution = distribute.Distribution(
        "multi_worker",
        strategy=object(),
        replicas=2,
        workers=2,
        task="worker:0",
        chief=True,
        tasks=("worker:0", "worker:1"),
    )
    for code, kind in ((5, GateError), (6, DamagedRunError), (7, OutputError)):
        monkeypatch.setattr(distribute, "_sum_over_workers", lambda d, values, code=code: [*values[:-2], 0, code])
        with pytest.raises(kind, match=f"worker:1 stopped \\(exit {code}"):
            distribute.exchange(distribution, [])
