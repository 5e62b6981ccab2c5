"""Where the events a command reads go: formatted to stdout (with an
optional checkpoint), or into an archive (SQLite or PostgreSQL).

A sink has ``records_position`` (whether the reader must track the
position for it), ``unordered_history`` (whether it reads full history
unordered), ``written`` (events written so far) and ``start(position)``,
``timeout()``, ``write(events)``, ``flushed(position)``, ``close(position)``;
one that reads history unordered also ``write(events, history=True)``
(which returns how many of them it had already), ``new_stream()`` and
``history_written()`` (that history is all written).
"""

import os
import select
import stat
import sys
import time

from flux_journal.cli.checkpoint import Position
from flux_journal.cli.errors import BrokenPipe, CliError

__all__ = ["OutputSink", "ArchiveSink", "TreeArchiveSink", "POLL_WAIT"]

#: Longest a poll blocks, so that Ctrl-C, progress and time-based commits
#: are handled promptly while waiting for events.
POLL_WAIT = 0.2


def _write_fd(fd, data):
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            # stdout inherited in non-blocking mode: wait until writable
            select.select([], [fd], [])
            continue
        view = view[written:]


class OutputSink:
    """Formatted events to stdout, with an optional checkpoint.

    Each batch goes out in one write, straight to the file descriptor
    (no buffering in between), before the checkpoint may move past it.
    """

    def __init__(self, formatter, checkpoint=None, interval=1.0, stream=None):
        self.formatter = formatter
        self.checkpoint = checkpoint
        #: Whether this sink stores positions (the reader tracks them only then).
        self.records_position = checkpoint is not None
        #: Output keeps flux-core's order: history sorted by time.
        self.unordered_history = False
        self.interval = interval
        self.written = 0
        self._stream = stream if stream is not None else sys.stdout
        self._fd = None
        self._regular = False
        try:
            self._stream.flush()
            self._fd = self._stream.fileno()
            self._regular = stat.S_ISREG(os.fstat(self._fd).st_mode)
        except (AttributeError, OSError, ValueError):
            self._fd = None  # a file-like object without a descriptor
        self._saved = None
        self._last_save = time.monotonic()
        self._unsynced = False

    def start(self, position):
        """Note the position the run starts from (already saved)."""
        self._saved = position.copy()

    def timeout(self):
        """How long the reader may block before calling :meth:`flushed`
        again."""
        return POLL_WAIT

    def write(self, events):
        """Write *events*; raise BrokenPipe if the reader went away."""
        data = self.formatter.format(events)
        try:
            if self._fd is not None:
                _write_fd(self._fd, data)
            else:
                self._stream.write(data.decode("utf-8", "replace"))
                self._stream.flush()
        except BrokenPipeError as exc:
            raise BrokenPipe() from exc
        except OSError as exc:
            raise CliError(f"cannot write the output: {exc.strerror or exc}") from exc
        self.written += len(events)
        self._unsynced = True

    def flushed(self, position):
        """Events up to *position* are written: checkpoint if it is time."""
        if self.checkpoint is None:
            return
        if time.monotonic() - self._last_save >= self.interval:
            self._save(position)

    def close(self, position):
        """The run ends normally or by signal: save the final position."""
        if self.checkpoint is not None:
            self._save(position)

    def _save(self, position):
        if position == self._saved:
            self._last_save = time.monotonic()
            return
        try:
            if self._regular and self._unsynced:
                # The checkpoint must never be more durable than the output
                # it vouches for; a pipe or terminal has nothing to sync.
                os.fsync(self._fd)
                self._unsynced = False
            self.checkpoint.save(position)
        except OSError as exc:
            raise CliError(
                f"cannot write checkpoint {self.checkpoint.path}: {exc.strerror or exc}"
            ) from exc
        self._saved = position.copy()
        self._last_save = time.monotonic()


