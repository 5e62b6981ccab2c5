"""The archive's logical schema, the same on every backend.

Tables (every one but ``meta`` has an ``instance`` column: the name of
the Flux instance its rows came from, see ``flux-journal archive
--instance``):

``events``
    one row per job event: ``id`` (archive order), ``instance``,
    ``jobid``, ``seq`` (the event's index among its job's archived
    events, from 0), ``timestamp``, ``name``, ``context`` (compact JSON
    text, ``{}`` if none).  ``(instance, jobid, seq)`` is unique.
``jobs``
    one row per job that job-list would know (it had a ``submit`` event
    and was not invalidated), kept current as its events arrive and kept
    after the instance purges the job, keyed by ``(instance, jobid)``:
    ``record`` holds the job as ``flux jobs -a -A --json`` prints it
    (JSON text, without the query-time ``runtime`` and ``t_remaining``),
    and the typed columns of :data:`RECORD_COLUMNS` repeat its fields for
    queries (NULL where the record has none), with ``exception_type``,
    ``exception_severity``, ``exception_note`` (the exception shown once
    inactive), ``nevents`` (the job's archived events), ``jobspec`` and
    ``R`` (JSON text, updates applied).
``resource_events``
    one row per resource journal event: ``seq`` (archive order),
    ``instance``, ``timestamp``, ``name``, ``context``, ``R`` (JSON, on
    ``resource-define``).
``resume``
    per ``(instance, journal)``, the position after the last archived
    event: the consumer's ``cursor``, the ``timestamp`` of the newest
    archived event, the number of ``events`` archived in all, and when
    it was ``updated``.  Written in the same transaction as the rows it
    covers.
``meta``
    ``key``, ``value``: ``schema_version`` (:data:`SCHEMA_VERSION`);
    ``indexes_deferred`` while the indexes of :data:`DEFERRED_INDEXES`
    are left out for a first history (see
    :attr:`~flux_journal.store.backend.Backend.defers_indexes`).

JSON is kept as text on both backends, byte for byte what the archiver
wrote (PostgreSQL users may cast it: ``context::jsonb``).  Each backend
renders the tables from :data:`TABLES` with its own column types.
"""

__all__ = [
    "SCHEMA_VERSION", "READABLE_VERSIONS", "TABLES", "ACTIVE_CONDITION", "INDEXES", "V2_INDEXES",
    "SPAN", "SPAN_INDEX", "SPAN_INDEX_VERSION",
    "DEFERRED_TABLES", "DEFERRED_INDEXES", "deferred_indexes",
    "RECORD_COLUMNS", "JOB_COLUMNS", "EVENT_COLUMNS", "RESOURCE_COLUMNS", "RESUME_COLUMNS",
    "create_statements", "statements", "IDS_PER_STATEMENT", "id_chunks", "lookup_statements",
    "tail_statement",
]

#: Version of the tables this flux-journal writes (kept in ``meta``).
#: Version 1 (SQLite only) had no ``instance`` columns and a smaller
#: ``jobs`` table; version 2 had these tables with the indexes of
#: :data:`V2_INDEXES`, which did not serve history's order; version 3
#: lacked :data:`SPAN_INDEX`.
SCHEMA_VERSION = 4

#: Versions whose tables are this version's: readable as they are (a
#: writer upgrades them).
READABLE_VERSIONS = (2, 3, 4)

#: The typed columns of ``jobs`` that repeat a field of the record, by name.
RECORD_COLUMNS = (
    "userid", "username", "urgency", "priority", "state", "result", "t_submit",
    "t_depend", "t_priority", "t_sched", "t_run", "t_cleanup", "t_inactive", "name",
    "cwd", "queue", "project", "bank", "ntasks", "ncores", "nnodes", "nodelist",
    "ranks", "duration", "expiration", "waitstatus", "returncode",
)

_TEXT_FIELDS = {"username", "state", "result", "name", "cwd", "queue", "project", "bank",
                "nodelist", "ranks"}
_REAL_FIELDS = {"t_submit", "t_depend", "t_priority", "t_sched", "t_run", "t_cleanup",
                "t_inactive", "duration", "expiration"}

