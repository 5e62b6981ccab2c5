"""``flux-journal``: read Flux journals from the command line.

Subcommands:

``flux-journal jobs``
    the job-manager journal (every job's events), as text or JSON lines
``flux-journal resource``
    the resource journal (node online/offline, drain/undrain, ...)
``flux-journal archive --db FILE.sqlite``
    store the job (or, with ``--resource``, resource) journal in SQLite

Each reads from the Flux instance at ``FLUX_URI`` (or ``--uri``), from a
simulated instance (``--sim``) or from a captured stream (``--replay``).
By default it prints the journal's history and stops at the sentinel
that ends it; ``--follow`` keeps streaming live events until interrupted.
Run ``flux-journal COMMAND --help`` for the options.

Exit status: 0 on success; 1 on an error (one line on stderr), or when
malformed responses were skipped; 2 for a usage error; 130 after Ctrl-C
(143 after SIGTERM); 141 when the reader of the output went away
(``| head``).
"""

import argparse
import errno
import os
import random
import select
import signal
import sqlite3
import stat
import sys
import threading
import time
from datetime import datetime

from flux_journal.archive import Archive, ArchiveError
from flux_journal.checkpoint import Checkpoint, CheckpointError, Position
from flux_journal.errors import PayloadError
from flux_journal.format import COLOR_CHOICES, TIME_FORMATS, make_formatter, use_color
from flux_journal.metrics import command as metrics_command

__all__ = ["main", "build_parser", "parse_time", "simulated_instance", "CliError"]

#: The command's name, as it prefixes every message.
PROG = "flux-journal"

#: Jobs in the simulated instance of a bare ``--sim``.
DEFAULT_SIM_JOBS = 1000
#: Drain/undrain/online/offline events in a bare ``--sim`` of ``resource``.
DEFAULT_SIM_RESOURCE_EVENTS = 1000
# Nodes of the simulated instance for the resource journal.
_SIM_NODES = 8
# A few percent of simulated jobs share their first timestamps with the
# previous job, as happens in real streams: the simulated instance should
# be no easier to resume from than a real one.
_SIM_TIES = 0.03
#: Default of ``--reorder-window``: how late (in event time) a live event
#: may arrive and still be resumed exactly.  Flux's job manager has been
#: seen posting ``validate`` events ~12 ms older than events already
#: sent; seconds leave a wide margin at a small cost in cursor size.
DEFAULT_REORDER_WINDOW = 5.0

_TOPICS = {"jobs": "job-manager.events-journal", "resource": "resource.journal"}
_SERVICES = {"jobs": "job-manager journal", "resource": "resource journal"}
_MODULES = {"jobs": "job-manager", "resource": "resource"}

#: Exit status of a run that read everything it was asked to.
EXIT_OK = 0
#: Exit status after an error (or skipped malformed responses).
EXIT_ERROR = 1
#: Exit status for a command line argparse rejects.
EXIT_USAGE = 2
#: Exit status when the output's reader went away, as if killed by SIGPIPE.
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE

# Events asked of the consumer at a time: big enough that per-batch costs
# (a write, perhaps a checkpoint) vanish, small enough that output starts
# promptly and a kill repeats little.
_POLL_EVENTS = 1000
# Longest a poll blocks, so that Ctrl-C, progress and time-based commits
# are handled promptly while waiting for events.
_POLL_WAIT = 0.2
# How long to wait for the service to end the stream after stop().
_DRAIN_SECONDS = 2.0
# Progress indicator refresh period.
_PROGRESS_PERIOD = 0.2
# At most this many malformed-response warnings are printed.
_MAX_WARNINGS = 10


class CliError(Exception):
    """An error reported as one line on stderr, exiting with *code*."""

    def __init__(self, message, code=EXIT_ERROR):
        super().__init__(message)
        self.code = code


class _BrokenPipe(Exception):
    """The output's reader went away."""


class _ServiceError(Exception):
    """The journal service failed the stream (wraps its OSError)."""

    def __init__(self, exc):
        super().__init__(str(exc))
        self.exc = exc


# ----------------------------------------------------------------------
# Argument types


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0: {text!r}")
    return value


def _rate(text):
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def parse_time(text):
    """Parse ``--since``: seconds since the epoch, or an ISO 8601 date/time.

    A date/time without a zone is local time, as ``date`` prints it.
    """
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a timestamp or ISO 8601 date/time: {text!r}"
        ) from None
    return when.timestamp()


