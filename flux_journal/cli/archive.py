"""An SQLite archive of journal events, written by ``flux-journal archive``.

One database file can hold the job-manager journal and the resource
journal.  Tables:

``events``
    one row per job event: ``id`` (journal order), ``jobid``, ``seq``
    (the event's index among its job's archived events, from 0),
    ``timestamp``, ``name``, ``context`` (compact JSON, ``{}`` if none).
    ``(jobid, seq)`` is unique.
``jobs``
    one row per job that job-list would know (it had a ``submit`` event
    and was not invalidated), kept up to date as its events arrive, from
    :mod:`flux_journal.jobstate`: ``record`` holds the job exactly as
    ``flux jobs -a -A --json`` prints it (JSON text; without the two
    values flux jobs computes at query time for a running job,
    ``runtime`` and ``t_remaining``), and these typed columns repeat its
    fields for queries (NULL where the record has no such field):
    ``jobid``, ``userid``, ``username``, ``urgency``, ``priority``,
    ``state`` (NEW, DEPEND, PRIORITY, SCHED, RUN, CLEANUP, INACTIVE),
    ``result`` (COMPLETED, FAILED, CANCELED, TIMEOUT once inactive),
    ``t_submit``, ``t_depend``, ``t_priority``, ``t_sched``, ``t_run``,
    ``t_cleanup``, ``t_inactive``, ``name``, ``cwd``, ``queue``,
    ``project``, ``bank``, ``ntasks``, ``ncores``, ``nnodes``,
    ``nodelist``, ``ranks``, ``duration``, ``expiration``,
    ``waitstatus``, ``returncode``, ``exception_type``,
    ``exception_severity``, ``exception_note`` (of the exception shown,
    once inactive); also ``nevents`` (the job's archived events) and
    ``jobspec`` and ``R`` (JSON, with ``jobspec-update`` and
    ``resource-update`` events applied).
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

Schema version 2 (this one) added job-list's record to ``jobs``.  A
version 1 archive is upgraded in place when opened: its ``jobs`` rows
are rebuilt from its ``events`` (which version 1 kept too) and its
jobspecs and R, in one transaction; nothing else changes.
"""

import json
import os
import sqlite3
import time

import orjson

from flux_journal.cli import private
from flux_journal.cli.checkpoint import Position
from flux_journal.job import JournalEvent
from flux_journal.jobstate import INACTIVE, STATE_NAMES, JobModel

__all__ = ["Archive", "ArchiveError", "JOB_STATES"]

#: Version of the tables this module writes (kept in the meta table).
SCHEMA_VERSION = 2

# The jobs table of this version, one statement per item (see _upgrade_v1).
_JOBS_TABLE = (
    """
CREATE TABLE IF NOT EXISTS jobs (
    jobid INTEGER PRIMARY KEY,
    userid INTEGER,
    username TEXT,
    urgency INTEGER,
    priority INTEGER,
    state TEXT NOT NULL,
    result TEXT,
    t_submit REAL,
    t_depend REAL,
    t_priority REAL,
    t_sched REAL,
    t_run REAL,
    t_cleanup REAL,
    t_inactive REAL,
    name TEXT,
    cwd TEXT,
    queue TEXT,
    project TEXT,
    bank TEXT,
    ntasks INTEGER,
    ncores INTEGER,
    nnodes INTEGER,
    nodelist TEXT,
    ranks TEXT,
    duration REAL,
    expiration REAL,
    waitstatus INTEGER,
    returncode INTEGER,
    exception_type TEXT,
    exception_severity INTEGER,
    exception_note TEXT,
    nevents INTEGER NOT NULL,
    record TEXT NOT NULL,
    jobspec TEXT,
    R TEXT
)
""",
    "CREATE INDEX IF NOT EXISTS jobs_by_submit ON jobs (t_submit)",
)

