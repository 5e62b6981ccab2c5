"""The C pipeline: responses parsed, filtered and ordered by the C core
(:class:`flux_journal.core.CoreStream`), event objects built from its
batches only as they are delivered."""

from flux_journal import core
from flux_journal.consumer.pipeline import Pipeline
from flux_journal.consumer.queue import Raise
from flux_journal.events import JournalEventBase


def slow_path_event(cls, timestamp, names, name, flags, item, complete, resume, previous):
    """An event of a batch's slow path (flagged IRREGULAR or TIE), or None
    if it was delivered before the cursor the stream resumed from.

    Irregular entries are built from the whole decoded entry, exactly as
    flux-core builds them; *complete(event)* then sets the attributes of
    the event's class (jobid, jobspec, R) before a tie is linked to the
    event delivered before it (*previous*) for event.cursor.
    """
    event = cls.__new__(cls)
    if flags & core.IRREGULAR:
        JournalEventBase.__init__(event, item)
    else:
        dict.__init__(event, timestamp=timestamp, name=names[name], context=item)
    complete(event)
    if flags & core.TIE and not resume.link_tie(event, previous):
        return None
    return event


class CorePipeline(Pipeline):
    """Responses into a C stream; batches of events out.

    Args:
        kind (int): the C stream kind (core.JOB or core.RESOURCE)
        build_events: callable(batch, names, resume) generating a batch's
            event objects (the consumer's event builder)
    """

    def __init__(self, consumer, queue, resume, kind, build_events):
        super().__init__(consumer, queue, resume)
        # Every journal sends a sentinel; only full history is ordered.
        kind |= core.HISTORY
        if consumer.full and consumer.ordered:
            kind |= core.ORDERED
        stream = core.CoreStream(kind, resume.threshold)
        for name in consumer.allow or ():
            stream.filter(name)
        for name in consumer.deny or ():
            stream.filter(name, deny=True)
        if resume.skip is not None:
            stream.check_range(resume.skip[0], resume.skip[1])
        self.core = stream
        self._build = build_events
        self._errors = {}  # marker tag -> exception waiting at it
        self._next_tag = core.FIRST_USER_MARK
        # the feeds are the C stream's own, called once per response
        self.feed = stream.feed
        self.feed_address = stream.feed_address

    def feed_many(self, payloads, lengths):
        """Feed payloads laid end to end (see CoreStream.feed_many); a
        payload C refuses is reported at its place."""
        self.core.feed_many(payloads, lengths, self.fail)

    def _mark_error(self, exc):
        tag = self._next_tag
        self._next_tag += 1
        self._errors[tag] = exc
        self.core.mark(tag)

    def fail(self, exc):
        self._mark_error(exc)

    def finish(self, exc):
        self.over = True
        if exc is not None:
            self._mark_error(exc)
        self.core.end()

    def buffered(self):
        return self.core.backlog

    @property
    def gathering(self):
        return self.core.gathering

    def fill(self, max_events=core.BATCH_SIZE, keep_end=True, batch=None):
        """See Pipeline.fill(); *batch*: one already popped (by the C
        step of DrainIntake), queued as a popped one would be."""
        if batch is None:
            batch = self.core.pop(max_events)
            if batch is None:
                return False
        marker = batch.marker
        queue = self.queue
        if not marker:
            events = self._build(batch, self.core.names, self.resume)
            if self.resume.window is not None:
                events = self.resume.recorded(events)
            queue.events = events
        elif marker == core.SENTINEL:
            self.sentinel_reached = True
            self.resume.end_of_order()
            consumer = self.consumer
            # flux-core never delivers the sentinel when full is False
            if consumer.include_sentinel and consumer.full:
                queue.ready.append(consumer.SENTINEL_EVENT)
        elif marker == core.END:
            if not keep_end:
                return False
            queue.ready.append(None)
        else:
            queue.ready.append(Raise(self._errors.pop(marker)))
        return True

    def retire(self):
        self.core.end()
        queue = self.queue
        while self.fill(keep_end=False):
            queue.ready.extend(queue.events)

    def stats(self):
        return self.core.stats()
