"""The parts of a journal consumer, each with one job.

Where a response enters, and where an event leaves:

* :mod:`.intake`: a response read off the request's future (by ``poll()``'s
  wait, or the then-callback of :mod:`.callbacks`) and fed, as bytes or
  the broker's own buffer, into
* a pipeline (:mod:`.pipeline`): :mod:`.fast`, the C core, which parses,
  filters by *since* and name, and orders history in its heap, then pops
  batches whose event objects the consumer's event builder makes as they
  are taken; or :mod:`.hooks`, flux.abc's documented hooks in Python, for
  subclasses that override one;
* :mod:`.queue`: what waits for delivery, in stream order, taken by
  ``poll()``, :mod:`.batches` or :mod:`.callbacks`;
* :mod:`.live`: the shortcut of a live stream on a flux-core RPC, a
  response of one event taken from C to its event object past the batch
  and the queue, for ``poll()`` and the C continuation;
* :mod:`.resume`: where the request resumes (*since*, a cursor).
"""

from flux_journal.consumer.fast import CorePipeline
from flux_journal.consumer.hooks import HookPipeline
from flux_journal.consumer.resume import ResumePoint

# The flux.abc hooks whose overriding sends a consumer down the hook pipeline.
_HOOKS = ("process_response", "create_event", "is_empty_response")


def core_kind(cls):
    """The C stream kind for consumers of class *cls*, if its hooks are
    the built-in ones of a consumer the C core understands, else 0."""
    for owner in cls.__mro__:
        if "_CORE_KIND" in owner.__dict__:
            break
    if not owner._CORE_KIND:  # pylint: disable=protected-access
        return 0
    for hook in _HOOKS:
        if getattr(cls, hook) is not getattr(owner, hook):
            return 0
    return owner._CORE_KIND  # pylint: disable=protected-access


def open_pipeline(consumer, queue, build_events):
    """The pipeline for a new request of *consumer*, filling *queue*.

    *build_events* is the consumer's event builder for the C pipeline
    (callable(batch, names, resume)), or None if it has none.

    Raises:
        TypeError: cursor_window was asked of a consumer on the hook
            pipeline, which keeps no record of delivered events
        ValueError: since is a malformed cursor
    """
    resume = ResumePoint(
        consumer.since,
        consumer.cursor_window,
        ordered=bool(consumer.full) and consumer.ordered,
    )
    kind = core_kind(type(consumer)) if build_events is not None else 0
    if kind:
        return CorePipeline(consumer, queue, resume, kind, build_events)
    if resume.window is not None:
        raise TypeError(
            "cursor_window needs flux-journal's own job or resource event "
            "building (this subclass overrides a hook)"
        )
    return HookPipeline(consumer, queue, resume)
