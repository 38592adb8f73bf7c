"""Nothing outside a run is touched, one process trains a run, a full disk or a signal leaves it resumable.

Trainings run in-process on iris with a few epochs; the signal tests need a process to signal.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import CONFIGS, DATA, ROOT
from nnflow import runs
from nnflow.cli import cli, run
from nnflow.errors import OutputError
from nnflow.workflows import Progress, train

QUICK = ["fit.epochs=4", "expect={}"]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def train_command(config, out, *overrides):
    """`nnflow train CONFIG --out OUT --set O ...` through the CLI."""
    return invoke("train", config, "--out", out, *[part for override in overrides for part in ("--set", override)])


def status(run_dir: Path) -> str:
    return json.loads((run_dir / "run.json").read_text())["status"]


def interrupted_run(run_dir: Path, overrides=(), at: int = 2) -> Path:
    """A run of iris stopped by Ctrl-C after epoch `at` (checkpointed, resumable)."""

    def stop(row, epochs):
        if row["epoch"] == at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(CONFIGS / "iris.yaml", [*QUICK, *overrides], out=run_dir, progress=Progress(on_epoch=stop))
    assert status(run_dir) == "interrupted"
    return run_dir


def tree(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


# ---------------------------------------------------------------------------
# Callback files stay inside the run folder


def test_a_symbolic_link_planted_in_a_run_folder_cannot_lead_a_callback_out(tmp_path):
    outside = tmp_path / "project"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    log = ["fit.callbacks=[{CSVLogger: {filename: logs/epochs.csv}}]"]
    run_dir = interrupted_run(tmp_path / "run", log)
    (run_dir / "logs" / "epochs.csv").unlink()
    (run_dir / "logs").rmdir()
    (run_dir / "logs").symlink_to(outside)

    result = invoke("train", "--resume", run_dir)
    assert result.exit_code == 2, result.output
    assert "fit.callbacks[0].CSVLogger.filename" in result.stderr
    assert f"outside the run folder {run_dir.resolve()}" in result.stderr and "Traceback" not in result.output
    assert tree(outside) == {"keep.txt": b"mine"}
    assert status(run_dir) == "interrupted"  # refused before it started: resumable once the link is gone
    (run_dir / "logs").unlink()
    assert invoke("train", "--resume", run_dir, "-q").exit_code == 0 and status(run_dir) == "completed"


@pytest.mark.parametrize("argument", ["CSVLogger: {filename: %s}", "CSVLogger: {filename: %s, append: true}"])
def test_a_callback_never_writes_over_the_files_the_run_reads(tmp_path, argument):
    data = tmp_path / "iris.csv"
    data.write_bytes((DATA / "iris.csv").read_bytes())
    config = tmp_path / "iris.yaml"
    config.write_text((CONFIGS / "iris.yaml").read_text().replace("../data/iris.csv", "iris.csv"))
    before = tree(tmp_path)
    for target in (data, config):
        result = train_command(config, tmp_path / "run", *QUICK, "fit.callbacks=[{%s}]" % (argument % target))
        assert result.exit_code == 2, result.output
        assert f"would write over {target}, which this run reads" in result.stderr
    assert tree(tmp_path) == before and not (tmp_path / "run").exists()  # no run folder left half-made


def test_absolute_callback_paths_still_write_where_they_say(tmp_path):
    shared = tmp_path / "shared" / "iris-epochs.csv"
    result = train_command(
        CONFIGS / "iris.yaml", tmp_path / "run", f"fit.callbacks=[{{CSVLogger: {{filename: {shared}}}}}]"
    )
    assert result.exit_code == 2 and f"the folder {shared.parent} does not exist; make it first" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # refused before training: no run folder left
    shared.parent.mkdir()
    result = train(
        CONFIGS / "iris.yaml", [*QUICK, f"fit.callbacks=[{{CSVLogger: {{filename: {shared}}}}}]"], out=tmp_path / "run"
    )
    assert result.run_dir == tmp_path / "run"
    assert len(shared.read_text().splitlines()) == 5  # the header and four epochs


# ---------------------------------------------------------------------------
# One process trains a run at a time


def test_a_locked_run_is_not_resumed_twice(tmp_path):
    run_dir = interrupted_run(tmp_path / "run")
    lock = runs.lock_run(run_dir, where="test")  # as a second `train --resume` holds it
    try:
        result = invoke("train", "--resume", run_dir)
        assert result.exit_code == 2, result.output
        assert f"is being trained by process {os.getpid()} right now" in result.stderr
        assert status(run_dir) == "interrupted"
    finally:
        lock.release()
    assert invoke("train", "--resume", run_dir, "-q").exit_code == 0
    assert not (run_dir / runs.LOCK_FILE).exists()  # completed: nothing will train it again


def test_two_trainings_into_one_out_folder(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    lock = runs.lock_run(out, where="test")  # the first training took it a moment ago
    try:
        result = invoke("train", CONFIGS / "iris.yaml", "--out", out, "--set", "fit.epochs=1")
        assert result.exit_code == 2, result.output
        assert f"{out} is being trained by process {os.getpid()}" in result.stderr
        assert sorted(p.name for p in out.iterdir()) == [runs.LOCK_FILE]
    finally:
        lock.release(remove=True)


def test_the_lock_goes_with_its_process(tmp_path):
    """An OS lock: a trainer killed with SIGKILL holds nothing."""
    code = f"import sys, time; from nnflow.runs import lock_run; lock_run({str(tmp_path)!r}, where='x'); print('locked', flush=True); time.sleep(60)"
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    try:
        assert holder.stdout.readline() == "locked\n"
        assert runs.lock_holder(tmp_path) == f"process {holder.pid}"
        with pytest.raises(Exception, match=f"is being trained by process {holder.pid}"):
            runs.lock_run(tmp_path, where="x")
    finally:
        holder.kill()
        holder.wait()
    assert runs.lock_holder(tmp_path) is None
    runs.lock_run(tmp_path, where="x").release(remove=True)


# ---------------------------------------------------------------------------
# A full disk: exit 7, nothing half-written, the run resumable


def full_disk_after(monkeypatch, files: set[str], allowed: int):
    """os.replace fails with ENOSPC for `files` once `allowed` of them have been written."""
    real = os.replace
    written = {"count": 0}

    def replace(source, target, *args, **kwargs):
        if Path(target).name in files:
            written["count"] += 1
            if written["count"] > allowed:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))
        return real(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


def test_a_disk_that_fills_up_while_training_leaves_the_run_interrupted(tmp_path, monkeypatch):
    reference = train(CONFIGS / "iris.yaml", QUICK, out=tmp_path / "reference")
    run_dir = tmp_path / "run"
    full_disk_after(monkeypatch, {runs.CHECKPOINT_FILE}, allowed=2)
    with pytest.raises(OutputError) as caught:
        train(CONFIGS / "iris.yaml", QUICK, out=run_dir)
    message = str(caught.value)
    assert f"cannot write {run_dir / runs.CHECKPOINT_FILE}: no space left on the device" in message
    assert f"continue it with `nnflow train --resume {run_dir}`" in message
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "interrupted" and info["epochs"]["completed"] == 2
    assert not list(run_dir.glob(".*.tmp"))
    monkeypatch.undo()
    resumed = train(resume=run_dir)
    assert resumed.resumed_at == 2 and resumed.metrics == reference.metrics


def test_a_disk_full_for_every_file_still_leaves_a_resumable_run(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    full_disk_after(
        monkeypatch, {runs.CHECKPOINT_FILE, "history.csv", "run.json"}, allowed=6
    )  # run.json, then 2 epochs
    result = train_command(CONFIGS / "iris.yaml", run_dir, *QUICK)
    assert result.exit_code == 7, result.output
    assert "Traceback" not in result.output and "no space left on the device" in result.stderr
    assert status(run_dir) == "running"  # run.json could not say more: `nnflow runs` shows it killed
    monkeypatch.undo()
    assert invoke("train", "--resume", run_dir, "-q").exit_code == 0 and status(run_dir) == "completed"


def test_schema_output_on_a_full_disk_or_under_a_file(tmp_path, monkeypatch):
    (tmp_path / "file.txt").write_text("x")
    result = invoke("schema", "-o", tmp_path / "file.txt" / "schema.json")
    assert result.exit_code == 2 and "file.txt is a file, not a folder" in result.stderr
    full_disk_after(monkeypatch, {"schema.json"}, allowed=0)
    result = invoke("schema", "-o", tmp_path / "schema.json")
    assert result.exit_code == 7 and "no space left on the device" in result.stderr and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


# ---------------------------------------------------------------------------
# Signals: SIGINT is 130 and SIGTERM 143, after the same clean-up


@pytest.mark.parametrize(
    "interrupt, code, said", [(KeyboardInterrupt, 130, "Interrupted."), (signal.SIGTERM, 143, "Terminated (SIGTERM).")]
)
def test_an_interrupt_while_the_command_line_is_parsed(monkeypatch, capsys, interrupt, code, said):
    from nnflow.errors import Terminated

    def parse(*args, **kwargs):
        raise Terminated() if interrupt == signal.SIGTERM else KeyboardInterrupt()

    monkeypatch.setattr(cli, "make_context", parse)
    assert run(["check", str(CONFIGS / "iris.yaml")]) == code
    assert said in capsys.readouterr().err


def test_the_sigterm_handler_is_scoped_to_the_command():
    before = signal.getsignal(signal.SIGTERM)
    assert invoke("check", CONFIGS / "iris.yaml").exit_code == 0
    assert signal.getsignal(signal.SIGTERM) is before


def sigterm_when(args, condition, seconds=120) -> tuple[int, str]:
    """Run `nnflow ARGS` in a process of its own, SIGTERM it once `condition()` holds; (exit code, stderr)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "nnflow", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + seconds
    try:
        while not condition():
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "the command did not get going"
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, stderr