def _names(text):
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"empty event name in {text!r}")
    return names


def _jobid(text):
    # Imported here: JobID may come from flux-core's bindings, which need
    # not be loaded for `--help`.
    from flux_journal.job import JobID  # pylint: disable=import-outside-toplevel

    try:
        jobid = JobID(text)
    except (ValueError, OSError, NotImplementedError):
        raise argparse.ArgumentTypeError(f"not a valid Flux job id: {text!r}") from None
    if not 0 <= jobid < 1 << 64:
        raise argparse.ArgumentTypeError(f"not a valid Flux job id: {text!r}")
    return int(jobid)


def _version():
    try:
        from importlib.metadata import version  # pylint: disable=import-outside-toplevel

        return version("flux-journal")
    except Exception:  # pylint: disable=broad-except
        return "unknown"


# ----------------------------------------------------------------------
# The parser

_DESCRIPTION = """\
Read Flux journals: every job's events (the job-manager journal) or the
resource journal, from a Flux instance, a simulated instance or a
captured stream, as text or JSON lines, or store them in SQLite.
"""

_EPILOG = """\
examples:
  flux-journal jobs --sim                       simulated instance, 1000 jobs
  flux-journal jobs --format json | jq .name    the instance at FLUX_URI
  flux-journal jobs --follow --checkpoint pos.json >> events.jsonl
  flux-journal jobs --jobid f2Wf9hhqD --time-format offset
  flux-journal resource --follow --name drain,undrain
  flux-journal archive --db journal.sqlite --follow

Without --uri, --sim or --replay the Flux instance at FLUX_URI is read.
"""


def _add_source_options(parser, what):
    group = parser.add_argument_group("source (default: the Flux instance at FLUX_URI)")
    choice = group.add_mutually_exclusive_group()
    choice.add_argument("--uri", metavar="URI", help="read the Flux instance at URI")
    if what == "resource":
        sim_help = (
            "read a simulated instance of %d nodes whose resource journal holds N "
            "events after boot (default %d)" % (_SIM_NODES, DEFAULT_SIM_RESOURCE_EVENTS)
        )
    elif what == "archive":
        sim_help = (
            "read a simulated instance: N jobs (default %d), or with --resource N "
            "resource events (default %d)" % (DEFAULT_SIM_JOBS, DEFAULT_SIM_RESOURCE_EVENTS)
        )
    else:
        sim_help = "read a simulated instance with a generated history of N jobs (default %d)" % (
            DEFAULT_SIM_JOBS
        )
    choice.add_argument(
        "--sim", nargs="?", const=0, type=_positive_int, metavar="N", help=sim_help
    )
    choice.add_argument(
        "--replay",
        metavar="FILE",
        help="read a captured stream: one raw journal response per line, "
        "ending the stream after the last line",
    )
    group.add_argument(
        "--seed", type=int, default=0, help="random seed of the simulated instance (default 0)"
    )
    group.add_argument(
        "--sim-rate",
        type=_rate,
        default=20.0,
        metavar="RATE",
        help="with --sim --follow: live events per second (default 20)",
    )


def _add_reading_options(parser, what):
    group = parser.add_argument_group("what to read")
    group.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="after the history, keep streaming live events until interrupted",
    )
    group.add_argument(
        "--since",
        type=parse_time,
        metavar="TIME",
        help="only events after TIME (seconds since the epoch, or ISO 8601 "
        "such as 2026-11-27T21:20:00)",
    )
    group.add_argument(
        "--no-history",
        action="store_true",
        help="skip the history: inactive jobs for the job journal (active jobs' "
        "events are still sent), everything before the sentinel for the "
        "resource journal",
    )
    if what == "archive":
        return
    group.add_argument(
        "--name",
        action="append",
        type=_names,
        metavar="NAME[,NAME]",
        help="only events with these names (repeatable)",
    )
    group.add_argument(
        "--exclude",
        action="append",
        type=_names,
        metavar="NAME[,NAME]",
        help="no events with these names (repeatable)",
    )
    if what == "jobs":
        group.add_argument(
            "--jobid",
            action="append",
            type=_jobid,
            metavar="ID",
            help="only the events of job ID (f58, decimal, hex, dothex or kvs "
            "form; repeatable)",
        )


