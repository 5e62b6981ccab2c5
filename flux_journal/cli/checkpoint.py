"""Resume positions and the ``--checkpoint`` file of ``flux-journal``.

A :class:`Position` says where a reader stands in a journal: the
consumer's :attr:`~flux_journal.abc.JournalConsumerBase.cursor` taken
once every event it had delivered was written.  Passed back as
``since=``, it makes a new consumer deliver exactly the events not
delivered before: exact among equal timestamps, and for live events
that arrive out of time order by up to the consumer's ``cursor_window``
(see :mod:`flux_journal.cursor`).

A :class:`Checkpoint` stores a position in a small JSON file, replaced
atomically (temporary file, fsync, rename, fsync of the directory), so
that the file always holds either the previous or the new position,
whatever instant the process is killed at.  A new file is owner-only;
a replaced one keeps its permissions (see :mod:`flux_journal.cli.private`).
"""

import errno
import json
import os
import time

from flux_journal import cursor as cursors
from flux_journal.cli import private

__all__ = ["Checkpoint", "CheckpointError", "Position", "atomic_write"]

# Identifies the file's purpose, so that pointing --checkpoint at some
# other JSON file fails clearly instead of being overwritten.
_MAGIC = "flux-journal checkpoint"
_VERSION = 1


class CheckpointError(Exception):
    """A checkpoint file exists but cannot be used (the message says why)."""


class Position:
    """A place in a journal stream; resume after it with ``since=cursor``.

    Attributes:
        cursor (str or None): the consumer's cursor after the events
            consumed (None at the start of the stream)
        events (int): events consumed since the position was first
            created, over all runs (informative)
    """

    __slots__ = ("cursor", "events")

    def __init__(self, cursor=None, events=0):
        self.cursor = cursor
        self.events = events

    @property
    def is_start(self):
        """True if nothing has been consumed yet."""
        return self.cursor is None

    @property
    def timestamp(self):
        """Timestamp of the newest event consumed, or None at the start
        (informative: the cursor is what resumes)."""
        if self.cursor is None:
            return None
        return max(cursors.parse(self.cursor)[1])

    def advance(self, cursor, events):
        """Move past *events* more consumed events.  *cursor* is the
        consumer's cursor taken once they were all written (or
        deliberately left out): taken any later, it would also cover
        events delivered but never written."""
        self.cursor = cursor
        self.events += events

    def copy(self):
        """Return an independent copy."""
        return Position(self.cursor, self.events)

    def to_dict(self):
        """The position as a JSON-able dict (with the informative
        timestamp)."""
        return {"cursor": self.cursor, "timestamp": self.timestamp, "events": self.events}

    @classmethod
    def from_dict(cls, data):
        """Rebuild a position from :meth:`to_dict` output.

        Raises ValueError if a field is not what it should be.
        """
        cursor = data.get("cursor")
        events = data.get("events", 0)
        if cursor is not None:
            if not isinstance(cursor, str):
                raise ValueError("cursor is not a string")
            cursors.parse(cursor)  # raises ValueError
        if isinstance(events, bool) or not isinstance(events, int) or events < 0:
            raise ValueError("events is not a non-negative integer")
        return cls(cursor, events)

    def __eq__(self, other):
        if not isinstance(other, Position):
            return NotImplemented
        return self.cursor == other.cursor and self.events == other.events

    def __repr__(self):
        return f"Position(cursor={self.cursor!r}, events={self.events})"


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_directory(directory):
    """Make a rename in *directory* durable.  Some file systems refuse to
    open or fsync a directory; the rename is then as durable as they
    allow, which is all anyone can do there."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def atomic_write(path, data):
    """Replace the file at *path* with *data* (bytes) atomically.

    Writes ``<path>.tmp``, fsyncs it, renames it over *path* and fsyncs
    the directory: after a crash at any point the file holds the old or
    the new content, never a mix.  The temporary name is fixed, so a
    leftover from a killed run is simply replaced next time.  The new
    file is owner-only, or has the permissions of the file it replaces
    (see :func:`~flux_journal.cli.private.create_replacement`).
    """
    path = os.fspath(path)
    tmp = path + ".tmp"
    fd = private.create_replacement(tmp, path)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_directory(os.path.dirname(os.path.abspath(path)))


class Checkpoint:
    """The ``--checkpoint`` file: one :class:`Position` for one journal.

    Args:
        path: the file; it need not exist yet
        journal (str): ``jobs`` or ``resource``; a file written for the
            other journal is refused rather than misapplied
    """

    def __init__(self, path, journal):
        self.path = os.fspath(path)
        self.journal = journal

    def load(self):
        """Return the stored position, or a fresh one if there is no file.
        Warns on stderr if group or others can read a usable file.

        Raises:
            CheckpointError: the file is unreadable, not a checkpoint, or
                belongs to the other journal
        """
        try:
            with open(self.path, "rb") as stream:
                status = os.fstat(stream.fileno())
                raw = stream.read()
        except FileNotFoundError:
            return Position()
        except OSError as exc:
            raise CheckpointError(f"cannot read checkpoint {self.path}: {exc.strerror}") from exc
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("format") != _MAGIC:
                raise ValueError("not a flux-journal checkpoint file")
            if data.get("version") != _VERSION:
                raise ValueError(f"unsupported checkpoint version {data.get('version')!r}")
            position = Position.from_dict(data)
        except ValueError as exc:
            raise CheckpointError(
                f"checkpoint {self.path} is not usable ({exc}); remove it to start over"
            ) from exc
        if data.get("journal") != self.journal:
            raise CheckpointError(
                f"checkpoint {self.path} belongs to the {data.get('journal')} journal, "
                f"not the {self.journal} journal"
            )
        private.warn_if_shared(self.path, status)
        return position

    def save(self, position):
        """Atomically store *position* (see :func:`atomic_write`)."""
        data = {"format": _MAGIC, "version": _VERSION, "journal": self.journal}
        data.update(position.to_dict())
        data["saved"] = time.time()
        atomic_write(self.path, (json.dumps(data) + "\n").encode())
