"""What each ``flux-journal`` subcommand does, and :func:`main`.

``jobs`` and ``resource`` print a journal (:func:`read_command`),
``archive`` stores one in SQLite or PostgreSQL (:func:`archive_command`); both run a
:func:`session`: open the source, start a consumer, read into a sink.
``history`` lists archived jobs (:mod:`flux_journal.cli.history`),
``metrics`` serves Prometheus metrics (:mod:`flux_journal.metrics.command`,
given :func:`~flux_journal.cli.sources.open_source`).
"""

import os
import signal
import sys
import time

from flux_journal.cli.arguments import build_parser
from flux_journal.cli.argtypes import join_relative_times
from flux_journal.cli.checkpoint import Checkpoint, CheckpointError, Position
from flux_journal.cli.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_STREAM_LOST,
    PROG,
    BrokenPipe,
    CliError,
    ServiceError,
    say,
    service_error,
    service_name,
)
from flux_journal.cli.follow import (
    Follower,
    StopRequest,
    StreamLost,
    loss_reason,
    open_consumer,
)
from flux_journal.cli.format import make_formatter, use_color
from flux_journal.cli.progress import Progress, isatty
from flux_journal.cli.reader import Reader, print_stats
from flux_journal.cli.recursive import TreeFollower, UnreachableReport, unwrap
from flux_journal.cli.sinks import ArchiveSink, OutputSink, TreeArchiveSink
from flux_journal.cli.sources import instance_name, open_source
from flux_journal.tree import discovery_events, is_resumed, request_filters
from flux_journal.cli import history as history_command
from flux_journal.metrics import command as metrics_command
from flux_journal.cli.archive import Archive, ArchiveError, ArchiveGroup

__all__ = ["main", "session", "read_command", "archive_command", "COMMANDS"]


def _names_of(args, option):
    """The set of event names given to a repeatable --name/--exclude."""
    return {name for group in (getattr(args, option, None) or []) for name in group}


def _filters(args, position):
    """Client-side filters: --since when resuming, and --jobid (no
    journal service filters by job)."""
    filters = []
    if args.since is not None and not position.is_start:
        # Resuming: the position decides where to start, --since still
        # bounds what is written.
        since = args.since
        filters.append(lambda event: event.timestamp > since)
    jobids = getattr(args, "jobid", None)
    if jobids:
        wanted = frozenset(jobids)
        filters.append(lambda event: event.jobid in wanted)
    return filters


def session(args, journal, sink, position, *, resume=None):
    """Open the source, read *journal* into *sink* from *position*;
    return the exit status.  Shared by the print commands and archive.
    With ``--recursive``, *resume(path)* says where a child instance's
    stream starts."""
    stop = StopRequest()
    restore = stop.install()
    report = UnreachableReport()
    try:
        with open_source(args, journal) as source:
            started = time.monotonic()
            progress = Progress(
                enabled=not args.quiet and isatty(sys.stderr),
                shares_terminal=isinstance(sink, OutputSink) and isatty(sys.stdout),
            )
            try:
                reader = _start_reader(args, journal, source, sink, position, progress, stop,
                                       report if recursive(args) else None, resume)
                status, error = _read(reader, journal)
                if args.stats and reader.consumer is not None:
                    print_stats(source, reader, reader.consumer, time.monotonic() - started)
            finally:
                progress.clear()
                report.close()
    finally:
        restore()
    if error is not None:
        raise error
    return status


def recursive(args):
    """Whether *args* ask to follow child instances (``--recursive``)."""
    return getattr(args, "recursive", False)