def _add_diagnostic_options(parser):
    group = parser.add_argument_group("diagnostics")
    group.add_argument(
        "--stats",
        action="store_true",
        help="at the end, print responses, events delivered and filtered, bytes "
        "parsed, elapsed time and events/s to stderr",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress indicator (shown only when stderr is a terminal)",
    )


def _add_reorder_option(group, record):
    group.add_argument(
        "--reorder-window",
        type=_seconds,
        default=DEFAULT_REORDER_WINDOW,
        metavar="SECONDS",
        help="live events can arrive out of time order (dated slightly before "
        "events already received); resuming from %s stays exact for events up to "
        "SECONDS late (default %g); a longer window stores a longer resume cursor"
        % (record, DEFAULT_REORDER_WINDOW),
    )


def _add_journal_command(sub, name, help_text):
    parser = sub.add_parser(
        name,
        help=help_text,
        description=help_text[0].upper() + help_text[1:] + ".",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_source_options(parser, name)
    _add_reading_options(parser, name)
    group = parser.add_argument_group("output")
    group.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text: eventlog-style lines; json: one JSON object per line "
        "(timestamp, name, context%s) (default text)"
        % (", jobid, jobspec, R" if name == "jobs" else ", R"),
    )
    group.add_argument(
        "--time-format",
        choices=TIME_FORMATS,
        default="raw",
        help="text timestamps: raw seconds, ISO 8601, offset from the first event, "
        "or human (default raw)",
    )
    group.add_argument(
        "--color",
        nargs="?",
        const="always",
        default="auto",
        choices=COLOR_CHOICES,
        metavar="WHEN",
        help="colour text output: auto (on a terminal), always or never (default auto)",
    )
    group = parser.add_argument_group("resuming")
    group.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="record progress in FILE; when FILE exists, start right after the "
        "events the run that saved it wrote",
    )
    group.add_argument(
        "--checkpoint-interval",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="update the checkpoint at most this often (0: after every write; "
        "default 1); it is always updated at the end",
    )
    _add_reorder_option(group, "the checkpoint")
    _add_diagnostic_options(parser)
    parser.set_defaults(func=_cmd_read, journal=name)
    return parser


