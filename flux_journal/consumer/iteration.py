"""flux-journal extensions of a consumer: iteration over its events and
use as a context manager."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterator, Optional

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
