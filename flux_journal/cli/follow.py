"""The reading layer every long-running command shares.

``jobs``, ``resource``, ``archive`` and ``metrics`` all read a journal
the same way, from here:

* :func:`open_consumer` chooses and starts the consumer of a journal;
* :class:`StopRequest` turns SIGINT/SIGTERM into a request to stop
  cleanly (a second Ctrl-C gives up at once);
* :meth:`Follower.drain` cancels a stream and reads it to its end
  (:func:`~flux_journal.consumer.iteration.stop_and_drain`);
* :class:`Follower` reads batches of events and tells a stream that ends
  because it was asked to (``stop()``, the end of a capture) from one
  that ends unasked: the instance shut down, the service went away or
  the connection was lost.  Unasked, it raises :class:`StreamLost`
  (exit status :data:`~flux_journal.cli.errors.EXIT_STREAM_LOST`), or
  with ``reconnect`` it opens a new connection with capped exponential
  backoff and resumes from the consumer's cursor: nothing lost, nothing
  twice.
"""

import errno
import signal
import threading
import time

from flux_journal.cli.errors import ServiceError, say
from flux_journal.consumer.iteration import stop_and_drain
from flux_journal.errors import PayloadError

__all__ = [
    "BATCH_EVENTS",
    "BACKOFF_FIRST",
    "BACKOFF_MAX",
    "DEFAULT_REORDER_WINDOW",
    "Follower",
    "StopRequest",
    "StreamLost",
    "loss_reason",
    "open_consumer",
]

#: Default of ``--reorder-window`` (and the window of the exporter's
#: resume cursor): how late (in event time) a live event may arrive and
#: still be resumed exactly.  Flux's job manager has been
#: seen posting ``validate`` events ~12 ms older than events already
#: sent; seconds leave a wide margin at a small cost in cursor size.
DEFAULT_REORDER_WINDOW = 5.0
#: Events asked of the consumer at a time: big enough that per-batch
#: costs (a write, perhaps a commit) vanish, small enough that output
#: starts promptly and a kill repeats little.
BATCH_EVENTS = 1000
#: First wait before reconnecting, in seconds; it doubles per failed
#: attempt up to :data:`BACKOFF_MAX`.
BACKOFF_FIRST = 1.0
#: Longest wait between two reconnection attempts, in seconds.
BACKOFF_MAX = 30.0
# How long to wait for the service to end the stream after stop().
_DRAIN_SECONDS = 2.0

# Errors by which a stream that was running ends unasked.  Observed on
# flux-core 0.88 (local connector): `flux shutdown` unloads the modules,
# whose streams end with ENODATA (handled apart: it is the normal end);
# a broker gone while a stream waits fails the wait with EPROTO (the
# connector read a truncated message) or ECONNRESET (libflux fails
# tracked RPCs so); a request on a handle whose broker is gone raises
# EPIPE; a service no longer there answers ENOSYS, a rank gone
# EHOSTUNREACH.
_LOST = {
    errno.ENOSYS: "the service is gone",
    errno.EHOSTUNREACH: "the broker is unreachable",
    errno.ECONNRESET: "the connection was lost",
    errno.ECONNABORTED: "the connection was lost",
    errno.ECONNREFUSED: "the connection was refused",
    errno.ENOTCONN: "the connection was lost",
    errno.EPIPE: "the connection was lost",
    errno.ESHUTDOWN: "the connection was lost",
    errno.EPROTO: "the connection was lost",
}
# A service rejects a request with EPROTO (or says it is absent with
# ENOSYS) in its first response: before the stream ran, these are
# errors of the request, reported as such (exit 1).
_LOST_ONLY_WHEN_RUNNING = frozenset((errno.EPROTO, errno.ENOSYS))


def _consumer_class(journal):
    # Imported on use: the command line's --help stays quick.
    # pylint: disable=import-outside-toplevel
    if journal == "jobs":
        from flux_journal.job import JournalConsumer

        return JournalConsumer
    from flux_journal.resource import ResourceJournalConsumer

    return ResourceJournalConsumer