def build_parser():
    """Return the ``flux-journal`` argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_journal_command(sub, "jobs", "print the job-manager journal (events of every job)")
    _add_journal_command(sub, "resource", "print the resource journal")
    parser_archive = sub.add_parser(
        "archive",
        help="store the job (or resource) journal in an SQLite database",
        description="Store the job-manager journal (or with --resource the resource\n"
        "journal) in an SQLite database (WAL mode), resuming exactly where the\n"
        "last committed batch ended.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="tables:\n"
        "  jobs             one row per job: jobid, userid, urgency, state, result,\n"
        "                   t_submit, t_run, t_cleanup, t_inactive, waitstatus,\n"
        "                   exception_type, exception_note, nevents, jobspec, R\n"
        "  events           one row per job event: id, jobid, seq, timestamp, name,\n"
        "                   context\n"
        "  resource_events  seq, timestamp, name, context, R\n"
        "  resume           where the next run starts, per journal\n"
        "example:\n"
        "  sqlite3 FILE 'SELECT result, count(*) FROM jobs GROUP BY result'",
    )
    group = parser_archive.add_argument_group("archive")
    group.add_argument("--db", required=True, metavar="FILE", help="the SQLite database")
    group.add_argument(
        "--resource", action="store_true", help="archive the resource journal instead of jobs"
    )
    group.add_argument(
        "--batch-size",
        type=_positive_int,
        default=10000,
        metavar="N",
        help="commit after N events (default 10000)",
    )
    group.add_argument(
        "--batch-time",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="commit events at most SECONDS after they arrive (default 1)",
    )
    group.add_argument(
        "--durable",
        action="store_true",
        help="make every commit survive power loss (SQLite synchronous=FULL); "
        "by default a crash of the process never loses a commit",
    )
    _add_reorder_option(group, "the archive")
    _add_source_options(parser_archive, "archive")
    _add_reading_options(parser_archive, "archive")
    _add_diagnostic_options(parser_archive)
    parser_archive.set_defaults(func=_cmd_archive)
    parser_metrics = metrics_command.add_parser(sub)
    _add_source_options(parser_metrics, "metrics")
    parser_metrics.set_defaults(func=lambda args: metrics_command.run(args, _open_source))
    return parser


# ----------------------------------------------------------------------
# Sources


class _Source:
    """An open handle, what it is, and its simulated live events if any."""

    def __init__(self, handle, label, feeder=None):
        self.handle = handle
        self.label = label
        self._feeder = feeder

    def start(self):
        """The consumer is listening: start simulated live events."""
        if self._feeder is not None:
            self._feeder.start()

    def close(self):
        """Stop simulated live events."""
        if self._feeder is not None:
            self._feeder.stop()


class _SimFeeder:
    """Feeds a simulated instance live events at a steady rate, from a
    thread, so that ``--sim --follow`` looks like a running instance."""

    def __init__(self, handle, journal, rate, seed):
        self._handle = handle
        self._journal = journal
        self._period = 1.0 / rate
        self._rng = random.Random(seed)
        self._drained = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-feeder", daemon=True)

    def start(self):
        """Start feeding."""
        self._thread.start()
        return self

    def stop(self):
        """Stop feeding and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(1.0)

    def _run(self):
        while not self._stop.wait(self._period):
            try:
                self._post()
            except Exception as exc:  # pylint: disable=broad-except
                # Say why the "instance" went quiet rather than hang mutely.
                print(f"{PROG}: simulated live events stopped: {exc}", file=sys.stderr)
                return

    def _post(self):
        handle = self._handle
        if self._journal == "jobs":
            # First the rest of the jobs active at the snapshot, then new
            # jobs (each posts its whole lifecycle at once).
            if handle.jobs.pending_live:
                handle.post_live(1)
            else:
                handle.inject_job(self._rng.choice(("success",) * 8 + ("failed", "timeout")))
            return
        rank = self._rng.randrange(_SIM_NODES)
        if rank in self._drained:
            self._drained.discard(rank)
            context = {"idset": str(rank), "nodelist": "vm", "overwrite": 0}
            handle.post_resource_event("undrain", context)
        else:
            self._drained.add(rank)
            context = {"idset": str(rank), "nodelist": "vm", "reason": "sim", "overwrite": 0}
            handle.post_resource_event("drain", context)


_NO_FLUX = (
    "no Flux instance to read: FLUX_URI is not set (run inside a Flux instance "
    "or pass --uri URI); use --sim to read a simulated instance, or --replay FILE "
    "for a captured stream"
)


def _open_flux(uri):
    try:
        import flux  # pylint: disable=import-outside-toplevel
    except Exception as exc:  # pylint: disable=broad-except
        raise CliError(
            f"cannot read {uri}: flux-core's Python bindings are not importable ({exc}); "
            "use --sim to read a simulated instance, or --replay FILE"
        ) from exc
    try:
        return flux.Flux(uri)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CliError(f"cannot connect to Flux at {uri}: {reason}") from exc


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
    workload = ResourceWorkload(nnodes=_SIM_NODES, seed=seed, nevents=nevents)
    return (
        SimFlux(resources=workload, autolive=False),
        f"simulated instance ({_SIM_NODES} nodes, seed {seed})",
    )


def _open_source(args, journal):
    """Open what ``args`` names: a replay, a simulation or a real Flux."""
    from flux_journal.sim import SimFlux  # pylint: disable=import-outside-toplevel

    if args.replay is not None:
        if not os.path.isfile(args.replay):
            raise CliError(f"cannot read {args.replay}: no such file")
        try:
            handle = SimFlux.replay(args.replay, topic=_TOPICS[journal], end=errno.ENODATA)
        except OSError as exc:
            raise CliError(f"cannot read {args.replay}: {exc.strerror or exc}") from exc
        return _Source(handle, args.replay)
    if args.sim is not None:
        handle, label = simulated_instance(journal, args.sim or None, args.seed)
        feeder = None
        if args.follow:
            feeder = _SimFeeder(handle, journal, args.sim_rate, args.seed)
        return _Source(handle, label, feeder)
    uri = args.uri or os.environ.get("FLUX_URI")
    if not uri:
        raise CliError(_NO_FLUX)
    return _Source(_open_flux(uri), uri)


# ----------------------------------------------------------------------
# Consumers