class ArchiveSink:
    """Events into an :class:`~flux_journal.cli.archive.Archive`, committed
    with their resume position every *batch_size* events (None: the
    database's :attr:`~flux_journal.store.backend.Backend.batch_size`) or
    *batch_time* seconds."""

    #: An archive always stores its resume position.
    records_position = True

    def __init__(self, archive, batch_size, batch_time):
        self.archive = archive
        #: A job history is read as it comes, not gathered and sorted
        #: (memory stays flat in its size): the archive knows each job's
        #: archived events and skips them (:meth:`Archive.add`).
        self.unordered_history = archive.journal == "jobs"
        self.batch_size = batch_size if batch_size is not None else archive.backend.batch_size
        self.batch_time = batch_time
        self.written = 0
        self._first_pending = None

    def start(self, position):
        """Nothing to note: the archive knows its position."""
        del position

    def timeout(self):
        """Block no longer than the oldest pending event may wait.  Called
        before every wait: an archive whose writer process has ended
        stops here (ArchiveError), within a wait of its end."""
        self.archive.ensure_writer_alive()
        if self._first_pending is None:
            return POLL_WAIT
        left = self._first_pending + self.batch_time - time.monotonic()
        return max(0.0, min(POLL_WAIT, left))

    def write(self, events, history=False):
        """Add *events* to the open transaction (*history*: of a history
        read unordered, see :meth:`Archive.add`); return how many were
        archived before."""
        if self._first_pending is None:
            self._first_pending = time.monotonic()
        repeated = self.archive.add(events, history=history)
        self.written += len(events) - repeated
        return repeated

    def new_stream(self):
        """A new stream follows (a reconnection): its history may repeat
        what was archived."""
        self.archive.new_stream()

    def history_written(self):
        """The history read unordered is all written."""
        self.archive.history_written()

    @property
    def pending(self):
        """Events written and not yet committed."""
        return self.archive.pending

    def flushed(self, position):
        """Commit if the batch is full or old enough."""
        if self.pending >= self.batch_size or (
            self._first_pending is not None
            and time.monotonic() - self._first_pending >= self.batch_time
        ):
            # not awaited: the database commits while the next events are
            # read; a failure stops the run at the next call that waits
            self._commit(position, wait=False)

    def close(self, position):
        """Commit what is pending, and wait for every commit."""
        self._commit(position)

    def _commit(self, position, wait=True):
        self.archive.commit(position, wait=wait)
        self._first_pending = None


class TreeArchiveSink(ArchiveSink):
    """``archive --recursive``: (instance path, event) items, each
    instance's events into its own archive of an
    :class:`~flux_journal.cli.archive.ArchiveGroup`, all committed in
    one transaction with each instance's resume position: the root's as
    the reader keeps it, a child's its consumer's cursor once its events
    were written (from :attr:`tree`, the
    :class:`~flux_journal.tree.InstanceTree`, set before reading)."""

    def __init__(self, group, batch_size, batch_time):
        super().__init__(group.root, batch_size, batch_time)
        # A tree's streams keep their history in time order: a child's
        # resume point is its consumer's cursor.
        self.unordered_history = False
        # None is read unordered, then: indexes a plain archiver of the
        # root left out for its history (killed before it was in) are
        # made in the first commit.
        group.root.history_written()
        self.group = group
        #: The tree whose cursors say where each child stands.
        self.tree = None

    def resume(self, path):
        """Where the stream of the child at *path* starts: after what
        its archive holds."""
        cursor = self.group.archive(path).position.cursor
        return cursor if cursor is not None else 0.0

    def write(self, events):
        """Add each instance's events to its archive's transaction."""
        if self._first_pending is None:
            self._first_pending = time.monotonic()
        runs = {}
        for instance, event in events:
            runs.setdefault(instance, []).append(event)
        for instance, run in runs.items():
            self.group.archive(instance).add(run)
        for instance, cursor in self.tree.take_cursors().items():
            if instance != "/":
                archive = self.group.archive(instance)
                archive.position = Position(
                    cursor, archive.position.events + len(runs.get(instance, ())))
        self.written += len(events)

    @property
    def pending(self):
        """Events of every instance written and not yet committed."""
        return self.group.pending

    def _commit(self, position, wait=True):
        del wait  # a tree's commits wait: its children's archives come and go
        self.group.commit({self.group.root: position})
        self._first_pending = None
        self.group.keep_only(set(self.tree.instances) if self.tree is not None else ())