# Logical column types: "int" (64-bit), "real" (double), "text", and
# "serial" (an integer key the database numbers in insertion order).
# Each table: (columns as (name, type, not null)), table constraint.
TABLES = {
    "meta": ((("key", "text", True), ("value", "text", True)), "PRIMARY KEY (key)"),
    "resume": (
        (("instance", "text", True), ("journal", "text", True), ("cursor", "text", False),
         ("timestamp", "real", False), ("events", "int", True), ("updated", "real", True)),
        "PRIMARY KEY (instance, journal)",
    ),
    "jobs": (
        (("instance", "text", True), ("jobid", "int", True))
        + tuple(
            (c, "text" if c in _TEXT_FIELDS else "real" if c in _REAL_FIELDS else "int",
             c == "state")
            for c in RECORD_COLUMNS
        )
        + (("exception_type", "text", False), ("exception_severity", "int", False),
           ("exception_note", "text", False), ("nevents", "int", True),
           ("record", "text", True), ("jobspec", "text", False), ("R", "text", False)),
        "PRIMARY KEY (instance, jobid)",
    ),
    "events": (
        (("id", "serial", True), ("instance", "text", True), ("jobid", "int", True),
         ("seq", "int", True), ("timestamp", "real", True), ("name", "text", True),
         ("context", "text", True)),
        "UNIQUE (instance, jobid, seq)",
    ),
    "resource_events": (
        (("seq", "serial", True), ("instance", "text", True), ("timestamp", "real", True),
         ("name", "text", True), ("context", "text", True), ("R", "text", False)),
        None,
    ),
}

#: The states of an active job (not yet INACTIVE), as an SQL condition.
ACTIVE_CONDITION = "state IN ('NEW', 'DEPEND', 'PRIORITY', 'SCHED', 'RUN', 'CLEANUP')"

#: A job's time from submit to inactive, as SQL (NULL while active), the
#: name of the index on it, and the first version that has it.
SPAN = "t_inactive - t_submit"
SPAN_INDEX = "jobs_by_span"
SPAN_INDEX_VERSION = 4

#: Indexes for history queries: (name, table, columns, condition of a
#: partial index or None).  The unique (instance, jobid, seq) of
#: ``events`` and the keys are indexes already.  A listing shows inactive
#: jobs most recently ended first (flux jobs' order), so each filter's
#: index goes on in ``t_inactive`` order: a ``--count`` listing reads its
#: first jobs from the index and stops
#: (:meth:`~flux_journal.history.query.JobQuery.jobs_statements`).  The
#: active jobs, which that listing finds by state, are few: their index
#: holds them alone (an archive's rows are nearly all inactive).  The
#: longest a job took from submit to inactive bounds where an ``--until``
#: listing's jobs can have ended: :data:`SPAN_INDEX` finds it at once.
INDEXES = (
    ("jobs_by_inactive", "jobs", "t_inactive", None),
    ("jobs_by_instance_inactive", "jobs", "instance, t_inactive", None),
    ("jobs_by_user_inactive", "jobs", "userid, t_inactive", None),
    ("jobs_by_result_inactive", "jobs", "result, t_inactive", None),
    ("jobs_by_name_inactive", "jobs", "name, t_inactive", None),
    ("jobs_by_queue_inactive", "jobs", "queue, t_inactive", None),
    ("jobs_active_by_state", "jobs", "state", ACTIVE_CONDITION),
    ("jobs_by_jobid", "jobs", "jobid", None),
    (SPAN_INDEX, "jobs", f"({SPAN})", None),
    ("events_by_time", "events", "timestamp", None),
    ("resource_events_by_time", "resource_events", "instance, timestamp", None),
)

#: The tables a job history fills, whose indexes an archive's first
#: history is written without; they are then made at once (sorting the
#: rows once costs less than placing each in every index as a history,
#: job by job, brings it): :data:`DEFERRED_INDEXES`.
DEFERRED_TABLES = ("jobs", "events")


def deferred_indexes(indexes):
    """Those of *indexes* (as :data:`INDEXES` lists them) on
    :data:`DEFERRED_TABLES`."""
    return tuple(index for index in indexes if index[1] in DEFERRED_TABLES)


#: The indexes a new archive's first history is written without.
DEFERRED_INDEXES = deferred_indexes(INDEXES)

#: Version 2's indexes of ``jobs``, which version 3's replaced (the
#: upgrade drops them), as :data:`INDEXES` lists indexes.
V2_INDEXES = (
    ("jobs_by_instance_submit", "jobs", "instance, t_submit", None),
    ("jobs_by_user_submit", "jobs", "userid, t_submit", None),
    ("jobs_by_state", "jobs", "state", None),
    ("jobs_by_result", "jobs", "result", None),
    ("jobs_by_name", "jobs", "name", None),
    ("jobs_by_queue", "jobs", "queue", None),
)


def _names(table, skip_serial=True):
    return tuple(c for c, kind, _ in TABLES[table][0] if not (skip_serial and kind == "serial"))


