"""Helpers shared by the tests: reading a consumer to its end."""

from flux_journal import JournalConsumer, PayloadError, ResourceJournalConsumer


def poll_all(consumer, timeout=10.0):
    """poll() until None; return the events (*timeout*: per poll)."""
    events = []
    while (event := consumer.poll(timeout)) is not None:
        events.append(event)
    return events


def poll_all_raising(consumer, timeout=10.0):
    """poll() until None, collecting events and the PayloadError and
    OSError exceptions raised, in the order they came."""
    out = []
    while True:
        try:
            event = consumer.poll(timeout)
        except (PayloadError, OSError) as exc:
            out.append(exc)
            continue
        if event is None:
            return out
        out.append(event)


def journal_events(journal, handle, *, follow=False, **kwargs):
    """What flux-journal's consumer delivers from *handle*: the history
    (stopping at the sentinel), or with *follow* the whole stream."""
    cls = JournalConsumer if journal == "jobs" else ResourceJournalConsumer
    consumer = cls(handle, include_sentinel=True, **kwargs).start()
    events = []
    while True:
        event = consumer.poll(30.0)
        if event is None:
            return events
        if event.is_empty():
            if follow:
                continue
            consumer.stop()
            while consumer.poll(30.0) is not None:
                pass
            return events
        events.append(event)
