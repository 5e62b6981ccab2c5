"""Exact resume cursors: where a consumer stopped, even among equal
timestamps and events that arrive late.

Timestamps alone cannot say where a stream stopped: distinct events can
share one (real streams have such pairs), so ``since=<timestamp>`` may
drop an event that was never delivered.  A cursor names the events
already delivered at the timestamps where that matters, as a short
string::

    1795812858.2930121/175992995844.submit
    1795812858.2930121/175992995844.submit,175992995845.alloc
    1795812857.9;1795812858.0/1234.validate;1795812858.2930121/1235.alloc

The first part is the *watermark*: every event with an earlier timestamp
has been delivered.  Each ``<timestamp>/<identities>`` group lists the
events delivered at that timestamp (at or after the watermark).  A
cursor of one group has the group's timestamp as its watermark.

An identity survives a restart of the consumer or of Flux: for the job
journal it is ``<jobid>.<name>``, for the resource journal ``<name>``,
with ``#n`` appended to the n-th repeat of the same identity at the same
timestamp.  Names are percent-encoded.  Resuming with ``since=<cursor>``
delivers the events after the watermark that no group lists: exactly the
events after the cursor, whatever order equal timestamps arrive in.

``event.cursor`` has one group, the events at its own timestamp: exact
when events arrive in time order, as history does.  Live events can arrive
slightly out of order (a job's ``validate`` after later events of other
jobs); :attr:`JournalConsumerBase.cursor` with ``cursor_window=`` keeps a
watermark that far behind the newest event, exact as long as no event
arrives later than that.
"""

import functools
from urllib.parse import quote


@functools.lru_cache(maxsize=256)
def encode_name(name):
    """A name as it appears in an identity (no '/', ',', ';', '#' or '.').
    Cached: a consumer keeping a cursor encodes every event's name, and a
    journal has few names."""
    return quote(name, safe="-_~")


def identity(jobid, name):
    """An event's identity: ``<jobid>.<name>`` in the job journal,
    ``<name>`` in the resource journal (*jobid* None)."""
    name = encode_name(name)
    return name if jobid is None else f"{int(jobid)}.{name}"


def encode(timestamp, idents):
    """The cursor for events `idents` delivered at `timestamp`."""
    return f"{float(timestamp)!r}/{','.join(idents)}"


def encode_window(watermark, groups):
    """The cursor for watermark and {timestamp: identities} groups."""
    parts = [f"{float(watermark)!r}"]
    parts += [encode(ts, idents) for ts, idents in sorted(groups.items()) if idents]
    return ";".join(parts)


def parse(cursor):
    """Return (watermark, {timestamp: [identities]}) of a cursor string.

    Raises:
        ValueError: `cursor` is not a flux-journal cursor
    """
    try:
        parts = cursor.split(";")
        if "/" not in parts[0]:
            watermark = float(parts.pop(0))
        else:
            watermark = None
        groups = {}
        for part in parts:
            stamp, sep, idents = part.partition("/")
            if not sep or not idents:
                raise ValueError
            groups[float(stamp)] = idents.split(",")
        if not groups:
            raise ValueError
        if watermark is None:
            watermark = min(groups)
        if watermark > min(groups):
            raise ValueError
    except ValueError:
        raise ValueError(f"not a flux-journal cursor: {cursor!r}") from None
    return watermark, groups


class CursorSeed:
    """The events a resumed consumer was told it had already delivered at
    one timestamp: the start of a cursor chain (see :func:`chain_idents`)."""

    __slots__ = ("timestamp", "idents")

    def __init__(self, timestamp, idents):
        self.timestamp = timestamp
        self.idents = list(idents)


def occurrence(base, seen):
    """The identity of the next event with identity `base`, given how many
    were seen before it at the same timestamp."""
    return f"{base}#{seen}" if seen else base


def chain_idents(event):
    """Identities of the events delivered at event's timestamp up to and
    including event, oldest first.

    Events that share their timestamp with the event delivered before them
    link to it in ``_cursor_prev``; the chain ends at an event with no
    link or at a :class:`CursorSeed`.
    """
    chain = []
    while event is not None:
        chain.append(event)
        event = getattr(event, "_cursor_prev", None)
    idents = []
    for link in reversed(chain):
        if isinstance(link, CursorSeed):
            idents.extend(link.idents)
            continue
        base = link._cursor_ident()
        repeats = sum(1 for i in idents if i == base or i.startswith(base + "#"))
        idents.append(occurrence(base, repeats))
    return idents


class DeliveredWindow:
    """What a consumer delivered in the last `window` seconds of event
    time, for a cursor that stays exact when events arrive up to `window`
    seconds late.

    Resumed from a cursor, it starts from that cursor's watermark and
    groups, so its own cursors never claim less than was delivered before.
    While `ordered` (history, sorted by time), the cursor needs only the
    newest timestamp's group and stays small; the window's groups are kept
    all the same, because live events that follow may be older than the
    newest history event.
    """

    def __init__(self, window, watermark=None, groups=None, ordered=False):
        self.window = float(window)
        self.floor = watermark
        self.ordered = ordered
        # {timestamp: identities delivered there, or the (jobid, name)
        # of the one event delivered there alone}
        self.groups = {ts: list(idents) for ts, idents in (groups or {}).items()}
        self.newest = max(self.groups) if self.groups else None
        self._trim_at = 64

    def record(self, events):
        """Record delivered *events* (an iterable), yielding each once it
        is recorded.  One loop for every event a consumer with a window
        delivers, so it stays in one frame."""
        groups = self.groups
        window = self.window
        for event in events:
            ts = event["timestamp"]
            newest = self.newest
            if newest is not None and ts < newest - window:
                # below the watermark: the cursor covers it without a
                # record (an unordered history is full of these)
                yield event
                continue
            group = groups.get(ts)
            if group is None:
                # Most events are the first at their timestamp: kept as
                # (jobid, name), their identity made only if a cursor
                # names them (few do: those at the newest times).
                groups[ts] = (getattr(event, "jobid", None), event["name"])
            else:
                if type(group) is not list:  # pylint: disable=unidiomatic-typecheck
                    group = groups[ts] = _identities(group)
                base = event._cursor_ident()
                repeats = sum(1 for i in group if i == base or i.startswith(base + "#"))
                group.append(occurrence(base, repeats))
            if newest is None or ts > newest:
                self.newest = ts
                # trim when the groups have doubled: amortized O(1) per event
                if len(groups) > self._trim_at:
                    self._trim(self._bound(ts - self.window))
                    self._trim_at = 2 * max(len(groups), 32)
            yield event

    def end_of_order(self):
        """Events may arrive out of time order from now on: history is
        over."""
        self.ordered = False

    def _bound(self, watermark):
        return watermark if self.floor is None else max(watermark, self.floor)

    def watermark(self):
        """The timestamp before which everything has been delivered."""
        if self.newest is None:
            return self.floor
        return self._bound(self.newest if self.ordered else self.newest - self.window)

    def _trim(self, watermark):
        for ts in [ts for ts in self.groups if ts < watermark]:
            del self.groups[ts]

    def cursor(self):
        """The cursor after everything recorded, or None if nothing was."""
        if self.newest is None:
            return None
        watermark = self.watermark()
        self._trim(self._bound(self.newest - self.window))
        groups = {ts: _identities(group) for ts, group in self.groups.items() if ts >= watermark}
        return encode_window(watermark, groups)


def _identities(group):
    """The identities of a window's group: its list, or the (jobid,
    name) of the one event recorded alone at its timestamp."""
    return group if type(group) is list else [identity(*group)]  # pylint: disable=unidiomatic-typecheck
