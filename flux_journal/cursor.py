"""Exact resume cursors: where a consumer stopped, even among equal
timestamps.

Timestamps alone cannot say where a stream stopped: distinct events can
share one (real streams have such pairs), so ``since=<timestamp>`` may
drop an event that was never delivered.  A cursor is the timestamp plus
the identities of the events already delivered *at that timestamp*, as a
short string::

    1795812858.2930121/175992995844.submit
    1795812858.2930121/175992995844.submit,175992995845.alloc

An identity survives a restart of the consumer or of Flux: for the job
journal it is ``<jobid>.<name>``, for the resource journal ``<name>``,
with ``#n`` appended to the n-th repeat of the same identity at the same
timestamp.  Names are percent-encoded.  Resuming with
``since=<cursor>`` delivers every event with a later timestamp plus the
events at the cursor's timestamp whose identity is not listed: exactly
the events after the cursor, whatever order equal timestamps arrive in.
"""

from urllib.parse import quote


def encode_name(name):
    """A name as it appears in an identity (no '/', ',', '#' or '.')."""
    return quote(name, safe="-_~")


def encode(timestamp, idents):
    """The cursor string for events `idents` delivered at `timestamp`."""
    return f"{float(timestamp)!r}/{','.join(idents)}"


def parse(cursor):
    """Return (timestamp, list of identities) of a cursor string.

    Raises:
        ValueError: `cursor` is not a flux-journal cursor
    """
    stamp, sep, idents = cursor.partition("/")
    try:
        if not sep or not idents:
            raise ValueError
        timestamp = float(stamp)
    except ValueError:
        raise ValueError(f"not a flux-journal cursor: {cursor!r}") from None
    return timestamp, idents.split(",")


class CursorSeed:
    """The events a resumed consumer was told it has already delivered at
    the cursor's timestamp: the start of the cursor chain (see
    :func:`chain_idents`)."""

    __slots__ = ("timestamp", "idents")

    def __init__(self, timestamp, idents):
        self.timestamp = timestamp
        self.idents = list(idents)


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
        idents.append(f"{base}#{repeats}" if repeats else base)
    return idents
