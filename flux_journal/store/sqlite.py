"""SQLite archives: a database file in WAL mode, created owner-only.

SQLite gives the ``-wal`` and ``-shm`` files it creates the mode of the
database file (whatever the umask), so creating that file 0600 before
SQLite opens it makes all three private.  An existing file, or a
``-wal``/``-shm`` left by a killed run, keeps its permissions and, once
it reads as a database, is warned about if group or others can read it
(see :mod:`flux_journal.cli.private`).

A write transaction is ``BEGIN IMMEDIATE``: it takes the file's write
lock at once, so a second archiver on the same file waits for the first
one's commit instead of failing mid-batch.
"""

import os
import sqlite3
import time
from urllib.parse import quote

from flux_journal.cli import private
from flux_journal.store import schema
from flux_journal.store.backend import Backend
from flux_journal.store.errors import ArchiveError

__all__ = ["SQLiteBackend", "open_sqlite"]

# The version 1 tables, renamed aside while their rows move (see upgrade_v1),
# and version 1's index names, which the new indexes reuse or outlive.
_V1_TABLES = ("events", "resume", "resource_events", "jobs")
_V1_INDEXES = ("jobs_by_submit", "events_by_time", "resource_events_by_time")

# Seconds to wait for another connection's lock before failing.
_BUSY_TIMEOUT = 30.0

# A writer's page cache (KiB) and the WAL pages between checkpoints.  A
# history comes job by job, not in time order, so its rows land all over
# the indexes: SQLite's default 2 MB cache re-reads their pages and each
# checkpoint rewrites them.  Bounded, so memory stays flat.
_WRITE_CACHE_KIB = 65536
_WAL_CHECKPOINT_PAGES = 10000

# The page cache (KiB) while deferred indexes are made.  SQLite's sorter
# holds as much as the page cache in memory before it spills to temporary
# files: a small one keeps the build's memory flat in the history's size
# (a 1M-event history's: 4 MB more at the peak instead of 34, no slower).
_INDEX_BUILD_CACHE_KIB = 4096


