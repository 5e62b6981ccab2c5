"""Journal event objects: flux-core's ``JournalEventBase`` and the
lazily decoded attributes of flux-journal's events."""

from __future__ import annotations

import time
from typing import Any, Dict, Optional

from flux_journal import core, cursor
from flux_journal.eventlog import EventLogEvent


class JournalEventBase(EventLogEvent):
    """A container for an event from a journal RPC interface

    A dict holding the eventlog entry (RFC 18), with attributes:

    Attributes:
        name (str): event name (the journal service defines the names)
        timestamp (float): event time in seconds since the epoch
        context (dict): context dictionary ({} if the entry had none)
        context_string (str): the context as compact key=value JSON text
    """

    def __init__(self, event: Dict[str, Any]) -> None:
        # An entry without a timestamp is stamped now, as flux-core does.
        if "timestamp" not in event:
            event["timestamp"] = time.time()
        super().__init__(event)

    def is_empty(self) -> bool:
        """Return True if this event is an empty journal event"""
        return "name" not in self

    def __str__(self) -> str:
        if self.is_empty():
            return f"{self.timestamp:<0.5f} End of historical data stream"
        return " ".join([f"{self.timestamp:<0.5f}", self.name, self.context_string])

    @property
    def cursor(self) -> str:
        """Where the stream stands after this event, as a short string.

        A consumer created with ``since=event.cursor`` delivers exactly the
        events after this one, even among equal timestamps, provided
        events arrived in time order (history does; for live events see
        ``JournalConsumerBase.cursor``).  flux-journal extension, for
        events of flux-journal's own job and resource consumers; see
        :mod:`flux_journal.cursor`.
        """
        return cursor.encode(self.timestamp, cursor.chain_idents(self))

    def _cursor_ident(self) -> str:
        """This event's identity within its timestamp (see cursor)."""
        return cursor.identity(None, self.name)


class DecodedOnAccess:
    """An event attribute (jobspec, R) kept as JSON text until first read.

    Decoding a job's jobspec and R is most of the cost of its events, and
    many consumers never look at them.  The batch builder stores the text
    as ``_<name>_json``; the first read decodes it and stores the value as
    an ordinary instance attribute, which from then on shadows this
    (non-data) descriptor, exactly like an attribute set in ``__init__``.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.raw_name = f"_{name}_json"

    def __get__(self, event: Optional[JournalEventBase], owner: Optional[type] = None) -> Any:
        if event is None:
            return self
        raw = event.__dict__.pop(self.raw_name, None)
        value = None if raw is None else core.decode_json(raw)
        event.__dict__[self.name] = value
        return value

    def undecoded(self, event: Any) -> Optional[bytes]:
        """The attribute's JSON text while *event* holds it undecoded
        (None once it was read, or if *event* never held it so)."""
        held = getattr(event, "__dict__", None)
        return None if held is None else held.get(self.raw_name)
