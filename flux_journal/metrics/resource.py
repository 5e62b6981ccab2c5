"""Rank sets from the resource journal.

flux-core's resource module posts, with idsets of broker ranks encoded
as strings such as ``"0-3,5"``:

- ``restart`` (``ranks``: every rank of the instance, ``online``: those
  up when the module loaded) when the module starts;
- ``online`` / ``offline`` as brokers join and leave;
- ``drain`` / ``undrain`` as operators (or flux itself) drain ranks;
  drains are kept across restarts, so the history replays those of
  earlier runs before the current ``restart``;
- ``torpid`` / ``lively`` as brokers stop and resume answering.

:class:`RankTracker` keeps the sets these imply and counts each event
name; a context it cannot use is counted as an error.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional, Set

__all__ = ["RANK_STATES", "RankTracker", "decode_idset"]

#: The ``state`` label values of ``flux_resource_ranks``.
RANK_STATES = ("online", "offline", "drained", "torpid")

# Event names that change no rank set.
_INERT_NAMES = frozenset(("resource-define", "resource-update", "truncate"))
# Event names whose idset joins (True) or leaves (False) a set, by set.
_SET_CHANGES = {
    "online": ("online", True),
    "offline": ("online", False),
    "drain": ("drained", True),
    "undrain": ("drained", False),
    "torpid": ("torpid", True),
    "lively": ("torpid", False),
}


def decode_idset(text: str) -> Set[int]:
    """The ranks of an idset string (``"0-3,5"``, ``"[0-3,5]"``, ``""``).

    Raises:
        ValueError: *text* is not an idset
    """
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    ranks: Set[int] = set()
    if not text:
        return ranks
    for part in text.split(","):
        first, dash, last = part.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise ValueError(f"not an idset: {text!r}")
        low = int(first)
        high = int(last) if dash else low
        if high < low:
            raise ValueError(f"not an idset: {text!r}")
        ranks.update(range(low, high + 1))
    return ranks


class RankTracker:
    """Rank sets and counts kept from the resource journal's events.

    Attributes:
        events: event name -> events consumed
        ranks: every rank the journal named (the instance's ranks after
            a ``restart``)
        online, drained, torpid: the ranks in each condition
        errors: kind -> events that could not be used (``bad_context``,
            ``unknown_event``)
        last_timestamp: timestamp of the latest event consumed, or None
    """

    def __init__(self) -> None:
        self.events: Dict[str, int] = {}
        self.ranks: Set[int] = set()
        self.online: Set[int] = set()
        self.drained: Set[int] = set()
        self.torpid: Set[int] = set()
        self.errors: Dict[str, int] = {}
        self.last_timestamp: Optional[float] = None

    def count_error(self, kind: str, count: int = 1) -> None:
        """Add *count* to the error counter *kind*."""
        self.errors[kind] = self.errors.get(kind, 0) + count

    def consume(self, events: Iterable[Dict[str, Any]]) -> None:
        """Apply resource events, in stream order (no sentinel, no None)."""
        for event in events:
            name = event["name"]
            self.events[name] = self.events.get(name, 0) + 1
            timestamp = event["timestamp"]
            if self.last_timestamp is None or timestamp > self.last_timestamp:
                self.last_timestamp = timestamp
            if name in _INERT_NAMES:
                continue
            try:
                self._apply(name, event["context"])
            except (KeyError, ValueError, TypeError, AttributeError):
                self.count_error("bad_context")

    def _apply(self, name: str, context: Dict[str, Any]) -> None:
        if name == "restart":
            ranks = decode_idset(context["ranks"])
            online = decode_idset(context["online"])
            # A new run of the resource module: who is up starts over;
            # drains persist (the module reloads them).
            self.ranks = ranks
            self.online = online
            self.torpid = set()
            return
        change = _SET_CHANGES.get(name)
        if change is None:
            self.count_error("unknown_event")
            return
        ids = context.get("idset")
        if not isinstance(ids, str):
            raise ValueError("no idset")
        ids = decode_idset(ids)
        which, joins = change
        # Sets are replaced, never changed in place, so that a scrape
        # from another thread always reads a whole one.
        setattr(self, which, (getattr(self, which) | ids) if joins else (getattr(self, which) - ids))
        if name == "offline":
            self.torpid = self.torpid - ids
        self.ranks = self.ranks | ids

    def counts(self) -> Dict[str, int]:
        """Ranks per state (``RANK_STATES``); offline ranks are the known
        ranks that are not online."""
        ranks, online = self.ranks, self.online
        return {
            "online": len(online),
            "offline": len(ranks - online),
            "drained": len(self.drained),
            "torpid": len(self.torpid),
        }
