"""Journal consumer base classes, interface-compatible with ``flux.abc``.

Where a response enters, and where an event leaves:

  ``poll()`` / the then-callback ``_on_response()``
      -> ``_take_response()``: read the payload off the future
      -> fast path: ``CoreStream.feed()`` (C parses, filters by ``since``,
         queues history in its heap or live events in arrival order)
         generic path (a subclass overrides a hook): json, then the hooks
      -> ``_fill()``: pop a batch from C, build event objects
         (``_events_from_batch()`` of the job / resource consumer)
      -> ``self._ready`` -> returned by ``poll()`` or passed to the callback.

Behaviour follows flux-core's documentation of ``flux.abc``; where flux-core
0.88's code differs from its docs, the docs win:

* The callback is called with None when the stream ends, exactly once,
  whether the service ended it (ENODATA after ``stop()``) or otherwise.
* ``stop()`` before ``start()`` raises RuntimeError.
* If the stream ends during history (ENODATA, or an error such as the
  service being unloaded), the history gathered so far is delivered in
  time order, then the stream ends (None).
* ``poll(timeout)`` bounds the whole call, not each wait for a response.
* A callback that raises propagates to the caller of ``reactor_run()`` and
  leaves the consumer usable: running the reactor again resumes with the
  next event; nothing is lost or delivered twice.

Errors are delivered in stream order: events received before a failing
response come first.  A service error (any errno but ENODATA) is raised
once as the OSError subclass for its errno, after every event received
before it, and then the stream ends (None).  A malformed response raises
:class:`~flux_journal.errors.PayloadError` at its place in the stream and is
dropped; the stream goes on.  During ordered history, an error's place is
after the history.
"""

import errno
import json
import time
from abc import ABC, abstractmethod
from collections import deque

from flux_journal import core
from flux_journal._flux import FLUX_RPC_NORESPONSE, FLUX_RPC_STREAMING
from flux_journal.errors import PayloadError
from flux_journal.eventlog import EventLogEvent


class JournalEventBase(EventLogEvent):
    """A container for an event from a journal RPC interface

    A dict holding the eventlog entry (RFC 18), with attributes:

    Attributes:
        name (str): event name (the journal service defines the names)
        timestamp (float): event time in seconds since the epoch
        context (dict): context dictionary ({} if the entry had none)
        context_string (str): the context as compact key=value JSON text
    """

    def __init__(self, event):
        # An entry without a timestamp is stamped now, as flux-core does.
        if "timestamp" not in event:
            event["timestamp"] = time.time()
        super().__init__(event)

    def is_empty(self):
        """Return True if this event is an empty journal event"""
        return "name" not in self

    def __str__(self):
        if self.is_empty():
            return f"{self.timestamp:<0.5f} End of historical data stream"
        return " ".join([f"{self.timestamp:<0.5f}", self.name, self.context_string])


class _Raise:
    """An exception waiting in the delivery queue at its place in the
    stream."""

    __slots__ = ("exc",)

    def __init__(self, exc):
        self.exc = exc


def _event_timestamp(event):
    return event.timestamp


