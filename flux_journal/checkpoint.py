"""Resume positions and the ``--checkpoint`` file of ``flux-journal``.

A :class:`Position` follows a reader through a journal: after every
event it consumes, it knows what to pass as ``since=`` so that a new
consumer delivers exactly the events after that one.  That is the
event's ``cursor`` (see :mod:`flux_journal.cursor`), which is exact even
among events with equal timestamps, which real streams have.

A :class:`Checkpoint` stores a position in a small JSON file, replaced
atomically (temporary file, fsync, rename, fsync of the directory), so
that the file always holds either the previous or the new position,
whatever instant the process is killed at.
"""

import errno
import json
import os
import time

from flux_journal import cursor as cursors

__all__ = ["Checkpoint", "CheckpointError", "Position", "atomic_write"]

# Identifies the file's purpose, so that pointing --checkpoint at some
# other JSON file fails clearly instead of being overwritten.
_MAGIC = "flux-journal checkpoint"
_VERSION = 1


class CheckpointError(Exception):
    """A checkpoint file exists but cannot be used (the message says why)."""


class Position:
    """A place in a journal stream: resume after it with :meth:`since`.

    Attributes:
        cursor (str or None): cursor of the newest event consumed (None
            at the start of the stream)
        timestamp (float or None): timestamp of the newest event consumed
            (informative: the cursor is what resumes)
        events (int): events consumed since the position was first
            created, over all runs (informative)
    """

    __slots__ = ("_cursor", "_last", "timestamp", "events")

    def __init__(self, cursor=None, timestamp=None, events=0):
        self._cursor = cursor
        # The last event consumed: its cursor is computed only when
        # needed (a save), not for every event.
        self._last = None
        self.timestamp = timestamp
        self.events = events

    @property
    def cursor(self):
        """The cursor of the last event consumed, or None at the start."""
        if self._last is not None:
            self._cursor = self._last.cursor
            self._last = None
        return self._cursor

    @property
    def is_start(self):
        """True if nothing has been consumed yet."""
        return self.cursor is None

    def since(self):
        """The consumer ``since`` argument resuming after this position,
        or None at the start."""
        return self.cursor

    def consume(self, event):
        """Move past *event*.  Must see every event the consumer delivers
        (except the sentinel), in delivery order, including those the
        caller filters out.

        The position follows the newest event (highest timestamp; the
        later one among equals), not merely the last: live events can
        arrive slightly out of time order (a real capture has events
        posted 10 ms "in the past"), and the cursor of an older event
        would, on resume, bring back the newer ones already consumed.
        """
        ts = event.timestamp
        if self.timestamp is None or ts >= self.timestamp:
            self._last = event
            self.timestamp = ts
        self.events += 1

    def copy(self):
        """Return an independent copy."""
        return Position(self.cursor, self.timestamp, self.events)

    def to_dict(self):
        """The position as a JSON-able dict."""
        return {"cursor": self.cursor, "timestamp": self.timestamp, "events": self.events}

    @classmethod
    def from_dict(cls, data):
        """Rebuild a position from :meth:`to_dict` output.

        Raises ValueError if a field is not what it should be.
        """
        cursor = data.get("cursor")
        timestamp = data.get("timestamp")
        events = data.get("events", 0)
        if cursor is not None:
            if not isinstance(cursor, str):
                raise ValueError("cursor is not a string")
            cursors.parse(cursor)  # raises ValueError
        if timestamp is not None and (
            isinstance(timestamp, bool) or not isinstance(timestamp, (int, float))
        ):
            raise ValueError("timestamp is not a number")
        if isinstance(events, bool) or not isinstance(events, int) or events < 0:
            raise ValueError("events is not a non-negative integer")
        return cls(cursor, None if timestamp is None else float(timestamp), events)

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
    leftover from a killed run is simply overwritten next time.
    """
    path = os.fspath(path)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
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

        Raises:
            CheckpointError: the file is unreadable, not a checkpoint, or
                belongs to the other journal
        """
        try:
            with open(self.path, "rb") as stream:
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
        return position

    def save(self, position):
        """Atomically store *position* (see :func:`atomic_write`)."""
        data = {"format": _MAGIC, "version": _VERSION, "journal": self.journal}
        data.update(position.to_dict())
        data["saved"] = time.time()
        atomic_write(self.path, (json.dumps(data) + "\n").encode())
