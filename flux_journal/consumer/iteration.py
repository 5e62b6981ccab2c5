"""flux-journal extensions of a consumer: iteration over its events and
use as a context manager; :func:`stop_and_drain`, which ends a stream
cleanly (the context manager's exit, and every command's stop)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterator, Optional

from flux_journal.errors import PayloadError

__all__ = ["StreamIteration", "stop_and_drain"]

# Events taken per call while draining (they are dropped).
_DRAIN_BATCH = 1000


def stop_and_drain(consumer: Any, seconds: float) -> None:
    """Cancel *consumer*'s stream and read it to its end, for at most
    *seconds*, so that the service is left with nothing pending.  Events
    still arriving are dropped; an error ending the stream ends the
    wait.  Nothing to do if the consumer never started or its stream is
    over."""
    if consumer.rpc is None or consumer._pipeline.over:  # pylint: disable=protected-access
        return
    consumer.stop()
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        try:
            items = consumer.poll_batch(_DRAIN_BATCH, left)
        except (TimeoutError, PayloadError):
            continue
        except Exception:  # pylint: disable=broad-except
            return  # ended by an error: nothing more comes
        if items and items[-1] is None:
            return

if TYPE_CHECKING:
    from typing import Protocol, TypeVar

    from flux_journal.events import JournalEventBase

    # The mixin's methods are typed for the consumer class that has them.
    class _Stream(Protocol):
        """What the mixin's methods use of the consumer they serve."""

        rpc: Any
        _pipeline: Any

        @property
        def SENTINEL_EVENT(self) -> JournalEventBase: ...  # read only: subclasses narrow it
        def start(self) -> Any: ...
        def stop(self) -> None: ...
        def poll(self, timeout: float = -1.0) -> Optional[JournalEventBase]: ...
        def _poll_wait(self, timeout: float, at_sentinel: Any = None) -> Any: ...
        def events(
            self, timeout: Optional[float] = None, until_sentinel: bool = False
        ) -> Iterator[JournalEventBase]: ...

    _StreamT = TypeVar("_StreamT", bound=_Stream)


class StreamIteration:
    """``for event in consumer``, ``consumer.events()`` and ``with
    consumer:``, for :class:`flux_journal.abc.JournalConsumerBase`, on top
    of its start(), stop(), poll() and wait loop."""

    def events(
        self: _Stream, timeout: Optional[float] = None, until_sentinel: bool = False
    ) -> Iterator[JournalEventBase]:
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

    def __iter__(self: _Stream) -> Iterator[JournalEventBase]:
        return self.events()

    def __enter__(self: _StreamT) -> _StreamT:
        if self.rpc is None:
            self.start()
        return self

    def __exit__(self: _Stream, *exc_info: object) -> None:
        """Cancel the stream and read it to its end (at most 10 s), so the
        service is left with nothing pending.  An error the stream ends
        with is not raised: the with-block's own exception, if any,
        matters more."""
        stop_and_drain(self, 10.0)