class JournalConsumerBase(ABC):
    """Base class for consuming events from a journal-style RPC

    Create it with an open Flux handle (or anything offering the same
    ``rpc()`` / future / reactor interface, such as
    :class:`flux_journal.sim.SimFlux`) and the journal's topic, call
    :meth:`start`, then take events with :meth:`poll` or a callback
    registered with :meth:`set_callback`.  :meth:`stop` cancels the stream;
    after the last event, ``poll()`` returns None and the callback is called
    with None.

    History (unless *full* is False) is gathered until the service's
    sentinel and delivered in time order; events with equal timestamps keep
    their arrival order.  Events with a timestamp not greater than *since*
    are dropped.  With *include_sentinel*, :data:`SENTINEL_EVENT` is
    delivered between history and live events.

    Subclasses implement :meth:`process_response` and :meth:`create_event`,
    and may override :meth:`is_empty_response` and :attr:`request_payload`.
    flux-journal's own job and resource consumers decode responses in C;
    a subclass that overrides one of these hooks gets them called exactly
    as documented (a slower, pure-Python path).

    Args:
        flux_handle: a Flux handle
        topic (str): the journal RPC topic
        cancel_topic (str, optional): the topic that cancels the journal
            request; defaults to topic + "-cancel"
        full (bool): request full history, if the service supports it
        since (float): deliver only events with timestamp > since
        include_sentinel (bool): deliver an empty event at the sentinel
    """

    SENTINEL_EVENT = JournalEventBase({})

    # Subclasses whose events the C core can build set these (see job.py).
    _CORE_KIND = 0

    def __init__(
        self,
        flux_handle,
        topic,
        cancel_topic=None,
        full=True,
        since=0.0,
        include_sentinel=False,
    ):
        self.handle = flux_handle
        self.topic = topic
        self.cancel_topic = cancel_topic
        if self.cancel_topic is None:
            self.cancel_topic = f"{self.topic}-cancel"
        self.full = full
        self.since = since
        self.include_sentinel = include_sentinel
        self.rpc = None
        self.cb = None
        self.cb_args = []
        self.cb_kwargs = {}

        self._ready = deque()  # events, None, _Raise: in delivery order
        self._core = None  # CoreStream on the fast path
        self._over = False  # no more responses will come
        self._cancelled = False
        self._then_set = False
        self._resume = None  # timer watcher re-entering delivery
        self._errors = {}  # marker tag -> exception, fast path
        self._next_tag = core.FIRST_USER_MARK
        # generic path: history gathered until the sentinel
        self._in_history = False
        self._history = []
        self._deferred = []

    # ------------------------------------------------------------------
    # Hooks (flux.abc interface)

    @abstractmethod
    def process_response(self, resp):
        """Process a journal response.

        Args:
            resp (dict): the payload of one journal response
        Returns:
            dict: keyword arguments passed to :meth:`create_event` for each
            event of this response
        """
        return {}

    @abstractmethod
    def create_event(self, entry, **kwargs):
        """Return a journal event object from a response entry

        Args:
            entry (dict): one element of the response's ``events`` array
            **kwargs: what :meth:`process_response` returned
        Returns:
            :obj:`JournalEventBase` or a subclass
        """
        return JournalEventBase(entry)

    def is_empty_response(self, resp):
        """Return True if resp is "empty" (the sentinel response)"""
        return len(resp["events"]) == 0

    @property
    def request_payload(self):
        """Appropriate request payload for this journal RPC"""
        return {}

    # ------------------------------------------------------------------
    # Control

    def start(self):
        """Start the stream of events by sending a request

        Calling start() again restarts the stream with the original
        options: the old request is cancelled, events already received from
        it are still delivered, and the new request's history follows (so
        events may repeat).

        Returns:
            self
        """
        if self.rpc is not None:
            self._retire_stream()
        self._reset_stream_state()
        self.rpc = self.handle.rpc(
            self.topic, self.request_payload, 0, FLUX_RPC_STREAMING
        )
        self._set_then_cb()
        return self

    def stop(self):
        """Cancel the journal RPC

        Events already received are still delivered; then :meth:`poll`
        returns None and the callback is called with None.

        Raises:
            RuntimeError: stop() was called before start()
        """
        if self.rpc is None:
            raise RuntimeError("stop() called before start()")
        if self._over or self._cancelled:
            return
        self._cancelled = True
        self.handle.rpc(
            self.cancel_topic,
            {"matchtag": self.rpc.pimpl.get_matchtag()},
            0,
            FLUX_RPC_NORESPONSE,
        )

    def poll(self, timeout=-1.0):
        """Synchronously get the next journal event

        With *full* history, the first call returns only once all history
        has arrived; history is then returned one event per call, in time
        order.  After the stream ends, returns None.

        Args:
            timeout (float): give up after *timeout* seconds for the whole
                call, raising TimeoutError; -1.0 waits indefinitely.
        Raises:
            RuntimeError: poll() was called before start()
            TimeoutError: no event within *timeout*
            OSError: the service failed the stream (e.g. PermissionError)
            PayloadError: a response could not be decoded
        """
        ready = self._ready
        if ready:
            item = ready.popleft()
            if item.__class__ is _Raise:
                raise item.exc
            return item
        return self._poll_wait(timeout)

    def set_callback(self, event_cb, *args, **kwargs):
        """Register callback *event_cb* to be called for each journal event

        *event_cb(event, \\*args, \\*\\*kwargs)* is called from the Flux
        reactor (``handle.reactor_run()``) for every event, and once with
        None when the stream has ended.  May be called before or after
        :meth:`start`, and again to replace the callback.

        Returns:
            self
        """
        self.cb = event_cb
        self.cb_args = args
        self.cb_kwargs = kwargs
        self._set_then_cb()
        if self._ready and self.rpc is not None:
            # events taken by poll() earlier wait for delivery
            self._arm_resume()
        return self

    # ------------------------------------------------------------------
    # Stream state

    def _fast_kind(self):
        """The C stream kind if this class's hooks are the built-in ones
        of a consumer the C core understands, else 0 (generic path)."""
        cls = type(self)
        for owner in cls.__mro__:
            if "_CORE_KIND" in owner.__dict__:
                break
        if not owner._CORE_KIND:
            return 0
        for hook in ("process_response", "create_event", "is_empty_response"):
            if getattr(cls, hook) is not getattr(owner, hook):
                return 0
        return owner._CORE_KIND

    def _reset_stream_state(self):
        kind = self._fast_kind()
        self._core = None
        if kind:
            if self.full:
                kind |= core.HISTORY | core.ORDERED
            self._core = core.CoreStream(kind, self.since)
        self._in_history = bool(self.full)
        self._history = []
        self._deferred = []
        self._over = False
        self._cancelled = False
        self._then_set = False

    def _retire_stream(self):
        """Before a restart: cancel the old request and queue what it
        delivered, without its end-of-stream None."""
        if not self._over:
            self.stop()
        self._over = True
        if self._core is not None:
            self._core.end()
            while self._fill(keep_end=False):
                pass
        else:
            self._close_history()

    def _new_error_tag(self, exc):
        tag = self._next_tag
        self._next_tag += 1
        self._errors[tag] = exc
        return tag

    def _fail_response(self, exc):
        """A response could not be used: raise exc at its place."""
        if self._core is not None:
            self._core.mark(self._new_error_tag(exc))
        elif self._in_history:
            self._deferred.append(_Raise(exc))
        else:
            self._ready.append(_Raise(exc))

    def _finish(self, exc):
        """The service ended the stream (exc None for ENODATA)."""
        self._over = True
        if self._core is not None:
            if exc is not None:
                self._core.mark(self._new_error_tag(exc))
            self._core.end()
            return
        self._close_history()
        if exc is not None:
            self._ready.append(_Raise(exc))
        self._ready.append(None)

    def _close_history(self):
        """Generic path: release gathered history in time order (a stable
        sort keeps arrival order for equal timestamps)."""
        if not self._in_history:
            return
        self._in_history = False
        self._history.sort(key=_event_timestamp)
        self._ready.extend(self._history)
        self._ready.extend(self._deferred)
        self._history = []
        self._deferred = []

    # ------------------------------------------------------------------
    # Responses in

    def _payload(self, future):
        """The response payload as bytes (generic path), or raise the
        response's OSError."""
        text = future.get_str() if hasattr(future, "get_str") else None
        if text is None:
            resp = future.get()
            if resp is None:
                raise PayloadError("response has no payload", 0, shape=True)
            return json.dumps(resp).encode()
        return text.encode("utf-8", "surrogatepass")

    def _feed_core(self, future):
        """Fast path: hand the payload to C with as few copies as the
        future allows."""
        pimpl = getattr(future, "pimpl", None)
        rpc_get = getattr(pimpl, "flux_rpc_get", None) if hasattr(pimpl, "ffi") else None
        if rpc_get is None:
            self._core.feed(self._payload(future))
            return
        # A flux-core RPC: read the broker's NUL-terminated payload in
        # place, valid until reset().
        holder = pimpl.ffi.new("char *[1]")
        try:
            rpc_get(holder)
        except OSError:
            if hasattr(future, "raise_if_handle_exception"):
                future.raise_if_handle_exception()
            raise
        if holder[0] == pimpl.ffi.NULL:
            raise PayloadError("response has no payload", 0, shape=True)
        self._core.feed_address(int(pimpl.ffi.cast("uintptr_t", holder[0])))

    def _feed_generic(self, future):
        payload = self._payload(future)
        core.validate(payload)
        resp = json.loads(payload)
        if self._in_history and self.is_empty_response(resp):
            self._close_history()
            if self.include_sentinel:
                self._ready.append(self.SENTINEL_EVENT)
            return
        kwargs = self.process_response(resp)
        since = self.since
        target = self._history if self._in_history else self._ready
        for entry in resp["events"]:
            event = self.create_event(entry, **kwargs)
            if event.timestamp > since:
                target.append(event)

    def _take_response(self, future):
        """Consume the future's current response.  The future is reset
        whatever happens, as flux-core does: a response that made a hook
        raise is not read again."""
        try:
            if self._core is not None:
                self._feed_core(future)
            else:
                self._feed_generic(future)
        except OSError as exc:
            # The response itself is an error: the stream is over.
            self._finish(None if exc.errno == errno.ENODATA else exc)
        except PayloadError as exc:
            self._fail_response(exc)
        finally:
            future.reset()

    # ------------------------------------------------------------------
    # Events out

    def _fill(self, keep_end=True):
        """Move one batch (or marker) from C to the ready queue.  Returns
        False if C had nothing deliverable."""
        if self._core is None:
            return False
        batch = self._core.pop()
        if batch is None:
            return False
        marker = batch.marker
        if not marker:
            self._events_from_batch(batch, self._ready.append)
        elif marker == core.SENTINEL:
            if self.include_sentinel:
                self._ready.append(self.SENTINEL_EVENT)
        elif marker == core.END:
            if keep_end:
                self._ready.append(None)
            else:
                return False
        else:
            self._ready.append(_Raise(self._errors.pop(marker)))
        return True

    def _events_from_batch(self, batch, append):
        """Build event objects for a batch (consumers with a _CORE_KIND)."""
        raise NotImplementedError

    def _poll_wait(self, timeout):
        if self.rpc is None:
            raise RuntimeError("poll() called before start()")
        deadline = None if timeout < 0 else time.monotonic() + timeout
        ready = self._ready
        while True:
            if ready:
                item = ready.popleft()
                if item.__class__ is _Raise:
                    raise item.exc
                return item
            if self._fill():
                continue
            if self._over:
                return None
            wait = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
            self.rpc.wait_for(wait)
            self._take_response(self.rpc)

    # ------------------------------------------------------------------
    # Callback mode

    def _set_then_cb(self):
        if self.rpc is not None and self.cb is not None and not self._then_set:
            self.rpc.then(self._on_response)
            self._then_set = True

    def _on_response(self, future):
        if future is not self.rpc:
            # a response of a request replaced by start(): not ours now
            future.reset()
            return
        self._take_response(future)
        self._dispatch()

    def _dispatch(self):
        """Call the callback for everything deliverable.  If the callback
        (or a queued error) raises, arrange to resume when the reactor
        runs again, and let the exception reach reactor_run()'s caller."""
        ready = self._ready
        while True:
            while ready:
                item = ready.popleft()
                try:
                    if item.__class__ is _Raise:
                        raise item.exc
                    self.cb(item, *self.cb_args, **self.cb_kwargs)
                except BaseException:
                    self._arm_resume()
                    raise
            if not self._fill():
                return

    def _arm_resume(self):
        """Re-enter delivery from the reactor's next turn (a 0 s timer), so
        events queued behind a raised exception are not stranded waiting
        for another response."""
        create = getattr(self.handle, "timer_watcher_create", None)
        if create is None or self._resume is not None:
            return
        self._resume = create(0.0, self._resume_delivery)
        self._resume.start()

    def _resume_delivery(self, handle, watcher, revents, args):
        del handle, revents, args
        watcher.stop()
        self._resume = None
        if self.cb is not None:
            self._dispatch()
