"""The archive's database, written by a process of its own.

An archive's time goes half to reading and modelling events (Python)
and half to the database's writes.  A thread cannot run them side by
side: the driver gives the GIL back at every row or socket wait and gets
it only every switch interval (5 ms) while Python runs in the other
thread.  So :func:`open_writer` starts a child process that opens the
database and runs every call of the archive's
:class:`~flux_journal.store.backend.Backend` on it, in order, while the
archive goes on with the next events.

Protocol (pickled messages over two pipes): the parent sends (method,
args, reply?); the bulk writes and ``begin`` (:data:`BEHIND`), and a
commit sent by :meth:`WriterBackend.commit_behind`, want no reply; every
other call waits for its result, and so for every write before it.  A
write that fails makes the calls after it do nothing (they belong to the
transaction it aborted) and the next call that waits fail with its
error, which the archive handles as if the write had failed when called
(it rolls back).  Errors cross as (module, class, message) and are raised
again as the driver's class.

The child lives as long as its parent's end of the pipe: it ignores
SIGINT and SIGTERM (the parent decides when to stop, and must be able to
commit or roll back its last batch first), and when the pipe closes
(the parent closed the backend, or died), it rolls back what was not
committed and exits.  A parent killed at any instant therefore commits
nothing more than it had: what the archive promises holds.
"""

import fcntl
import importlib
import os
import pickle
import signal
import site
import subprocess
import sys

from flux_journal.store.backend import Backend
from flux_journal.store.errors import ArchiveError

__all__ = ["open_writer", "WriterBackend", "BEHIND"]

#: The calls that run behind: no reply is awaited (their rows are large
#: and many; a failure is reported at the next call that waits).
BEHIND = frozenset(("begin", "insert_events", "insert_resource_events", "upsert_jobs",
                    "insert_jobs", "delete_jobs"))

# What the parent learns of the backend when it opens.
_ATTRIBUTES = ("paramstyle", "kind", "label", "batch_size", "defers_indexes")

_PROTOCOL = pickle.HIGHEST_PROTOCOL
# Bytes the parent buffers before a write reaches the pipe.
_BUFFER = 1 << 16
# Linux's fcntl to size a pipe (fcntl.F_SETPIPE_SZ from Python 3.10).
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)

# The child's program: argv[1] is a folder to import flux_journal from
# first (empty: the interpreter's site folders hold it), argv[2:] the
# pipes; the current directory, first on a -c program's path, is not
# searched.
_CHILD = ("import sys; sys.path[0:1] = sys.argv[1:2] if sys.argv[1] else []; "
          "from flux_journal.store.writer import main; main(sys.argv[2:])")


