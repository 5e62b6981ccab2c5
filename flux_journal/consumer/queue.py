"""What waits for delivery, in stream order."""

from collections import deque


class Raise:
    """An exception waiting in the delivery queue at its place in the
    stream."""

    __slots__ = ("exc",)

    def __init__(self, exc):
        self.exc = exc


class DeliveryQueue:
    """The events and end-of-stream items a consumer has yet to deliver.

    Attributes:
        events: an iterator over the current C batch's events, each built
            when taken; delivered first
        ready: a deque of what follows them: events of the hook pipeline,
            the sentinel event, None (the end), :class:`Raise` items.  A
            pipeline adds to either only while both are empty, so the
            order of the stream is kept.
    """

    __slots__ = ("events", "ready")

    def __init__(self):
        self.events = iter(())
        self.ready = deque()

    def take(self, nothing=None):
        """The next item to deliver, or *nothing* if none waits.  A
        :class:`Raise` item is raised instead of returned."""
        for event in self.events:
            return event
        if self.ready:
            item = self.ready.popleft()
            if item.__class__ is Raise:
                raise item.exc
            return item
        return nothing

    def requeue_all(self):
        """Put everything still waiting into `ready`, in order (before a
        restart, whose pipeline fills the queue anew)."""
        pending = list(self.events)
        self.events = iter(())
        self.ready.extendleft(reversed(pending))
