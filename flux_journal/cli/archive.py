"""An SQLite archive of journal events, written by ``flux-journal archive``.

One database file can hold the job-manager journal and the resource
journal.  Tables:

``events``
    one row per job event: ``id`` (journal order), ``jobid``, ``seq``
    (the event's index among its job's archived events, from 0),
    ``timestamp``, ``name``, ``context`` (compact JSON, ``{}`` if none).
    ``(jobid, seq)`` is unique.
``jobs``
    one row per job, kept up to date as its events arrive: ``jobid``,
    ``userid``, ``urgency``, ``state`` (the furthest RFC 21 state reached:
    NEW, DEPEND, PRIORITY, SCHED, RUN, CLEANUP, INACTIVE), ``result``
    (COMPLETED, FAILED, CANCELED or TIMEOUT once inactive, decided as
    ``flux jobs`` does), ``t_submit``, ``t_run``, ``t_cleanup``,
    ``t_inactive``, ``waitstatus``, ``exception_type`` and
    ``exception_note`` (of the first fatal exception), ``nevents``,
    ``jobspec`` and ``R`` (JSON).
``resource_events``
    one row per resource journal event: ``seq`` (journal order),
    ``timestamp``, ``name``, ``context``, ``R`` (JSON, on
    ``resource-define``).
``resume``
    per journal, the position after the last archived event: the
    consumer's ``cursor`` once those events were added (see
    :mod:`flux_journal.cursor`; exact also for live events that arrived
    out of time order, within the consumer's ``cursor_window``), the
    ``timestamp`` of the newest archived event, the number of ``events``
    archived in all, and when it was ``updated``.

Events are added inside an open transaction and committed in batches;
the resume position is written in the same transaction as the events it
covers.  A process killed at any instant therefore leaves the database
at the end of its last committed batch, and the next run resumes from
exactly there: no row is lost or stored twice.  The database uses WAL
mode, so ``sqlite3 FILE`` can query it while it is being written.

A new database is owner-only, and so are its ``-wal`` and ``-shm`` files
(SQLite gives them the database file's mode); an existing one keeps its
permissions, with a warning if group or others can read it (see
:mod:`flux_journal.cli.private`).
"""

import json
import os
import sqlite3
import time

import orjson

from flux_journal.cli import private
from flux_journal.cli.checkpoint import Position

__all__ = ["Archive", "ArchiveError", "JOB_STATES"]

