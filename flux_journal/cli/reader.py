"""The reading loop: a journal consumer's events through filters to a sink.

:func:`start_consumer` creates the consumer a command reads with;
:class:`Reader` drives it through the history, the sentinel, live events
and interruptions; :func:`print_stats` reports on a run (``--stats``).
"""

import signal
import sys
import threading
import time

from flux_journal.cli.errors import PROG, ServiceError
from flux_journal.cli.sinks import POLL_WAIT
from flux_journal.errors import PayloadError

__all__ = ["Reader", "start_consumer", "print_stats"]

# Events asked of the consumer at a time: big enough that per-batch costs
# (a write, perhaps a checkpoint) vanish, small enough that output starts
# promptly and a kill repeats little.
_POLL_EVENTS = 1000
# How long to wait for the service to end the stream after stop().
_DRAIN_SECONDS = 2.0
# At most this many malformed-response warnings are printed.
_MAX_WARNINGS = 10


def _consumer_class(journal):
    # pylint: disable=import-outside-toplevel
    if journal == "jobs":
        from flux_journal.job import JournalConsumer

        return JournalConsumer
    from flux_journal.resource import ResourceJournalConsumer

    return ResourceJournalConsumer


def start_consumer(journal, handle, position, *, since, full, allow, deny, cursor_window):
    """Create and start the consumer, resuming after *position* (its
    cursor), or at the start from *since*.  *cursor_window* (None: no
    resume position is needed) goes to the consumer."""
    cls = _consumer_class(journal)
    kwargs = {"include_sentinel": True}
    if journal == "jobs":
        kwargs["full"] = full
    start = position.cursor
    if start is None:
        start = since if since is not None else 0.0
    # Names are filtered before events are built: by the job manager
    # itself (less to send and to parse), in C for the resource journal.
    return cls(
        handle,
        since=start,
        allow=sorted(allow) if allow else None,
        deny=sorted(deny) if deny else None,
        cursor_window=cursor_window,
        **kwargs,
    ).start()


