"""The event container journal events derive from.

flux-core's ``flux.eventlog.EventLogEvent`` when flux-core's bindings
import, so ``isinstance(event, flux.eventlog.EventLogEvent)`` holds for
flux-journal's events too; otherwise an equivalent defined here.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Dict, Union

from flux_journal._flux import optional_flux_attr


class _EventLogEvent(dict):
    """One eventlog entry (RFC 18): a dict with name, timestamp and context.

    Built from a dict or a JSON string; a missing "context" becomes {}.
    """

    def __init__(self, event: Union[Dict[str, Any], str]) -> None:
        if isinstance(event, str):
            event = json.loads(event)
        super().__init__(event)  # type: ignore[arg-type]  # a str was decoded above
        if "context" not in self:
            self["context"] = {}

    def __str__(self) -> str:
        return "{0.timestamp:<0.5f}: {0.name} {0.context}".format(self)

    @property
    def name(self) -> str:
        """The event name."""
        return self["name"]

    @property
    def timestamp(self) -> float:
        """Seconds since the epoch."""
        return self["timestamp"]

    @property
    def context(self) -> Dict[str, Any]:
        """The context dict ({} when the entry had none)."""
        return self["context"]

    @property
    def context_string(self) -> str:
        """The context as compact, key-sorted JSON, or "" when empty."""
        if not self.context:
            return ""
        return json.dumps(
            self.context, ensure_ascii=False, separators=(",", ":"), sort_keys=True
        )


if TYPE_CHECKING:
    # flux-core's class has the same interface (and no annotations)
    EventLogEvent = _EventLogEvent
else:
    EventLogEvent = optional_flux_attr("flux.eventlog", "EventLogEvent") or _EventLogEvent