@pytest.mark.slow
def test_sigterm_stops_training_like_ctrl_c(tmp_path):
    run_dir = tmp_path / "run"
    code, stderr = sigterm_when(
        [
            "train",
            CONFIGS / "iris.yaml",
            "--out",
            run_dir,
            "--set",
            "fit.epochs=2000",
            "--set",
            "fit.callbacks=[]",
            "--set",
            "expect={}",
            "-q",
        ],
        lambda: (run_dir / runs.CHECKPOINT_FILE).exists(),
    )
    assert code == 143, stderr
    assert (
        f"Terminated (SIGTERM). Continue with: nnflow train --resume {run_dir}" in stderr and "Traceback" not in stderr
    )
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "interrupted" and info["epochs"]["completed"] >= 1
    assert not list(run_dir.glob(".*.tmp"))


@pytest.mark.slow
def test_sigterm_leaves_no_half_written_predictions(tmp_path):
    run_dir = train(CONFIGS / "iris.yaml", ["fit.epochs=1", "expect={}"], out=tmp_path / "run").run_dir
    rows = (DATA / "iris.csv").read_text().splitlines()
    big = tmp_path / "big.csv"
    with open(big, "w") as stream:
        stream.write(rows[0] + "\n")
        for _ in range(4000):
            stream.write("\n".join(rows[1:]) + "\n")
    out = tmp_path / "out" / "predictions.csv"
    out.parent.mkdir()
    code, stderr = sigterm_when(
        ["predict", run_dir, "-i", big, "-o", out, "-q"], lambda: any(out.parent.glob(".predictions.csv.*.tmp"))
    )
    assert code == 143, stderr
    assert "Terminated (SIGTERM)." in stderr and "Traceback" not in stderr
    assert list(out.parent.iterdir()) == []  # neither the output nor its temporary file


