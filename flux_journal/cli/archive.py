"""An archive of a journal, written by ``flux-journal archive`` into an
SQLite file or a PostgreSQL database (the tables: see
:mod:`flux_journal.store.schema`; the dialects: :mod:`~flux_journal.store.sqlite`,
:mod:`~flux_journal.store.postgres`).

One database can hold the job-manager journal and the resource journal
of many instances: every row carries its ``instance``, and each (instance,
journal) has its own resume position.

Events are added inside an open transaction and committed in batches;
the resume position is written in the same transaction as the events it
covers.  A process killed at any instant therefore leaves the database
at the end of its last committed batch, and the next run resumes from
exactly there: no row is lost or stored twice.  An SQLite database uses
WAL mode, so ``sqlite3 FILE`` can query it while it is being written.

The database is written by a process of its own (see
:mod:`flux_journal.store.writer`), while this one reads and models the
next events; ``writer_process=False`` writes it from this process.

The ``jobs`` rows are job-list's records, kept by
:class:`~flux_journal.jobstate.JobModel` for the jobs still active, and
written at each commit that changed them; with the writer process, an
ended job's row is written when the job ends, so that a history's rows
go to the database beside the next events, not all at the commit.  An
inactive job's record is forgotten once committed (memory stays bounded
by the active jobs), and rebuilt from its archived events should a late
event come.

A version 1 archive (SQLite, flux-journal up to a11ac61: no instances,
a smaller ``jobs`` table) is upgraded in place when opened for writing:
its rows get the archiver's instance name, its ``jobs`` rows are rebuilt
from its events, jobspecs and R, in one transaction; nothing is lost.
"""

import json
import time

import orjson

from flux_journal.cli.checkpoint import Position
from flux_journal.gcpause import CollectorPaused
from flux_journal.job import JournalEvent
from flux_journal.jobstate import INACTIVE, STATE_NAMES, JobModel
from flux_journal.store import open_backend
from flux_journal.store.writer import WriterBackend, open_writer
from flux_journal.store.errors import ArchiveError, one_line
from flux_journal.store.schema import RECORD_COLUMNS

__all__ = ["Archive", "ArchiveError", "ArchiveGroup", "JOB_STATES", "DEFAULT_INSTANCE"]

#: RFC 21 job states in the order a job passes through them.
JOB_STATES = tuple(STATE_NAMES.values())

#: The instance name of an :class:`Archive` not given one.
DEFAULT_INSTANCE = "default"

_EXCEPTION_KEYS = ("type", "severity", "note")
_JOURNALS = ("jobs", "resource")


def _json(value):
    """Compact JSON text of a decoded JSON value, non-ASCII kept."""
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):
        # ints beyond 64 bits or non-finite floats, which orjson refuses
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class _Transaction:
    """Whether a connection has a write transaction open (shared by the
    archives of one connection).

    While one is open, Python's cyclic collector is paused: the rows and
    records of an open commit, thousands of objects kept alive at once
    and freed by the commit, make no cycles, and the collector would
    examine each of them many times over (about a tenth of an archive's
    time, bench/bench_archive.py).  Anything else that runs meanwhile is
    collected once the commit or rollback resumes it."""

    __slots__ = ("open", "_paused")

    def __init__(self):
        self.open = False
        self._paused = None

    def began(self):
        """The connection began a transaction."""
        self.open = True
        self._paused = CollectorPaused().__enter__()

    def ended(self):
        """Its transaction was committed or rolled back, and what it held
        let go: the collector resumes (if it ran before)."""
        self.open = False
        paused, self._paused = self._paused, None
        if paused is not None:
            paused.__exit__(None, None, None)


class _JobRows:
    """The ``jobs`` rows of one instance's job records, with each job's
    jobspec and R turned into JSON text once (not at every commit that
    rewrites the row)."""

    def __init__(self, instance):
        self._instance = instance
        self._texts = {}  # jobid -> (jobspec, its text, R, its text)

    def row(self, record):
        """The ``jobs`` row of *record*, a tuple in JOB_COLUMNS order."""
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
            (self._instance, jobid)
            + tuple(map(shown.get, RECORD_COLUMNS))
            + tuple(map(exception.get, _EXCEPTION_KEYS))
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


def _rebuilt_row(instance, jobid, events, jobspec, R):
    """The ``jobs`` row of a job rebuilt from its archive, or None."""
    record = _replay(jobid, events, jobspec, R)
    return None if record is None else _JobRows(instance).row(record)