#: Version of the tables this module writes (kept in the meta table).
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS resume (
    journal TEXT PRIMARY KEY,
    cursor TEXT,
    timestamp REAL,
    events INTEGER NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    jobid INTEGER PRIMARY KEY,
    userid INTEGER,
    urgency INTEGER,
    state TEXT NOT NULL,
    result TEXT,
    t_submit REAL,
    t_run REAL,
    t_cleanup REAL,
    t_inactive REAL,
    waitstatus INTEGER,
    exception_type TEXT,
    exception_note TEXT,
    nevents INTEGER NOT NULL,
    jobspec TEXT,
    R TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_submit ON jobs (t_submit);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    jobid INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    timestamp REAL NOT NULL,
    name TEXT NOT NULL,
    context TEXT NOT NULL,
    UNIQUE (jobid, seq)
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (timestamp);
CREATE TABLE IF NOT EXISTS resource_events (
    seq INTEGER PRIMARY KEY,
    timestamp REAL NOT NULL,
    name TEXT NOT NULL,
    context TEXT NOT NULL,
    R TEXT
);
CREATE INDEX IF NOT EXISTS resource_events_by_time ON resource_events (timestamp);
"""

#: RFC 21 job states in the order a job passes through them.
JOB_STATES = ("NEW", "DEPEND", "PRIORITY", "SCHED", "RUN", "CLEANUP", "INACTIVE")
_RANK = {state: rank for rank, state in enumerate(JOB_STATES)}

# The state each event moves a job to (RFC 21).  A job only ever moves
# forward: a "priority" event while SCHED (a reprioritisation) leaves it
# there, and an event missed because the archive started late cannot
# drag it back.
_NEXT_STATE = {
    "submit": "NEW",
    "validate": "DEPEND",
    "depend": "PRIORITY",
    "priority": "SCHED",
    "alloc": "RUN",
    "finish": "CLEANUP",
    "clean": "INACTIVE",
    "invalidate": "INACTIVE",
}

_JOB_COLUMNS = (
    "jobid",
    "userid",
    "urgency",
    "state",
    "result",
    "t_submit",
    "t_run",
    "t_cleanup",
    "t_inactive",
    "waitstatus",
    "exception_type",
    "exception_note",
    "nevents",
    "jobspec",
    "R",
)
_UPSERT_JOB = "INSERT INTO jobs ({}) VALUES ({}) ON CONFLICT (jobid) DO UPDATE SET {}".format(
    ", ".join(_JOB_COLUMNS),
    ", ".join("?" * len(_JOB_COLUMNS)),
    ", ".join(f"{c} = excluded.{c}" for c in _JOB_COLUMNS[1:]),
)
_SELECT_JOB = "SELECT {} FROM jobs WHERE jobid = ?".format(", ".join(_JOB_COLUMNS))

_JOURNALS = ("jobs", "resource")


class ArchiveError(Exception):
    """The archive cannot be used (another writer, wrong schema, ...)."""


def _json(value):
    """Compact JSON text of a decoded JSON value, non-ASCII kept."""
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):
        # ints beyond 64 bits or non-finite floats, which orjson refuses
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class _Job:
    """The ``jobs`` row of one job, updated event by event."""

    __slots__ = _JOB_COLUMNS + ("fatal",)

    def __init__(self, jobid):
        for column in _JOB_COLUMNS:
            setattr(self, column, None)
        self.jobid = jobid
        self.state = "NEW"
        self.nevents = 0
        self.fatal = False

    @classmethod
    def from_row(cls, row):
        """Rebuild from a ``jobs`` row (a tuple in _JOB_COLUMNS order)."""
        job = cls(row[0])
        for column, value in zip(_JOB_COLUMNS, row):
            setattr(job, column, value)
        job.fatal = job.exception_type is not None
        return job

    def row(self):
        """The row as a tuple in _JOB_COLUMNS order."""
        return tuple(getattr(self, column) for column in _JOB_COLUMNS)

    def apply(self, event):
        """Update the row for *event*; return the event's ``seq``."""
        name = event.name
        ts = event.timestamp
        context = event.context
        if not isinstance(context, dict):
            context = {}  # not an RFC 18 context: nothing to learn from it
        if name == "submit":
            self.t_submit = ts
            self.userid = context.get("userid", self.userid)
            self.urgency = context.get("urgency", self.urgency)
            if event.jobspec is not None:
                self.jobspec = _json(event.jobspec)
        elif name == "urgency":
            self.urgency = context.get("urgency", self.urgency)
        elif name == "alloc":
            self.t_run = ts
            if event.R is not None:
                self.R = _json(event.R)
        elif name == "finish":
            self.t_cleanup = ts
            self.waitstatus = context.get("status")
        elif name == "exception" and context.get("severity") == 0 and not self.fatal:
            # The first fatal exception decides a failed job's result and
            # sends it to CLEANUP from any earlier state.
            self.fatal = True
            self.exception_type = context.get("type")
            self.exception_note = context.get("note")
            if _RANK[self.state] < _RANK["CLEANUP"]:
                self.t_cleanup = ts
                self.state = "CLEANUP"
        state = _NEXT_STATE.get(name)
        if state is not None and _RANK[state] > _RANK[self.state]:
            self.state = state
            if state == "INACTIVE":
                self.t_inactive = ts
                self.result = self._result()
        seq = self.nevents
        self.nevents = seq + 1
        return seq

    def _result(self):
        # flux jobs' rule: a zero wait status is success whatever
        # happened before; otherwise the fatal exception names the cause.
        if self.waitstatus == 0:
            return "COMPLETED"
        if self.fatal:
            if self.exception_type == "cancel":
                return "CANCELED"
            if self.exception_type == "timeout":
                return "TIMEOUT"
        return "FAILED"


def _connect(path):
    """Open the SQLite database at *path*, creating it owner-only.

    SQLite gives the ``-wal`` and ``-shm`` files it creates the mode of
    the database file (whatever the umask), so creating that file 0600
    before SQLite opens it makes all three private.  An existing file, or
    a ``-wal``/``-shm`` left by a killed run, keeps its permissions and,
    once it reads as a database, is warned about if group or others can
    read it.
    """
    try:
        files = []
        if not private.create_private(path):
            for name in (path, path + "-wal", path + "-shm"):
                try:
                    files.append((name, os.stat(name)))
                except FileNotFoundError:
                    pass
    except OSError as exc:
        raise ArchiveError(f"{path}: {exc.strerror or exc}") from exc
    db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    # Reading the schema fails on a file that is not a database: then the
    # error alone is reported, not the privacy of what is not an archive.
    db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    for name, status in files:
        private.warn_if_shared(name, status)
    return db


class Archive:
    """An SQLite archive of one journal (see the module docstring).

    Args:
        path: the database file (created if missing)
        journal (str): ``jobs`` or ``resource``
        synchronous (str): SQLite ``synchronous`` setting.  ``NORMAL``
            (default) never loses a committed batch when the process
            dies and keeps the database consistent on power loss (the
            last batches may then be rolled back, together with their
            resume position); ``FULL`` makes each commit durable.
    """

    def __init__(self, path, journal="jobs", synchronous="NORMAL"):
        if journal not in _JOURNALS:
            raise ValueError(f"journal must be one of {_JOURNALS}")
        self.path = str(path)
        self.journal = journal
        try:
            self.db = _connect(self.path)
            mode = self.db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise ArchiveError(f"{self.path}: cannot use WAL mode (got {mode})")
            self.db.execute(f"PRAGMA synchronous = {synchronous}")
            self.db.executescript(_SCHEMA)
            self._check_schema()
        except sqlite3.DatabaseError as exc:
            raise ArchiveError(f"{self.path}: {exc}") from exc
        self._jobs = {}  # jobid -> _Job, the active jobs of this run
        self._dirty = {}  # jobid -> _Job changed in the open transaction
        self._in_transaction = False
        self.pending = 0  # events added since the last commit
        self.added = 0  # events added by this process, committed or not
        self.committed = 0  # events committed by this process
        self.commits = 0
        self._saved = self._load_position()
        self.position = self._saved.copy()

    # ------------------------------------------------------------------

    def _check_schema(self):
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            self.db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        elif row[0] != str(SCHEMA_VERSION):
            raise ArchiveError(
                f"{self.path}: archive schema version {row[0]}, this flux-journal "
                f"writes version {SCHEMA_VERSION}"
            )

    def _load_position(self):
        # The timestamp column is informative: the cursor resumes.
        row = self.db.execute(
            "SELECT cursor, events FROM resume WHERE journal = ?",
            (self.journal,),
        ).fetchone()
        if row is None:
            return Position()
        return Position(*row)

    def _begin(self):
        if not self._in_transaction:
            # IMMEDIATE takes the write lock now, so a second archiver on
            # the same file waits here instead of failing mid-batch.
            self.db.execute("BEGIN IMMEDIATE")
            self._in_transaction = True

    def _job(self, jobid):
        job = self._jobs.get(jobid)
        if job is None:
            row = self.db.execute(_SELECT_JOB, (jobid,)).fetchone()
            job = _Job.from_row(row) if row is not None else _Job(jobid)
            self._jobs[jobid] = job
        return job

    # ------------------------------------------------------------------

    def add(self, events):
        """Add journal events (in delivery order) to the open transaction."""
        if not events:
            return
        self._begin()
        if self.journal == "jobs":
            rows = []
            dirty = self._dirty
            for event in events:
                jobid = int(event.jobid)
                job = self._job(jobid)
                seq = job.apply(event)
                dirty[jobid] = job
                rows.append((jobid, seq, event.timestamp, event.name, _json(event.context)))
            self.db.executemany(
                "INSERT INTO events (jobid, seq, timestamp, name, context) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
        else:
            rows = [
                (
                    event.timestamp,
                    event.name,
                    _json(event.context),
                    None if getattr(event, "R", None) is None else _json(event.R),
                )
                for event in events
            ]
            self.db.executemany(
                "INSERT INTO resource_events (timestamp, name, context, R) VALUES (?, ?, ?, ?)",
                rows,
            )
        self.pending += len(events)
        self.added += len(events)

    def commit(self, position):
        """Commit the added events with *position* as the resume point.

        Raises:
            ArchiveError: another process moved this journal's resume
                position since this one last committed (two archivers on
                one file would store events twice)
        """
        if not self._in_transaction and position == self._saved:
            return
        self._begin()
        try:
            current = self._load_position()
            if current != self._saved:
                raise ArchiveError(
                    f"{self.path}: another process is archiving the {self.journal} journal "
                    "into this file"
                )
            if self._dirty:
                self.db.executemany(_UPSERT_JOB, [job.row() for job in self._dirty.values()])
            state = position.to_dict()
            self.db.execute(
                "INSERT OR REPLACE INTO resume (journal, cursor, timestamp, events, updated)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    self.journal,
                    state["cursor"],
                    state["timestamp"],
                    state["events"],
                    time.time(),
                ),
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.rollback()
            raise
        self._in_transaction = False
        self._saved = position.copy()
        self.position = position.copy()
        self.committed += self.pending
        self.pending = 0
        self.commits += 1
        # Inactive jobs get no more events: forget them so memory stays
        # bounded by the number of active jobs.
        for jobid, job in self._dirty.items():
            if job.state == "INACTIVE":
                self._jobs.pop(jobid, None)
        self._dirty = {}

    def rollback(self):
        """Abandon the open transaction (its events are not archived)."""
        if self._in_transaction:
            self._in_transaction = False
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.OperationalError:
                pass  # SQLite already rolled back (e.g. after an I/O error)
        # Rows changed in the abandoned transaction must be re-read.
        for jobid in self._dirty:
            self._jobs.pop(jobid, None)
        self._dirty = {}
        self.added -= self.pending
        self.pending = 0

    def counts(self):
        """Row counts: {"events": n, "jobs": n, "resource_events": n}."""
        return {
            table: self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("events", "jobs", "resource_events")
        }

    def close(self):
        """Roll back anything uncommitted and close the database."""
        self.rollback()
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
