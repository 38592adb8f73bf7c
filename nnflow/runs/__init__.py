"""The run folder: where runs go, everything nnflow writes there (atomically), and reading it back.

layout.py      where runs go; the names of a run folder's files
atomic.py      atomic writes (JSON, text, the model), disk errors
tables.py      TableWriter: predictions written in chunks
lock.py        one process trains a run at a time (RunLock)
folders.py     making run folders, finding runs (`runs/NAME` means the newest)
checkpoint.py  the last completed epoch: saved, loaded, checked, restored
record.py      RunRecord (the chief's) and WorkerRecord (writes nothing): the run folder as training writes it
reading.py     reading run files back: regular files only, bounded, shape-checked
datafiles.py   the data a run was trained on, unchanged?
documents.py   run.json, metrics, evaluation, preprocessing, history, experiment read back
outputs.py     no command writes over a run's files
"""

from ..run_layout import CHECKPOINT_FILE, LOCK_FILE, RUN_FILE, RUN_FILES, RUN_FORMAT, RUNS_ROOT, is_nnflow_name
from .atomic import (
    DISK_ERRNOS,
    FILE_MODE,
    append_text,
    disk_error,
    finite,
    history_csv,
    output_error,
    remove_file,
    save_model,
    write_bytes_atomic,
    write_json,
    write_text_atomic,
)
from .checkpoint import Checkpoint, Checkpointer, check_checkpoint, load_checkpoint, remove_checkpoint, restore_weights
from .datafiles import ChangedDataFile, changed_data_file
from .documents import (
    ENCODINGS,
    TASKS,
    read_evaluation,
    read_experiment,
    read_experiment_text,
    read_gradients,
    read_history,
    read_metrics,
    read_preprocessing,
    read_run_info,
    read_spec,
    run_started,
)
from .folders import check_new_folder, check_runs_root, find_run, new_run_dir, open_run, remove_partial_files
from .lock import RunLock, is_live_nnflow_process, lock_holder, lock_run
from .outputs import OWN_OUTPUTS, TABLE_SUFFIXES, check_output, enclosing_runs
from .reading import (
    CSV_LIMIT,
    EXPERIMENT_LIMIT,
    GATE_FIELDS,
    JSON_LIMIT,
    damaged,
    describe,
    present,
    read_bytes,
    read_json_file,
    read_text,
)
from .record import FINISHED_STATUSES, RunRecord, WorkerRecord, now
from .tables import TableWriter

__all__ = [
    "CHECKPOINT_FILE",
    "CSV_LIMIT",
    "DISK_ERRNOS",
    "ENCODINGS",
    "EXPERIMENT_LIMIT",
    "FILE_MODE",
    "FINISHED_STATUSES",
    "GATE_FIELDS",
    "JSON_LIMIT",
    "LOCK_FILE",
    "OWN_OUTPUTS",
    "RUNS_ROOT",
    "RUN_FILE",
    "RUN_FILES",
    "RUN_FORMAT",
    "TABLE_SUFFIXES",
    "TASKS",
    "ChangedDataFile",
    "Checkpoint",
    "Checkpointer",
    "RunLock",
    "RunRecord",
    "TableWriter",
    "WorkerRecord",
    "append_text",
    "changed_data_file",
    "check_checkpoint",
    "check_new_folder",
    "check_output",
    "check_runs_root",
    "damaged",
    "describe",
    "disk_error",
    "enclosing_runs",
    "find_run",
    "finite",
    "history_csv",
    "is_live_nnflow_process",
    "is_nnflow_name",
    "load_checkpoint",
    "lock_holder",
    "lock_run",
    "new_run_dir",
    "now",
    "open_run",
    "output_error",
    "present",
    "read_bytes",
    "read_evaluation",
    "read_experiment",
    "read_experiment_text",
    "read_gradients",
    "read_history",
    "read_json_file",
    "read_metrics",
    "read_preprocessing",
    "read_run_info",
    "read_spec",
    "read_text",
    "remove_checkpoint",
    "remove_file",
    "remove_partial_files",
    "restore_weights",
    "run_started",
    "save_model",
    "write_bytes_atomic",
    "write_json",
    "write_text_atomic",
]
