"""Put flux-journal's consumers in place of flux-core's, in a running
process, so existing Flux tools and scripts use the C core unchanged."""

import importlib

# (flux module, attribute, flux_journal module) triples that install()
# replaces: every place flux-core exposes a journal class.
_REPLACEMENTS = [
    ("flux.abc", "JournalConsumerBase", "flux_journal.abc"),
    ("flux.abc", "JournalEventBase", "flux_journal.abc"),
    ("flux.abc.journal", "JournalConsumerBase", "flux_journal.abc"),
    ("flux.abc.journal", "JournalEventBase", "flux_journal.abc"),
    ("flux.job", "JournalConsumer", "flux_journal.job"),
    ("flux.job.journal", "JournalConsumer", "flux_journal.job"),
    ("flux.job.journal", "JournalEvent", "flux_journal.job"),
    ("flux.job.journal", "SENTINEL_EVENT", "flux_journal.job"),
    ("flux.resource", "ResourceJournalConsumer", "flux_journal.resource"),
    ("flux.resource.journal", "ResourceJournalConsumer", "flux_journal.resource"),
    ("flux.resource.journal", "ResourceJournalEvent", "flux_journal.resource"),
]


def install():
    """Replace flux-core's journal classes with flux-journal's.

    After this, ``flux.abc.JournalConsumerBase``, ``flux.job.JournalConsumer``,
    ``flux.job.journal.JournalEvent`` / ``SENTINEL_EVENT``,
    ``flux.resource.ResourceJournalConsumer`` and
    ``flux.resource.journal.ResourceJournalEvent`` are flux-journal's, for
    code that looks them up after the call (``from flux.job import
    JournalConsumer`` executed earlier keeps the old class).

    Returns:
        list of str: the names replaced, as "module.attribute"
    Raises:
        ImportError: flux-core's Python bindings (the ``flux`` package)
            cannot be imported, so there is nothing to replace
    """
    try:
        modules = {
            name: importlib.import_module(name)
            for name in sorted({r[0] for r in _REPLACEMENTS})
        }
    except Exception as exc:  # a broken flux install raises more than ImportError
        raise ImportError(
            "flux_journal.install() needs flux-core's Python bindings (the "
            f"'flux' package), which cannot be imported: {exc}"
        ) from exc
    replaced = []
    for module, attr, source in _REPLACEMENTS:
        setattr(modules[module], attr, getattr(importlib.import_module(source), attr))
        replaced.append(f"{module}.{attr}")
    return replaced
