"""Where a study lives: a journal file (the default, no server) or a database, and the one lock that
makes the first use of a storage, and every claim of a trial, safe when several processes (or
machines) share it.

- a path (or `journal:PATH`): Optuna's journal file. Several processes on one machine, or on machines
  that share the disk, append to it; the lock is `flock` on `PATH.nnflow-lock`.
- `postgresql://...`, `mysql+pymysql://...`: Optuna's RDB storage through SQLAlchemy; the lock is a
  PostgreSQL advisory lock (`GET_LOCK` on MySQL), held on a connection of its own. Taken before Optuna
  creates its tables: two processes creating them at once on a fresh database would otherwise collide
  (`UniqueViolation` on `pg_type_typname_nsp_index`).
- `sqlite:///PATH`: one process at a time only (SQLite locks the whole file); the lock is `flock`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, Problem

HEARTBEAT_SECONDS = 10  # a database trial's process records that it lives this often...
GRACE_SECONDS = 60  # ...and a trial silent for this long is failed by the next process that looks
_LOCK_KEY = 0x6E6E666C6F77  # "nnflow": the advisory lock's number
_DRIVERS = {
    # scheme -> (the module SQLAlchemy imports for it, the command that installs it)
    "postgresql": ("psycopg", "pip install 'nnflow[postgres]'"),
    "postgresql+psycopg": ("psycopg", "pip install 'nnflow[postgres]'"),
    "postgresql+psycopg2": ("psycopg2", "pip install psycopg2-binary"),
    "mysql": ("MySQLdb", "pip install mysqlclient (or use mysql+pymysql:// with pip install 'nnflow[mysql]')"),
    "mysql+pymysql": ("pymysql", "pip install 'nnflow[mysql]'"),
    "sqlite": ("sqlite3", "a Python built with sqlite3"),
}


@dataclass
class Storage:
    """A study's storage, opened lazily: `optuna()` connects, `lock()` serialises claims."""

    kind: str  # journal, postgresql, mysql, sqlite
    url: str  # the path of a journal file, or the database URL as given
    display: str  # for output: the URL without its password
    _optuna: Any = field(default=None, repr=False)
    _lock_engine: Any = field(default=None, repr=False)
    _lock_connection: Any = field(default=None, repr=False)

    @property
    def has_heartbeat(self) -> bool:
        return self.kind in ("postgresql", "mysql")

    def optuna(self):
        """Optuna's storage object (made once; on a database, after its tables exist)."""
        if self._optuna is None:
            with self.lock():
                self._optuna = self._open()
        return self._optuna

    def _open(self):
        import optuna

        if self.kind == "journal":
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            return JournalStorage(JournalFileBackend(self.url))
        beats = self.has_heartbeat
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # the heartbeat's
                return optuna.storages.RDBStorage(
                    self.url,
                    engine_kwargs={"pool_pre_ping": True} if self.kind != "sqlite" else None,
                    heartbeat_interval=HEARTBEAT_SECONDS if beats else None,
                    grace_period=GRACE_SECONDS if beats else None,
                )
        except Exception as error:  # SQLAlchemy's OperationalError and friends: the server, not nnflow
            raise unreachable(self, error) from None

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Held while a storage is first used, a study made, or a trial claimed: one process at a time."""
        if self.kind in ("journal", "sqlite"):
            with _file_lock(Path(self.url if self.kind == "journal" else _sqlite_path(self.url))):
                yield
            return
        from sqlalchemy import text

        connection = self._locking_connection()
        if self.kind == "postgresql":
            connection.execute(text(f"SELECT pg_advisory_lock({_LOCK_KEY})"))
            try:
                yield
            finally:
                connection.execute(text(f"SELECT pg_advisory_unlock({_LOCK_KEY})"))
        else:
            connection.execute(text("SELECT GET_LOCK('nnflow', 600)"))
            try:
                yield
            finally:
                connection.execute(text("SELECT RELEASE_LOCK('nnflow')"))

    def _locking_connection(self):
        if self._lock_connection is None:
            import sqlalchemy

            try:
                self._lock_engine = sqlalchemy.create_engine(self.url, poolclass=sqlalchemy.pool.NullPool)
                self._lock_connection = self._lock_engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            except Exception as error:
                raise unreachable(self, error) from None
        return self._lock_connection

    def close(self) -> None:
        if self._lock_connection is not None:
            self._lock_connection.close()
            self._lock_engine.dispose()
            self._lock_connection = self._lock_engine = None
        if self._optuna is not None and self.kind != "journal":
            self._optuna.remove_session()
            self._optuna.engine.dispose()


def open_storage(text: str | None, default_journal: Path) -> Storage:
    """`--storage` as given (None: the journal file `default_journal`), checked before anything connects."""
    if text is None or text == "":
        return Storage("journal", str(default_journal), str(default_journal))
    if "://" not in text:
        path = text.removeprefix("journal:")
        _check_journal_path(Path(path))
        return Storage("journal", path, path)
    scheme = text.split("://", 1)[0].lower()
    base = scheme.split("+", 1)[0]
    if base not in ("postgresql", "mysql", "sqlite") or scheme not in _DRIVERS:
        known = "postgresql://, postgresql+psycopg://, mysql+pymysql://, sqlite:///FILE, or a journal file's path"
        raise ConfigError(Problem(f"unknown storage {scheme}://; use {known}.", where="--storage"))
    module, install = _DRIVERS[scheme]
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ConfigError(
            Problem(
                f"a {base} storage needs the {module} package, which is not installed: {install}.", where="--storage"
            )
        )
    try:
        from sqlalchemy.engine import make_url

        display = make_url(text).render_as_string(hide_password=True)
    except Exception as error:  # sqlalchemy.exc.ArgumentError: not a URL it can read
        raise ConfigError(Problem(f"cannot read the storage URL: {error}", where="--storage")) from None
    if base == "sqlite":
        _check_journal_path(Path(_sqlite_path(text)))
    return Storage(base, text, display)


def unreachable(storage: Storage, error: Exception) -> ConfigError:
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    return ConfigError(
        Problem(
            f"cannot use the storage {storage.display}: {reason}. Check that the server runs and the database exists "
            "(PostgreSQL: createdb NAME).",
            where="--storage",
        )
    )


def _sqlite_path(url: str) -> str:
    return url.split(":///", 1)[1] if ":///" in url else ":memory:"


def _check_journal_path(path: Path) -> None:
    if path.exists() and not path.is_file():
        raise ConfigError(Problem(f"{path} is not a file; give the journal file's path.", where="--storage"))
    if not path.parent.is_dir():
        raise ConfigError(Problem(f"{path.parent} does not exist; make it, or choose another path.", where="--storage"))


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    lock_path = path.with_name(path.name + ".nnflow-lock")  # not `.lock`: Optuna's own journal lock
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)
