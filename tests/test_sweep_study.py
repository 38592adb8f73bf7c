"""The study layer of `nnflow sweep` (nnflow/studies): storages, making and joining a study, claiming
trials under the lock, trials whose process is gone, interrupted trials queued again. No TensorFlow:
trials here are asked and told by hand. PostgreSQL is the real server at 127.0.0.1:5432."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys

import pytest

from nnflow.errors import ConfigError
from nnflow.spec import Choice, FloatRange, IntRange
from nnflow.studies import (
    GridValues,
    StudyPlan,
    claim,
    counts,
    fail_lost,
    open_storage,
    open_study,
    record_outcome,
    requeue_interrupted,
    set_texts,
)

SPACE = {"layers.0.units": IntRange(4, 64, log=True), "fit.batch_size": Choice((16, 32)), "x": FloatRange(0.0, 0.5)}
GRID = {"layers.0.units": GridValues(("8", "16", "32")), "compile.optimizer": GridValues(("adam", "sgd"))}


def plan(name="s", fingerprint="abc", space=None, grid=False, direction="minimize") -> StudyPlan:
    space = space or (GRID if grid else SPACE)
    points = (
        tuple({"layers.0.units": u, "compile.optimizer": o} for u in ("8", "16", "32") for o in ("adam", "sgd"))
        if grid
        else ()
    )
    return StudyPlan(name=name, direction=direction, fingerprint=fingerprint, space=space, grid_points=points)


def random_sampler(number: int = 0):
    import optuna

    return optuna.samplers.RandomSampler(seed=number)


def opened(tmp_path, **kwargs):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(None, tmp_path / "study.journal")
    return storage, open_study(storage, plan(**kwargs), random_sampler(), None)


def test_a_study_is_made_once_and_joined_after(tmp_path):
    storage, study = opened(tmp_path, grid=True)
    assert counts(study).waiting == 6  # every grid point enqueued when the study was made
    _, again = opened(tmp_path, grid=True)
    assert counts(again).waiting == 6  # ...and only then
    assert study.user_attrs["nnflow_experiment"] == "abc"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fingerprint": "other"}, "belongs to another experiment"),
        ({"space": {"fit.batch_size": Choice((8,))}}, "searches another space"),
        ({"direction": "maximize"}, "would maximize it"),
    ],
)
def test_another_experiment_under_the_same_study_is_refused(tmp_path, change, message):
    opened(tmp_path)
    with pytest.raises(ConfigError, match=message) as error:
        opened(tmp_path, **change)
    assert error.value.exit_code == 2


def claim_all(study, storage) -> list[tuple]:
    """Claim (and finish) grid points until the study wants no more: the points this process got."""
    claimed = []
    while True:
        trial, params = claim(study, storage, GRID, random_sampler, trials=6, max_failures=6, grid=True)
        if trial is None:
            return claimed
        claimed.append(tuple(sorted(params.items())))
        study.tell(trial, 1.0)


def test_claims_stop_at_the_trials_wanted_and_never_repeat_a_grid_point(tmp_path):
    storage, study = opened(tmp_path, grid=True)
    seen = claim_all(study, storage)
    assert len(seen) == 6 == len(set(seen))
    first = dict(seen[0])
    assert set_texts(GRID, first) == [f"{key}={first[key]}" for key in GRID]  # in the space's order


def test_claims_count_running_trials_and_failures(tmp_path):
    storage, study = opened(tmp_path)
    first, params = claim(study, storage, SPACE, random_sampler, trials=2, max_failures=0, grid=False)
    assert 4 <= params["layers.0.units"] <= 64 and params["fit.batch_size"] in (16, 32)
    second, _ = claim(study, storage, SPACE, random_sampler, trials=2, max_failures=0, grid=False)
    assert claim(study, storage, SPACE, random_sampler, trials=2, max_failures=0, grid=False)[0] is None
    study.tell(first, state=__import__("optuna").trial.TrialState.FAIL)
    assert claim(study, storage, SPACE, random_sampler, trials=2, max_failures=0, grid=False)[0] is None  # past the cap
    assert claim(study, storage, SPACE, random_sampler, trials=2, max_failures=1, grid=False)[0] is not None


def test_a_trial_whose_process_is_gone_is_failed_and_a_live_one_is_not(tmp_path):
    storage, study = opened(tmp_path)
    live, _ = claim(study, storage, SPACE, random_sampler, trials=5, max_failures=5, grid=False)
    lost, _ = claim(study, storage, SPACE, random_sampler, trials=5, max_failures=5, grid=False)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    record_outcome(study, lost._trial_id, {"pid": gone.pid})
    with storage.lock():
        assert fail_lost(study, storage) == [lost.number]
    trials = study.get_trials()
    assert trials[lost.number].state.name == "FAIL" and "is gone" in trials[lost.number].user_attrs["error"]
    assert trials[live.number].state.name == "RUNNING"


def test_an_interrupted_trial_is_queued_again_once_with_its_run(tmp_path):
    import optuna

    storage, study = opened(tmp_path)
    trial, params = claim(study, storage, SPACE, random_sampler, trials=5, max_failures=5, grid=False)
    record_outcome(study, trial._trial_id, {"status": "interrupted", "run": str(tmp_path / "run")})
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    assert requeue_interrupted(study) == 1 and requeue_interrupted(study) == 0
    again, again_params = claim(study, storage, SPACE, random_sampler, trials=5, max_failures=5, grid=False)
    assert again_params == params and again.user_attrs["resume"] == str(tmp_path / "run")
    assert counts(study).failed == 0  # an interruption is not a failure


def test_storage_urls_are_checked_before_anything_connects(tmp_path):
    with pytest.raises(ConfigError, match="unknown storage redis://"):
        open_storage("redis://localhost", tmp_path / "j")
    with pytest.raises(ConfigError, match="does not exist"):
        open_storage(str(tmp_path / "missing" / "study.journal"), tmp_path / "j")
    storage = open_storage("postgresql://me:secret@db.example/sweeps", tmp_path / "j")
    assert "secret" not in storage.display and storage.display.startswith("postgresql://me:***@")


def test_a_missing_driver_names_the_extra(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "psycopg" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install 'nnflow\[postgres\]'"):
        open_storage("postgresql://postgres@127.0.0.1/x", tmp_path / "j")


def _open_and_claim(url: str, barrier, results) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    barrier.wait()
    storage = open_storage(url, None)  # type: ignore[arg-type]
    study = open_study(storage, plan(grid=True), random_sampler(os.getpid()), None)
    claimed = claim_all(study, storage)
    storage.close()
    results.put(claimed)


@pytest.mark.slow
@pytest.mark.parametrize("server", ["postgres_database", "mysql_database"])
def test_two_processes_make_and_share_one_study_on_a_fresh_database(server, request):
    """Both open a database without Optuna's tables at the same moment: no UniqueViolation, one study,
    and the grid's six points split between them, none twice."""
    url = request.getfixturevalue(server)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    processes = [context.Process(target=_open_and_claim, args=(url, barrier, results)) for _ in range(2)]
    for process in processes:
        process.start()
    claimed = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    every = claimed[0] + claimed[1]
    assert len(every) == 6 == len(set(every))


def test_on_a_database_a_trial_whose_heartbeat_stopped_is_failed_by_the_next_claim(postgres_database, monkeypatch):
    """Any machine's lost trial: its process stopped beating (here: it left the heartbeat's block)."""
    import time

    import optuna

    from nnflow.studies import heartbeat, storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    monkeypatch.setattr(storage, "GRACE_SECONDS", 1)
    store = open_storage(postgres_database, None)  # type: ignore[arg-type]
    try:
        study = open_study(store, plan(), random_sampler(), None)
        lost, _ = claim(study, store, SPACE, random_sampler, trials=5, max_failures=5, grid=False)
        record_outcome(study, lost._trial_id, {"host": "another-machine"})  # not this host's: only the heartbeat tells
        with heartbeat(store, lost):
            pass
        time.sleep(2.5)
        claim(study, store, SPACE, random_sampler, trials=5, max_failures=5, grid=False)
        assert study.get_trials()[lost.number].state.name == "FAIL"
    finally:
        store.close()
