"""Journal consumer base classes, interface-compatible with ``flux.abc``.

The consumer's parts live in :mod:`flux_journal.consumer`: response
intake, the C and hook pipelines, the delivery queue, callback dispatch,
batches and the resume point.  This class holds them together behind
flux.abc's interface.

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

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Optional,
    Sequence,
    TypeVar,
    Union,
)

from flux_journal import core
from flux_journal._flux import FLUX_RPC_NORESPONSE, FLUX_RPC_STREAMING
from flux_journal.consumer import open_pipeline
from flux_journal.consumer.batches import extend_batch
from flux_journal.consumer.callbacks import CallbackDispatch
from flux_journal.consumer.intake import choose_intake
from flux_journal.consumer.iteration import StreamIteration
from flux_journal.consumer.live import GENERAL
from flux_journal.consumer.queue import DeliveryQueue
from flux_journal.events import JournalEventBase

# JournalEventBase lives in flux_journal.events; flux.abc offers it here.
__all__ = ["JournalConsumerBase", "JournalEventBase"]

# What DeliveryQueue.take() returns when nothing waits.
_NOTHING = object()

# A consumer's own class, for the methods that return self.
_ConsumerT = TypeVar("_ConsumerT", bound="JournalConsumerBase")

if TYPE_CHECKING:
    from typing_extensions import TypedDict

    class ConsumerOptions(TypedDict, total=False):
        """flux-journal's keyword-only extensions, as the job and resource
        consumers take them (``**extras``) and pass them on."""

        allow: Optional[Iterable[str]]
        deny: Optional[Iterable[str]]
        ordered: bool
        max_backlog: Optional[int]
        cursor_window: Optional[float]


class JournalConsumerBase(StreamIteration, ABC):
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
    # the C stream kind, and the class of the callable that makes event
    # objects from the C pipeline's batches.
    _CORE_KIND = 0
    _EVENT_BUILDER: Optional[Callable[[], Any]] = None

    # flux-core documents a call of the callback with None at the end of
    # the stream but never makes it; install()'s classes turn this off.
    _CALLBACK_SEES_END = True

    def __init__(
        self,
        flux_handle: Any,
        topic: str,
        cancel_topic: Optional[str] = None,
        full: bool = True,
        since: Union[float, str] = 0.0,
        include_sentinel: bool = False,
        *,
        allow: Optional[Iterable[str]] = None,
        deny: Optional[Iterable[str]] = None,
        ordered: bool = True,
        max_backlog: Optional[int] = None,
        cursor_window: Optional[float] = None,
    ) -> None:
        self.handle = flux_handle
        self.topic = topic
        self.cancel_topic = cancel_topic
        if self.cancel_topic is None:
            self.cancel_topic = f"{self.topic}-cancel"
        self.full = full
        self.since = since
        self.include_sentinel = include_sentinel
        self.rpc: Any = None  # the journal request's future once started
        self.cb: Optional[Callable[..., Any]] = None
        self.cb_args: Sequence[Any] = []
        self.cb_kwargs: Dict[str, Any] = {}

        self.allow = frozenset(allow) if allow is not None else None
        self.deny = frozenset(deny) if deny is not None else None
        self.ordered = ordered
        self.max_backlog = max_backlog
        self.cursor_window = cursor_window

        self._queue = DeliveryQueue()
        self._callbacks = CallbackDispatch(self, self._queue)
        builder = self._EVENT_BUILDER
        self._build_events = builder() if builder is not None else None
        self._pipeline: Any = None  # the current request's
        self._intake: Any = None  # the current request's
        self._live_step: Any = None  # the current request's, if its intake has one

    # ------------------------------------------------------------------
    # Hooks (flux.abc interface)

    @abstractmethod
    def process_response(self, resp: Dict[str, Any]) -> Dict[str, Any]:
        """Process a journal response.

        Args:
            resp (dict): the payload of one journal response
        Returns:
            dict: keyword arguments passed to :meth:`create_event` for each
            event of this response
        """
        return {}

    @abstractmethod
    def create_event(self, entry: Dict[str, Any], **kwargs: Any) -> JournalEventBase:
        """Return a journal event object from a response entry

        Args:
            entry (dict): one element of the response's ``events`` array
            **kwargs: what :meth:`process_response` returned
        Returns:
            :obj:`JournalEventBase` or a subclass
        """
        return JournalEventBase(entry)

    def is_empty_response(self, resp: Dict[str, Any]) -> bool:
        """Return True if resp is "empty" (the sentinel response)"""
        return len(resp["events"]) == 0

    @property
    def request_payload(self) -> Dict[str, Any]:
        """Appropriate request payload for this journal RPC"""
        return {}

    # ------------------------------------------------------------------
    # Control

    def start(self: _ConsumerT) -> _ConsumerT:
        """Start the stream of events by sending a request

        Calling start() again restarts the stream with the original
        options: the old request is cancelled, events already received from
        it are still delivered, and the new request's history follows (so
        events may repeat).

        Returns:
            self
        """
        if self.rpc is not None:
            self._retire_request()
        self._pipeline = open_pipeline(self, self._queue, self._build_events)
        self.rpc = self.handle.rpc(self.topic, self.request_payload, 0, FLUX_RPC_STREAMING)
        self._intake = choose_intake(
            self.rpc, self._pipeline, limit_backlog=self.max_backlog is not None
        )
        live_step = getattr(self._intake, "live_step", None)
        self._live_step = live_step(self) if live_step is not None else None
        self._callbacks.attach(self.rpc, self._pipeline, self._intake)
        self._callbacks.set_then()
        return self

    def stop(self) -> None:
        """Cancel the journal RPC

        Events already received are still delivered; then :meth:`poll`
        returns None and the callback is called with None.

        Raises:
            RuntimeError: stop() was called before start()
        """
        if self.rpc is None:
            raise RuntimeError("stop() called before start()")
        pipeline = self._pipeline
        if pipeline.over or pipeline.cancelled:
            return
        pipeline.cancelled = True
        self.handle.rpc(
            self.cancel_topic,
            {"matchtag": self.rpc.pimpl.get_matchtag()},
            0,
            FLUX_RPC_NORESPONSE,
        )

    def poll(self, timeout: float = -1.0) -> Optional[JournalEventBase]:
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
        for event in self._queue.events:
            return event
        live = self._live_step
        if live is not None:
            # a live stream: its next event, built as it is taken
            start = time.monotonic() if timeout >= 0 else 0.0
            event = live(timeout)
            if event is not GENERAL:
                return event
            if timeout >= 0:  # the general path has what is left of it
                timeout = max(0.0, timeout - (time.monotonic() - start))
        return self._poll_wait(timeout)

    def set_callback(
        self: _ConsumerT, event_cb: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> _ConsumerT:
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
        self._callbacks.sees_end = self._CALLBACK_SEES_END
        self._callbacks.set_then()
        if self.rpc is not None:
            # events taken by poll() earlier may wait for delivery
            self._callbacks.resume_soon()
        return self

    # ------------------------------------------------------------------
    # Responses in, events out

    def _retire_request(self) -> None:
        """Before a restart: cancel the old request and queue what it
        delivered, without its end-of-stream None."""
        pipeline = self._pipeline
        if not pipeline.over:
            self.stop()
        pipeline.over = True
        self._queue.requeue_all()
        pipeline.retire()

    def _take_arrived(self, limit: int) -> int:
        """Consume up to *limit* responses that have already arrived,
        without waiting (not in callback mode, where the reactor does).
        Returns how many were taken."""
        if self._pipeline.over or self._callbacks.active:
            return 0
        return self._intake.take_arrived(self.rpc, limit)

    def _poll_wait(self, timeout: float, at_sentinel: Any = None) -> Any:
        """poll() when nothing is ready: fill from the pipeline or wait for
        responses.  With `at_sentinel` set, return it rather than wait once
        history has been delivered."""
        if self.rpc is None:
            raise RuntimeError("poll() called before start()")
        deadline = None if timeout < 0 else time.monotonic() + timeout
        queue, pipeline = self._queue, self._pipeline
        while True:
            item = queue.take(_NOTHING)
            if item is not _NOTHING:
                return item
            if at_sentinel is not None and pipeline.sentinel_reached:
                return at_sentinel
            if pipeline.fill():
                continue
            if pipeline.over:
                return None
            wait = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
            # Take every response that has already arrived too (not in
            # callback mode, where the reactor does): one pop from the
            # pipeline then serves them all, instead of one each.
            more = 0 if self._callbacks.active else core.BATCH_SIZE
            self._intake.wait_and_take(self.rpc, wait, more)

    # ------------------------------------------------------------------
    # flux-journal extensions: batches, iteration, statistics

    def poll_batch(
        self, max_events: int = 1000, timeout: float = -1.0
    ) -> List[Optional[JournalEventBase]]:
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

    def _extend_batch(self, batch: List[Optional[JournalEventBase]], max_events: int) -> None:
        extend_batch(
            batch, max_events, self._queue, self._pipeline, self._take_arrived, self.SENTINEL_EVENT
        )

    def set_batch_callback(
        self: _ConsumerT,
        batch_cb: Callable[..., Any],
        *args: Any,
        max_events: int = 1000,
        **kwargs: Any,
    ) -> _ConsumerT:
        """Register *batch_cb(events, *args, **kwargs)*, called from the
        reactor with lists of up to *max_events* events (as
        :meth:`poll_batch` returns them; the last list ends with None).
        Replaces any callback set with :meth:`set_callback`.

        Returns:
            self
        """

        def deliver_batches(event: Optional[JournalEventBase]) -> None:
            events = [event]
            self._extend_batch(events, max_events)
            batch_cb(events, *args, **kwargs)

        self.set_callback(deliver_batches)
        self._callbacks.sees_end = True  # batch lists always end with None
        return self

    @property
    def cursor(self) -> Optional[str]:
        """Where the stream stands after the last event delivered, as a
        cursor string for ``since=`` (flux-journal extension), or None
        before the first event.

        Needs *cursor_window* (0.0 when events arrive in time order): the
        cursor stays exact for events arriving up to that many seconds
        out of order.

        Raises:
            RuntimeError: the consumer was created without cursor_window
        """
        window = None if self._pipeline is None else self._pipeline.resume.window
        if window is None:
            raise RuntimeError("consumer.cursor needs cursor_window= at construction")
        return window.cursor()

    @property
    def history_complete(self) -> bool:
        """True once the journal's sentinel has been received and the
        history before it delivered (flux-journal extension).  With
        *full* False the sentinel is never delivered as an event, but
        this still tells when the active jobs' history is over."""
        return self._pipeline is not None and self._pipeline.history_complete

    @property
    def stats(self) -> Dict[str, int]:
        """Counters of this stream, as a dict (flux-journal extension).

        responses, bytes: responses and payload bytes received;
        events: events in them; filtered_since, filtered_name: events
        dropped by *since* and by name filters; delivered: events handed
        to Python; history: events buffered from history; backlog: events
        buffered now; peak_backlog: most ever buffered.
        """
        if self._pipeline is None:
            return {"backlog": len(self._queue.ready)}
        return self._pipeline.stats()