def open_consumer(
    journal,
    handle,
    *,
    since=0.0,
    full=True,
    allow=None,
    deny=None,
    cursor_window=None,
    include_sentinel=False,
    ordered=True,
):
    """Create and start the consumer of *journal* (``"jobs"`` or
    ``"resource"``) on *handle*: from *since* (a timestamp or a cursor),
    with *full* history (job journal) sorted by time unless not *ordered*,
    name filters *allow*/*deny* (sets, sent to the job manager, applied in
    C for the resource journal) and *cursor_window* (None: no resume
    cursor is kept)."""
    kwargs = {"include_sentinel": include_sentinel}
    if journal == "jobs":
        kwargs["full"] = full
        kwargs["ordered"] = ordered
    return _consumer_class(journal)(
        handle,
        since=since,
        allow=sorted(allow) if allow else None,
        deny=sorted(deny) if deny else None,
        cursor_window=cursor_window,
        **kwargs,
    ).start()


def gathers_unordered(consumer):
    """Whether *consumer*'s full history comes unordered: no cursor of it
    is a resume point until all of it was delivered."""
    return consumer.full and not consumer.ordered


class StopRequest:
    """SIGINT and SIGTERM as a request to stop cleanly.

    The first signal sets :attr:`signum` and :attr:`event` (which
    reading threads and backoff waits watch); a second one raises
    KeyboardInterrupt in the main thread, to give up at once.
    """

    def __init__(self):
        #: The first signal received, or None.
        self.signum = None
        #: Set when a stop is requested.
        self.event = threading.Event()

    @property
    def requested(self):
        """Whether a stop has been requested."""
        return self.event.is_set()

    def _on_signal(self, signum, frame):
        del frame
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        self.event.set()

    def install(self):
        """Handle SIGINT/SIGTERM (from the main thread only); return a
        function restoring the previous handlers."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }

        def restore():
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore


def loss_reason(exc, running):
    """What an OSError raised by a stream (or by opening one) says about
    the instance, if it means the stream ended unasked; else None.
    *running*: the service had answered already."""
    code = getattr(exc, "errno", None)
    what = _LOST.get(code)
    if what is None or (code in _LOST_ONLY_WHEN_RUNNING and not running):
        return None
    detail = exc.strerror or str(exc)
    return f"{what} ({errno.errorcode.get(code, code)}: {detail})"


class StreamLost(Exception):
    """A stream ended without being asked to; the message is one line
    naming the instance and what happened."""


class Follower:
    """Reads a journal's events from *consumer* (started or not),
    telling asked ends from unasked ones, reconnecting if told to.

    Args:
        consumer: the first consumer
        label: the instance, as messages name it (URI or source label)
        service: the journal service, as messages name it
        reopen: ``reopen(cursor)`` opens a new connection and returns a
            started consumer resuming after *cursor* (None: from the
            start the first consumer had); None if the source cannot
            be reconnected to
        reconnect: on an unasked end, reconnect (with *reopen*) instead
            of raising :class:`StreamLost`
        ends: the source ends its stream by itself (a capture): that
            end is not unasked
        stop: a threading.Event that a requested stop sets (ends backoff
            waits)
        prog: the program name messages start with
        on_reconnect: called with the new consumer and the cursor it
            resumes after, once the new connection is open

    Attributes:
        consumer: the current consumer (None until a first connection)
        on_reconnect: the *on_reconnect* callable (may be set later)
    """

    def __init__(
        self,
        consumer,
        *,
        label,
        service,
        reopen=None,
        reconnect=False,
        ends=False,
        stop=None,
        prog=None,
        on_reconnect=None,
    ):
        self.consumer = consumer
        self.label = label
        self.service = service
        self._reopen = reopen
        self._reconnect = reconnect and reopen is not None
        self._ends = ends
        self._stop = stop if stop is not None else threading.Event()
        self._say = (lambda message: say(message, prog=prog)) if prog else say
        self.on_reconnect = on_reconnect
        self._asked = False
        self._answered = False  # the current stream delivered something
        self._lost = None  # why the stream ended unasked, once its events are out
        self._outage = None  # monotonic start of the current outage
        self._delay = BACKOFF_FIRST
        self._cursor = None  # where the lost stream stood

    @classmethod
    def connecting(cls, **kwargs):
        """A Follower whose first connection is yet to be made (it
        failed; *reconnect* and *reopen* are given): :meth:`poll`
        retries it."""
        follower = cls(None, **kwargs)
        follower._outage = time.monotonic()
        return follower

    def stop(self):
        """Ask the stream to end (it ends with None, not as lost)."""
        self._asked = True
        if self.consumer is not None:
            try:
                self.consumer.stop()
            except RuntimeError:
                pass

    def drain(self):
        """Ask the stream to end and read it to its end (briefly)."""
        self._asked = True
        if self.consumer is not None:
            stop_and_drain(self.consumer, _DRAIN_SECONDS)

    def poll(self, timeout):
        """The next batch of items: events, the sentinel if the consumer
        delivers it, and None at the end of an asked stream.  ``[]`` if
        nothing came within *timeout* seconds, or a reconnection is under
        way.

        Raises:
            StreamLost: the stream ended unasked (without *reconnect*);
                every event received before was returned first
            ServiceError: the service failed the stream otherwise
            PayloadError: a malformed response was skipped
        """
        if self._lost is not None or self.consumer is None:
            if not self._recover():
                return []
        consumer = self.consumer
        try:
            items = consumer.poll_batch(BATCH_EVENTS, timeout)
        except TimeoutError:
            return []
        except PayloadError:
            raise
        except OSError as exc:
            # Raised after every event received before it was delivered.
            reason = loss_reason(exc, self._answered or self._outage is not None)
            if reason is None:
                raise ServiceError(exc) from exc
            self._lose(reason)
            return []
        if not self._answered and (items or consumer.history_complete):
            # The service answers (an error response says nothing of the
            # kind: flux counts it as a response, so stats cannot tell).
            self._answered = True
            if self._outage is not None:
                self._back()
        if items and items[-1] is None and not self._asked and not self._ends:
            # Deliver what came before the end; the loss is handled on
            # the next call.
            items.pop()
            self._lose("the instance ended the stream (ENODATA: it shut down or "
                       "unloaded the service)")
        return items

    # -- losing and reconnecting ---------------------------------------------

    def _lose(self, reason):
        self._lost = reason
        consumer = self.consumer
        if consumer is None or consumer.cursor_window is None:
            return
        if gathers_unordered(consumer) and not consumer.history_complete:
            # Its history came unordered and not all of it: its cursor
            # would pass events never delivered.  The next stream starts
            # where this one did (its reader skips what it has).
            return
        cursor = consumer.cursor
        if cursor is not None:
            self._cursor = cursor

    def _recover(self):
        """Handle a lost stream: raise StreamLost, or reconnect.  Returns
        whether a new consumer is ready to poll."""
        reason, self._lost = self._lost, None
        if not self._reconnect:
            raise StreamLost(f"lost the {self.service} of {self.label}: {reason}")
        if self._outage is None:
            self._outage = time.monotonic()
            self._delay = BACKOFF_FIRST
            self._say(f"lost the {self.service} of {self.label}: {reason}; reconnecting")
        # Every attempt waits first: the instance that just went away is
        # not back yet, and one that fails again waits twice as long.
        while not self._stop.wait(self._delay):
            self._delay = min(self._delay * 2, BACKOFF_MAX)
            try:
                consumer = self._reopen(self._cursor)
            except OSError:
                continue  # the outage was reported once; attempts are not
            self.consumer = consumer
            self._answered = False
            if self.on_reconnect is not None:
                self.on_reconnect(consumer, self._cursor)
            self._asked = False
            return True
        return False

    def _back(self):
        seconds = time.monotonic() - self._outage
        self._outage = None
        self._delay = BACKOFF_FIRST
        self._say(f"reconnected to the {self.service} of {self.label} after {seconds:.1f} s")
