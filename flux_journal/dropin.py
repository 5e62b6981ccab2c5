"""Put flux-journal's consumers in place of flux-core's, in a running
process, so existing Flux tools and scripts use the C core unchanged.

Code written against flux-core was written against what flux-core *does*,
so the consumer classes installed here keep one behaviour of flux-core's
that the documentation contradicts: the callback is never called with
None at the end of the stream (callbacks in the field, flux-core's own
tests among them, dereference every event they get).  ``install(
end_of_stream_callback=True)`` installs the documented behaviour instead,
that of the classes imported from :mod:`flux_journal` directly.
"""

from __future__ import annotations

import importlib
from typing import List

from flux_journal import abc, job, resource


class JournalConsumerBase(abc.JournalConsumerBase):
    """:class:`flux_journal.abc.JournalConsumerBase` as ``install()`` puts
    it in flux.abc: the callback is not called with None at the end of
    the stream, as with flux-core's own class."""

    _CALLBACK_SEES_END = False


class JournalConsumer(job.JournalConsumer, JournalConsumerBase):
    """:class:`flux_journal.job.JournalConsumer` as ``install()`` puts it
    in flux.job: the callback is not called with None at the end of the
    stream, as with flux-core's own class."""


class ResourceJournalConsumer(resource.ResourceJournalConsumer, JournalConsumerBase):
    """:class:`flux_journal.resource.ResourceJournalConsumer` as
    ``install()`` puts it in flux.resource: the callback is not called
    with None at the end of the stream, as with flux-core's own class."""


# The consumer classes install() puts in place: flux-core's behaviour
# (keyed False) or the documented one (True).
_CONSUMERS = {
    False: {
        "JournalConsumerBase": JournalConsumerBase,
        "JournalConsumer": JournalConsumer,
        "ResourceJournalConsumer": ResourceJournalConsumer,
    },
    True: {
        "JournalConsumerBase": abc.JournalConsumerBase,
        "JournalConsumer": job.JournalConsumer,
        "ResourceJournalConsumer": resource.ResourceJournalConsumer,
    },
}

# The other names install() replaces; they behave alike either way.
_SHARED = {
    "JournalEventBase": abc.JournalEventBase,
    "JournalEvent": job.JournalEvent,
    "SENTINEL_EVENT": job.SENTINEL_EVENT,
    "ResourceJournalEvent": resource.ResourceJournalEvent,
}

# (flux module, attribute) pairs that install() replaces: every place
# flux-core exposes a journal class.
_REPLACEMENTS = [
    ("flux.abc", "JournalConsumerBase"),
    ("flux.abc", "JournalEventBase"),
    ("flux.abc.journal", "JournalConsumerBase"),
    ("flux.abc.journal", "JournalEventBase"),
    ("flux.job", "JournalConsumer"),
    ("flux.job.journal", "JournalConsumer"),
    ("flux.job.journal", "JournalEvent"),
    ("flux.job.journal", "SENTINEL_EVENT"),
    ("flux.resource", "ResourceJournalConsumer"),
    ("flux.resource.journal", "ResourceJournalConsumer"),
    ("flux.resource.journal", "ResourceJournalEvent"),
]


def install(*, end_of_stream_callback: bool = False) -> List[str]:
    """Replace flux-core's journal classes with flux-journal's.

    After this, ``flux.abc.JournalConsumerBase``, ``flux.job.JournalConsumer``,
    ``flux.job.journal.JournalEvent`` / ``SENTINEL_EVENT``,
    ``flux.resource.ResourceJournalConsumer`` and
    ``flux.resource.journal.ResourceJournalEvent`` are flux-journal's, for
    code that looks them up after the call (``from flux.job import
    JournalConsumer`` executed earlier keeps the old class).

    Args:
        end_of_stream_callback (bool): call the callback with None once the
            stream has ended, as flux-core documents; by default the
            installed consumers do what flux-core's code does and never
            call it with None (``poll()`` returns None either way).

    Returns:
        list of str: the names replaced, as "module.attribute"
    Raises:
        ImportError: flux-core's Python bindings (the ``flux`` package)
            cannot be imported, so there is nothing to replace
    """
    try:
        modules = {
            name: importlib.import_module(name)
            for name in sorted({module for module, _ in _REPLACEMENTS})
        }
    except Exception as exc:  # a broken flux install raises more than ImportError
        raise ImportError(
            "flux_journal.install() needs flux-core's Python bindings (the "
            f"'flux' package), which cannot be imported: {exc}"
        ) from exc
    replacements = {**_SHARED, **_CONSUMERS[bool(end_of_stream_callback)]}
    replaced = []
    for module, attr in _REPLACEMENTS:
        setattr(modules[module], attr, replacements[attr])
        replaced.append(f"{module}.{attr}")
    return replaced