def _package_root():
    """The folder this flux_journal is imported from, unless it is one
    of the interpreter's site folders, which the child searches anyway
    after the standard library ('' then)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sites = [*getattr(site, "getsitepackages", list)(), site.getusersitepackages()]
    return "" if root in map(os.path.abspath, sites) else root


def _widen(pipe):
    """Let *pipe* hold as much as the system allows an unprivileged
    process: the more it holds, the less one side waits for the other
    (a commit's job rows come all at once)."""
    try:
        with open("/proc/sys/fs/pipe-max-size", encoding="ascii") as limit:
            size = int(limit.read())
        fcntl.fcntl(pipe, _F_SETPIPE_SZ, size)
    except (OSError, ValueError):
        pass  # not Linux, or not allowed: the default size works, slower


def _error_message(exc):
    """(module, class name, message) of *exc*, to raise again elsewhere."""
    cls = type(exc)
    return (cls.__module__, cls.__qualname__, str(exc))


def _raise_again(module, name, message, base):
    """Raise the exception described by (*module*, *name*, *message*)
    as its own class if it can be made again, else as *base*."""
    if (module, name) == (ArchiveError.__module__, ArchiveError.__qualname__):
        raise ArchiveError(message)
    try:
        exc = getattr(importlib.import_module(module), name)(message)
    except Exception:  # pylint: disable=broad-except
        exc = None
    if not isinstance(exc, base):
        exc = base(f"{name}: {message}")
    raise exc


def _how(status):
    """How a process ended, from its Popen returncode *status*."""
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


class WriterBackend:
    """The parent's side: stands for the backend the writer process
    opened, with its attributes (``paramstyle``, ``kind``, ``label``,
    ``batch_size``, ``defers_indexes``, ``errors``), its ``pid``, and the
    methods of
    :class:`~flux_journal.store.backend.Backend`, which run there."""

    def __init__(self, url, synchronous):
        self.label = str(url)  # until the backend says (no password)
        read_end, to_child = os.pipe()
        _widen(to_child)
        from_child, write_end = os.pipe()
        try:
            self._process = subprocess.Popen(  # pylint: disable=consider-using-with
                [sys.executable, "-c", _CHILD, _package_root(), str(read_end), str(write_end)],
                pass_fds=(read_end, write_end), stdin=subprocess.DEVNULL)
        except OSError as exc:
            for fd in (to_child, from_child):
                os.close(fd)
            raise ArchiveError(f"cannot start the archive's writer process: {exc}") from exc
        finally:
            os.close(read_end)
            os.close(write_end)
        #: the writer process's id
        self.pid = self._process.pid
        self._out = os.fdopen(to_child, "wb", buffering=_BUFFER)
        self._in = os.fdopen(from_child, "rb")
        self.errors = Exception  # until the backend says
        self._closed = False
        #: A commit was sent by :meth:`commit_behind` and no call has
        #: waited since (its outcome is not known yet).
        self.pending_commit = False
        ok, value = self._call("open", (str(url), synchronous))
        if not ok:
            self.close()
            _raise_again(*value, ArchiveError)
        attributes, errors = value
        for name in _ATTRIBUTES:
            setattr(self, name, attributes[name])
        self.errors = getattr(importlib.import_module(errors[0]), errors[1])

    def _send(self, message):
        try:
            pickle.dump(message, self._out, _PROTOCOL)
        except BrokenPipeError:
            self._lost()

    def _call(self, method, args):
        self._send((method, args, True))
        try:
            self._out.flush()
            ok, value = pickle.load(self._in)
        except (BrokenPipeError, EOFError, pickle.UnpicklingError):
            return self._lost()
        if ok:  # so was everything sent before, a commit behind too
            self.pending_commit = False
        return ok, value

    def commit_behind(self):
        """Commit the transaction without waiting for it: should it fail,
        the next call that waits raises its error (until then
        :attr:`pending_commit` is true)."""
        self._send(("commit", (), False))
        try:
            self._out.flush()  # not left in the buffer: no call may follow for long
        except BrokenPipeError:
            self._lost()
        self.pending_commit = True

    def _lost(self):
        status = self._end()
        raise ArchiveError(f"{self.label}: the archive's writer process ended ({_how(status)})")

    def error(self, message):
        """An ArchiveError naming the archive."""
        return ArchiveError(f"{self.label}: {message}")

    def __getattr__(self, method):
        # Backend's methods (but those defined here).
        if method.startswith("_") or not callable(getattr(Backend, method, None)):
            raise AttributeError(method)
        if method in BEHIND:
            def behind(*args):
                self._send((method, args, False))
            return behind

        def call(*args):
            ok, value = self._call(method, args)
            if not ok:
                _raise_again(*value, self.errors)
            return value
        return call

    def ensure_alive(self):
        """Raise ArchiveError, as the next write would, if the writer
        process has ended (one system call)."""
        if not self._closed and self._process.poll() is not None:
            self._lost()

    def rollback(self):
        """Roll back the open transaction, in the writer process; nothing
        to do once it is gone: its connection, and so the transaction,
        went with it (an archive closing after losing its writer must
        not fail again on that)."""
        if not self._closed:
            self.__getattr__("rollback")()

    def close(self):
        """Roll back what is not committed and end the writer process."""
        if not self._closed:
            self._end()

    def _end(self):
        """Close the pipes and wait for the writer process; its status."""
        self._closed = True
        for stream in (self._out, self._in):
            try:
                stream.close()
            except BrokenPipeError:
                # The writer is gone: what it did not read goes, and the
                # stream is closed all the same (not flushed again, and
                # failing, when the archive is freed).
                pass
        return self._process.wait()


def open_writer(url, synchronous="NORMAL"):
    """Open the archive database of *url* for writing (see
    :func:`~flux_journal.store.open_backend`) in a writer process of its
    own; returns its :class:`WriterBackend`.

    Raises:
        ArchiveError: as open_backend does, or the process cannot start
    """
    if not sys.executable:  # an embedded interpreter: no program to start
        raise ArchiveError("no Python program to start the archive's writer process with")
    return WriterBackend(url, synchronous)


def _serve(requests, replies):
    """The child's loop: run each request on the backend opened by the
    first, until the parent's pipe closes."""
    # pylint: disable=import-outside-toplevel
    from flux_journal.store import open_backend

    backend = None
    failed = None  # the error of a write behind, until a call reports it
    while True:
        try:
            method, args, reply = pickle.load(requests)
        except Exception:  # pylint: disable=broad-except
            break  # the parent is gone (EOF, or a message it died writing)
        ok, result = True, None
        try:
            if method == "open":
                backend = open_backend(args[0], synchronous=args[1])
                errors = backend.errors
                result = ({name: getattr(backend, name) for name in _ATTRIBUTES},
                          (errors.__module__, errors.__qualname__))
            elif method == "rollback":
                failed = None  # the aborted transaction goes
                result = backend.rollback()
            elif failed is None:
                result = getattr(backend, method)(*args)
        except Exception as exc:  # pylint: disable=broad-except
            if reply:
                ok, result = False, _error_message(exc)
            else:
                failed = _error_message(exc)
        if reply:
            if failed is not None:  # a write behind failed: this call fails with it
                ok, result, failed = False, failed, None
            try:
                pickle.dump((ok, result), replies, _PROTOCOL)
                replies.flush()
            except BrokenPipeError:
                break  # the parent is gone
    if backend is not None:
        try:
            backend.rollback()  # what was not committed goes
            backend.close()
        except Exception:  # pylint: disable=broad-except
            pass  # the connection is gone: so is its transaction


def main(argv):
    """The writer process's program: *argv* holds the file descriptors of
    its two pipes (requests in, replies out)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    requests = os.fdopen(int(argv[0]), "rb")
    replies = os.fdopen(int(argv[1]), "wb")
    _serve(requests, replies)
    requests.close()
    try:
        replies.close()
    except BrokenPipeError:
        pass  # a reply the parent did not live to read
