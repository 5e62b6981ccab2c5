"""Reading an archive for ``flux-journal history``: :func:`open_reader`
opens the database a ``--db`` URL names, and :class:`ArchiveReader` runs
:class:`~flux_journal.history.query.JobQuery` queries on any DB-API
connection, given its driver's placeholder style."""

import json
import os
import sqlite3

from flux_journal.history.fields import runtime_of, t_remaining_of

__all__ = ["ArchiveReader", "ReaderError", "open_reader", "job_record", "REQUIRED_COLUMNS"]

#: The columns history reads or filters on, per table: an archive
#: without them is not one it can read.
REQUIRED_COLUMNS = {
    "jobs": {
        "instance", "jobid", "userid", "username", "state", "result", "priority",
        "t_submit", "t_run", "t_inactive", "name", "queue", "record",
    },
    "events": {"instance", "jobid", "seq", "timestamp", "name", "context"},
}


class ReaderError(Exception):
    """An archive that cannot be read (the message says why, in one line)."""


def job_record(instance, record_json, now):
    """The job as ``flux jobs --json`` prints it, from its archived
    record: with ``runtime`` and ``t_remaining`` computed at *now* (absent
    when zero, as flux jobs leaves them) and the archive's ``instance``."""
    record = json.loads(record_json)
    runtime = runtime_of(record, now)
    if runtime:
        record["runtime"] = runtime
    remaining = t_remaining_of(record, now)
    if remaining:
        record["t_remaining"] = remaining
    record["instance"] = instance
    return record


class ArchiveReader:
    """Runs history's queries on an archive.

    Args:
        connection: an open DB-API connection to the archive
        placeholder (str): its driver's parameter marker (``?`` for
            sqlite3, ``%s`` for psycopg)
        errors (tuple): the driver's exception classes, reported as
            :class:`ReaderError`
        name (str): what messages call the archive (its path or URL)
    """

    def __init__(self, connection, placeholder, errors, name):
        self.connection = connection
        self.placeholder = placeholder
        self.errors = errors
        self.name = name

    def _rows(self, sql, params):
        try:
            cursor = self.connection.cursor()
            cursor.execute(sql, params)
            while True:
                rows = cursor.fetchmany(1000)
                if not rows:
                    break
                yield from rows
        except self.errors as exc:
            raise ReaderError(f"{self.name}: {exc}") from exc

    def jobs(self, query, now):
        """Yield the records (dicts, see :func:`job_record`) of the jobs
        *query* selects, in order; with a count, one more than it when
        more matched (see :meth:`JobQuery.jobs_sql`)."""
        for instance, record_json in self._rows(*query.jobs_sql(self.placeholder)):
            try:
                yield job_record(instance, record_json, now)
            except (TypeError, ValueError) as exc:
                raise ReaderError(f"{self.name}: a job's record is not JSON ({exc})") from exc

    def events(self, query):
        """Yield (instance, jobid, timestamp, name, context dict) for the
        events of the jobs *query* selects, in time order."""
        for instance, jobid, timestamp, name, context in self._rows(
            *query.events_sql(self.placeholder)
        ):
            try:
                context = json.loads(context) if context else {}
            except ValueError as exc:
                raise ReaderError(f"{self.name}: an event's context is not JSON ({exc})") from exc
            yield instance, jobid, timestamp, name, context

    def close(self):
        """Close the connection."""
        self.connection.close()


def _is_postgresql(url):
    return url.startswith(("postgresql://", "postgres://"))


def _open_sqlite(path):
    if not os.path.exists(path):
        raise ReaderError(f"{path}: no such archive")
    try:
        # read-only: history never changes an archive, even by accident
        connection = sqlite3.connect(f"file:{_uri_path(path)}?mode=ro", uri=True)
        for table, needed in REQUIRED_COLUMNS.items():
            columns = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
            if not columns:
                connection.close()
                raise ReaderError(f"{path}: not a flux-journal archive (no {table} table)")
            if not needed <= columns:
                connection.close()
                missing = ", ".join(sorted(needed - columns))
                raise ReaderError(
                    f"{path}: not an archive history can read (table {table} lacks "
                    f"{missing}; archives written before the jobs table held job-list "
                    f"records must be upgraded)"
                )
    except sqlite3.Error as exc:
        raise ReaderError(f"{path}: {exc}") from exc
    return ArchiveReader(connection, "?", (sqlite3.Error,), path)


def _uri_path(path):
    """*path* escaped for an SQLite ``file:`` URI."""
    return path.replace("%", "%25").replace("?", "%3f").replace("#", "%23")


def open_reader(url):
    """An :class:`ArchiveReader` on the archive ``--db`` *url* names: a
    ``postgresql://`` (or ``postgres://``) URL, else an SQLite file."""
    if _is_postgresql(url):
        # PLACEHOLDER, to be replaced by the storage layer's PostgreSQL
        # connection (psycopg, placeholder "%s"): nothing reads PostgreSQL yet.
        raise ReaderError("PostgreSQL support is not installed yet")
    return _open_sqlite(url)
