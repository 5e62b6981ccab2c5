"""PostgreSQL archives, through psycopg 3 (``pip install
'flux-journal[postgres]'``), imported only when a PostgreSQL URL is used.

Events and new jobs' rows are loaded with COPY, the fastest way into
PostgreSQL; a job's later rows are merged from a scratch table.  Several
archivers, one per instance, can write into one database at once: each
holds a session advisory lock on its (instance, journal) for as long as
it runs, so a second archiver of the same journal of the same instance
is refused at start (the lock goes with the connection of a killed
archiver).  Creating the schema takes a transaction advisory lock, so
that archivers starting together do not race.

The tables are created granting nothing to PUBLIC: only their owner (the
role the archiver connects as) and roles granted access explicitly can
read them (see README: a read-only role for ``flux-journal history``).
"""

import time
from urllib.parse import urlsplit, urlunsplit

from flux_journal.store import schema
from flux_journal.store.backend import Backend
from flux_journal.store.errors import ArchiveError, one_line

__all__ = ["PostgresBackend", "open_postgres", "URL_SCHEMES"]

#: URL schemes that name a PostgreSQL database (libpq's URL form).
URL_SCHEMES = ("postgresql://", "postgres://")

# Advisory lock keys: the first of two int4 keys says "flux-journal".
_LOCK_CLASS = 0x666A  # "fj"
_SCHEMA_LOCK = 0
# How long a starting archiver waits for the (instance, journal) lock: the
# server releases a killed archiver's lock once it notices the closed
# connection, which a restart may beat by a moment.
_CLAIM_WAIT = 5.0
# libpq waits forever for an unreachable host unless told otherwise.
_CONNECT_TIMEOUT = 10


def label(url):
    """*url* as messages show it: the password, if any, hidden."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class PostgresBackend(Backend):
    """A PostgreSQL archive database (see :class:`~flux_journal.store.backend.Backend`)."""

    paramstyle = "%s"
    kind = "postgresql"
    types = {"int": "bigint", "real": "double precision", "text": "text"}
    serial = "bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY"

    def __init__(self, connection, label_, errors):
        super().__init__(connection, label_)
        self.errors = errors
        self._copy = {
            table: "COPY {} ({}) FROM STDIN".format(table, ", ".join(columns))
            for table, columns in (("events", schema.EVENT_COLUMNS),
                                   ("resource_events", schema.RESOURCE_COLUMNS),
                                   ("jobs", schema.JOB_COLUMNS),
                                   ("jobs_batch", schema.JOB_COLUMNS))
        }
        # Event rows, the bulk of an archive, go in COPY's binary format,
        # with their columns' types: those are fixed, and binary rows cost
        # the writer a third of text's formatting.
        self._binary = {}
        for table, columns in (("events", schema.EVENT_COLUMNS),
                               ("resource_events", schema.RESOURCE_COLUMNS)):
            kinds = {name: kind for name, kind, _ in schema.TABLES[table][0]}
            self._binary[table] = [self.types[kinds[column]] for column in columns]
            self._copy[table] += " (FORMAT BINARY)"
        # A temporary table (this session's only), emptied at each commit.
        self._scratch = ("CREATE TEMPORARY TABLE IF NOT EXISTS jobs_batch "
                         "(LIKE jobs) ON COMMIT DELETE ROWS")
        columns = ", ".join(schema.JOB_COLUMNS)
        self._merge = (
            f"INSERT INTO jobs ({columns}) SELECT {columns} FROM jobs_batch "
            "ON CONFLICT (instance, jobid) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in schema.JOB_COLUMNS[2:]))

    def begin(self):
        pass  # psycopg opens a transaction at the first statement

    def columns(self, table):
        self.cursor.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s", (table,))
        return [name.lower() for (name,) in self.cursor.fetchall()]

    def index_names(self):
        self.cursor.execute("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
        return [name for (name,) in self.cursor.fetchall()]

    def lock_schema(self):
        self.cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_CLASS, _SCHEMA_LOCK))

    def claim(self, instance, journal):
        deadline = time.monotonic() + _CLAIM_WAIT
        while True:
            self.cursor.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))",
                                (_LOCK_CLASS, f"{instance}\n{journal}"))
            got = self.cursor.fetchone()[0]
            self.connection.commit()
            if got:
                return
            if time.monotonic() > deadline:
                raise self.error(f"another process is archiving the {journal} journal of "
                                 f"instance {instance!r} into this database")
            time.sleep(0.1)

    def made_tables(self, tables):
        # Tables grant nothing to PUBLIC unless default privileges say
        # otherwise: make sure of it, once, when they are created (an
        # operator may grant more later, deliberately).
        for table in tables:
            self.cursor.execute(f"REVOKE ALL ON TABLE {table} FROM PUBLIC")

    def insert_events(self, rows):
        self._copy_rows("events", rows)

    def upsert_jobs(self, rows):
        # COPY into a session's scratch table, then one INSERT ... ON
        # CONFLICT: far fewer round trips and statements than a row each.
        # Emptied after: a transaction may upsert many times, and the same
        # job twice (which one INSERT ... ON CONFLICT cannot).
        self.cursor.execute(self._scratch)
        self._copy_rows("jobs_batch", rows)
        self.cursor.execute(self._merge)
        self.cursor.execute("TRUNCATE jobs_batch")

    def insert_jobs(self, rows):
        # New jobs' rows: COPY straight into jobs, without the scratch
        # table and the merge (a row that exists after all is refused
        # with the batch: nothing is half-written)
        self._copy_rows("jobs", rows)

    def insert_resource_events(self, rows):
        self._copy_rows("resource_events", rows)

    def _copy_rows(self, table, rows):
        types = self._binary.get(table)
        with self.cursor.copy(self._copy[table]) as copy:
            if types is not None:
                copy.set_types(types)
            write = copy.write_row
            for row in rows:
                write(row)


def open_postgres(url, *, readonly=False):
    """Connect to the PostgreSQL archive at *url* (libpq URL); read-only
    sessions refuse to write."""
    try:
        import psycopg  # pylint: disable=import-outside-toplevel
    except ImportError as exc:
        raise ArchiveError(
            f"{label(url)}: PostgreSQL archives need psycopg: "
            "install 'flux-journal[postgres]'") from exc
    options = {} if "connect_timeout=" in url else {"connect_timeout": _CONNECT_TIMEOUT}
    try:
        connection = psycopg.connect(url, autocommit=readonly, **options)
        if readonly:
            connection.execute("SET default_transaction_read_only = on")
    except psycopg.Error as exc:
        raise ArchiveError(f"{label(url)}: {one_line(exc)}") from exc
    return PostgresBackend(connection, label(url), psycopg.Error)
