"""flux-journal: fast, drop-in consumers of Flux journals.

The classes mirror flux-core's (``flux.abc``, ``flux.job.journal``,
``flux.resource.journal``) name for name; responses are decoded, filtered
and ordered by a C core, and event objects are built only when delivered.

    >>> from flux_journal import JournalConsumer
    >>> consumer = JournalConsumer(flux.Flux()).start()
    >>> while (event := consumer.poll()) is not None:
    ...     print(event)

:func:`install` makes existing code that imports flux-core's classes use
these instead.
"""

from flux_journal.abc import JournalConsumerBase, JournalEventBase
from flux_journal.errors import BacklogFullError, PayloadError
from flux_journal.dropin import install
from flux_journal.job import SENTINEL_EVENT, JournalConsumer, JournalEvent
from flux_journal.resource import ResourceJournalConsumer, ResourceJournalEvent

__all__ = [
    "BacklogFullError",
    "JournalConsumer",
    "JournalConsumerBase",
    "JournalEvent",
    "JournalEventBase",
    "PayloadError",
    "ResourceJournalConsumer",
    "ResourceJournalEvent",
    "SENTINEL_EVENT",
    "install",
]
