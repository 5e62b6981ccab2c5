"""The interface shared by a consumer's two pipelines.

A pipeline takes one request's responses (payloads as bytes, from
:mod:`.intake`) and puts what they hold into the consumer's
:class:`~.queue.DeliveryQueue`, in delivery order: the C pipeline
(:mod:`.fast`) for consumers whose events the C core builds, the hook
pipeline (:mod:`.hooks`) for subclasses that override a flux.abc hook.
"""

from flux_journal.errors import BacklogFullError


class Pipeline:
    """One request's responses on their way to the delivery queue.

    Attributes:
        over (bool): no more responses will come
        cancelled (bool): stop() has sent the cancel request
        sentinel_reached (bool): the service's sentinel was received
    """

    def __init__(self, consumer, queue, resume):
        self.consumer = consumer
        self.queue = queue
        self.resume = resume
        self.over = False
        self.cancelled = False
        self.sentinel_reached = False

    # -- responses in ------------------------------------------------------

    def feed(self, payload):
        """Take one response payload (bytes).  Raises PayloadError if it
        cannot be used."""
        raise NotImplementedError

    def fail(self, exc):
        """A response could not be used: raise *exc* at its place."""
        raise NotImplementedError

    def finish(self, exc):
        """The service ended the stream (*exc* None for ENODATA, else the
        error to raise after what came before it)."""
        raise NotImplementedError

    def buffered(self):
        """How many events wait in the pipeline."""
        raise NotImplementedError

    def check_backlog(self):
        """Give up when more than the consumer's *max_backlog* events wait:
        cancel the request and end the stream with BacklogFullError after
        what was buffered."""
        limit = self.consumer.max_backlog
        if limit is None or self.over or self.buffered() <= limit:
            return
        self.consumer.stop()
        self.finish(
            BacklogFullError(f"journal history exceeds max_backlog={limit} buffered events")
        )

    # -- events out --------------------------------------------------------

    @property
    def gathering(self):
        """True while ordered history is still coming: nothing can be
        delivered yet."""
        return False

    def fill(self, max_events=None, keep_end=True):
        """Move the next deliverable part (a batch, or one end-of-stream
        item) into the queue.  Returns False if there was none."""
        del max_events, keep_end
        return False

    def retire(self):
        """Before a restart: everything received goes to the queue, in
        order, without the end-of-stream None."""
        raise NotImplementedError

    @property
    def history_complete(self):
        """True once the sentinel was received and history delivered."""
        return self.sentinel_reached

    def stats(self):
        """Counters of this request's stream, as a dict."""
        raise NotImplementedError