def test_a_callback_whose_own_file_hits_a_full_disk(tmp_path, monkeypatch):
    """Keras's CSVLogger writes its file itself: its ENOSPC is exit 7 too, and the run stays resumable."""
    import keras

    real = keras.callbacks.CSVLogger.on_epoch_end

    def full(self, epoch, logs=None):
        if epoch == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.filename)
        return real(self, epoch, logs)

    monkeypatch.setattr(keras.callbacks.CSVLogger, "on_epoch_end", full)
    run_dir = tmp_path / "run"
    result = train_command(
        CONFIGS / "iris.yaml", run_dir, *QUICK, "fit.callbacks=[{CSVLogger: {filename: epochs.csv}}]"
    )
    assert result.exit_code == 7, result.output
    assert f"cannot write {run_dir / 'epochs.csv'}: no space left on the device" in result.stderr
    assert status(run_dir) == "interrupted"
    monkeypatch.undo()
    assert invoke("train", "--resume", run_dir, "-q").exit_code == 0 and status(run_dir) == "completed"


@pytest.mark.parametrize(
    "command, target",
    [
        (["check", str(CONFIGS / "iris.yaml")], "nnflow.workflows.check"),
        (["runs"], "nnflow.workflows.list_runs"),
        (["schema"], "nnflow.schema.json_schema"),
    ],
)
@pytest.mark.parametrize(
    "signum, code, said", [(signal.SIGINT, 130, "Interrupted."), (signal.SIGTERM, 143, "Terminated (SIGTERM).")]
)
def test_every_command_exits_130_or_143_on_a_signal(monkeypatch, command, target, signum, code, said):
    def signalled(*args, **kwargs):
        os.kill(os.getpid(), signum)
        time.sleep(5)  # the handler raises before this ends
        raise AssertionError("the signal was not delivered")

    monkeypatch.setattr(target, signalled)
    result = invoke(*command)
    assert result.exit_code == code, result.output
    assert said in result.stderr and "Traceback" not in result.output


# ---------------------------------------------------------------------------
# Callbacks and the run's own files (found in review)