class SQLiteBackend(Backend):
    """An SQLite archive file (see :class:`~flux_journal.store.backend.Backend`)."""

    paramstyle = "?"
    kind = "sqlite"
    errors = sqlite3.Error
    types = {"int": "INTEGER", "real": "REAL", "text": "TEXT"}
    serial = "INTEGER PRIMARY KEY"
    # SQLite writes every index page a commit touched, and a history's rows
    # (job by job) touch them all over: a 1M-event history took a fifth
    # less time in 100,000-event commits than in 10,000-event ones, for
    # about 65 MB more held while a commit fills (PostgreSQL: no faster).
    batch_size = 100000
    # A 1M-event first history took 13% less time written without the
    # jobs and events indexes, made after (bench_archive --keep-indexes).
    defers_indexes = True

    def begin(self):
        self.connection.execute("BEGIN IMMEDIATE")

    def commit(self):
        self.connection.execute("COMMIT")

    def rollback(self):
        if self.connection.in_transaction:
            try:
                self.connection.execute("ROLLBACK")
            except sqlite3.OperationalError:
                pass  # SQLite already rolled back (e.g. after an I/O error)

    def build_indexes(self):
        execute = self.connection.execute
        execute(f"PRAGMA cache_size = -{_INDEX_BUILD_CACHE_KIB}")
        try:
            super().build_indexes()
        finally:
            execute(f"PRAGMA cache_size = -{_WRITE_CACHE_KIB}")

    def columns(self, table):
        return [row[1].lower() for row in self.connection.execute(f"PRAGMA table_info({table})")]

    def index_names(self):
        return [name for (name,) in self.connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index'")]

    def upgrade_v1(self, instance, rebuild_job):
        """Move a version 1 archive's rows into this version's tables, with
        *instance* as their instance, and rebuild its jobs rows from its
        events, jobspecs and R; nothing is lost."""
        execute = self.connection.execute
        for index in _V1_INDEXES:
            execute(f"DROP INDEX IF EXISTS {index}")
        for table in _V1_TABLES:
            execute(f"ALTER TABLE {table} RENAME TO {table}_v1")
        tables, _ = schema.create_statements(self.types, self.serial)
        for table, statement in tables:
            if table in _V1_TABLES:
                execute(statement)
        execute("INSERT INTO events (id, instance, jobid, seq, timestamp, name, context) "
                "SELECT id, ?, jobid, seq, timestamp, name, context FROM events_v1", (instance,))
        execute("INSERT INTO resource_events (seq, instance, timestamp, name, context, R) "
                "SELECT seq, ?, timestamp, name, context, R FROM resource_events_v1", (instance,))
        execute("INSERT INTO resume (instance, journal, cursor, timestamp, events, updated) "
                "SELECT ?, journal, cursor, timestamp, events, updated FROM resume_v1", (instance,))
        specs = dict(((jobid, (jobspec, R)) for jobid, jobspec, R in
                      execute("SELECT jobid, jobspec, R FROM jobs_v1")))
        rows = []
        for (jobid,) in execute("SELECT DISTINCT jobid FROM events_v1").fetchall():
            if jobid in specs:  # version 1 had rows of the jobs job-list knows
                row = rebuild_job(instance, jobid, self.archived_events(instance, jobid),
                                  *specs[jobid])
                if row is not None:
                    rows.append(row)
        self.upsert_jobs(rows)
        for table in _V1_TABLES:
            execute(f"DROP TABLE {table}_v1")
        execute(self._sql["update_schema_version"], (str(schema.SCHEMA_VERSION),))


def _enter_wal(db):
    """Put the database in WAL mode; the mode it is in.

    Switching a database still in rollback mode (a new file) to WAL
    takes its write lock without SQLite's busy handler: while a second
    archiver started on the same new file creates the schema, it fails
    at once with "database is locked".  Wait for that, as for any lock.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT
    while True:
        try:
            return db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(0.01)


def _uri(path, mode):
    return f"file:{quote(os.path.abspath(path))}?mode={mode}"


def open_sqlite(path, *, readonly=False, synchronous="NORMAL"):
    """Open the SQLite archive at *path*: read-only (it must exist), or
    for writing, created owner-only if missing, in WAL mode with
    *synchronous* (``NORMAL``: a killed process never loses a commit;
    ``FULL``: each commit survives power loss too)."""
    path = str(path)
    try:
        if readonly:
            if not os.path.exists(path):
                raise ArchiveError(f"{path}: no such archive")
            db = sqlite3.connect(_uri(path, "ro"), uri=True, isolation_level=None,
                                 timeout=_BUSY_TIMEOUT)
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return SQLiteBackend(db, path)
        files = []
        if not private.create_private(path):
            for name in (path, path + "-wal", path + "-shm"):
                try:
                    files.append((name, os.stat(name)))
                except FileNotFoundError:
                    pass
    except OSError as exc:
        raise ArchiveError(f"{path}: {exc.strerror or exc}") from exc
    except sqlite3.Error as exc:
        raise ArchiveError(f"{path}: {exc}") from exc
    try:
        db = sqlite3.connect(path, isolation_level=None, timeout=_BUSY_TIMEOUT)
        # Reading the schema fails on a file that is not a database: then
        # the error alone is reported, not the privacy of what is not an
        # archive.
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        for name, status in files:
            private.warn_if_shared(name, status)
        mode = _enter_wal(db)
        if mode.lower() != "wal":
            raise ArchiveError(f"{path}: cannot use WAL mode (got {mode})")
        db.execute(f"PRAGMA synchronous = {synchronous}")
        db.execute(f"PRAGMA cache_size = -{_WRITE_CACHE_KIB}")
        db.execute(f"PRAGMA wal_autocheckpoint = {_WAL_CHECKPOINT_PAGES}")
    except sqlite3.Error as exc:
        raise ArchiveError(f"{path}: {exc}") from exc
    return SQLiteBackend(db, path)