class Reader:
    """Drives a consumer: history, sentinel, live events, interruptions.

    Every delivered event goes through the filters to the sink.  Once a
    batch is written, and if the sink records positions, the position
    moves to the consumer's cursor (which covers the events filters
    dropped too); then the sink may checkpoint or commit.
    """

    def __init__(
        self, consumer, sink, position, *, service, follow, filters, drop_history, progress
    ):
        self.consumer = consumer
        self.service = service
        self.sink = sink
        self.position = position
        self.follow = follow
        self.filters = filters
        self.drop_history = drop_history
        self.progress = progress
        self.in_history = True
        self.filtered = 0  # dropped here: --jobid, --no-history (resource)
        self.warnings = 0
        self.signum = None
        self.ended = False  # the service ended the stream

    # -- signals ---------------------------------------------------------

    def _on_signal(self, signum, frame):
        del frame
        if self.signum is not None:
            # A second Ctrl-C: give up at once.  The checkpoint already on
            # disk is still right (it never runs ahead of the output).
            raise KeyboardInterrupt
        self.signum = signum

    def install_signals(self):
        """Turn SIGINT/SIGTERM into a request to stop cleanly; return a
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

    # -- the loop ----------------------------------------------------------

    def run(self):
        """Read until the sentinel (or the end of the stream with
        follow), or a signal.  Service errors propagate as
        :class:`~flux_journal.cli.errors.ServiceError` after everything
        delivered before them has reached the sink."""
        stop_at_sentinel = not self.follow
        while self.signum is None:
            items = self._poll()
            if items is None:
                continue
            sentinel = self._take(items, stop_at_sentinel)
            if self.in_history and not self.ended and self.consumer.history_complete:
                # The sentinel went by undelivered (flux-core's consumers
                # deliver it only with full history).
                self._history_done()
                if stop_at_sentinel:
                    sentinel = True
                    self.consumer.stop()
            self._progress()
            if sentinel:
                self._drain()
                return
            if self.ended:
                return
        # Interrupted: cancel the stream; what arrives meanwhile is left
        # for the next run (it is not written, so not checkpointed).
        self.progress.clear()
        try:
            self.consumer.stop()
        except RuntimeError:
            pass
        self._drain()

    def _poll(self):
        """The next batch of items ([] if none came in time), or None
        after a malformed response was skipped."""
        try:
            return self.consumer.poll_batch(_POLL_EVENTS, self.sink.timeout())
        except TimeoutError:
            # Nothing came, but time-based commits and the end of a
            # history that delivered nothing still need seeing to.
            return []
        except PayloadError as exc:
            self._warn(f"skipped a malformed {self.service} response: {exc}")
            return None
        except OSError as exc:
            # Raised after every event received before it was
            # delivered (and written): the caller reports it.
            raise ServiceError(exc) from exc

    def _take(self, items, stop_at_sentinel):
        """Write the wanted events of *items*, move the position and let
        the sink checkpoint; return whether the run stops at the
        sentinel."""
        batch, consumed, left_out, sentinel = self._sort(items, stop_at_sentinel)
        if batch:
            # stdout may be the terminal the indicator is drawn on
            self.progress.erase()
            self.sink.write(batch)
        if consumed and not left_out and self.sink.records_position:
            # Everything delivered is written or filtered out: that is
            # where the consumer's cursor stands.  Taken now, before
            # the consumer delivers more (even while draining).
            self.position.advance(self.consumer.cursor, consumed)
        self.sink.flushed(self.position)
        return sentinel

    def _sort(self, items, stop_at_sentinel):
        """Split *items* into (events to write, events consumed, whether
        delivered events were left unwritten, whether to stop here)."""
        batch = []
        consumed = 0
        for event in items:
            if event is None:
                self.ended = True
                break
            if event.is_empty():
                self._history_done()
                if stop_at_sentinel:
                    # Live events are left for the next run.  A batch
                    # opening with the sentinel can carry some:
                    # poll_batch ends a batch at the sentinel only when
                    # history events precede it.  The consumer's cursor
                    # covers them, so the position must not move to it.
                    self.consumer.stop()
                    return batch, consumed, event is not items[-1], True
                continue
            consumed += 1
            if (self.drop_history and self.in_history) or not self._wanted(event):
                self.filtered += 1
                continue
            batch.append(event)
        return batch, consumed, False, False

    def _history_done(self):
        self.in_history = False
        self.progress.clear()

    def _wanted(self, event):
        for keep in self.filters:
            if not keep(event):
                return False
        return True

    def _drain(self):
        """After stop(): wait (briefly) for the service to end the stream."""
        deadline = time.monotonic() + _DRAIN_SECONDS
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                items = self.consumer.poll_batch(_POLL_EVENTS, min(left, POLL_WAIT))
            except TimeoutError:
                continue
            except PayloadError:
                continue
            except OSError:
                return  # ended by an error instead: nothing more comes
            if items and items[-1] is None:
                return

    def _progress(self):
        if self.in_history and self.progress.enabled:
            self.progress.update(self.consumer.stats["events"], self.sink.written)

    def _warn(self, message):
        self.warnings += 1
        if self.warnings <= _MAX_WARNINGS:
            print(f"{PROG}: {message}", file=sys.stderr)
            if self.warnings == _MAX_WARNINGS:
                print(f"{PROG}: (further warnings suppressed)", file=sys.stderr)


def print_stats(source, reader, consumer, elapsed, stream=None):
    """Write ``--stats`` lines about a run to *stream* (default stderr)."""
    stream = stream if stream is not None else sys.stderr
    stats = consumer.stats
    delivered = reader.sink.written
    filtered = reader.filtered + stats["filtered_since"] + stats["filtered_name"]
    rate = delivered / elapsed if elapsed > 0 else 0.0
    lines = [
        f"source: {source.label}",
        f"responses: {stats['responses']}",
        f"events received: {stats['events']}",
        f"events delivered: {delivered}",
        f"events filtered: {filtered}",
        f"bytes parsed: {stats['bytes']}",
        f"elapsed: {elapsed:.3f} s",
        f"events/s: {rate:.0f}",
    ]
    stream.write("".join(f"{PROG}: {line}\n" for line in lines))
    stream.flush()
