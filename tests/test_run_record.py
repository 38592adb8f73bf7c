"""The run folder as training writes it (`nnflow.runs.RunRecord`, `WorkerRecord`), without training. No TensorFlow."""

from __future__ import annotations

import hashlib
import json
import os
import time

from nnflow import runs


class _Encodings:
    def to_json(self) -> dict:
        return {"feature_columns": ["x"]}


def _info() -> dict:
    return {"name": "demo", "status": "running", "epochs": {"configured": 2, "completed": 0}}


def test_a_new_run_makes_its_folder_locked_and_discard_removes_it_with_the_parents_it_made(tmp_path):
    out = tmp_path / "a" / "b" / "run"
    record = runs.RunRecord.new("demo", out, _info(), time.perf_counter())
    assert record.run_dir is None and record.callbacks_dir is None
    record.create_folder("name: demo\n", _Encodings())
    assert record.run_dir == out and record.callbacks_dir == out
    assert (out / "experiment.yaml").read_text() == "name: demo\n"
    assert json.loads((out / "preprocessing.json").read_text()) == {"feature_columns": ["x"]}
    assert runs.lock_holder(out) == f"process {os.getpid()}"  # locked before anything was written
    record.discard()  # never marked running: nothing of it stays
    record.close()
    assert record.run_dir is None and not (tmp_path / "a").exists()


def test_a_new_run_marked_running_then_completed_keeps_its_files_and_drops_its_lock_and_checkpoint(tmp_path):
    out = tmp_path / "run"
    record = runs.RunRecord.new("demo", out, _info(), time.perf_counter())
    record.create_folder("name: demo\n", _Encodings())
    record.save_info()
    assert record.running and json.loads((out / runs.RUN_FILE).read_text())["status"] == "running"
    (out / runs.CHECKPOINT_FILE).write_bytes(b"x")
    record.finish("completed")
    record.discard()  # a no-op: the run started
    record.close()
    info = json.loads((out / runs.RUN_FILE).read_text())
    assert record.finished and info["status"] == "completed" and "ended" in info and "duration_seconds" in info
    assert not (out / runs.CHECKPOINT_FILE).exists() and not (out / runs.LOCK_FILE).exists()


def test_a_resumed_run_notes_the_resume_and_clears_what_a_killed_process_left(tmp_path):
    (tmp_path / ".history.csv.abc.tmp").write_text("half")
    (tmp_path / "history.csv").write_text("epoch\n1\n")
    record = runs.RunRecord.resumed(
        tmp_path, _info(), time.perf_counter(), lock=None, command=["nnflow", "train", "--resume", "x y"]
    )
    assert record.info["resumes"][-1]["command"] == "nnflow train --resume 'x y'"
    assert not (tmp_path / ".history.csv.abc.tmp").exists() and (tmp_path / "history.csv").exists()
    record.finish("failed", error="boom")  # never marked running by this process: its status stays
    assert not (tmp_path / runs.RUN_FILE).exists()


def test_a_worker_record_writes_nothing_and_its_scratch_folder_goes_at_close(tmp_path):
    record = runs.WorkerRecord(tmp_path, _info())
    scratch = record.callbacks_dir
    assert scratch.is_dir() and scratch != tmp_path and not record.writes
    record.create_folder("name: demo\n", _Encodings())
    record.save_info()
    record.save_epoch(None, {}, {}, [{"epoch": 1}], None)
    record.save_history([{"epoch": 1}])
    record.save_results([{"epoch": 1}], None, {"loss": 1.0}, None)
    record.finish("completed")
    record.discard()
    assert list(tmp_path.iterdir()) == [] and not record.running and not record.finished
    record.close()
    assert not scratch.exists()


def test_changed_data_file_names_the_first_file_gone_or_changed(tmp_path):
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    train.write_text("x,y\n1,2\n")
    test.write_text("x,y\n3,4\n")
    info = {
        "data": {
            role: {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
            for role, path in (("train", train), ("test", test))
        }
    }
    assert runs.changed_data_file(info) is None
    test.write_text("x,y\n3,5\n")
    assert runs.changed_data_file(info) == runs.ChangedDataFile("test", test, gone=False)
    train.unlink()
    assert runs.changed_data_file(info) == runs.ChangedDataFile("train", train, gone=True)


def test_the_sweep_ranks_exit_codes_as_errors_py_declares_them():
    from nnflow.workflows.sweep_rank import SEVERITY

    assert SEVERITY == (1, 130, 7, 4, 3, 6, 2, 5)  # 7: an output not written (a full disk), not a bug
