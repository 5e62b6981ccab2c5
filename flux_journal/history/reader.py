"""Reading an archive for ``flux-journal history``: :func:`open_reader`
opens the database a ``--db`` URL names, and :class:`ArchiveReader` runs
:class:`~flux_journal.history.query.JobQuery` queries on any DB-API
connection, given its driver's placeholder style."""

import dataclasses
import json
from itertools import islice

from flux_journal import store
from flux_journal.history.fields import runtime_of, t_remaining_of
from flux_journal.store import schema

__all__ = ["ArchiveReader", "ReaderError", "open_reader", "job_record"]


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
        close: what closes it (default: the connection's close())
        indexes_deferred (bool): the archive's first history is being
            written without its indexes (queries read whole tables)
        span_index (bool): the archive has the index of its jobs' spans
            (:data:`~flux_journal.store.schema.SPAN_INDEX`), which bounds
            an ``--until`` listing
    """

    def __init__(self, connection, placeholder, errors, name, *, close=None,
                 indexes_deferred=False, span_index=False):
        self.connection = connection
        self.placeholder = placeholder
        self.errors = errors
        self.name = name
        self.indexes_deferred = indexes_deferred
        self.span_index = span_index
        self._close = close if close is not None else connection.close

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

    def _bounded(self, query):
        """*query*, with the archive's longest job span when that bounds
        its listing (see JobQuery.span): the index's last entry, not a
        scan of the jobs."""
        if query.until is None or query.count is None or query.span is not None \
                or not self.span_index:
            return query
        (span,), = self._rows(f"SELECT max({schema.SPAN}) FROM jobs", [])
        # no job has ended: no inactive job can be listed past until
        return dataclasses.replace(query, span=0.0 if span is None else float(span))

    def _listing(self, query, columns):
        """The rows of *columns* of the jobs *query* selects, in order;
        with a count, one more than it when more matched."""
        query = self._bounded(query)
        limit = None if query.count is None else query.count + 1
        listed = 0
        for sql, params in query.jobs_statements(self.placeholder, columns):
            for row in self._rows(sql, params):
                yield row
                listed += 1
                if listed == limit:
                    return

    def jobs(self, query, now):
        """Yield the records (dicts, see :func:`job_record`) of the jobs
        *query* selects, in order; with a count, one more than it when
        more matched."""
        for instance, record_json in self._listing(query, "instance, record"):
            try:
                yield job_record(instance, record_json, now)
            except (TypeError, ValueError) as exc:
                raise ReaderError(f"{self.name}: a job's record is not JSON ({exc})") from exc

    def events(self, query):
        """Yield (instance, jobid, timestamp, name, context dict) for the
        events of the jobs *query* selects (with a count, of its first
        jobs), in time order."""
        if query.count is None:
            rows = self._rows(*query.events_sql(self.placeholder))
        else:
            # the listing's first jobs, then their events, sorted here
            # (a count bounds them; without one they stream in SQL's order)
            jobs = list(islice(self._listing(query, "instance, jobid"), query.count))
            rows = []
            for sql, params in query.events_statements(jobs, self.placeholder):
                rows.extend(self._rows(sql, params))
            rows.sort(key=lambda row: (row[2], row[0], row[1], row[5]))
        for instance, jobid, timestamp, name, context, *_ in rows:
            try:
                context = json.loads(context) if context else {}
            except ValueError as exc:
                raise ReaderError(f"{self.name}: an event's context is not JSON ({exc})") from exc
            yield instance, jobid, timestamp, name, context

    def close(self):
        """Close the archive."""
        self._close()


def open_reader(url):
    """An :class:`ArchiveReader` on the archive ``--db`` *url* names (a
    ``postgresql://`` or ``postgres://`` URL, else an SQLite file), opened
    read-only through :func:`flux_journal.store.connect`, which refuses
    what is not an archive of this schema version."""
    try:
        backend = store.connect(url, readonly=True)
    except store.ArchiveError as exc:
        raise ReaderError(str(exc)) from exc
    try:
        deferred = backend.indexes_deferred()
    except backend.errors as exc:
        backend.close()
        raise ReaderError(f"{backend.label}: {exc}") from exc
    return ArchiveReader(backend.connection, backend.paramstyle, (backend.errors,),
                         backend.label, close=backend.close, indexes_deferred=deferred,
                         span_index=backend.version >= schema.SPAN_INDEX_VERSION and not deferred)
