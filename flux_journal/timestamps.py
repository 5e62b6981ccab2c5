"""Reading a point in time written by a user: seconds since the epoch or
an ISO 8601 date/time (``--since`` of the journal commands, ``--since`` and
``--until`` of ``history``)."""

from datetime import datetime

__all__ = ["parse_timestamp"]


def parse_timestamp(text):
    """Seconds since the epoch for *text*: a number of seconds, or an ISO
    8601 date/time (``Z`` or an offset for UTC or another zone; without a
    zone, local time, as ``date`` prints it).

    Raises:
        ValueError: *text* is neither
    """
    try:
        return float(text)
    except ValueError:
        pass
    return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()
