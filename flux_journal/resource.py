"""The resource journal consumer, interface-compatible with
``flux.resource.ResourceJournalConsumer`` (``flux.resource.journal``)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Dict, Iterator, Optional, Union

from flux_journal import core
from flux_journal.abc import JournalConsumerBase
from flux_journal.consumer.fast import slow_path_event
from flux_journal.events import DecodedOnAccess, JournalEventBase

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from flux_journal.abc import ConsumerOptions

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

    R: Optional[Dict[str, Any]]
    # JSON text of R until first read (see DecodedOnAccess)
    _R_json: bytes

    def __init__(self, event: Dict[str, Any], R: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(event)
        self.R = R

    def __str__(self) -> str:
        if self.is_empty():
            return f"{self.timestamp:<0.5f} End of historical data stream"
        return " ".join([f"{self.timestamp:<0.5f}", self.name, self.context_string])


# R is decoded on first access (flux-core sets it in __init__; an
# attribute set there still wins over this).
ResourceJournalEvent.R = DecodedOnAccess("R")  # type: ignore[assignment]

# Flags that need more than the common path of the builder's __call__().
_SLOW = core.IRREGULAR | core.TIE


def _complete(event: ResourceJournalEvent, flags: int, attached: Iterator[bytes]) -> None:
    """Give a slow-path event the R of its response, if it carries one."""
    if flags & core.WITH_R:
        event._R_json = next(attached)


class ResourceEventBuilder:
    """Makes the ResourceJournalEvents of the C pipeline's batches, each
    when it is taken (see job.JobEventBuilder)."""

    def __call__(self, batch: Any, names: Any, resume: Any) -> Iterator[ResourceJournalEvent]:
        attached = iter(batch.attached)
        new_event = _new_dict
        cls = ResourceJournalEvent
        event = resume.last_event
        for ts, name, flags, item in zip(batch.timestamps, batch.names, batch.flags, batch.items):
            if flags & _SLOW:
                complete = functools.partial(_complete, flags=flags, attached=attached)
                unusual = slow_path_event(cls, ts, names, name, flags, item, complete, resume, event)
                if unusual is not None:  # else delivered before the cursor resumed from
                    yield (event := unusual)
                continue
            event = new_event(cls)
            event["timestamp"] = ts
            event["name"] = names[name]
            event["context"] = item
            if flags:
                event._R_json = next(attached)
            yield event
        resume.last_event = event

    def one(
        self, ts: float, ident: int, name: str, flags: int, item: Any, carried: bytes,
        resume: Any,
    ) -> ResourceJournalEvent:
        """The event of the live step (flux_journal.consumer.live): one
        plain event, with the R text it *carried* (empty when its flags
        say it carries none), built as __call__()'s common path builds
        each."""
        del ident  # resource events have no job
        event = _new_dict(ResourceJournalEvent)
        event["timestamp"] = ts
        event["name"] = name
        event["context"] = item
        if flags:
            event._R_json = carried
        resume.last_event = event
        return event


class ResourceJournalConsumer(JournalConsumerBase):
    """Consumer of the resource journal (``resource.journal``)

    Delivers node events as :class:`ResourceJournalEvent` objects through
    :meth:`poll` or a callback (see :class:`JournalConsumerBase`).  The
    service always sends history, so there is no *full* argument.

    Args:
        flux_handle: a Flux handle
        since (float or str): deliver only events with timestamp > since,
            or only the events after a cursor (``event.cursor``)
        include_sentinel (bool): deliver :data:`SENTINEL_EVENT` between
            history and live events

    Keyword-only flux-journal extensions (*allow*, *deny*, *ordered*,
    *max_backlog*) are described in :class:`JournalConsumerBase`; the
    resource journal has no name filter of its own, so *allow* and *deny*
    are applied in C before any Python object exists.
    """

    _CORE_KIND = core.RESOURCE
    _EVENT_BUILDER = ResourceEventBuilder

    def __init__(
        self,
        flux_handle: Any,
        since: Union[float, str] = 0.0,
        include_sentinel: bool = False,
        **extras: Unpack[ConsumerOptions],
    ) -> None:
        super().__init__(
            flux_handle,
            "resource.journal",
            full=True,
            since=since,
            include_sentinel=include_sentinel,
            **extras,
        )

    def process_response(self, resp: Dict[str, Any]) -> Dict[str, Any]:
        """Return the response's R as a create_event() keyword argument."""
        return {"R": resp.get("R")}

    def create_event(  # type: ignore[override]  # flux-core's keywords
        self, entry: Dict[str, Any], R: Optional[Dict[str, Any]] = None
    ) -> ResourceJournalEvent:
        """Create a ResourceJournalEvent from one event entry in a response"""
        return ResourceJournalEvent(entry, R)