def _consumer_class(journal):
    # pylint: disable=import-outside-toplevel
    if journal == "jobs":
        from flux_journal.job import JournalConsumer

        return JournalConsumer
    from flux_journal.resource import ResourceJournalConsumer

    return ResourceJournalConsumer


def _start_consumer(journal, handle, position, *, since, full, allow, deny, cursor_window):
    """Create and start the consumer, resuming after *position* (its
    cursor), or at the start from *since*.  *cursor_window* (None: no
    resume position is needed) goes to the consumer."""
    cls = _consumer_class(journal)
    kwargs = {"include_sentinel": True}
    if journal == "jobs":
        kwargs["full"] = full
    start = position.cursor
    if start is None:
        start = since if since is not None else 0.0
    # Names are filtered before events are built: by the job manager
    # itself (less to send and to parse), in C for the resource journal.
    return cls(
        handle,
        since=start,
        allow=sorted(allow) if allow else None,
        deny=sorted(deny) if deny else None,
        cursor_window=cursor_window,
        **kwargs,
    ).start()


# ----------------------------------------------------------------------
# Where events go


def _write_fd(fd, data):
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            # stdout inherited in non-blocking mode: wait until writable
            select.select([], [fd], [])
            continue
        view = view[written:]


class _Output:
    """Formatted events to stdout, with an optional checkpoint.

    Each batch goes out in one write, straight to the file descriptor
    (no buffering in between), before the checkpoint may move past it.
    """

    def __init__(self, formatter, checkpoint=None, interval=1.0, stream=None):
        self.formatter = formatter
        self.checkpoint = checkpoint
        #: Whether this sink stores positions (the reader tracks them only then).
        self.records_position = checkpoint is not None
        self.interval = interval
        self.written = 0
        self._stream = stream if stream is not None else sys.stdout
        self._fd = None
        self._regular = False
        try:
            self._stream.flush()
            self._fd = self._stream.fileno()
            self._regular = stat.S_ISREG(os.fstat(self._fd).st_mode)
        except (AttributeError, OSError, ValueError):
            self._fd = None  # a file-like object without a descriptor
        self._saved = None
        self._last_save = time.monotonic()
        self._unsynced = False

    def start(self, position):
        """Note the position the run starts from (already saved)."""
        self._saved = position.copy()

    def timeout(self):
        """How long the reader may block before calling :meth:`flushed`
        again."""
        return _POLL_WAIT

    def write(self, events):
        """Write *events*; raise _BrokenPipe if the reader went away."""
        data = self.formatter.format(events)
        try:
            if self._fd is not None:
                _write_fd(self._fd, data)
            else:
                self._stream.write(data.decode("utf-8", "replace"))
                self._stream.flush()
        except BrokenPipeError as exc:
            raise _BrokenPipe() from exc
        except OSError as exc:
            raise CliError(f"cannot write the output: {exc.strerror or exc}") from exc
        self.written += len(events)
        self._unsynced = True

    def flushed(self, position):
        """Events up to *position* are written: checkpoint if it is time."""
        if self.checkpoint is None:
            return
        if time.monotonic() - self._last_save >= self.interval:
            self._save(position)

    def close(self, position):
        """The run ends normally or by signal: save the final position."""
        if self.checkpoint is not None:
            self._save(position)

    def _save(self, position):
        if position == self._saved:
            self._last_save = time.monotonic()
            return
        try:
            if self._regular and self._unsynced:
                # The checkpoint must never be more durable than the output
                # it vouches for; a pipe or terminal has nothing to sync.
                os.fsync(self._fd)
                self._unsynced = False
            self.checkpoint.save(position)
        except OSError as exc:
            raise CliError(
                f"cannot write checkpoint {self.checkpoint.path}: {exc.strerror or exc}"
            ) from exc
        self._saved = position.copy()
        self._last_save = time.monotonic()


