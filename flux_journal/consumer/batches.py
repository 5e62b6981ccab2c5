"""Batches of events (``poll_batch()``, ``set_batch_callback()``): what is
deliverable without waiting, added to a list in one go."""

from itertools import islice

from flux_journal import core
from flux_journal.consumer.queue import Raise
from flux_journal.gcpause import CollectorPaused


def extend_batch(batch, max_events, queue, pipeline, take_arrived, sentinel):
    """Add deliverable events to *batch* without waiting: up to
    *max_events* in all, not past the end (None) or an error.

    Python's cyclic garbage collector is paused meanwhile (and resumed, if
    it was running, before this returns; see :mod:`flux_journal.gcpause`):
    a batch keeps hundreds of new event objects alive at once, and they
    hold no reference cycles.

    Args:
        queue, pipeline: the consumer's delivery queue and pipeline
        take_arrived: take_arrived(limit), taking arrived responses
        sentinel: the consumer's SENTINEL_EVENT
    """
    with CollectorPaused():
        _extend(batch, max_events, queue, pipeline, take_arrived, sentinel)


def _extend(batch, max_events, queue, pipeline, take_arrived, sentinel):
    ready = queue.ready
    while batch[-1] is not None and len(batch) < max_events:
        if batch[-1] is sentinel:
            return  # a batch ends with the history
        batch.extend(islice(queue.events, max_events - len(batch)))
        if len(batch) == max_events or batch[-1] is None:
            return
        if ready:
            if ready[0].__class__ is Raise:
                return  # an error waits: the next call raises it
            batch.append(ready.popleft())
            continue
        in_history = not pipeline.sentinel_reached
        wanted = max_events - len(batch)
        if not pipeline.fill(max_events=wanted) and not take_arrived(core.BATCH_SIZE):
            return
        if in_history and pipeline.sentinel_reached:
            # a batch ends with the history (and the sentinel, if any)
            if ready and ready[0] is sentinel:
                batch.append(ready.popleft())
            return
