"""Shared fixtures. Tests that need Keras import it lazily, so spec tests stay fast."""

from __future__ import annotations

import os
import textwrap
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
DATA = ROOT / "data"
POSTGRES = "postgresql://postgres@127.0.0.1:5432"  # the server every session and CI run starts (trust authentication)


@pytest.fixture(autouse=True, scope="session")
def _ctrl_c_is_delivered():
    """A suite started in the background of a non-interactive shell (`make test &`) inherits SIGINT
    ignored, and so would every process it starts: the tests of Ctrl-C would then see nothing. Put
    Python's own handler back (processes started from here get the default again, so theirs too)."""
    import signal

    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield


@pytest.fixture
def write(tmp_path):
    """Write a dedented YAML file into tmp_path and return its path."""

    def _write(text: str, name: str = "experiment.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write


@pytest.fixture
def postgres_database():
    """A fresh database on the real server, dropped afterwards. No server: the test fails saying how to start one."""
    try:
        import psycopg
    except ImportError:
        pytest.fail(
            "the PostgreSQL tests need the postgres extra: pip install -e '.[postgres]' (make test installs it)"
        )
    name = f"nnflow_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(f"{POSTGRES}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.fail(
            f"PostgreSQL is not reachable at 127.0.0.1:5432 ({error}). Start it (e.g. `service postgresql start`, "
            "or `docker run -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:15`) and run the tests again."
        )
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def mysql_database():
    """A fresh database on the real MariaDB (root, no password, at 127.0.0.1:3306), dropped afterwards."""
    try:
        import pymysql
    except ImportError:
        pytest.fail("the MySQL tests need the mysql extra: pip install -e '.[mysql]' (make test installs it)")
    name = f"nnflow_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True, connect_timeout=5)
    except pymysql.err.OperationalError as error:
        pytest.fail(
            f"MariaDB is not reachable at 127.0.0.1:3306 ({error}). Start it (e.g. `service mariadb start`, "
            "or `docker run -p 3306:3306 -e MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1 mariadb:10.11`) and run the tests again."
        )
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
    try:
        yield f"mysql+pymysql://root@127.0.0.1:3306/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()
