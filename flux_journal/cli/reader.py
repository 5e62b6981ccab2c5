"""The reading loop: a journal's events through filters to a sink.

:class:`Reader` drives a :class:`~flux_journal.cli.follow.Follower`
through the history, the sentinel, live events, interruptions and lost
streams; :func:`print_stats` reports on a run (``--stats``).
"""

import sys

from flux_journal.cli.errors import PROG
from flux_journal.cli.follow import gathers_unordered
from flux_journal.errors import PayloadError

__all__ = ["Reader", "print_stats"]

# At most this many malformed-response warnings are printed.
_MAX_WARNINGS = 10


class Reader:
    """Drives a follower: history, sentinel, live events, interruptions.

    Every delivered event goes through the filters to the sink.  Once a
    batch is written, and if the sink records positions, the position
    moves to the consumer's cursor (which covers the events filters
    dropped too); then the sink may checkpoint or commit.  A history read
    unordered (an archive's) is no place to resume from until it is all
    in: the position keeps its cursor meanwhile (the archive skips what it
    holds of each job, see :meth:`~flux_journal.cli.archive.Archive.add`).
    A stop is requested through *stop* (a
    :class:`~flux_journal.cli.follow.StopRequest`).
    """

    def __init__(
        self, follower, sink, position, *, stop, follow, filters, drop_history, progress,
        unwrap=None,
    ):
        self.follower = follower
        # the event of an item (items of a tree are (instance, event))
        self.unwrap = unwrap
        self.sink = sink
        self.position = position
        self.stop = stop
        self.follow = follow
        self.filters = filters
        self.drop_history = drop_history
        self.progress = progress
        self.in_history = True
        self._stream = None  # the consumer whose events come
        self._gathering = False  # its history comes unordered, not all in yet
        self.filtered = 0  # dropped here: --jobid, --no-history (resource)
        self.warnings = 0
        self.ended = False  # the stream ended (asked, or a capture's end)

    @property
    def consumer(self):
        """The follower's current consumer."""
        return self.follower.consumer

    # -- the loop ----------------------------------------------------------

    def run(self):
        """Read until the sentinel (or the end of the stream with
        follow), or a stop request.  Everything delivered before an error
        (:class:`~flux_journal.cli.errors.ServiceError`,
        :class:`~flux_journal.cli.follow.StreamLost`) has reached the
        sink when it propagates."""
        stop_at_sentinel = not self.follow
        while not self.stop.requested:
            items = self._poll()
            if items is None:
                continue
            sentinel = self._take(items, stop_at_sentinel)
            consumer = self.consumer
            if (
                self.in_history
                and not self.ended
                and consumer is not None
                and consumer.history_complete
            ):
                # The sentinel went by undelivered (flux-core's consumers
                # deliver it only with full history).
                self._history_done()
                if stop_at_sentinel:
                    sentinel = True
                    self.follower.stop()
            self._progress()
            if sentinel:
                self.follower.drain()
                return
            if self.ended:
                return
        # Interrupted: cancel the stream; what arrives meanwhile is left
        # for the next run (it is not written, so not checkpointed).
        self.progress.clear()
        self.follower.drain()

    def _poll(self):
        """The next batch of items ([] if none came in time), or None
        after a malformed response was skipped."""
        try:
            return self.follower.poll(self.sink.timeout())
        except PayloadError as exc:
            self._warn(f"skipped a malformed {self.follower.service} response: {exc}")
            return None

    def _take(self, items, stop_at_sentinel):
        """Write the wanted events of *items*, move the position and let
        the sink checkpoint; return whether the run stops at the
        sentinel."""
        self._note_stream()
        gathered = self._gathering
        batch, consumed, left_out, sentinel, history = self._sort(items, stop_at_sentinel)
        if batch:
            # stdout may be the terminal the indicator is drawn on
            self.progress.erase()
            if history:
                # what the sink had already is not counted twice
                consumed -= self.sink.write(batch[:history], history=True)
            if history < len(batch):
                self.sink.write(batch[history:])
        if gathered and not self._gathering:
            self.sink.history_written()  # the unordered history is all in
        if consumed and self.sink.records_position:
            if gathered and (self._gathering or left_out):
                # Unordered history: the cursor may not pass it yet.
                self.position.advance(self.position.cursor, consumed)
            elif not left_out:
                # Everything delivered is written or filtered out: that
                # is where the consumer's cursor stands.  Taken now,
                # before the consumer delivers more (even while draining).
                self.position.advance(self.consumer.cursor, consumed)
        self.sink.flushed(self.position)
        return sentinel

    def _note_stream(self):
        """Before the items of a new stream (the first, or a
        reconnection's): whether its history comes unordered, and tell a
        sink that reads it so that the history may repeat."""
        consumer = self.consumer
        if consumer is self._stream or not self.sink.unordered_history:
            return
        if self._stream is not None:
            self.sink.new_stream()
        self._stream = consumer
        self._gathering = gathers_unordered(consumer)

    def _sort(self, items, stop_at_sentinel):
        """Split *items* into (events to write, events consumed, whether
        delivered events were left unwritten, whether to stop here, how
        many of the events to write are of an unordered history)."""
        batch = []
        consumed = 0
        unwrap = self.unwrap
        history = None
        for item in items:
            if item is None:
                self.ended = True
                break
            event = item if unwrap is None else unwrap(item)
            if event.is_empty():
                self._history_done()
                if self._gathering:
                    self._gathering = False
                    history = len(batch)
                if stop_at_sentinel:
                    # Live events are left for the next run.  A batch
                    # opening with the sentinel can carry some:
                    # poll_batch ends a batch at the sentinel only when
                    # history events precede it.  The consumer's cursor
                    # covers them, so the position must not move to it.
                    self.follower.stop()
                    return batch, consumed, item is not items[-1], True, history or 0
                continue
            if unwrap is None or item.instance == "/":
                # the position is the root instance's (a tree's children
                # keep theirs apart)
                consumed += 1
            if (self.drop_history and self.in_history) or (
                self.filters and not self._wanted(event)
            ):
                self.filtered += 1
                continue
            batch.append(item)
        if history is None:
            history = len(batch) if self._gathering else 0
        return batch, consumed, False, False, history

    def _history_done(self):
        self.in_history = False
        self.progress.clear()

    def _wanted(self, event):
        for keep in self.filters:
            if not keep(event):
                return False
        return True

    def _progress(self):
        if self.in_history and self.progress.enabled and self.consumer is not None:
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
        f"peak backlog: {stats['peak_backlog']}",
        f"elapsed: {elapsed:.3f} s",
        f"events/s: {rate:.0f}",
    ]
    stream.write("".join(f"{PROG}: {line}\n" for line in lines))
    stream.flush()
