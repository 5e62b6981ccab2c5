"""Helpers shared by the command line and archive tests."""

from flux_journal import JournalConsumer, ResourceJournalConsumer


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
