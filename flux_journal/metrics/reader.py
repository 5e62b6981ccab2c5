"""Reading one journal into its tracker, from a thread of its own.

The exporter reads the job and the resource journals side by side, each
with its own consumer (and Flux handle) in its own thread, so that a
long job history never delays the resource gauges and neither waits for
the other's live events.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Optional, Union

from flux_journal.abc import JournalConsumerBase
from flux_journal.cli.errors import ServiceError
from flux_journal.cli.follow import BATCH_EVENTS, Follower, StreamLost
from flux_journal.errors import PayloadError
from flux_journal.metrics.carry import CarriedCounters
from flux_journal.metrics.instances import InstanceCounters
from flux_journal.metrics.resource import RankTracker
from flux_journal.metrics.state import JobTracker

__all__ = ["BATCH_EVENTS", "JournalReader"]

# Longest a poll blocks, so that a stop request is seen promptly.
_POLL_WAIT = 0.2

# The consumer's counters the exporter publishes as counters.
_CARRIED_STATS = ("responses", "bytes")

Tracker = Union[JobTracker, RankTracker]


class JournalReader:
    """Feeds *consumer*'s events (started or not) to *tracker*.

    Without *follower*, the stream's end (ENODATA, a capture's end) is
    its normal end.  With a :class:`~flux_journal.cli.follow.Follower`
    (which then holds the consumer), an unasked end is a failure
    (:class:`~flux_journal.cli.follow.StreamLost`), or with reconnection
    a new tracker (made by *new_tracker*) rebuilds the state from the
    returning instance's history while the counters go on from where
    they were (see :mod:`flux_journal.metrics.carry`).  With *instances*
    (``--recursive``) the follower is a
    :class:`~flux_journal.cli.recursive.TreeFollower` and each
    instance's events go to its own counters (see
    :mod:`flux_journal.metrics.instances`).

    Attributes (plain values another thread may read):
        journal: ``"jobs"`` or ``"resource"``
        tracker: the current :class:`JobTracker` or :class:`RankTracker`
        counters: the :class:`~flux_journal.metrics.carry.CarriedCounters`
            to publish
        history_complete: the journal's history has been consumed (on
            the current connection)
        stats: the consumer's counters after the latest batch
        ended: the stream ended (the service ended it, or a replay ran out)
        failure: what ended the reading early: the service's error (an
            OSError), the loss of the stream (StreamLost), or an
            unexpected exception of the reading thread
    """

    def __init__(
        self,
        journal: str,
        consumer: Optional[JournalConsumerBase],
        tracker: Tracker,
        *,
        follower: Optional[Any] = None,
        new_tracker: Optional[Callable[[], Tracker]] = None,
        instances: Optional[InstanceCounters] = None,
    ) -> None:
        self.journal = journal
        #: With ``--recursive`` (the follower a TreeFollower), the counts
        #: of every instance; :attr:`counters` are then the root's.
        self.instances = instances
        self.counters = CarriedCounters(tracker) if instances is None else instances.root
        self.history_complete = False
        self.stats: Dict[str, Any] = {}
        # Responses and bytes of earlier connections: published counters
        # that must not go down when a new consumer starts from zero.
        self._carried_stats: Dict[str, int] = {}
        self.ended = False
        self.failure: Optional[Exception] = None
        self._thread: Optional[threading.Thread] = None
        self._new_tracker = new_tracker
        if follower is None:
            follower = Follower(consumer, label=journal, service=f"{journal} journal", ends=True)
        elif new_tracker is not None:
            follower.on_reconnect = self.reconnected
        # a Follower, or with *instances* a TreeFollower
        self.follower: Any = follower

    @property
    def tracker(self) -> Tracker:
        """The tracker of the current connection."""
        return self.counters.tracker

    @property
    def consumer(self) -> Optional[JournalConsumerBase]:
        """The consumer of the current connection."""
        return self.follower.consumer

    def reconnected(self, consumer: JournalConsumerBase, cursor: Optional[str]) -> None:
        """The follower opened a new connection (*consumer* reads the
        whole history again): rebuild the state from it, counting again
        only the events after *cursor*."""
        del consumer
        assert self._new_tracker is not None
        self._carried_stats = {key: self.stats.get(key, 0) for key in _CARRIED_STATS}
        self.history_complete = False
        self.counters.reconnected(self._new_tracker(), cursor)

    def run(self, stop: Optional[threading.Event] = None) -> None:
        """Consume until the stream ends or *stop* is set; then, if the
        stream is still open, cancel it.  Malformed responses are counted
        (``malformed_response``) and skipped."""
        follower = self.follower
        if follower.consumer is not None and getattr(follower.consumer, "rpc", True) is None:
            follower.consumer.start()
        instances = self.instances
        consume = self.counters.consume if instances is None else instances.consume
        while stop is None or not stop.is_set():
            try:
                batch = follower.poll(_POLL_WAIT)
            except PayloadError:
                self.counters.count_error("malformed_response")
                continue
            except ServiceError as exc:
                self._fail(exc.exc)
                break
            except StreamLost as exc:
                self._fail(exc)
                break
            if batch and batch[-1] is None:
                batch.pop()
                self.ended = True
            if batch:
                consume(batch)
            if instances is not None:
                instances.ended(follower.tree.instances)
            consumer = follower.consumer
            if consumer is not None:
                if not self.history_complete and consumer.history_complete:
                    self.history_complete = True
                stats = consumer.stats
                for key, value in self._carried_stats.items():
                    stats[key] = stats.get(key, 0) + value
                self.stats = stats
            if self.ended:
                return
        if not self.ended:
            follower.drain()

    def _fail(self, exc: Exception) -> None:
        self.failure = exc
        self.ended = True
    def _run_reporting(self, stop: threading.Event) -> None:
        try:
            self.run(stop)
        except Exception as exc:  # pylint: disable=broad-except
            # Not to die unseen: the exporter would serve frozen values.
            self.failure = exc
            self.ended = True

    def start(self, stop: threading.Event) -> "JournalReader":
        """Run :meth:`run` in a daemon thread; an exception it raises is
        kept in :attr:`failure`."""
        self._thread = threading.Thread(
            target=self._run_reporting, args=(stop,), name=f"metrics-{self.journal}",
            daemon=True,
        )
        self._thread.start()
        return self

    def join(self, timeout: float) -> None:
        """Wait up to *timeout* seconds for the thread to end."""
        if self._thread is not None:
            self._thread.join(timeout)
