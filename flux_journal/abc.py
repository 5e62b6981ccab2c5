"""Journal consumer base classes, interface-compatible with ``flux.abc``.

Where a response enters, and where an event leaves:

  ``poll()`` / the then-callback ``_on_response()``
      -> ``_take_response()``: read the payload off the future
      -> fast path: ``CoreStream.feed()`` (C parses, filters by ``since``,
         queues history in its heap or live events in arrival order)
         generic path (a subclass overrides a hook): json, then the hooks
      -> ``_fill()``: pop a batch from C; ``self._events`` becomes a
         generator building each event object only when it is taken
         (``_events_from_batch()`` of the job / resource consumer)
      -> returned by ``poll()`` or passed to the callback; what is not an
         event of a batch (the sentinel, None, an error to raise, events
         of the generic path) waits in ``self._ready`` behind it.

Behaviour follows flux-core's documentation of ``flux.abc``; where flux-core
0.88's code differs from its docs, the docs win:

* The callback is called with None when the stream ends, exactly once,
  whether the service ended it (ENODATA after ``stop()``) or otherwise
  (not by the classes ``install()`` puts in place: see
  :mod:`flux_journal.dropin`).
* ``stop()`` before ``start()`` raises RuntimeError.
* If the stream ends during history (ENODATA, or an error such as the
  service being unloaded), the history gathered so far is delivered in
  time order, then the stream ends (None).
* ``poll(timeout)`` bounds the whole call, not each wait for a response.
* A callback that raises ends the ``reactor_run()`` during which it
  happened with its exception, and leaves the consumer usable: running
  the reactor again resumes with the next event; nothing is lost or
  delivered twice.

Errors are delivered in stream order: events received before a failing
response come first.  A service error (any errno but ENODATA) is raised
once as the OSError subclass for its errno, after every event received
before it, and then the stream ends (None).  A malformed response raises
:class:`~flux_journal.errors.PayloadError` at its place in the stream and is
dropped; the stream goes on.  During ordered history, an error's place is
after the history.
"""

import errno
import gc
import json
import math
import time
from abc import ABC, abstractmethod
from collections import deque
from itertools import islice

from flux_journal import core, cursor
from flux_journal._flux import FLUX_RPC_NORESPONSE, FLUX_RPC_STREAMING
from flux_journal.errors import BacklogFullError, PayloadError
from flux_journal.events import JournalEventBase

