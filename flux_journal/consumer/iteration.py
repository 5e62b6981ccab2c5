"""flux-journal extensions of a consumer: iteration over its events and
use as a context manager."""

import time


class StreamIteration:
    """``for event in consumer``, ``consumer.events()`` and ``with
    consumer:``, for :class:`flux_journal.abc.JournalConsumerBase`, on top
    of its start(), stop(), poll() and wait loop."""

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
        if self.rpc is None or self._pipeline.over:
            return
        self.stop()
        deadline = time.monotonic() + 10.0
        try:
            while time.monotonic() < deadline:
                if self.poll(max(0.0, deadline - time.monotonic())) is None:
                    break
        except Exception:  # pylint: disable=broad-except
            pass  # the with-block's own exception, if any, matters more
