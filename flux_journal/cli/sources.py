"""Where a command reads journals from: a Flux instance, a simulated
instance or a captured stream.

This is the source-selection API every ``flux-journal`` subcommand
shares; a new subcommand gets the same options and behaviour with::

    from flux_journal.cli.sources import add_source_arguments, open_source

    add_source_arguments(parser, "jobs")          # while building the parser
    ...
    with open_source(args, "jobs") as source:     # after parsing
        consumer = JournalConsumer(source.handle).start()
        source.start()                            # the consumer is listening
        ...

Without ``--uri``, ``--sim`` or ``--replay`` the Flux instance at
``FLUX_URI`` is read.  Every failure to open a source is a
:class:`~flux_journal.cli.errors.CliError` with a one-line message.
"""

import errno
import os

from flux_journal.cli.argtypes import positive_int, rate
from flux_journal.cli.errors import CliError, say

__all__ = [
    "DEFAULT_SIM_JOBS",
    "DEFAULT_SIM_RESOURCE_EVENTS",
    "SIM_CHILDREN",
    "SIM_CHILD_JOBS",
    "SIM_NODES",
    "TOPICS",
    "Source",
    "add_source_arguments",
    "open_source",
    "simulated_children",
    "simulated_instance",
    "instance_name",
]

#: Jobs in the simulated instance of a bare ``--sim``.
DEFAULT_SIM_JOBS = 1000
#: Drain/undrain/online/offline events in a bare ``--sim`` of ``resource``.
DEFAULT_SIM_RESOURCE_EVENTS = 1000
#: Nodes of the simulated instance for the resource journal.
SIM_NODES = 8
#: Running child instances of the simulated instance with ``--recursive``
#: (each with one child of its own).
SIM_CHILDREN = 2
#: Jobs of each simulated child and grandchild instance.
SIM_CHILD_JOBS = 3
# A few percent of simulated jobs share their first timestamps with the
# previous job, as happens in real streams: the simulated instance should
# be no easier to resume from than a real one.
_SIM_TIES = 0.03

#: The RPC topic of each journal.
TOPICS = {"jobs": "job-manager.events-journal", "resource": "resource.journal"}

_NO_FLUX = (
    "no Flux instance to read: FLUX_URI is not set (run inside a Flux instance "
    "or pass --uri URI); use --sim to read a simulated instance, or --replay FILE "
    "for a captured stream"
)


def add_source_arguments(parser, journal="jobs", *, sim_help=None):
    """Add the source options to *parser* (an argparse parser) in their
    own argument group, and return that group.

    The options: ``--uri URI``, ``--sim [N]`` and ``--replay FILE``
    (mutually exclusive), ``--reconnect``, ``--seed`` and ``--sim-rate``.
    They set ``args.uri``, ``args.sim`` (None, 0 for a bare ``--sim``, or
    N), ``args.replay``, ``args.reconnect``, ``args.seed`` and
    ``args.sim_rate``, which is what :func:`open_source` reads.  *journal* (``jobs`` or ``resource``)
    words ``--sim``'s help; *sim_help* replaces it.
    """
    group = parser.add_argument_group("source (default: the Flux instance at FLUX_URI)")
    choice = group.add_mutually_exclusive_group()
    choice.add_argument("--uri", metavar="URI", help="read the Flux instance at URI")
    if sim_help is None and journal == "resource":
        sim_help = (
            "read a simulated instance of %d nodes whose resource journal holds N "
            "events after boot (default %d)" % (SIM_NODES, DEFAULT_SIM_RESOURCE_EVENTS)
        )
    elif sim_help is None:
        sim_help = "read a simulated instance with a generated history of N jobs (default %d)" % (
            DEFAULT_SIM_JOBS
        )
    choice.add_argument(
        "--sim", nargs="?", const=0, type=positive_int, metavar="N", help=sim_help
    )
    choice.add_argument(
        "--replay",
        metavar="FILE",
        help="read a captured stream: one raw journal response per line, "
        "ending the stream after the last line",
    )
    group.add_argument(
        "--reconnect",
        action="store_true",
        help="when the instance shuts down, the service goes away or the connection "
        "is lost (and when the first connection fails), retry (waiting 1 s, doubling "
        "up to 30 s) and resume where the stream stopped, instead of exiting with "
        "status 3",
    )
    group.add_argument(
        "--seed", type=int, default=0, help="random seed of the simulated instance (default 0)"
    )
    group.add_argument(
        "--sim-rate",
        type=rate,
        default=20.0,
        metavar="RATE",
        help="with --sim, once live events follow: live events per second (default 20)",
    )
    return group


