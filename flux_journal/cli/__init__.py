"""``flux-journal``: read Flux journals from the command line.

Subcommands:

``flux-journal jobs``
    the job-manager journal (every job's events), as text or JSON lines
``flux-journal resource``
    the resource journal (node online/offline, drain/undrain, ...)
``flux-journal archive --db FILE.sqlite|postgresql://...``
    store the job (or, with ``--resource``, resource) journal in SQLite
    or PostgreSQL
``flux-journal history --db FILE.sqlite|postgresql://...``
    list the archived jobs like ``flux jobs`` (or their events)
``flux-journal metrics``
    serve Prometheus metrics built from the job and resource journals

Each reads from the Flux instance at ``FLUX_URI`` (or ``--uri``), from a
simulated instance (``--sim``) or from a captured stream (``--replay``).
By default ``jobs``, ``resource`` and ``archive`` read the journal's
history and stop at the sentinel that ends it; ``--follow`` keeps them
streaming live events until interrupted.  ``metrics`` always follows.
``--reconnect`` follows an instance across its restarts.
Run ``flux-journal COMMAND --help`` for the options.

Exit status: 0 on success; 1 on an error (one line on stderr), or when
malformed responses were skipped; 2 for a usage error; 3 when a followed
stream ended unasked (the instance shut down, the service went away, the
connection was lost); 130 after Ctrl-C (143 after SIGTERM); 141 when the
reader of the output went away (``| head``).
"""

from flux_journal.cli.arguments import DEFAULT_REORDER_WINDOW, build_parser
from flux_journal.cli.argtypes import parse_time
from flux_journal.cli.commands import main
from flux_journal.cli.errors import CliError
from flux_journal.cli.sources import (
    DEFAULT_SIM_JOBS,
    DEFAULT_SIM_RESOURCE_EVENTS,
    add_source_arguments,
    open_source,
    simulated_instance,
)

__all__ = [
    "main",
    "build_parser",
    "parse_time",
    "simulated_instance",
    "add_source_arguments",
    "open_source",
    "CliError",
    "DEFAULT_REORDER_WINDOW",
    "DEFAULT_SIM_JOBS",
    "DEFAULT_SIM_RESOURCE_EVENTS",
]
