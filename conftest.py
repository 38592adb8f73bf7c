"""The `no_tf` marker: tests that run without importing TensorFlow or Keras (`make test-no-tf`).

The marker is set here, per test file, rather than in each file, so that the list is one place to
read. It is checked, not trusted: a `no_tf` test that imports TensorFlow fails, when it is the first
test of the session to do so (in a `-m no_tf` run that is every such test).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# Test files whose every test runs on the spec, the YAML reader, the catalog, the data headers and
# the command line of `check`, the package's shape and its docs, never on a model.
NO_TF_FILES = frozenset(
    {
        "test_architecture.py",
        "test_benchmarks_serve.py",
        "test_benchmarks_sweep.py",
        "test_broken_configs.py",
        "test_check_data.py",
        "test_docs.py",
        "test_fuzz.py",
        "test_overrides.py",
        "test_schema.py",
        "test_serve_bodies.py",
        "test_spec.py",
        "test_sweep_spec.py",
        "test_sweep_study.py",
        "test_tracking_content.py",
        "test_yamlio.py",
    }
)
_HEAVY_MODULES = ("tensorflow", "keras")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).name in NO_TF_FILES:
            item.add_marker(pytest.mark.no_tf)


_LOADED_BEFORE = pytest.StashKey[list]()


def _loaded() -> list[str]:
    return [name for name in _HEAVY_MODULES if name in sys.modules]


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Under `-m no_tf` alone, the other test files are not even imported (several import Keras at module level)."""
    if (
        config.option.markexpr == "no_tf"
        and collection_path.suffix == ".py"
        and collection_path.name.startswith("test_")
    ):
        return collection_path.name not in NO_TF_FILES or None
    return None


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    loaded_before = _loaded()
    report = yield
    if isinstance(collector, pytest.Module) and collector.path.name in NO_TF_FILES and not loaded_before and _loaded():
        report.outcome = "failed"
        report.longrepr = (
            f"{collector.path.name} is in NO_TF_FILES (conftest.py) but imports {', '.join(_loaded())} at module level; "
            "take it out of NO_TF_FILES, or import TensorFlow inside the tests that need it."
        )
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    item.stash[_LOADED_BEFORE] = _loaded()
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    result = yield
    if item.get_closest_marker("no_tf") is not None and not item.stash.get(_LOADED_BEFORE, True):
        loaded = _loaded()
        if loaded:
            pytest.fail(
                f"{item.nodeid} is marked no_tf (conftest.py, NO_TF_FILES) but imported {', '.join(loaded)}; "
                "take its file out of NO_TF_FILES, or keep the test off TensorFlow.",
                pytrace=False,
            )
    return result
