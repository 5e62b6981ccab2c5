"""Where a request's stream resumes: the consumer's *since*, a number or a
cursor string (see :mod:`flux_journal.cursor`)."""

import math

from flux_journal import cursor


class ResumePoint:
    """The filtering and cursor state of one request.

    Attributes:
        threshold (float): events with a timestamp not greater than this
            are dropped (in C, or by the hook pipeline)
        skip: for a cursor, (watermark, newest timestamp, {timestamp:
            identities already delivered}); else None
        last_event: the last event delivered, for the cursors of events
            sharing its timestamp
        window (DeliveredWindow or None): what :attr:`cursor` reports
    """

    def __init__(self, since, cursor_window, ordered):
        self.skip = None
        self.last_event = None
        self.window = None
        self._skip_seen = {}  # (timestamp, identity) -> times seen
        if not isinstance(since, str):
            if cursor_window is not None:
                self.window = cursor.DeliveredWindow(cursor_window, since, ordered=ordered)
            self.threshold = since
            return
        watermark, groups = cursor.parse(since)
        newest = max(groups)
        self.skip = (
            watermark,
            newest,
            {ts: frozenset(idents) for ts, idents in groups.items()},
        )
        self.last_event = cursor.CursorSeed(newest, groups[newest])
        if cursor_window is not None:
            self.window = cursor.DeliveredWindow(cursor_window, watermark, groups, ordered=ordered)
        # keep events at the watermark itself: some may be new
        self.threshold = math.nextafter(watermark, -math.inf)

    def link_tie(self, event, previous):
        """*event* shares its timestamp with the event delivered before it
        (*previous*, or the cursor resumed from): link them for
        event.cursor.  Returns False if *event* was already delivered
        before that cursor."""
        skip = self.skip
        ts = event.timestamp
        if skip is not None and skip[0] <= ts <= skip[1]:
            # The n-th event of one identity at one timestamp in this run
            # is the n-th of the run the cursor came from: responses keep
            # their order, and equal identities share a response.
            base = event._cursor_ident()
            seen = self._skip_seen.get((ts, base), 0)
            self._skip_seen[ts, base] = seen + 1
            if cursor.occurrence(base, seen) in skip[2].get(ts, ()):
                return False
        if previous is not None and previous.timestamp == event.timestamp:
            event._cursor_prev = previous
        return True

    def recorded(self, events):
        """Pass events on, recording each for the consumer's cursor."""
        return self.window.record(events)

    def end_of_order(self):
        """History is over: events may now arrive out of time order."""
        if self.window is not None:
            self.window.end_of_order()