_SCHEMA = ";\n".join(_JOBS_TABLE) + """;
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
JOB_STATES = tuple(STATE_NAMES.values())

# The typed columns of ``jobs`` that repeat a field of the record, by name.
_RECORD_COLUMNS = (
    "userid", "username", "urgency", "priority", "state", "result", "t_submit",
    "t_depend", "t_priority", "t_sched", "t_run", "t_cleanup", "t_inactive", "name",
    "cwd", "queue", "project", "bank", "ntasks", "ncores", "nnodes", "nodelist",
    "ranks", "duration", "expiration", "waitstatus", "returncode",
)
_EXCEPTION_COLUMNS = ("type", "severity", "note")
_JOB_COLUMNS = (
    ("jobid",)
    + _RECORD_COLUMNS
    + tuple(f"exception_{key}" for key in _EXCEPTION_COLUMNS)
    + ("nevents", "record", "jobspec", "R")
)
_UPSERT_JOB = "INSERT INTO jobs ({}) VALUES ({}) ON CONFLICT (jobid) DO UPDATE SET {}".format(
    ", ".join(_JOB_COLUMNS),
    ", ".join("?" * len(_JOB_COLUMNS)),
    ", ".join(f"{c} = excluded.{c}" for c in _JOB_COLUMNS[1:]),
)

# A job's archived events, whether it has a jobs row, its jobspec and R.
_LOOKUP_JOB = """
SELECT (SELECT count(*) FROM events WHERE jobid = ?1), jobs.jobid IS NOT NULL, jobspec, R
FROM (SELECT 1) LEFT JOIN jobs ON jobs.jobid = ?1
"""

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


class _JobRows:
    """The ``jobs`` rows of job records, with each job's jobspec and R
    turned into JSON text once (not at every commit that rewrites the
    row)."""

    def __init__(self):
        self._texts = {}  # jobid -> (jobspec, its text, R, its text)

    def row(self, record):
        """The ``jobs`` row of *record*, a tuple in _JOB_COLUMNS order."""
        jobid = int(record.id)
        jobspec, R = record.jobspec, record.R
        texts = self._texts.get(jobid)
        if texts is None or texts[0] is not jobspec or texts[2] is not R:
            texts = (
                jobspec,
                None if jobspec is None else _json(jobspec),
                R,
                None if R is None else _json(R),
            )
            self._texts[jobid] = texts
        shown = record.to_dict()
        exception = shown["exception"]
        return (
            (jobid,)
            + tuple(shown.get(column) for column in _RECORD_COLUMNS)
            + tuple(exception.get(key) for key in _EXCEPTION_COLUMNS)
            + (record.events, _json(shown), texts[1], texts[3])
        )

    def forget(self, jobid):
        """Drop what is kept for *jobid*."""
        self._texts.pop(jobid, None)


def _replay(jobid, events, jobspec, R):
    """The record of job *jobid* rebuilt from its archived *events*
    ((timestamp, name, context JSON) in order) and its jobspec and R
    (JSON text or None); None if job-list would not know the job."""
    model = JobModel()
    jobspec = None if jobspec is None else orjson.loads(jobspec)
    R = None if R is None else orjson.loads(R)
    model.apply_events(
        JournalEvent(
            jobid,
            {"timestamp": timestamp, "name": name, "context": orjson.loads(context)},
            jobspec,
            R,
        )
        for timestamp, name, context in events
    )
    record = model.get(jobid)
    if record is not None:
        # counted as events of the archive, whatever the model made of them
        record.events = len(events)
    return record


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
            self._rows = _JobRows()
        except sqlite3.DatabaseError as exc:
            raise ArchiveError(f"{self.path}: {exc}") from exc
        self._model = JobModel()  # the records of this run's active jobs
        self._dirty = {}  # jobid -> record changed in the open transaction
        self._gone = set()  # jobids whose row goes (invalidated) at commit
        self._orphans = {}  # jobid -> next seq, for events of jobs without a record
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
        elif row[0] == "1":
            self._upgrade_v1()
        elif row[0] != str(SCHEMA_VERSION):
            raise ArchiveError(
                f"{self.path}: archive schema version {row[0]}, this flux-journal "
                f"writes version {SCHEMA_VERSION}"
            )

    def _upgrade_v1(self):
        """Rebuild a version 1 archive's ``jobs`` rows as version 2's, from
        its events, jobspecs and R, in one transaction."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row[0] != "1":  # another process upgraded it meanwhile
                db.execute("ROLLBACK")
                return self._check_schema()
            # the index keeps its name when its table is renamed
            db.execute("DROP INDEX IF EXISTS jobs_by_submit")
            db.execute("ALTER TABLE jobs RENAME TO jobs_v1")
            for statement in _JOBS_TABLE:
                db.execute(statement)
            rows = _JobRows()
            jobids = [jobid for (jobid,) in db.execute("SELECT DISTINCT jobid FROM events")]
            for jobid in jobids:
                spec = db.execute(
                    "SELECT jobspec, R FROM jobs_v1 WHERE jobid = ?", (jobid,)
                ).fetchone()
                record = _replay(jobid, self._archived_events(jobid), *(spec or (None, None)))
                if record is not None:
                    db.execute(_UPSERT_JOB, rows.row(record))
            db.execute("DROP TABLE jobs_v1")
            db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                       (str(SCHEMA_VERSION),))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return None

    def _archived_events(self, jobid):
        """(timestamp, name, context) of the archived events of *jobid*."""
        return self.db.execute(
            "SELECT timestamp, name, context FROM events WHERE jobid = ? ORDER BY seq",
            (jobid,),
        ).fetchall()

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

    def _record(self, jobid):
        """The record of *jobid*: held, or rebuilt from its archived
        events (an archive resumed, or a transaction rolled back); None
        if the archive has none, and then the seq of the job's next
        event is in ``_orphans``."""
        record = self._model.get(jobid)
        if record is None and jobid not in self._orphans:
            # one query for both: most jobs seen first are new ones
            nevents, has_row, jobspec, R = self.db.execute(_LOOKUP_JOB, (jobid,)).fetchone()
            if has_row:
                record = _replay(jobid, self._archived_events(jobid), jobspec, R)
            if record is None:
                self._orphans[jobid] = nevents
            else:
                self._model.adopt(record)
        return record

    def _next_orphan_seq(self, jobid):
        """The seq of the next event of a job that has no record."""
        seq = self._orphans[jobid]
        self._orphans[jobid] = seq + 1
        return seq

    # ------------------------------------------------------------------

    def add(self, events):
        """Add journal events (in delivery order) to the open transaction."""
        if not events:
            return
        self._begin()
        if self.journal == "jobs":
            rows = []
            dirty = self._dirty
            model = self._model
            for event in events:
                jobid = int(event.jobid)
                record = self._record(jobid)
                seq = record.events if record is not None else self._next_orphan_seq(jobid)
                model.apply_events((event,))
                if record is None:
                    record = model.get(jobid)  # the job's submit
                    if record is not None:
                        record.events = seq + 1
                if record is not None:
                    if model.get(jobid) is record:
                        dirty[jobid] = record
                    else:  # invalidated: job-list forgets the job
                        dirty.pop(jobid, None)
                        self._gone.add(jobid)
                        self._orphans[jobid] = record.events
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
                self.db.executemany(_UPSERT_JOB, map(self._rows.row, self._dirty.values()))
            if self._gone:
                self.db.executemany("DELETE FROM jobs WHERE jobid = ?", [(j,) for j in self._gone])
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
        # Inactive jobs get no more events that change their row but late
        # annotations: forget them so memory stays bounded by the number
        # of active jobs (a late event rebuilds the record).
        for jobid, record in self._dirty.items():
            if record.state == INACTIVE:
                self._model.forget(jobid)
                self._rows.forget(jobid)
        for jobid in self._gone:
            self._rows.forget(jobid)
        self._dirty = {}
        self._gone = set()
        self._orphans = {}

    def rollback(self):
        """Abandon the open transaction (its events are not archived)."""
        if self._in_transaction:
            self._in_transaction = False
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.OperationalError:
                pass  # SQLite already rolled back (e.g. after an I/O error)
        # Records changed in the abandoned transaction must be rebuilt.
        for jobid in set(self._dirty) | self._gone:
            self._model.forget(jobid)
            self._rows.forget(jobid)
        self._dirty = {}
        self._gone = set()
        self._orphans = {}
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