class Source:
    """An open source: ``handle`` (a ``flux.Flux`` or a simulated
    handle, to give a journal consumer; None while a first connection
    is still to be made), ``label`` (what it is, for messages and
    ``--stats``), ``ends`` (a capture: its stream ends by itself, which
    is no error), ``connect_child(uri)`` (opens a child instance, for
    ``--recursive``) and, for ``--sim`` with live events, the feeder
    that posts them.

    Call :meth:`start` once the consumer is listening and :meth:`close`
    at the end (or use the source as a context manager);
    :meth:`reconnect` opens a new connection to the same instance.
    """

    def __init__(self, handle, label, feeder=None, *, connect=None, ends=False,
                 connect_child=None):
        self.handle = handle
        self.label = label
        self.ends = ends
        self.connect_child = connect_child if connect_child is not None else _no_children
        self._connect = connect
        self._feeder = feeder

    @property
    def can_reconnect(self):
        """Whether :meth:`reconnect` can open a new connection."""
        return self._connect is not None

    def reconnect(self):
        """Open a new connection to the instance (a new handle) and
        return its handle.  Raises OSError if it cannot be reached."""
        self.handle = self._connect()
        return self.handle

    def start(self):
        """The consumer is listening: start simulated live events."""
        if self._feeder is not None:
            self._feeder.start()

    def close(self):
        """Stop simulated live events."""
        if self._feeder is not None:
            self._feeder.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def simulated_instance(journal, size=None, seed=0):
    """Return (handle, description) of the simulated instance ``--sim``
    reads for *journal* (``jobs`` or ``resource``).

    *size* is the number of jobs (default :data:`DEFAULT_SIM_JOBS`) or of
    resource events after boot (default
    :data:`DEFAULT_SIM_RESOURCE_EVENTS`).  The same arguments always give
    the same history.  Live events are posted only by ``--follow``.
    """
    # Imported here so that `--help` and argument errors stay quick.
    from flux_journal.sim import (  # pylint: disable=import-outside-toplevel
        ResourceWorkload,
        SimFlux,
        Workload,
    )

    if journal == "jobs":
        njobs = size or DEFAULT_SIM_JOBS
        workload = Workload(njobs=njobs, seed=seed, ties=_SIM_TIES)
        return (
            SimFlux(jobs=workload, autolive=False),
            f"simulated instance ({njobs} jobs, seed {seed})",
        )
    nevents = size or DEFAULT_SIM_RESOURCE_EVENTS
    workload = ResourceWorkload(nnodes=SIM_NODES, seed=seed, nevents=nevents)
    return (
        SimFlux(resources=workload, autolive=False),
        f"simulated instance ({SIM_NODES} nodes, seed {seed})",
    )


