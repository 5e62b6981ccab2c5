"""The hook pipeline: flux.abc's documented hooks, called exactly as
documented, for subclasses that override one (the slow, pure-Python way)."""

import json

from flux_journal import core
from flux_journal.consumer.pipeline import Pipeline
from flux_journal.consumer.queue import Raise


def _event_timestamp(event):
    return event.timestamp


class HookPipeline(Pipeline):
    """Responses decoded by json and turned into events by the consumer's
    ``process_response()`` / ``create_event()``; ordered history gathered
    in Python until the sentinel."""

    def __init__(self, consumer, queue, resume):
        super().__init__(consumer, queue, resume)
        self._in_history = bool(consumer.full) and consumer.ordered
        self._history = []
        self._deferred = []  # errors during history, raised after it

    def feed(self, payload):
        core.validate(payload)
        resp = json.loads(payload)
        consumer = self.consumer
        if consumer.full and not self.sentinel_reached and consumer.is_empty_response(resp):
            self.sentinel_reached = True
            self._close_history()
            if consumer.include_sentinel:
                self.queue.ready.append(consumer.SENTINEL_EVENT)
            return
        kwargs = consumer.process_response(resp)
        since, allow, deny = self.resume.threshold, consumer.allow, consumer.deny
        target = self._history if self._in_history else self.queue.ready
        for entry in resp["events"]:
            event = consumer.create_event(entry, **kwargs)
            if event.timestamp <= since:
                continue
            if (allow is not None and event.name not in allow) or (
                deny is not None and event.name in deny
            ):
                continue
            target.append(event)

    def fail(self, exc):
        (self._deferred if self._in_history else self.queue.ready).append(Raise(exc))

    def finish(self, exc):
        self.over = True
        self._close_history()
        if exc is not None:
            self.queue.ready.append(Raise(exc))
        self.queue.ready.append(None)

    def buffered(self):
        return len(self._history)

    def retire(self):
        self._close_history()

    def _close_history(self):
        """Release gathered history in time order (a stable sort keeps
        arrival order for equal timestamps), then the errors met meanwhile."""
        if not self._in_history:
            return
        self._in_history = False
        self._history.sort(key=_event_timestamp)
        self.queue.ready.extend(self._history)
        self.queue.ready.extend(self._deferred)
        self._history = []
        self._deferred = []

    @property
    def history_complete(self):
        return self.sentinel_reached and not self._history

    def stats(self):
        return {"backlog": len(self._history) + len(self.queue.ready)}
