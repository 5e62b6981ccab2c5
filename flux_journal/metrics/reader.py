"""Reading one journal into its tracker, from a thread of its own.

The exporter reads the job and the resource journals side by side, each
with its own consumer (and Flux handle) in its own thread, so that a
long job history never delays the resource gauges and neither waits for
the other's live events.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, Optional, Union

from flux_journal.abc import JournalConsumerBase
from flux_journal.errors import PayloadError
from flux_journal.metrics.resource import RankTracker
from flux_journal.metrics.state import JobTracker

__all__ = ["BATCH_EVENTS", "JournalReader"]

#: Events asked of the consumer at a time.
BATCH_EVENTS = 1000
# Longest a poll blocks, so that a stop request is seen promptly.
_POLL_WAIT = 0.2
# How long to wait for the service to end the stream after stop().
_DRAIN_SECONDS = 2.0

Tracker = Union[JobTracker, RankTracker]


class JournalReader:
    """Feeds *consumer*'s events (started or not) to *tracker*.

    Attributes (plain values another thread may read):
        journal: ``"jobs"`` or ``"resource"``
        tracker: the :class:`JobTracker` or :class:`RankTracker`
        history_complete: the journal's history has been consumed
        stats: the consumer's counters after the latest batch
        ended: the stream ended (the service ended it, or a replay ran out)
        failure: what ended the reading early: the service's error (an
            OSError), or an unexpected exception of the reading thread
    """

    def __init__(self, journal: str, consumer: JournalConsumerBase, tracker: Tracker) -> None:
        self.journal = journal
        self.consumer = consumer
        self.tracker = tracker
        self.history_complete = False
        self.stats: Dict[str, Any] = {}
        self.ended = False
        self.failure: Optional[Exception] = None
        self._thread: Optional[threading.Thread] = None

    def run(self, stop: Optional[threading.Event] = None) -> None:
        """Consume until the stream ends or *stop* is set; then, if the
        stream is still open, cancel it.  Malformed responses are counted
        (``malformed_response``) and skipped."""
        consumer = self.consumer
        if consumer.rpc is None:
            consumer.start()
        poll_batch = consumer.poll_batch
        consume = self.tracker.consume
        while stop is None or not stop.is_set():
            try:
                batch = poll_batch(BATCH_EVENTS, _POLL_WAIT)
            except TimeoutError:
                batch = []
            except PayloadError:
                self.tracker.count_error("malformed_response")
                continue
            except OSError as exc:
                self.failure = exc
                self.ended = True
                break
            if batch and batch[-1] is None:
                batch.pop()
                self.ended = True
            if batch:
                consume(batch)  # type: ignore[arg-type]  # its None was popped
            if not self.history_complete and consumer.history_complete:
                self.history_complete = True
            self.stats = consumer.stats
            if self.ended:
                return
        if not self.ended:
            self._cancel()

    def _cancel(self) -> None:
        """Cancel the stream and wait briefly for the service to end it."""
        try:
            self.consumer.stop()
        except RuntimeError:
            return
        deadline = time.monotonic() + _DRAIN_SECONDS
        while time.monotonic() < deadline:
            try:
                batch = self.consumer.poll_batch(BATCH_EVENTS, _POLL_WAIT)
            except (TimeoutError, PayloadError):
                continue
            except OSError:
                return
            if batch[-1] is None:
                return

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