def open_source(args, journal, *, live=None):
    """Open the source *args* names (see :func:`add_source_arguments`)
    for reading *journal* (``jobs`` or ``resource``); return a
    :class:`Source`.

    ``--replay FILE`` serves the file's lines as *journal*'s responses,
    then ends the stream (ENODATA).  ``--sim`` builds
    :func:`simulated_instance`; with *live* (default: ``args.follow``,
    or false when the command has no ``--follow``) its
    :class:`~flux_journal.sim.LiveFeeder` posts live events to *journal*
    at ``--sim-rate`` once :meth:`Source.start` is called.  Otherwise
    the Flux instance at ``--uri`` or ``FLUX_URI`` is opened; with
    ``--reconnect`` (``args.reconnect``), an instance that cannot be
    reached yet gives a source without a handle, to be reconnected to.

    Raises :class:`~flux_journal.cli.errors.CliError` if the source
    cannot be opened.
    """
    # pylint: disable-next=import-outside-toplevel
    from flux_journal.sim import LiveFeeder, SimFlux

    if args.replay is not None:
        if not os.path.isfile(args.replay):
            raise CliError(f"cannot read {args.replay}: no such file")
        try:
            handle = SimFlux.replay(args.replay, topic=TOPICS[journal], end=errno.ENODATA)
        except OSError as exc:
            raise CliError(f"cannot read {args.replay}: {exc.strerror or exc}") from exc
        return Source(handle, args.replay, ends=True)
    if args.sim is not None:
        handle, label = simulated_instance(journal, args.sim or None, args.seed)
        connect_child = None
        if journal == "jobs" and getattr(args, "recursive", False):
            connect_child = simulated_children(handle).connect
            label += f" with {SIM_CHILDREN} running child instances, each with a child"
        if live is None:
            live = getattr(args, "follow", False)
        feeder = None
        if live:
            feeder = LiveFeeder(
                handle, journal, args.sim_rate, args.seed, on_error=_feeder_stopped
            )
        return Source(handle, label, feeder, connect=handle.connect,
                      connect_child=connect_child)
    uri = args.uri or os.environ.get("FLUX_URI")
    if not uri:
        raise CliError(_NO_FLUX)
    flux = _import_flux(uri)

    def connect():
        return flux.Flux(uri)

    try:
        return Source(connect(), uri, connect=connect, connect_child=flux.Flux)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if not getattr(args, "reconnect", False):
            raise CliError(f"cannot connect to Flux at {uri}: {reason}") from exc
        say(f"cannot connect to Flux at {uri}: {reason}; retrying")
        return Source(None, uri, connect=connect, connect_child=flux.Flux)


def instance_name(args):
    """The name ``archive`` gives the instance *args* reads, unless
    ``--instance`` names it: one that stays the same across restarts of
    the archiver, so that its resume position is found again.

    ``--replay FILE``: the file's name (without its directory);
    ``--sim``: ``sim``; otherwise the URI (``--uri`` or ``FLUX_URI``),
    which a system instance keeps across restarts (``local:///run/flux/
    local``), as does one started with ``-Slocal-uri=local://PATH``.
    """
    if args.replay is not None:
        return os.path.basename(args.replay)
    if args.sim is not None:
        return "sim"
    uri = args.uri or os.environ.get("FLUX_URI")
    if not uri:
        raise CliError(_NO_FLUX)
    return uri


def simulated_children(handle):
    """Give the simulated instance *handle* child instances, for
    ``--sim --recursive``; return the :class:`~flux_journal.sim.SimHost`
    that connects to them.

    :data:`SIM_CHILDREN` running children with :data:`SIM_CHILD_JOBS`
    jobs each, and each a running child of its own with as many jobs;
    and one child that finished before the command started (which
    ``--recursive`` reports: it could not be read).  Always the same.
    """
    from flux_journal.sim import SimHost  # pylint: disable=import-outside-toplevel

    host = SimHost(root=handle)
    host.finish_child(host.start_child(handle))
    for _ in range(SIM_CHILDREN):
        child = host.start_child(handle)
        grandchild = host.start_child(child.handle)
        for instance in (child, grandchild):
            for _ in range(SIM_CHILD_JOBS):
                instance.handle.inject_job("success")
    return host


def _no_children(uri):
    raise ConnectionRefusedError(
        errno.ECONNREFUSED, f"a captured stream has no child instance to connect to ({uri})"
    )


def _feeder_stopped(exc):
    say(f"simulated live events stopped: {exc}")


def _import_flux(uri):
    try:
        import flux  # pylint: disable=import-outside-toplevel
    except Exception as exc:  # pylint: disable=broad-except
        raise CliError(
            f"cannot read {uri}: flux-core's Python bindings are not importable ({exc}); "
            "use --sim to read a simulated instance, or --replay FILE"
        ) from exc
    return flux