#: Columns of the rows the archive writes, in order.
JOB_COLUMNS = _names("jobs")
EVENT_COLUMNS = _names("events")
RESOURCE_COLUMNS = _names("resource_events")
RESUME_COLUMNS = _names("resume")


def create_statements(types, serial):
    """``CREATE TABLE IF NOT EXISTS`` of every table and ``CREATE INDEX
    IF NOT EXISTS`` of every index, for a backend whose column types are
    *types* (logical type -> SQL type) and whose numbered key column is
    *serial* (the SQL after the column's name); returns (tables, indexes),
    lists of (name, statement)."""
    tables = []
    for table, (columns, constraint) in TABLES.items():
        lines = [
            f"{name} {serial}" if kind == "serial"
            else f"{name} {types[kind]}{' NOT NULL' if not_null else ''}"
            for name, kind, not_null in columns
        ]
        if constraint:
            lines.append(constraint)
        tables.append((table, f"CREATE TABLE IF NOT EXISTS {table} (\n    "
                              + ",\n    ".join(lines) + "\n)"))
    indexes = [(name, f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})"
                      + (f" WHERE {condition}" if condition else ""))
               for name, table, columns, condition in INDEXES]
    return tables, indexes


def _insert(table, columns):
    return "INSERT INTO {} ({}) VALUES ({})".format(
        table, ", ".join(columns), ", ".join("?" * len(columns)))


def statements():
    """The archive's data statements, the same SQL on both backends, with
    ``?`` placeholders (a backend substitutes its own): name -> SQL."""
    return {
        "insert_events": _insert("events", EVENT_COLUMNS),
        "insert_resource_events": _insert("resource_events", RESOURCE_COLUMNS),
        "upsert_job": _insert("jobs", JOB_COLUMNS)
        + " ON CONFLICT (instance, jobid) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in JOB_COLUMNS[2:]),
        "delete_job": "DELETE FROM jobs WHERE instance = ? AND jobid = ?",
        "save_position": _insert("resume", RESUME_COLUMNS)
        + " ON CONFLICT (instance, journal) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in RESUME_COLUMNS[2:]),
        "load_position": "SELECT cursor, events FROM resume WHERE instance = ? AND journal = ?",
        "archived_events": "SELECT timestamp, name, context FROM events"
        " WHERE instance = ? AND jobid = ? ORDER BY seq",
        "holds_events": "SELECT 1 FROM events WHERE instance = ? LIMIT 1",
        "holds_any_events": "SELECT 1 FROM events LIMIT 1",
        "indexes_deferred": "SELECT value FROM meta WHERE key = 'indexes_deferred'",
        "set_indexes_deferred": "INSERT INTO meta (key, value) VALUES ('indexes_deferred', '1')"
        " ON CONFLICT (key) DO NOTHING",
        "clear_indexes_deferred": "DELETE FROM meta WHERE key = 'indexes_deferred'",
        "schema_version": "SELECT value FROM meta WHERE key = 'schema_version'",
        "set_schema_version": "INSERT INTO meta (key, value) VALUES ('schema_version', ?)"
        " ON CONFLICT (key) DO NOTHING",
        "update_schema_version": "UPDATE meta SET value = ? WHERE key = 'schema_version'",
    }


#: Job ids one statement names at most (SQLite allows 32766 parameters,
#: old builds 999).
IDS_PER_STATEMENT = 500


def id_chunks(jobids):
    """*jobids* in lists of at most :data:`IDS_PER_STATEMENT`, one per
    statement."""
    jobids = list(jobids)
    for start in range(0, len(jobids), IDS_PER_STATEMENT):
        yield jobids[start:start + IDS_PER_STATEMENT]


def lookup_statements(count):
    """Two queries about *count* jobs of one instance (parameters: the
    instance, then the jobids): their archived events' count, and their
    jobs rows' jobspec and R."""
    ids = ", ".join("?" * count)
    return (
        f"SELECT jobid, count(*) FROM events WHERE instance = ? AND jobid IN ({ids})"
        " GROUP BY jobid",
        f"SELECT jobid, jobspec, R FROM jobs WHERE instance = ? AND jobid IN ({ids})",
    )


def tail_statement(count):
    """A query about *count* jobs of one instance (parameters: the
    instance, then the jobids): how many archived events each has at
    each of its timestamps."""
    ids = ", ".join("?" * count)
    return (
        f"SELECT jobid, timestamp, count(*) FROM events WHERE instance = ? AND jobid IN ({ids})"
        " GROUP BY jobid, timestamp"
    )