# JournalEventBase lives in flux_journal.events; flux.abc offers it here.
__all__ = ["JournalConsumerBase", "JournalEventBase"]


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
        since (float or str): deliver only events with timestamp > since;
            or a cursor string (``event.cursor``): deliver exactly the
            events after that event
        include_sentinel (bool): deliver an empty event at the sentinel

    flux-journal extensions (keyword only; see README):

    Args:
        allow (iterable of str): deliver only events with these names
        deny (iterable of str): never deliver events with these names
        ordered (bool): False streams history as it arrives, unsorted and
            unbuffered
        max_backlog (int): most history events to buffer before giving up
            with :class:`~flux_journal.errors.BacklogFullError` (default
            unlimited)
        cursor_window (float): keep :attr:`cursor` exact for events that
            arrive up to this many seconds out of time order (live events
            can); None (default) keeps no record
    """

    SENTINEL_EVENT = JournalEventBase({})

    # Subclasses whose events the C core can build set these (see job.py):
    # the C stream kind and the class of their events.
    _CORE_KIND = 0
    _EVENT_CLASS = JournalEventBase

    # flux-core documents a call of the callback with None at the end of
    # the stream but never makes it; install()'s classes turn this off.
    _CALLBACK_SEES_END = True

    def __init__(
        self,
        flux_handle,
        topic,
        cancel_topic=None,
        full=True,
        since=0.0,
        include_sentinel=False,
        *,
        allow=None,
        deny=None,
        ordered=True,
        max_backlog=None,
        cursor_window=None,
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

        self.allow = frozenset(allow) if allow is not None else None
        self.deny = frozenset(deny) if deny is not None else None
        self.ordered = ordered
        self.max_backlog = max_backlog
        self.cursor_window = cursor_window

        # Delivery order: self._events (the current C batch) first, then
        # self._ready (events of the generic path, SENTINEL_EVENT, None,
        # _Raise).  Only _fill() adds to either while both are empty.
        self._events = iter(())
        self._ready = deque()
        self._core = None  # CoreStream on the fast path
        self._over = False  # no more responses will come
        self._cancelled = False
        self._then_set = False
        self._resume = None  # timer watcher re-entering delivery
        self._cb_sees_end = True  # the callback is called with None at the end
        self._errors = {}  # marker tag -> exception, fast path
        self._next_tag = core.FIRST_USER_MARK
        self._sentinel_reached = False
        self._last_event = None  # last delivered, for cursors of ties
        self._skip = None  # (timestamp, identities) already delivered
        self._skip_seen = {}  # (timestamp, identity) -> times seen
        self._window = None  # DeliveredWindow behind self.cursor
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
        for event in self._events:
            return event
        return self._poll_wait(timeout)

    def set_callback(self, event_cb, *args, **kwargs):
        """Register callback *event_cb* to be called for each journal event

        *event_cb(event, *args, **kwargs)* is called from the Flux
        reactor (``handle.reactor_run()``) for every event, and once with
        None when the stream has ended.  May be called before or after
        :meth:`start`, and again to replace the callback.

        Returns:
            self
        """
        self.cb = event_cb
        self.cb_args = args
        self.cb_kwargs = kwargs
        self._cb_sees_end = self._CALLBACK_SEES_END
        self._set_then_cb()
        if self.rpc is not None and (self._ready or self._core is not None):
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

    def _since_timestamp(self):
        """`since` as a number for filtering, and the resume state a cursor
        implies (the events it lists as delivered)."""
        since = self.since
        self._skip = None
        self._last_event = None
        self._window = None
        ordered = bool(self.full) and self.ordered
        if not isinstance(since, str):
            if self.cursor_window is not None:
                self._window = cursor.DeliveredWindow(self.cursor_window, since, ordered=ordered)
            return since
        watermark, groups = cursor.parse(since)
        self._skip = (
            watermark,
            max(groups),
            {ts: frozenset(idents) for ts, idents in groups.items()},
        )
        self._skip_seen = {}
        newest = max(groups)
        self._last_event = cursor.CursorSeed(newest, groups[newest])
        if self.cursor_window is not None:
            self._window = cursor.DeliveredWindow(
                self.cursor_window, watermark, groups, ordered=ordered
            )
        # keep events at the watermark itself: some may be new
        return math.nextafter(watermark, -math.inf)

    def _reset_stream_state(self):
        kind = self._fast_kind()
        since = self._since_timestamp()
        self._core = None
        if kind:
            # Every journal sends a sentinel; only full history is ordered.
            kind |= core.HISTORY
            if self.full and self.ordered:
                kind |= core.ORDERED
            self._core = core.CoreStream(kind, since)
            for name in self.allow or ():
                self._core.filter(name)
            for name in self.deny or ():
                self._core.filter(name, deny=True)
            if self._skip is not None:
                self._core.check_range(self._skip[0], self._skip[1])
        if self._window is not None and self._core is None:
            raise TypeError(
                "cursor_window needs flux-journal's own job or resource event "
                "building (this subclass overrides a hook)"
            )
        self._since = since
        self._sentinel_reached = False
        self._in_history = bool(self.full) and self.ordered
        self._history = []
        self._deferred = []
        self._over = False
        self._cancelled = False
        self._then_set = False
        self._feed_future = None  # how this request's responses go in
        self._payload_holder = None

    def _retire_stream(self):
        """Before a restart: cancel the old request and queue what it
        delivered, without its end-of-stream None."""
        if not self._over:
            self.stop()
        self._over = True
        pending = list(self._events)
        pending.extend(self._ready)
        self._ready = deque(pending)
        self._events = iter(())
        if self._core is not None:
            self._core.end()
            while self._fill(keep_end=False):
                self._ready.extend(self._events)
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
        if hasattr(future, "get_str"):
            return self._text_payload(future)
        resp = future.get()
        if resp is None:
            raise PayloadError("response has no payload", 0, shape=True)
        return json.dumps(resp).encode()

    @staticmethod
    def _text_payload(future):
        """The payload of a future offering get_str(), as bytes."""
        try:
            text = future.get_str()
        except UnicodeDecodeError as exc:
            # flux's get_str() decodes the payload: report it like the C
            # scanner reports bad UTF-8 in a payload it reads raw
            raise PayloadError("invalid UTF-8", exc.start) from None
        if text is None:
            raise PayloadError("response has no payload", 0, shape=True)
        return text.encode("utf-8", "surrogatepass")

    def _choose_feed(self, future):
        """How this request's responses go in, decided at the first one:
        the generic path (hooks), or to C with as few copies as the future
        allows."""
        if self._core is None:
            return self._feed_generic
        pimpl = getattr(future, "pimpl", None)
        if hasattr(pimpl, "ffi") and hasattr(pimpl, "flux_rpc_get"):
            return self._feed_flux_rpc
        if hasattr(future, "get_str"):
            return self._feed_text
        return self._feed_payload

    def _feed_text(self, future):
        self._core.feed(self._text_payload(future))

    def _feed_payload(self, future):
        self._core.feed(self._payload(future))

    def _feed_flux_rpc(self, future):
        """A flux-core RPC: read the broker's NUL-terminated payload in
        place (valid until reset()), through flux_rpc_get()."""
        pimpl = future.pimpl
        holder = self._payload_holder
        if holder is None:
            holder = self._payload_holder = pimpl.ffi.new("char *[1]")
        try:
            pimpl.flux_rpc_get(holder)
        except OSError:
            # flux-core's get_str() does the same: an exception raised in
            # a callback on this handle is the real cause
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
        if self.full and not self._sentinel_reached and self.is_empty_response(resp):
            self._sentinel_reached = True
            self._close_history()
            if self.include_sentinel:
                self._ready.append(self.SENTINEL_EVENT)
            return
        kwargs = self.process_response(resp)
        since, allow, deny = self._since, self.allow, self.deny
        target = self._history if self._in_history else self._ready
        for entry in resp["events"]:
            event = self.create_event(entry, **kwargs)
            if event.timestamp <= since:
                continue
            if (allow is not None and event.name not in allow) or (
                deny is not None and event.name in deny
            ):
                continue
            target.append(event)
        self._check_backlog(len(self._history))

    def _take_response(self, future):
        """Consume the future's current response.  The future is reset
        whatever happens, as flux-core does: a response that made a hook
        raise is not read again."""
        try:
            feed = self._feed_future
            if feed is None:
                feed = self._feed_future = self._choose_feed(future)
            feed(future)
        except OSError as exc:
            # The response itself is an error: the stream is over.
            self._finish(None if exc.errno == errno.ENODATA else exc)
        except PayloadError as exc:
            self._fail_response(exc)
        finally:
            future.reset()
        if self._core is not None and self.max_backlog is not None:
            self._check_backlog(self._core.backlog)

    def _check_backlog(self, buffered):
        """Give up when more than max_backlog events wait in the consumer:
        cancel the stream and end it with BacklogFullError after what was
        buffered."""
        limit = self.max_backlog
        if limit is None or buffered <= limit or self._over:
            return
        self.stop()
        self._finish(
            BacklogFullError(
                f"journal history exceeds max_backlog={limit} buffered events"
            )
        )

    # ------------------------------------------------------------------
    # Events out

    def _fill(self, keep_end=True, max_events=core.BATCH_SIZE):
        """Move one batch (or marker) from C to the ready queue.  Returns
        False if C had nothing deliverable."""
        if self._core is None:
            return False
        batch = self._core.pop(max_events)
        if batch is None:
            return False
        marker = batch.marker
        if not marker:
            events = self._events_from_batch(batch)
            if self._window is not None:
                events = self._recorded(events)
            self._events = events
        elif marker == core.SENTINEL:
            self._sentinel_reached = True
            if self._window is not None:
                self._window.end_of_order()
            # flux-core never delivers the sentinel when full is False
            if self.include_sentinel and self.full:
                self._ready.append(self.SENTINEL_EVENT)
        elif marker == core.END:
            if keep_end:
                self._ready.append(None)
            else:
                return False
        else:
            self._ready.append(_Raise(self._errors.pop(marker)))
        return True

    def _events_from_batch(self, batch):
        """Generate the event objects of a batch, each built when taken
        (consumers with a _CORE_KIND)."""
        raise NotImplementedError

    def _recorded(self, events):
        """Pass events on, recording each for :attr:`cursor`."""
        add = self._window.add
        for event in events:
            add(event)
            yield event

    def _unusual_event(self, timestamp, names, name, flags, item):
        """An event of the batch's slow path, before its class-specific
        attributes: built from the whole decoded entry if irregular."""
        cls = self._EVENT_CLASS
        event = cls.__new__(cls)
        if flags & core.IRREGULAR:
            JournalEventBase.__init__(event, item)  # exactly as flux-core
        else:
            dict.__init__(event, timestamp=timestamp, name=names[name], context=item)
        return event

    def _link_tie(self, event, previous):
        """event shares its timestamp with the event delivered before it
        (or with the cursor resumed from): link them for event.cursor.
        Returns False if event was already delivered before that cursor."""
        skip = self._skip
        ts = event.timestamp
        if skip is not None and skip[0] <= ts <= skip[1]:
            # The n-th event of one identity at one timestamp in this run
            # is the n-th of the run the cursor came from: responses keep
            # their order, and equal identities share a response.
            base = event._cursor_ident()
            seen = self._skip_seen.get((ts, base), 0)
            self._skip_seen[ts, base] = seen + 1
            if cursor.occurrence(base, seen) in skip[2].get(ts, ()):
                return False
        if previous is not None and previous.timestamp == event.timestamp:
            event._cursor_prev = previous
        return True

    def _poll_wait(self, timeout, at_sentinel=None):
        """poll() when nothing is ready: fill from C or wait for responses.
        With `at_sentinel` set, return it rather than wait once history
        has been delivered."""
        if self.rpc is None:
            raise RuntimeError("poll() called before start()")
        deadline = None if timeout < 0 else time.monotonic() + timeout
        ready = self._ready
        while True:
            for event in self._events:
                return event
            if ready:
                item = ready.popleft()
                if item.__class__ is _Raise:
                    raise item.exc
                return item
            if at_sentinel is not None and self._sentinel_reached:
                return at_sentinel
            if self._fill():
                continue
            if self._over:
                return None
            wait = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
            self.rpc.wait_for(wait)
            self._take_response(self.rpc)
            # Take every response that has already arrived too: one pop
            # into C then serves them all, instead of one pop each.
            self._take_arrived(core.BATCH_SIZE)

    # ------------------------------------------------------------------
    # flux-journal extensions: batches, iteration, statistics

    def poll_batch(self, max_events=1000, timeout=-1.0):
        """Return a list of up to *max_events* events.

        Waits like :meth:`poll` for the first event (raising TimeoutError
        if none comes within *timeout*), then adds whatever else is
        deliverable without waiting, decoded in one call into C.  At the
        end of the stream the list ends with None (a list holding only
        None once everything was delivered).  An error the stream holds is
        raised by the call that reaches it, after the events before it
        were returned.  Shares one queue with :meth:`poll`.
        """
        if max_events < 1:
            raise ValueError("max_events must be at least 1")
        batch = [self.poll(timeout)]
        self._extend_batch(batch, max_events)
        return batch

    def _extend_batch(self, batch, max_events):
        """Add deliverable events to batch without waiting: up to
        max_events in all, not past the end (None) or an error.

        Python's cyclic garbage collector is paused meanwhile (and
        resumed, if it was running, before this returns).  A batch keeps
        hundreds of new event objects alive at once, so the collector,
        which runs after every 700 net allocations, would otherwise
        examine each of them several times and move them into its oldest
        generation, whose growth in turn triggers full collections of
        the whole program: at a million events that doubled the cost of
        a batch.  The events hold no reference cycles, so the pause
        leaves nothing for the collector to find.
        """
        if not gc.isenabled():
            self._extend_batch_now(batch, max_events)
            return
        gc.disable()
        try:
            self._extend_batch_now(batch, max_events)
        finally:
            gc.enable()

    def _extend_batch_now(self, batch, max_events):
        ready = self._ready
        sentinel = self.SENTINEL_EVENT
        while batch[-1] is not None and len(batch) < max_events:
            if batch[-1] is sentinel:
                return  # a batch ends with the history
            batch.extend(islice(self._events, max_events - len(batch)))
            if len(batch) == max_events or batch[-1] is None:
                return
            if ready:
                if ready[0].__class__ is _Raise:
                    return
                batch.append(ready.popleft())
                continue
            in_history = not self._sentinel_reached
            wanted = max_events - len(batch)
            if not self._fill(max_events=wanted) and not self._take_arrived(
                core.BATCH_SIZE
            ):
                return
            if in_history and self._sentinel_reached:
                # a batch ends with the history (and the sentinel, if any)
                if ready and ready[0] is sentinel:
                    batch.append(ready.popleft())
                return

    def _take_arrived(self, limit):
        """Consume up to *limit* responses that have already arrived,
        without waiting.  Returns how many were taken."""
        rpc = self.rpc
        if self._over or rpc is None or self._then_set:
            return 0
        if not hasattr(rpc, "is_ready"):
            try:
                rpc.wait_for(0)
            except TimeoutError:
                return 0
            self._take_response(rpc)
            return 1
        if self._feed_future == self._feed_text and self.max_backlog is None:
            return self._take_arrived_text(rpc, limit)
        is_ready = rpc.is_ready
        taken = 0
        while taken < limit and not self._over and is_ready():
            self._take_response(rpc)
            taken += 1
        return taken

    def _take_arrived_text(self, rpc, limit):
        """_take_arrived() for responses read with get_str() into C: the
        common case of a burst of responses, kept to a few Python
        operations each.  ASCII payloads (their length in characters is
        their length in bytes) are gathered and fed to C together, in one
        call; any other response (an error, no payload, non-ASCII text)
        is left to _take_response(), which reads it again, after those
        before it."""
        is_ready, get_str, reset = rpc.is_ready, rpc.get_str, rpc.reset
        texts = []
        taken = 0
        while taken < limit and is_ready():
            taken += 1
            try:
                text = get_str()
            except (OSError, UnicodeDecodeError):
                text = None
            if text is not None and text.isascii():
                texts.append(text)
                reset()
                continue
            self._feed_texts(texts)
            texts = []
            self._take_response(rpc)
            if self._over:
                break
        self._feed_texts(texts)
        return taken

    def _feed_texts(self, texts):
        """Feed ASCII payloads (str) to C, one call for them all; report a
        payload C refuses at its place."""
        if texts:
            self._core.feed_many(
                "".join(texts).encode("ascii"), [len(text) for text in texts], self._fail_response
            )

    def set_batch_callback(self, batch_cb, *args, max_events=1000, **kwargs):
        """Register *batch_cb(events, *args, **kwargs)*, called from the
        reactor with lists of up to *max_events* events (as
        :meth:`poll_batch` returns them; the last list ends with None).
        Replaces any callback set with :meth:`set_callback`.

        Returns:
            self
        """

        def deliver_batches(event):
            events = [event]
            self._extend_batch(events, max_events)
            batch_cb(events, *args, **kwargs)

        self.set_callback(deliver_batches)
        self._cb_sees_end = True  # batch lists always end with None
        return self

    def events(self, timeout=None, until_sentinel=False):
        """Generate events until the stream ends.

        Starts the consumer if needed.  With *timeout* (seconds), raises
        TimeoutError when no event comes for that long.  With
        *until_sentinel*, ends once history has been delivered (after
        :data:`SENTINEL_EVENT` when *include_sentinel* is set) instead of
        following live events; the stream stays open.
        """
        if self.rpc is None:
            self.start()
        wait = -1.0 if timeout is None else timeout
        stop_mark = object()
        while True:
            event = self._poll_wait(wait, stop_mark if until_sentinel else None)
            if event is None or event is stop_mark:
                return
            yield event
            if until_sentinel and event is self.SENTINEL_EVENT:
                return

    def __iter__(self):
        return self.events()

    def __enter__(self):
        if self.rpc is None:
            self.start()
        return self

    def __exit__(self, *exc_info):
        """Cancel the stream and read it to its end (at most 10 s), so the
        service is left with nothing pending."""
        if self.rpc is None or self._over:
            return
        self.stop()
        deadline = time.monotonic() + 10.0
        try:
            while time.monotonic() < deadline:
                if self.poll(max(0.0, deadline - time.monotonic())) is None:
                    break
        except Exception:  # pylint: disable=broad-except
            pass  # the with-block's own exception, if any, matters more

    @property
    def cursor(self):
        """Where the stream stands after the last event delivered, as a
        cursor string for ``since=`` (flux-journal extension), or None
        before the first event.

        Needs *cursor_window* (0.0 when events arrive in time order): the
        cursor stays exact for events arriving up to that many seconds
        out of order.

        Raises:
            RuntimeError: the consumer was created without cursor_window
        """
        if self._window is None:
            raise RuntimeError("consumer.cursor needs cursor_window= at construction")
        return self._window.cursor()

    @property
    def history_complete(self):
        """True once the journal's sentinel has been received and the
        history before it delivered (flux-journal extension).  With
        *full* False the sentinel is never delivered as an event, but
        this still tells when the active jobs' history is over."""
        return self._sentinel_reached and not self._history

    @property
    def stats(self):
        """Counters of this stream, as a dict (flux-journal extension).

        responses, bytes: responses and payload bytes received;
        events: events in them; filtered_since, filtered_name: events
        dropped by *since* and by name filters; delivered: events handed
        to Python; history: events buffered from history; backlog: events
        buffered now; peak_backlog: most ever buffered.
        """
        if self._core is not None:
            return self._core.stats()
        return {"backlog": len(self._history) + len(self._ready)}

    # ------------------------------------------------------------------
    # Callback mode

    def _set_then_cb(self):
        if self.rpc is not None and self.cb is not None and not self._then_set:
            self.rpc.then(self._on_response)
            self._then_set = True

    def _on_response(self, future):
        if future is not self.rpc or self._over:
            # a response of a request replaced by start(), or the end of
            # the stream seen again: nothing more to read from it
            future.reset()
            return
        self._take_response(future)
        if self._core is not None and self._core.gathering and not self._ready:
            return  # ordered history still coming in: nothing to deliver
        self._deliver_in_reactor()

    def _deliver_in_reactor(self):
        """Call the callback for everything deliverable, from the reactor.

        An exception (the callback's, or an error the stream raises) must
        end the reactor_run() during which it happened, as flux does for
        its own callbacks, but without what flux's wrapper also does to
        a then-callback that raises: stop its future for good, so that
        the rest of the stream would never arrive.  So it is caught here
        and handed to the handle's own mechanism: ``set_exception()``,
        which reactor_run() raises at its end (even if the callback had
        called reactor_stop() first), and ``reactor_stop_error()``.  A
        handle without them gets the exception raised to its caller.
        """
        try:
            self._dispatch()
        except Exception as exc:  # pylint: disable=broad-except
            handle = self.handle
            set_exception = getattr(type(handle), "set_exception", None)
            stop_error = getattr(handle, "reactor_stop_error", None)
            if set_exception is None or stop_error is None:
                raise
            set_exception(exc)
            stop_error()

    def _dispatch(self):
        """Call the callback for everything deliverable.  If the callback
        (or a queued error) raises, arrange to resume when the reactor
        runs again, and let the exception propagate."""
        ready = self._ready
        while True:
            try:
                events = self._events
                for event in events:
                    # read per event: the callback may replace itself
                    if self.cb_args or self.cb_kwargs:
                        self.cb(event, *self.cb_args, **self.cb_kwargs)
                    else:
                        self.cb(event)  # no argument tuple to build
                if self._events is not events:
                    continue  # a batch callback took the rest and moved on
                if ready:
                    item = ready.popleft()
                    if item.__class__ is _Raise:
                        raise item.exc
                    if item is not None or self._cb_sees_end:
                        self.cb(item, *self.cb_args, **self.cb_kwargs)
                    continue
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
            self._deliver_in_reactor()