def _start_reader(args, journal, source, sink, position, progress, stop, report, resume):
    """Start the consumer, live events and the sink; return the Reader.
    With *report* (``--recursive``), the reader reads the tree of
    instances, telling *report* of children that cannot be read."""
    start = position.cursor
    if start is None:
        start = args.since if args.since is not None else 0.0
    allow, deny = _names_of(args, "name"), _names_of(args, "exclude")
    if report is not None:
        allow, deny = request_filters(allow, deny)
    options = {
        "allow": allow,
        "deny": deny,
        # A cursor costs the consumer a record of recent events: kept
        # only when the sink stores positions or a reconnection resumes.
        "cursor_window": (
            args.reorder_window if sink.records_position or args.reconnect else None
        ),
        "include_sentinel": True,
        "ordered": not sink.unordered_history,
    }

    resumed = report is not None and is_resumed(start)
    # The root's discovery events, read by each connection whose stream
    # starts at *start*: the TreeFollower gives them to the tree.
    discovered = []

    def open_root(handle, cursor=None):
        # After a loss, the full history from the cursor: events of jobs
        # that ended meanwhile are history by then.
        since, full = (cursor, True) if cursor is not None else (start, not args.no_history)
        # Before the root's stream: see discovery_events().  After a loss
        # the tree knows its children already.
        found = discovery_events(handle) if resumed and cursor is None else None
        consumer = open_consumer(journal, handle, since=since, full=full, **options)
        if found is not None:
            discovered.append(found)
        return consumer

    def reopen(cursor):
        return open_root(source.reconnect(), cursor)

    follow = {
        "label": source.label,
        "service": service_name(journal),
        "reopen": reopen if source.can_reconnect else None,
        "reconnect": args.reconnect,
        "ends": source.ends,
        "stop": stop.event,
    }
    follower = None
    if source.handle is not None:
        try:
            consumer = open_root(source.handle)
        except OSError as exc:
            reason = loss_reason(exc, running=False)
            if not (args.reconnect and source.can_reconnect and reason):
                raise CliError(service_error(exc, journal)) from exc
            say(f"cannot reach the {follow['service']} of {source.label}: {reason}; retrying")
        else:
            follower = Follower(consumer, **follow)
    if follower is None:
        follower = Follower.connecting(**follow)
    if report is not None:
        follower = TreeFollower(
            follower,
            connect=source.connect_child,
            level=args.level,
            allow=_names_of(args, "name"),
            deny=_names_of(args, "exclude"),
            on_unreachable=report,
            cursor_window=options["cursor_window"],
            resume=resume,
            discovered=discovered,
        )
        if isinstance(sink, TreeArchiveSink):
            sink.tree = follower.tree
    source.start()
    sink.start(position)
    return Reader(
        follower,
        sink,
        position,
        stop=stop,
        follow=args.follow,
        filters=_filters(args, position),
        drop_history=journal == "resource" and args.no_history,
        progress=progress,
        unwrap=unwrap if report is not None else None,
    )


def _read(reader, journal):
    """Run *reader*; return (exit status, error to report or None)."""
    error = None
    try:
        reader.run()
    except ServiceError as exc:
        error = CliError(service_error(exc.exc, journal))
    except StreamLost as exc:
        error = CliError(str(exc), EXIT_STREAM_LOST)
    except BrokenPipe:
        reader.progress.clear()
        _silence_stdout()
        return EXIT_BROKEN_PIPE, None
    reader.progress.clear()
    # Everything written so far is safe to record, whether the run
    # ended, was interrupted, or the stream failed or was lost.
    reader.sink.close(reader.position)
    if reader.stop.signum is not None:
        return 128 + reader.stop.signum, error
    if reader.warnings:
        return EXIT_ERROR, error
    return EXIT_OK, error


def _silence_stdout():
    """Point stdout at /dev/null so that the interpreter's final flush of
    a closed pipe does not print an error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def read_command(args):
    """``flux-journal jobs`` / ``resource``: print the journal."""
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
        instances=recursive(args),
    )
    sink = OutputSink(formatter, checkpoint, args.checkpoint_interval)
    return session(args, journal, sink, position)


def archive_command(args):
    """``flux-journal archive``: store the journal in SQLite or PostgreSQL."""
    journal = "resource" if args.resource else "jobs"
    instance = args.instance if args.instance is not None else instance_name(args)
    try:
        archive = Archive(args.db, journal, instance,
                          synchronous="FULL" if args.durable else "NORMAL")
    except ArchiveError as exc:
        raise CliError(str(exc)) from exc
    resume = None
    try:
        if recursive(args):
            # A child's rows are named after the root's name and its path.
            group = ArchiveGroup(archive, lambda path: instance + path)
            archive = group
            sink = TreeArchiveSink(group, args.batch_size, args.batch_time)
            resume = sink.resume
        else:
            sink = ArchiveSink(archive, args.batch_size, args.batch_time)
        # The archive's own position: its events and resume point are
        # committed together, so it is exact whatever happened before.
        position = sink.archive.position.copy()
        try:
            return session(args, journal, sink, position, resume=resume)
        except ArchiveError as exc:
            # e.g. disk full: the last committed batch and its resume
            # point are intact, so a later run continues from there
            raise CliError(str(exc)) from exc
    finally:
        archive.close()


#: The function that runs each subcommand (``args.command``).
COMMANDS = {
    "jobs": read_command,
    "resource": read_command,
    "archive": archive_command,
    "metrics": lambda args: metrics_command.run(args, open_source),
    "history": history_command.run,
}


def main(argv=None):
    """Run ``flux-journal`` with *argv* (default ``sys.argv[1:]``); return
    the exit status."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(join_relative_times(argv))
    if getattr(args, "level", None) is not None:
        args.recursive = True
    if recursive(args):
        if getattr(args, "checkpoint", None):
            # One cursor cannot say where each instance's stream stands.
            parser.error("--checkpoint cannot resume --recursive (use archive --recursive, "
                         "which keeps a position per instance)")
        if getattr(args, "resource", False):
            parser.error("--recursive follows job-manager journals: not with --resource")
        if args.command == "history" and not args.instance:
            parser.error("history --recursive selects the instances nested under --instance "
                         "NAME: name one (without --instance every instance is listed)")
    try:
        return COMMANDS[args.command](args)
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
