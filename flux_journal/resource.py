"""The resource journal consumer, interface-compatible with
``flux.resource.ResourceJournalConsumer`` (``flux.resource.journal``)."""

from flux_journal import core
from flux_journal.abc import JournalConsumerBase, JournalEventBase

_new_dict = dict.__new__


class ResourceJournalEvent(JournalEventBase):
    """A container for an event from the resource journal

    Attributes:
        name (str): event name (e.g. online, drain, resource-define)
        timestamp (float): event time in seconds since the epoch
        context (dict): context dictionary
        context_string (str): context as compact key=value JSON text
        R (dict): the R carried by the response of this event (the
            instance's R on resource-define), else None
    """

    def __init__(self, event, R=None):
        super().__init__(event)
        self.R = R

    def __str__(self):
        if self.is_empty():
            return f"{self.timestamp:<0.5f} End of historical data stream"
        return " ".join([f"{self.timestamp:<0.5f}", self.name, self.context_string])


class ResourceJournalConsumer(JournalConsumerBase):
    """Consumer of the resource journal (``resource.journal``)

    Delivers node events as :class:`ResourceJournalEvent` objects through
    :meth:`poll` or a callback (see :class:`JournalConsumerBase`).  The
    service always sends history, so there is no *full* argument.

    Args:
        flux_handle: a Flux handle
        since (float): deliver only events with timestamp > since
        include_sentinel (bool): deliver :data:`SENTINEL_EVENT` between
            history and live events
    """

    _CORE_KIND = core.RESOURCE

    def __init__(self, flux_handle, since=0.0, include_sentinel=False):
        super().__init__(
            flux_handle,
            "resource.journal",
            full=True,
            since=since,
            include_sentinel=include_sentinel,
        )

    def process_response(self, resp):
        """Return the response's R as a create_event() keyword argument."""
        return {"R": resp.get("R")}

    def create_event(self, entry, R=None):
        """Create a ResourceJournalEvent from one event entry in a response"""
        return ResourceJournalEvent(entry, R)

    def _events_from_batch(self, batch, append):
        names = self._core.names
        items = batch.items
        cls = ResourceJournalEvent
        k = 0
        for ts, name, flags in zip(batch.timestamps, batch.names, batch.flags):
            if flags & core.IRREGULAR:
                event = cls.__new__(cls)
                JournalEventBase.__init__(event, items[k])
            else:
                event = _new_dict(cls)
                event["timestamp"] = ts
                event["name"] = names[name]
                event["context"] = items[k]
            k += 1
            event.R = None
            if flags & core.WITH_R:
                event.R = items[k]
                k += 1
            append(event)