@pytest.mark.parametrize(
    "filename", ["experiment.yaml", "run.json", "logs/../history.csv", ".nnflow.lock", "model.keras/x.csv"]
)
def test_a_relative_callback_path_never_names_a_file_nnflow_keeps(filename):
    result = invoke("check", CONFIGS / "iris.yaml", "--set", f"fit.callbacks=[{{CSVLogger: {{filename: {filename}}}}}]")
    assert result.exit_code == 2, result.output
    assert "which nnflow keeps in the run folder itself" in result.stderr


def test_an_absolute_callback_path_never_lands_on_a_run_file(tmp_path):
    other = train(CONFIGS / "iris.yaml", ["fit.epochs=1", "expect={}"], out=tmp_path / "other").run_dir
    before = tree(other)
    for target, said in (
        (other / "history.csv", f"is inside the folder of another run, {other}"),
        (tmp_path / "run" / "run.json", "the run's own 'run.json', which nnflow writes"),
    ):
        result = train_command(
            CONFIGS / "iris.yaml",
            tmp_path / "run",
            "fit.epochs=1",
            f"fit.callbacks=[{{CSVLogger: {{filename: {target}}}}}]",
        )
        assert result.exit_code == 2, result.output
        assert said in result.stderr
        assert not (tmp_path / "run").exists()
    assert tree(other) == before


def test_a_callback_file_that_is_a_folder_is_refused_before_training(tmp_path):
    folder = tmp_path / "somewhere"
    folder.mkdir()
    result = train_command(
        CONFIGS / "iris.yaml",
        tmp_path / "run",
        "fit.epochs=1",
        f"fit.callbacks=[{{CSVLogger: {{filename: {folder}}}}}]",
    )
    assert result.exit_code == 2 and f"{folder} is a folder; CSVLogger writes a file there" in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_callback_keras_refuses_leaves_no_half_made_run_folder(tmp_path):
    out = tmp_path / "a" / "b"
    result = train_command(
        CONFIGS / "iris.yaml",
        out,
        "fit.epochs=1",
        "fit.callbacks=[{ModelCheckpoint: {filepath: sub/m.keras, save_freq: sometimes}}]",
    )
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "a").exists()  # nor the parents it made


def test_no_run_folder_can_be_made_is_said_before_any_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").write_text("not a folder")
    result = invoke("train", CONFIGS / "iris.yaml", "--set", "fit.epochs=1")
    assert (
        result.exit_code == 2
        and "cannot make run folders in runs/iris-mlp: runs is a file, not a folder" in result.stderr
    )


# ---------------------------------------------------------------------------
# The lock file itself (found in review)


def test_a_finished_run_is_not_locked_by_a_refused_resume(tmp_path):
    done = train(CONFIGS / "iris.yaml", ["fit.epochs=1", "expect={}"], out=tmp_path / "run").run_dir
    result = invoke("train", "--resume", done)
    assert result.exit_code == 2 and "finished training already" in result.stderr
    assert not (done / runs.LOCK_FILE).exists()


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_a_lock_file_that_is_not_a_regular_file_is_refused_not_followed(tmp_path, kind):
    run_dir = interrupted_run(tmp_path / "run")
    (run_dir / runs.LOCK_FILE).unlink(missing_ok=True)
    precious = tmp_path / "precious.txt"
    precious.write_text("mine")
    if kind == "symlink":
        (run_dir / runs.LOCK_FILE).symlink_to(precious)
    else:
        os.mkfifo(run_dir / runs.LOCK_FILE)
    result = invoke("train", "--resume", run_dir)
    assert result.exit_code == 2, result.output
    assert f"{run_dir / runs.LOCK_FILE}" in result.stderr and "remove it" in result.stderr
    assert precious.read_text() == "mine" and status(run_dir) == "interrupted"
    assert runs.lock_holder(run_dir) is None  # and asking who holds it does not block


def test_the_lock_is_released_when_the_model_cannot_be_built(tmp_path, monkeypatch):
    from nnflow import training
    from nnflow.errors import DataError

    run_dir = interrupted_run(tmp_path / "run")

    def refuse(*args, **kwargs):
        raise DataError("refused for the test")

    monkeypatch.setattr(training, "check_output", refuse)
    for _ in range(2):  # the second time too: nobody holds the lock
        with pytest.raises(DataError, match="refused for the test"):
            train(resume=run_dir)
    assert status(run_dir) == "interrupted"


@pytest.mark.slow
def test_a_reader_that_goes_away_stops_the_printing_not_the_training(tmp_path):
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nnflow",
            "train",
            str(CONFIGS / "iris.yaml"),
            "--out",
            str(run_dir),
            "--set",
            "fit.epochs=30",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    process.stdout.readline()  # `nnflow train ... | head -1`
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 0, stderr
    assert "Traceback" not in stderr and status(run_dir) == "completed"