class Archive:
    """The archive of one journal of one instance (see the module docstring).

    Args:
        url: an SQLite file (created if missing) or a ``postgresql://``
            URL (see :func:`flux_journal.store.connect`)
        journal (str): ``jobs`` or ``resource``
        instance (str): the name every row gets (and a version 1 SQLite
            archive's rows, when it is upgraded)
        synchronous (str): SQLite ``synchronous`` setting.  ``NORMAL``
            (default) never loses a committed batch when the process
            dies and keeps the database consistent on power loss (the
            last batches may then be rolled back, together with their
            resume position); ``FULL`` makes each commit durable.

        share (Archive): another archive of the same database whose
            connection and transaction this one shares (``archive
            --recursive``: one per instance of a tree, committed
            together by :class:`ArchiveGroup`); *url* and *synchronous*
            are then unused, and closing this one leaves the connection
            open
        writer_process (bool): write the database from a process of its
            own (:mod:`flux_journal.store.writer`), so that this process
            reads and models the next events while the last are written
            (a history is archived in about four fifths of the time);
            False: write it from this process

    Raises:
        ArchiveError: the database cannot be opened or reached, is of
            another schema, or another process archives the same journal
            of the same instance into it (PostgreSQL tells at once;
            SQLite at the first commit after the other's)
    """

    def __init__(self, url, journal="jobs", instance=DEFAULT_INSTANCE, synchronous="NORMAL",
                 *, share=None, writer_process=True):
        if journal not in _JOURNALS:
            raise ValueError(f"journal must be one of {_JOURNALS}")
        self.path = str(url)
        self.journal = journal
        self.instance = instance
        self._owner = share is None
        if share is not None:
            self.backend = share.backend
        elif writer_process:
            self.backend = open_writer(url, synchronous)
        else:
            self.backend = open_backend(url, synchronous=synchronous)
        # Write an ended job's row at once (beside the next events, in
        # the writer process) rather than at the commit, which waits.
        self._rows_as_jobs_end = isinstance(self.backend, WriterBackend)
        # whether the (shared) connection has a transaction open
        self._tx = _Transaction() if share is None else share._tx
        try:
            try:
                if share is None:
                    self.backend.open_schema(instance, _rebuilt_row)
                self.backend.claim(instance, journal)
                self._saved = self._before_commit = self._load_position()
                # Nothing of this instance's jobs is archived yet: an
                # unordered history (add(history=True)) then repeats
                # nothing, until a new stream starts.
                self._all_new = journal == "jobs" and not self.backend.holds_events(instance)
                # Whether the indexes are left out now, and whether this
                # archiver may leave them out for its history: that of a
                # new archive, or of one whose first was cut short.
                self._deferred = self._deferred_committed = (
                    self.backend.defers_indexes and self.backend.indexes_deferred())
                self._may_defer = (
                    share is None and journal == "jobs" and self.backend.defers_indexes
                    and (self._deferred or not self.backend.holds_any_events()))
            except self.backend.errors as exc:
                raise self.backend.error(one_line(exc)) from exc
        except BaseException:
            if share is None:
                self.backend.close()
            raise
        self._rows = _JobRows(instance)
        self._model = JobModel()  # the records of this run's active jobs
        self._dirty = {}  # jobid -> record changed in the open transaction
        # jobids of the jobs that ended in the open transaction, their
        # rows written then (see _rows_as_jobs_end)
        self._ended = set()
        self._gone = set()  # jobids whose row goes (invalidated) at commit
        # jobids of the jobs submitted in the open transaction whose row
        # is not written yet: their first row is inserted, not upserted
        self._new = set()
        self._orphans = {}  # jobid -> next seq, for events of jobs without a record
        # [jobid, newest archived timestamp or None once past it, events
        # at it still to skip] of the job whose unordered history is being read
        self._reading = None
        self._history_in = False  # the history read unordered is all added
        self.pending = 0  # events added since the last commit
        self.added = 0  # events added by this process, committed or not
        self.committed = 0  # events committed by this process
        self.commits = 0
        self.position = self._saved.copy()

    # ------------------------------------------------------------------

    def ensure_writer_alive(self):
        """Raise ArchiveError if the archive's writer process has ended
        (nothing to check without one): an archiver following a quiet
        instance would otherwise learn it only at its next event."""
        self.backend.ensure_alive()

    def _load_position(self):
        # The timestamp column is informative: the cursor resumes.
        row = self.backend.load_position(self.instance, self.journal)
        return Position() if row is None else Position(*row)

    @property
    def _in_transaction(self):
        return self._tx.open

    def _begin(self):
        if not self._tx.open:
            self.backend.begin()
            self._tx.began()

    def _failed(self, exc):
        """Roll back after the database refused a statement; the error
        to raise (a second archiver's rows make ours collide: say so)."""
        # A commit sent without waiting may be what failed: the database
        # then holds the position before it, which no other process moved.
        lost = self._before_commit if self.backend.pending_commit else None
        self.rollback()
        try:
            moved = self._load_position() not in (self._saved, lost)
        except self.backend.errors:
            moved = False
        if moved:
            return self._another_process()
        return self.backend.error(one_line(exc))

    def _another_process(self):
        return self.backend.error(
            f"another process is archiving the {self.journal} journal of instance "
            f"{self.instance!r} into this archive"
        )

    def _look_up(self, jobids):
        """Hold the record, or the next event's seq, of each of *jobids*
        (jobs this run has not seen): rebuilt from the archive (a
        resumed run, or a rolled back transaction) or new."""
        backend = self.backend
        found = backend.lookup_jobs(self.instance, jobids)
        for jobid in jobids:
            nevents, has_row, jobspec, R = found.get(jobid, (0, False, None, None))
            record = None
            if has_row:
                record = _replay(jobid, backend.archived_events(self.instance, jobid),
                                 jobspec, R)
            if record is None:
                self._orphans[jobid] = nevents
            else:
                self._model.adopt(record)

    # ------------------------------------------------------------------

    def add(self, events, *, history=False):
        """Add journal events (in delivery order) to the open transaction.

        *history*: the events are job history read unordered (each job's
        eventlog whole and in order, one job after another), which may
        repeat events archived before (a resumed run, a new stream): each
        job's are skipped up to the last the archive holds (see
        :meth:`_unarchived`).

        Returns:
            int: how many of *events* were skipped as archived before
        """
        if not events:
            return 0
        self._begin()
        delivered = len(events)
        try:
            if history and not self._all_new:
                events = self._unarchived(events)
                if not events:
                    return delivered
            if history and self._may_defer and not self._deferred:
                self.backend.defer_indexes()
                self._deferred = True
            if self.journal == "jobs":
                self._add_job_events(events)
            else:
                self.backend.insert_resource_events([
                    (
                        self.instance,
                        event.timestamp,
                        event.name,
                        _json(event.context),
                        None if getattr(event, "R", None) is None else _json(event.R),
                    )
                    for event in events
                ])
        except self.backend.errors as exc:
            raise self._failed(exc) from exc
        self.pending += len(events)
        self.added += len(events)
        return delivered - len(events)

    def new_stream(self):
        """A new stream of the journal follows (a reconnection): its
        history may repeat anything archived, committed or not."""
        self._all_new = False
        self._reading = None

    def history_written(self):
        """The history read unordered (``add(history=True)``) is all
        added: indexes left out for it are made in the next commit.  Until
        then, a first history into a new SQLite archive is written without
        the indexes of :data:`~flux_journal.store.schema.DEFERRED_INDEXES`
        (``history`` reads it meanwhile, more slowly, and says so)."""
        self._history_in = True
        self._may_defer = False

    def _unarchived(self, events):
        """The history *events* (see :meth:`add`) the archive does not
        hold.  A job's archived events are the first of its eventlog, so
        its history's events are skipped up to its newest archived
        timestamp, and at that timestamp as many as are archived there
        (an eventlog's times never decrease; events the job manager does
        not commit to the eventlog, which a history leaves out, are never
        after the newest archived).  The transaction's own rows count: a
        new stream may repeat them."""
        reading = self._reading
        jobids = [int(event.jobid) for event in events]
        current = None if reading is None else reading[0]
        starting = []  # jobs whose history begins in this batch
        for jobid in jobids:
            if jobid != current:
                starting.append(jobid)
                current = jobid
        tails = self.backend.archived_tails(self.instance, starting)
        kept = []
        for jobid, event in zip(jobids, events):
            if reading is None or reading[0] != jobid:
                newest, count = tails.get(jobid, (None, 0))
                reading = [jobid, newest, count]
            newest = reading[1]
            if newest is not None:
                timestamp = event["timestamp"]
                if timestamp < newest:
                    continue
                if timestamp == newest and reading[2]:
                    reading[2] -= 1
                    continue
                reading[1] = None  # past what the archive holds
            kept.append(event)
        self._reading = reading
        return kept

    def _add_job_events(self, events):
        model = self._model
        orphans = self._orphans
        held = model.get
        # The seq of each job's next event: its record's count of archived
        # events, or for a job without one the orphans' count; None for
        # a job this run has not seen, looked up below.
        next_seq = {}
        known = set()  # jobs with a record before the batch: if it goes, so does the row
        jobids = []
        unseen = []
        for event in events:
            jobid = int(event.jobid)
            jobids.append(jobid)
            if jobid in next_seq:
                continue
            record = held(jobid)
            if record is not None:
                known.add(jobid)
                next_seq[jobid] = record.events
            elif jobid in orphans:
                next_seq[jobid] = orphans[jobid]
            elif event["name"] == "submit":
                # A job's first event, delivered once: the archive has
                # nothing of it (were it wrong, the unique (instance,
                # jobid, seq) would refuse the batch, not duplicate it).
                next_seq[jobid] = orphans[jobid] = 0
                self._new.add(jobid)
            else:
                next_seq[jobid] = None
                unseen.append(jobid)
        if unseen:
            self._look_up(unseen)
            for jobid in unseen:
                record = held(jobid)
                if record is not None:
                    known.add(jobid)
                    next_seq[jobid] = record.events
                else:
                    next_seq[jobid] = orphans[jobid]
        instance = self.instance
        rows = []
        submitted = set()
        dumps = orjson.dumps
        for jobid, event in zip(jobids, events):
            seq = next_seq[jobid]
            next_seq[jobid] = seq + 1
            name = event["name"]
            if name == "submit":
                submitted.add(jobid)
            context = event["context"]
            try:  # _json(context), without a call per event in the common case
                text = dumps(context).decode()
            except (TypeError, orjson.JSONEncodeError):
                text = _json(context)
            rows.append((instance, jobid, seq, event["timestamp"], name, text))
        # One pass of the model over the batch (its loop is the costly part).
        model.apply_events(events)
        dirty = self._dirty
        ended = []  # rows of the jobs that ended: written now, not at the commit
        for jobid, count in next_seq.items():
            record = held(jobid)
            if record is not None:
                # counted as events of the archive, whatever the model made of them
                record.events = count
                if record.state == INACTIVE and self._rows_as_jobs_end:
                    dirty.pop(jobid, None)
                    self._ended.add(jobid)
                    ended.append(record)
                else:
                    dirty[jobid] = record
            else:
                if jobid in known or jobid in submitted:  # invalidated: job-list forgets it
                    dirty.pop(jobid, None)
                    self._gone.add(jobid)
                orphans[jobid] = count
        self.backend.insert_events(rows)
        if ended:
            self._write_rows(ended)

    def _write_rows(self, records):
        """Write the ``jobs`` rows of *records*: inserted for the jobs
        that have none yet, upserted for the others."""
        new, changed = [], []
        fresh = self._new
        row = self._rows.row
        for record in records:
            rows = changed
            if record.id in fresh:
                fresh.discard(record.id)
                rows = new
            rows.append(row(record))
        if new:
            self.backend.insert_jobs(new)
        if changed:
            self.backend.upsert_jobs(changed)

    def commit(self, position, *, wait=True):
        """Commit the added events with *position* as the resume point.

        *wait* False, with a writer process: the commit is sent and this
        returns at once, the database committing while the caller reads
        and adds the next events; should it fail, the next call that
        waits raises its ArchiveError (at the latest the next commit that
        waits), and the archive must then be closed: it took the lost
        commit for done.

        Raises:
            ArchiveError: another process moved this journal's resume
                position since this one last committed (two archivers on
                one SQLite file would store events twice), or the
                database refused the batch (nothing of it is stored)
        """
        if not self._in_transaction and position == self._saved:
            if wait and self.backend.pending_commit:
                try:  # the outcome of the commit sent before
                    self._load_position()
                except self.backend.errors as exc:
                    raise self._failed(exc) from exc
            return
        self.commit_staged([(self, position)], wait=wait)

    def commit_staged(self, staged, sharing=(), wait=True):
        """Stage each (archive, position) of *staged* (this archive or
        those of *sharing*, the others on its connection) and commit them
        in one transaction (*wait*: see :meth:`commit`).  If that fails it
        is rolled back, and this archive and those of *sharing* forget
        what they added since their last commit."""
        backend = self.backend
        try:
            for archive, position in staged:
                archive.stage(position)
            if wait:
                backend.commit()
            else:
                backend.commit_behind()
        except backend.errors as exc:
            error = self._failed(exc)
            for archive in sharing:
                archive.abandon()
            raise error from exc
        except BaseException:
            self.rollback()
            for archive in sharing:
                archive.abandon()
            raise
        for archive, position in staged:
            archive.committed_as(position)
        self._tx.ended()

    def stage(self, position):
        """Within the open transaction: write the job rows changed and
        *position*, what :meth:`commit` commits (raises the backend's
        errors as they come, or ArchiveError when another process moved
        the position)."""
        self._begin()
        backend = self.backend
        if self._load_position() != self._saved:
            raise self._another_process()
        if self._dirty:
            self._write_rows(self._dirty.values())
        if self._gone:
            backend.delete_jobs(self.instance, self._gone)
        if self._deferred and self._history_in:
            backend.build_indexes()
            self._deferred = False
        state = position.to_dict()
        backend.save_position((self.instance, self.journal, state["cursor"],
                               state["timestamp"], state["events"], time.time()))

    def committed_as(self, position):
        """The transaction holding what :meth:`stage` wrote with
        *position* was committed (or sent to be: see :meth:`commit`)."""
        self._before_commit = self._saved
        self._saved = position.copy()
        self.position = position.copy()
        self._deferred_committed = self._deferred
        self.committed += self.pending
        self.pending = 0
        self.commits += 1
        # Inactive jobs get no more events that change their row but late
        # annotations: forget them so memory stays bounded by the number
        # of active jobs (a late event rebuilds the record).
        ended = [jobid for jobid, record in self._dirty.items() if record.state == INACTIVE]
        for jobid in [*self._ended, *ended]:
            self._model.forget(jobid)
            self._rows.forget(jobid)
        for jobid in self._gone:
            self._rows.forget(jobid)
        self._dirty = {}
        self._ended = set()
        self._gone = set()
        self._new = set()
        self._orphans = {}

    def rollback(self):
        """Abandon the open transaction (its events are not archived;
        with a shared connection, call :meth:`abandon` on the others)."""
        try:
            if self._tx.open:
                self._tx.open = False
                try:
                    self.backend.rollback()
                except self.backend.errors:
                    pass  # the connection is gone: so is the transaction
            self.abandon()
        finally:
            self._tx.ended()

    def abandon(self):
        """Forget what was added since the last commit (its transaction
        was rolled back)."""
        # Records changed in the abandoned transaction must be rebuilt.
        for jobid in set(self._dirty) | self._ended | self._gone:
            self._model.forget(jobid)
            self._rows.forget(jobid)
        self._dirty = {}
        self._ended = set()
        self._gone = set()
        self._new = set()
        self._orphans = {}
        self._reading = None
        self._deferred = self._deferred_committed
        self.added -= self.pending
        self.pending = 0

    def counts(self):
        """Row counts of the whole archive (all instances):
        {"events": n, "jobs": n, "resource_events": n}."""
        return self.backend.counts()

    def close(self):
        """Roll back anything uncommitted and close the database (unless
        the connection is shared from another archive)."""
        if not self._owner:
            return
        self.rollback()
        try:
            self.backend.close()
        except self.backend.errors:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ArchiveGroup:
    """Archives of several instances on one connection, committed in one
    transaction (``archive --recursive``): the root *archive* (which
    owns the connection) and one per child instance, made on first use.

    *name(path)* is the instance name of the instance at tree path
    *path*.  Every archive's rows and resume position go in the same
    transaction, so a kill at any instant leaves each instance at the
    end of the last commit, as with one archive.
    """

    def __init__(self, root, name):
        self.root = root
        self._name = name
        self._children = {}  # path -> Archive

    def archive(self, path):
        """The archive of the instance at tree *path* ("/": the root)."""
        if path == "/":
            return self.root
        archive = self._children.get(path)
        if archive is None:
            archive = Archive(self.root.path, self.root.journal, self._name(path),
                              share=self.root)
            self._children[path] = archive
        return archive

    def archives(self):
        """Every archive (the root first)."""
        return [self.root, *self._children.values()]

    @property
    def pending(self):
        """Events added since the last commit, over every archive."""
        return sum(archive.pending for archive in self.archives())

    def commit(self, positions):
        """Commit every archive's events with its position
        (*positions*: {archive: Position}; an archive not named keeps
        its own :attr:`Archive.position`) in one transaction."""
        staged = []
        for archive in self.archives():
            position = positions.get(archive, archive.position)
            if archive.pending or position != archive._saved:
                staged.append((archive, position))
        if staged:
            self.root.commit_staged(staged, self._children.values())

    def rollback(self):
        """Abandon the transaction of every archive."""
        self.root.rollback()
        self._abandon()

    def _abandon(self):
        for archive in self._children.values():
            archive.abandon()

    def keep_only(self, paths):
        """Drop the archives of the children not at one of *paths* (they
        ended) that have nothing pending (their rows and positions are
        committed)."""
        for path, archive in list(self._children.items()):
            if path not in paths and not archive.pending:
                del self._children[path]

    def close(self):
        """Roll back anything uncommitted and close the connection."""
        self._abandon()
        self.root.close()