class _ArchiveSink:
    """Events into an :class:`~flux_journal.archive.Archive`, committed
    with their resume position every *batch_size* events or
    *batch_time* seconds."""

    #: An archive always stores its resume position.
    records_position = True

    def __init__(self, archive, batch_size, batch_time):
        self.archive = archive
        self.batch_size = batch_size
        self.batch_time = batch_time
        self.written = 0
        self._first_pending = None

    def start(self, position):
        """Nothing to note: the archive knows its position."""
        del position

    def timeout(self):
        """Block no longer than the oldest pending event may wait."""
        if self._first_pending is None:
            return _POLL_WAIT
        left = self._first_pending + self.batch_time - time.monotonic()
        return max(0.0, min(_POLL_WAIT, left))

    def write(self, events):
        """Add *events* to the open transaction."""
        if self._first_pending is None:
            self._first_pending = time.monotonic()
        self.archive.add(events)
        self.written += len(events)

    def flushed(self, position):
        """Commit if the batch is full or old enough."""
        if self.archive.pending >= self.batch_size or (
            self._first_pending is not None
            and time.monotonic() - self._first_pending >= self.batch_time
        ):
            self._commit(position)

    def close(self, position):
        """Commit what is pending."""
        self._commit(position)

    def _commit(self, position):
        self.archive.commit(position)
        self._first_pending = None


# ----------------------------------------------------------------------
# The reading loop


class _Progress:
    """A one-line ``N events`` indicator on stderr while history is read,
    when stderr is a terminal."""

    def __init__(self, enabled, stream=None, shares_terminal=False):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        # Output is written to the same terminal: erase the indicator
        # before each write so lines do not run into it.
        self.shares_terminal = shares_terminal
        self._shown = False
        self._next = time.monotonic() + _PROGRESS_PERIOD

    def update(self, received, written):
        """Redraw, at most every _PROGRESS_PERIOD seconds."""
        if not self.enabled:
            return
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + _PROGRESS_PERIOD
        self.stream.write(f"\r\033[K{PROG}: reading history: {received:,} events received, "
                          f"{written:,} written")
        self.stream.flush()
        self._shown = True

    def erase(self):
        """Before output is written: erase the indicator line if the
        output goes to the same terminal; the next update redraws it."""
        if self._shown and self.shares_terminal:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False

    def clear(self):
        """Erase the indicator; it is not shown again."""
        if self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False
        self.enabled = False


