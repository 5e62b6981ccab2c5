"""What the archive needs of a database, written once over DB-API; the
dialects (connecting, types, locking, bulk loading, introspection) are
in :mod:`flux_journal.store.sqlite` and :mod:`flux_journal.store.postgres`.
"""

from flux_journal.store import schema
from flux_journal.store.errors import ArchiveError

__all__ = ["Backend"]


class Backend:
    """One open archive database.

    Attributes:
        connection: the DB-API connection
        paramstyle (str): its placeholder, ``?`` (SQLite) or ``%s``
            (PostgreSQL)
        kind (str): ``sqlite`` or ``postgresql``
        label (str): the archive as messages name it (no password)
        errors: the driver's base exception class
        batch_size (int): the events per commit that suit the database
        defers_indexes (bool): whether an archive's first job history is
            written without the indexes of
            :data:`~flux_journal.store.schema.DEFERRED_INDEXES`, made
            once it is all in (SQLite: its writers take turns, so no
            other writer waits on the index build; a PostgreSQL database
            is shared by archivers writing at once, so it keeps its
            indexes)
        version (int): the archive's schema version, once
            :meth:`open_schema` has checked it (None before)
    """

    paramstyle = "?"
    kind = ""
    errors = Exception
    #: Events per commit unless told (``archive --batch-size``).
    batch_size = 10000
    defers_indexes = False

    # logical type -> SQL type, and the numbered key column (subclasses)
    types = {}
    serial = ""

    def __init__(self, connection, label):
        self.connection = connection
        self.label = label
        self.cursor = connection.cursor()
        self._sql = {name: self.placeholders(text) for name, text in schema.statements().items()}
        self.version = None

    def placeholders(self, statement):
        """*statement* (written with ``?``) in this backend's paramstyle."""
        return statement if self.paramstyle == "?" else statement.replace("?", self.paramstyle)

    def error(self, message):
        """An ArchiveError naming the archive."""
        return ArchiveError(f"{self.label}: {message}")

    # -- dialect: subclasses ------------------------------------------------

    def begin(self):
        """Start a write transaction."""
        raise NotImplementedError

    def commit(self):
        """Commit the transaction."""
        self.connection.commit()

    def rollback(self):
        """Abandon the transaction, if any."""
        self.connection.rollback()

    # -- written from another process (WriterBackend): here, at once ---------

    #: A commit sent by :meth:`commit_behind` whose outcome is not known
    #: yet: never so in this process.
    pending_commit = False

    def commit_behind(self):
        """Commit without waiting for the outcome, where another process
        writes the database (:class:`~flux_journal.store.writer.WriterBackend`);
        here, :meth:`commit`."""
        self.commit()

    def ensure_alive(self):
        """Raise ArchiveError if the process writing the database has
        ended; nothing to check when it is this one."""

    def columns(self, table):
        """The lower-case column names of *table*, [] if there is none."""
        raise NotImplementedError

    def index_names(self):
        """The names of the archive's indexes (any table's)."""
        raise NotImplementedError

    def claim(self, instance, journal):
        """Make sure no other process archives *journal* of *instance*
        here (raise ArchiveError), where the database can tell at once."""

    def lock_schema(self):
        """Within the transaction: keep other archivers from creating or
        upgrading the schema at the same time."""

    def made_tables(self, tables):
        """The archive created *tables* in this transaction."""

    def upgrade_v1(self, instance, rebuild_job):
        """Upgrade a version 1 archive (within the transaction)."""
        del instance, rebuild_job
        raise self.error("archive schema version 1 exists only in SQLite archives")

    def insert_events(self, rows):
        """Insert ``events`` rows (EVENT_COLUMNS order)."""
        self.cursor.executemany(self._sql["insert_events"], rows)

    def insert_resource_events(self, rows):
        """Insert ``resource_events`` rows (RESOURCE_COLUMNS order)."""
        self.cursor.executemany(self._sql["insert_resource_events"], rows)

    # -- schema ---------------------------------------------------------------

    def schema_version(self):
        """The archive's schema version (a string), None if it has none."""
        if not self.columns("meta"):
            return None
        self.cursor.execute(self._sql["schema_version"])
        row = self.cursor.fetchone()
        return None if row is None else row[0]

    def check_tables(self):
        """Raise ArchiveError unless every table has exactly our columns."""
        for table, (columns, _) in schema.TABLES.items():
            want = sorted(name.lower() for name, _, _ in columns)
            have = sorted(self.columns(table))
            if have != want:
                raise self.error(
                    f"not a flux-journal archive of schema version {schema.SCHEMA_VERSION}: "
                    f"table {table} has columns ({', '.join(have) or 'none'})"
                    if have else f"no table {table}"
                )

    def open_schema(self, instance, rebuild_job, create=True):
        """Check the archive's schema; with *create*, create what is
        missing and upgrade a version 1 archive (its rows get *instance*;
        *rebuild_job* turns a job's archived events into its jobs row),
        in one transaction."""
        if not create:
            version = self.schema_version()
            if version not in map(str, schema.READABLE_VERSIONS):
                raise self._version_error(version)
            self.check_tables()
            self.version = int(version)
            return
        self.begin()
        try:
            self.lock_schema()
            version = self.schema_version()
            if version == str(schema.SCHEMA_VERSION):
                # Made already: no DDL, which would lock tables another
                # archiver is writing (CREATE INDEX IF NOT EXISTS locks its
                # table before it looks), and deadlock with it.
                self.check_tables()
                self.commit()
                self.version = schema.SCHEMA_VERSION
                return
            if version == "1":
                self.upgrade_v1(instance, rebuild_job)
            elif version in map(str, schema.READABLE_VERSIONS):  # older: this one returned
                self.upgrade_indexes(version)
            elif version is not None:
                raise self._version_error(version)
            tables, indexes = schema.create_statements(self.types, self.serial)
            created = []
            for table, statement in tables:
                if not self.columns(table):
                    created.append(table)
                self.cursor.execute(statement)
            self.check_tables()
            self.made_tables(created)
            self._create_indexes(indexes)
            self.cursor.execute(self._sql["set_schema_version"], (str(schema.SCHEMA_VERSION),))
            self.commit()
            self.version = schema.SCHEMA_VERSION
        except BaseException:
            self.rollback()
            raise

    def upgrade_indexes(self, version):
        """Upgrade a version 2 or 3 archive (within the transaction): its
        tables stay, the indexes version 3 replaced go (version 2), and
        this version's are made next."""
        if version == "2":
            for name, *_ in schema.V2_INDEXES:
                self.cursor.execute(f"DROP INDEX IF EXISTS {name}")
        self.cursor.execute(self._sql["update_schema_version"], (str(schema.SCHEMA_VERSION),))

    def _version_error(self, version):
        if version is None:
            return self.error("not a flux-journal archive (no schema version)")
        # only version 1 is neither this version's nor readable as it is
        upgrade = " (flux-journal archive upgrades it)" if version == "1" else ""
        return self.error(
            f"archive schema version {version}, this flux-journal "
            f"writes version {schema.SCHEMA_VERSION}{upgrade}"
        )

    # -- data -----------------------------------------------------------------

    def upsert_jobs(self, rows):
        """Insert or replace ``jobs`` rows (JOB_COLUMNS order)."""
        self.cursor.executemany(self._sql["upsert_job"], rows)

    def insert_jobs(self, rows):
        """Insert ``jobs`` rows (JOB_COLUMNS order) of jobs that have no
        row yet: :meth:`upsert_jobs` here; a database with a faster way to
        add new rows uses it (PostgreSQL: COPY)."""
        self.upsert_jobs(rows)

    def delete_jobs(self, instance, jobids):
        """Delete the ``jobs`` rows of *jobids* of *instance*."""
        self.cursor.executemany(self._sql["delete_job"], [(instance, j) for j in jobids])

    def load_position(self, instance, journal):
        """(cursor, events) of the resume row, or None."""
        self.cursor.execute(self._sql["load_position"], (instance, journal))
        return self.cursor.fetchone()

    def save_position(self, row):
        """Write the resume row (RESUME_COLUMNS order)."""
        self.cursor.execute(self._sql["save_position"], row)

    def archived_events(self, instance, jobid):
        """(timestamp, name, context) of the archived events of a job."""
        self.cursor.execute(self._sql["archived_events"], (instance, jobid))
        return self.cursor.fetchall()

    def lookup_jobs(self, instance, jobids):
        """What the archive holds of *jobids* of *instance*: {jobid:
        (archived events, whether it has a jobs row, jobspec, R)} for the
        jobs it holds anything of."""
        found = {}
        for chunk in schema.id_chunks(jobids):
            counts, specs = (self.placeholders(s) for s in schema.lookup_statements(len(chunk)))
            self.cursor.execute(counts, (instance, *chunk))
            for jobid, count in self.cursor.fetchall():
                found[jobid] = (count, False, None, None)
            self.cursor.execute(specs, (instance, *chunk))
            for jobid, jobspec, R in self.cursor.fetchall():
                found[jobid] = (found.get(jobid, (0,))[0], True, jobspec, R)
        return found

    def holds_events(self, instance):
        """Whether the archive holds any job event of *instance*."""
        self.cursor.execute(self._sql["holds_events"], (instance,))
        return self.cursor.fetchone() is not None

    def holds_any_events(self):
        """Whether the archive holds any job event, of any instance."""
        self.cursor.execute(self._sql["holds_any_events"])
        return self.cursor.fetchone() is not None

    def indexes_deferred(self):
        """Whether the indexes of DEFERRED_INDEXES are left out for now."""
        self.cursor.execute(self._sql["indexes_deferred"])
        return self.cursor.fetchone() is not None

    def defer_indexes(self):
        """Within the transaction: drop the indexes of DEFERRED_INDEXES,
        noting it in ``meta`` (a run killed before :meth:`build_indexes`
        leaves the note for the next)."""
        for name, *_ in schema.DEFERRED_INDEXES:
            self.cursor.execute(f"DROP INDEX IF EXISTS {name}")
        self.cursor.execute(self._sql["set_indexes_deferred"])

    def build_indexes(self):
        """Within the transaction: make every index that is missing and
        drop the note of :meth:`defer_indexes`."""
        self._create_indexes(schema.create_statements(self.types, self.serial)[1])
        self.cursor.execute(self._sql["clear_indexes_deferred"])

    def _create_indexes(self, indexes):
        """Run those of the ``CREATE INDEX IF NOT EXISTS`` statements
        *indexes* ((name, statement) pairs) whose index is missing.

        Only those: such a statement locks its table before it looks,
        and an upgrade beside a running archiver would lock ``events``,
        which that archiver may hold while it waits for ``jobs``: a
        deadlock."""
        present = set(self.index_names())
        for name, statement in indexes:
            if name not in present:
                self.cursor.execute(statement)

    def archived_tails(self, instance, jobids):
        """Where the archived events of *jobids* of *instance* end:
        {jobid: (the newest timestamp, how many events are at it)} for
        the jobs it holds events of."""
        tails = {}
        for chunk in schema.id_chunks(jobids):
            self.cursor.execute(self.placeholders(schema.tail_statement(len(chunk))),
                                (instance, *chunk))
            for jobid, timestamp, count in self.cursor.fetchall():
                tail = tails.get(jobid)
                if tail is None or timestamp > tail[0]:
                    tails[jobid] = (timestamp, count)
        return tails

    def counts(self):
        """Row counts of the archive's tables (all instances)."""
        result = {}
        for table in ("events", "jobs", "resource_events"):
            self.cursor.execute(f"SELECT count(*) FROM {table}")
            result[table] = self.cursor.fetchone()[0]
        return result

    def close(self):
        """Close the connection."""
        self.connection.close()
