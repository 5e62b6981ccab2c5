"""What flux-journal borrows from flux-core's Python bindings, when they exist.

flux-journal never needs Flux to import or run: the simulated instance and
replayed captures serve every test.  When the ``flux`` package *is*
importable, events carry ``flux.job.JobID`` job ids and derive from
``flux.eventlog.EventLogEvent``, so code that checks types keeps working.
Everything else falls back to flux-journal's own equivalents, defined with
the same values as flux-core.
"""

import importlib

# Values of flux-core's C enums (flux/core/message.h, flux/core/rpc.h).
FLUX_NODEID_ANY = 0xFFFFFFFF
FLUX_RPC_NORESPONSE = 1
FLUX_RPC_STREAMING = 2


def optional_flux_attr(module, name):
    """Return module.name from flux-core's bindings, or None if unusable.

    A flux package that is installed but broken (for instance libflux-core
    missing) raises something other than ImportError, so any exception
    means "not available".
    """
    try:
        return getattr(importlib.import_module(module), name)
    except Exception:  # pylint: disable=broad-except
        return None


def jobid_class():
    """flux.job.JobID if flux-core's bindings import, else our own JobID.

    Both are int subclasses built from any RFC 19 encoding and share the
    same properties, so callers need not care which they got.  Look this
    up once and keep it: a failed import is retried on every call.
    """
    cls = optional_flux_attr("flux.job", "JobID")
    if cls is None:
        # Imported here so that flux_journal._flux stays cheap to import
        # for callers that never need a job id class.
        from flux_journal.jobid import (  # pylint: disable=import-outside-toplevel
            JobID as cls,
        )
    return cls