class _Reader:
    """Drives a consumer: history, sentinel, live events, interruptions.

    Every delivered event goes through the filters to the sink.  Once a
    batch is written, and if the sink records positions, the position
    moves to the consumer's cursor (which covers the events filters
    dropped too); then the sink may checkpoint or commit.
    """

    def __init__(
        self, consumer, sink, position, *, service, follow, filters, drop_history, progress
    ):
        self.consumer = consumer
        self.service = service
        self.sink = sink
        self.position = position
        self.follow = follow
        self.filters = filters
        self.drop_history = drop_history
        self.progress = progress
        self.in_history = True
        self.filtered = 0  # dropped here: --jobid, --no-history (resource)
        self.warnings = 0
        self.signum = None
        self.ended = False  # the service ended the stream

    # -- signals ---------------------------------------------------------

    def _on_signal(self, signum, frame):
        del frame
        if self.signum is not None:
            # A second Ctrl-C: give up at once.  The checkpoint already on
            # disk is still right (it never runs ahead of the output).
            raise KeyboardInterrupt
        self.signum = signum

    def install_signals(self):
        """Turn SIGINT/SIGTERM into a request to stop cleanly; return a
        function restoring the previous handlers."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }

        def restore():
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    # -- the loop ----------------------------------------------------------

    def run(self):
        """Read until the sentinel (or the end of the stream with
        follow), or a signal.  Service errors propagate as OSError after
        everything delivered before them has reached the sink."""
        stop_at_sentinel = not self.follow
        while self.signum is None:
            try:
                items = self.consumer.poll_batch(_POLL_EVENTS, self.sink.timeout())
            except TimeoutError:
                # Nothing came, but time-based commits and the end of a
                # history that delivered nothing still need seeing to.
                items = []
            except PayloadError as exc:
                self._warn(f"skipped a malformed {self.service} response: {exc}")
                continue
            except OSError as exc:
                # Raised after every event received before it was
                # delivered (and written): the caller reports it.
                raise _ServiceError(exc) from exc
            batch = []
            consumed = 0
            # Set when delivered events of this batch go unwritten: the
            # consumer's cursor covers them, so the position must not
            # move to it.
            left_out = False
            sentinel = False
            for event in items:
                if event is None:
                    self.ended = True
                    break
                if event.is_empty():
                    self._history_done()
                    if stop_at_sentinel:
                        # Live events are left for the next run.  A
                        # batch opening with the sentinel can carry some:
                        # poll_batch ends a batch at the sentinel only
                        # when history events precede it.
                        sentinel = True
                        self.consumer.stop()
                        left_out = event is not items[-1]
                        break
                    continue
                consumed += 1
                if (self.drop_history and self.in_history) or not self._wanted(event):
                    self.filtered += 1
                    continue
                batch.append(event)
            if batch:
                # stdout may be the terminal the indicator is drawn on
                self.progress.erase()
                self.sink.write(batch)
            if consumed and not left_out and self.sink.records_position:
                # Everything delivered is written or filtered out: that is
                # where the consumer's cursor stands.  Taken now, before
                # the consumer delivers more (even while draining).
                self.position.advance(self.consumer.cursor, consumed)
            self.sink.flushed(self.position)
            if self.in_history and not self.ended and self.consumer.history_complete:
                # The sentinel went by undelivered (flux-core's consumers
                # deliver it only with full history).
                self._history_done()
                if stop_at_sentinel:
                    sentinel = True
                    self.consumer.stop()
            self._progress()
            if sentinel:
                self._drain()
                return
            if self.ended:
                return
        # Interrupted: cancel the stream; what arrives meanwhile is left
        # for the next run (it is not written, so not checkpointed).
        self.progress.clear()
        try:
            self.consumer.stop()
        except RuntimeError:
            pass
        self._drain()

    def _history_done(self):
        self.in_history = False
        self.progress.clear()

    def _wanted(self, event):
        for keep in self.filters:
            if not keep(event):
                return False
        return True

    def _drain(self):
        """After stop(): wait (briefly) for the service to end the stream."""
        deadline = time.monotonic() + _DRAIN_SECONDS
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                items = self.consumer.poll_batch(_POLL_EVENTS, min(left, _POLL_WAIT))
            except TimeoutError:
                continue
            except PayloadError:
                continue
            except OSError:
                return  # ended by an error instead: nothing more comes
            if items and items[-1] is None:
                return

    def _progress(self):
        if self.in_history and self.progress.enabled:
            self.progress.update(self.consumer.stats["events"], self.sink.written)

    def _warn(self, message):
        self.warnings += 1
        if self.warnings <= _MAX_WARNINGS:
            print(f"{PROG}: {message}", file=sys.stderr)
            if self.warnings == _MAX_WARNINGS:
                print(f"{PROG}: (further warnings suppressed)", file=sys.stderr)


# ----------------------------------------------------------------------
# Errors and statistics


def _service_error(exc, journal):
    """One clear line for an error the journal service returned."""
    service = _SERVICES[journal]
    code = getattr(exc, "errno", None)
    detail = exc.strerror or str(exc)
    if code == errno.EPERM or code == errno.EACCES:
        return (
            f"permission denied reading the {service}: only the instance owner "
            f"may read it ({detail})"
        )
    if code == errno.ENOSYS:
        return (
            f"the {service} is not available: is the {_MODULES[journal]} module "
            f"loaded? ({detail})"
        )
    if code == errno.EPROTO:
        return f"the {service} rejected the request: {detail}"
    name = errno.errorcode.get(code, "error")
    return f"reading the {service} failed: {detail} ({name})"


def _print_stats(source, reader, consumer, elapsed, stream=None):
    stream = stream if stream is not None else sys.stderr
    stats = consumer.stats
    delivered = reader.sink.written
    filtered = reader.filtered + stats["filtered_since"] + stats["filtered_name"]
    rate = delivered / elapsed if elapsed > 0 else 0.0
    lines = [
        f"source: {source.label}",
        f"responses: {stats['responses']}",
        f"events received: {stats['events']}",
        f"events delivered: {delivered}",
        f"events filtered: {filtered}",
        f"bytes parsed: {stats['bytes']}",
        f"elapsed: {elapsed:.3f} s",
        f"events/s: {rate:.0f}",
    ]
    stream.write("".join(f"{PROG}: {line}\n" for line in lines))
    stream.flush()


# ----------------------------------------------------------------------
# Commands


def _names_of(args, option):
    """The set of event names given to a repeatable --name/--exclude."""
    return {name for group in (getattr(args, option, None) or []) for name in group}


def _jobid_filter(args):
    """Client-side filters for --jobid (no journal service filters by
    job)."""
    filters = []
    jobids = getattr(args, "jobid", None)
    if jobids:
        wanted = frozenset(jobids)
        filters.append(lambda event: event.jobid in wanted)
    return filters


def _session(args, journal, sink, position):
    """Open the source, read into *sink* from *position*; return the exit
    status.  Shared by the print commands and archive."""
    source = _open_source(args, journal)
    allow = _names_of(args, "name")
    deny = _names_of(args, "exclude")
    filters = []
    if args.since is not None and not position.is_start:
        # Resuming: the position decides where to start, --since still
        # bounds what is written.
        since = args.since
        filters.append(lambda event: event.timestamp > since)
    started = time.monotonic()
    progress = _Progress(
        enabled=not args.quiet and _isatty(sys.stderr),
        shares_terminal=isinstance(sink, _Output) and _isatty(sys.stdout),
    )
    try:
        try:
            consumer = _start_consumer(
                journal,
                source.handle,
                position,
                since=args.since,
                full=not args.no_history,
                allow=allow,
                deny=deny,
                # A cursor costs the consumer a record of recent events:
                # kept only when the sink stores positions.
                cursor_window=args.reorder_window if sink.records_position else None,
            )
        except OSError as exc:
            raise CliError(_service_error(exc, journal)) from exc
        source.start()
        filters.extend(_jobid_filter(args))
        sink.start(position)
        reader = _Reader(
            consumer,
            sink,
            position,
            service=_SERVICES[journal],
            follow=args.follow,
            filters=filters,
            drop_history=journal == "resource" and args.no_history,
            progress=progress,
        )
        restore = reader.install_signals()
        status = EXIT_OK
        error = None
        try:
            try:
                reader.run()
            except _ServiceError as exc:
                error = CliError(_service_error(exc.exc, journal))
            except _BrokenPipe:
                progress.clear()
                _silence_stdout()
                if args.stats:
                    _print_stats(source, reader, consumer, time.monotonic() - started)
                return EXIT_BROKEN_PIPE
            progress.clear()
            # Everything written so far is safe to record, whether the run
            # ended, was interrupted, or the service failed.
            sink.close(position)
        finally:
            restore()
        if args.stats:
            _print_stats(source, reader, consumer, time.monotonic() - started)
        if error is not None:
            raise error
        if reader.signum is not None:
            status = 128 + reader.signum
        elif reader.warnings:
            status = EXIT_ERROR
        return status
    finally:
        progress.clear()
        source.close()


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _silence_stdout():
    """Point stdout at /dev/null so that the interpreter's final flush of
    a closed pipe does not print an error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _cmd_read(args):
    journal = args.journal
    checkpoint = None
    position = Position()
    if args.checkpoint:
        checkpoint = Checkpoint(args.checkpoint, journal)
        try:
            position = checkpoint.load()
        except CheckpointError as exc:
            raise CliError(str(exc)) from exc
    formatter = make_formatter(
        args.format,
        time_format=args.time_format,
        color=use_color(args.color, sys.stdout),
        jobs=journal == "jobs",
    )
    sink = _Output(formatter, checkpoint, args.checkpoint_interval)
    return _session(args, journal, sink, position)


def _cmd_archive(args):
    journal = "resource" if args.resource else "jobs"
    try:
        archive = Archive(args.db, journal, synchronous="FULL" if args.durable else "NORMAL")
    except ArchiveError as exc:
        raise CliError(str(exc)) from exc
    try:
        sink = _ArchiveSink(archive, args.batch_size, args.batch_time)
        # The archive's own position: its events and resume point are
        # committed together, so it is exact whatever happened before.
        position = archive.position.copy()
        try:
            return _session(args, journal, sink, position)
        except ArchiveError as exc:
            raise CliError(str(exc)) from exc
        except sqlite3.Error as exc:
            # e.g. disk full: the last committed batch and its resume
            # point are intact, so a later run continues from there
            raise CliError(f"{args.db}: {exc}") from exc
    finally:
        try:
            archive.close()
        except sqlite3.Error:
            pass


def main(argv=None):
    """Run ``flux-journal`` with *argv* (default ``sys.argv[1:]``); return
    the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CliError as exc:
        sys.stdout.flush()
        print(f"{PROG}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        # Second Ctrl-C, or one before the reader was set up.
        return 128 + signal.SIGINT
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
