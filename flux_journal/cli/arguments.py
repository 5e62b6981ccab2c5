"""The ``flux-journal`` command line: subcommands and their options.

:func:`build_parser` returns the parser; ``args.command`` names the
subcommand (:data:`flux_journal.cli.commands.COMMANDS` runs it).  The
source options come from :func:`flux_journal.cli.sources.add_source_arguments`.
"""

import argparse

from flux_journal.cli.argtypes import jobid, names, parse_time, positive_int, seconds
from flux_journal.cli.errors import PROG
from flux_journal.cli.follow import DEFAULT_REORDER_WINDOW
from flux_journal.cli.format import COLOR_CHOICES, TIME_FORMATS
from flux_journal.cli.sources import (
    DEFAULT_SIM_JOBS,
    DEFAULT_SIM_RESOURCE_EVENTS,
    add_source_arguments,
)
from flux_journal.cli import history as history_command
from flux_journal.metrics import command as metrics_command

__all__ = ["build_parser", "add_recursive_options", "DEFAULT_REORDER_WINDOW"]


_ARCHIVE_SIM_HELP = (
    "read a simulated instance: N jobs (default %d), or with --resource N "
    "resource events (default %d)" % (DEFAULT_SIM_JOBS, DEFAULT_SIM_RESOURCE_EVENTS)
)
_METRICS_SIM_HELP = (
    "read a simulated instance: N jobs (default %d) and N resource events "
    "(default %d), then live events" % (DEFAULT_SIM_JOBS, DEFAULT_SIM_RESOURCE_EVENTS)
)


def _version():
    try:
        from importlib.metadata import version  # pylint: disable=import-outside-toplevel

        return version("flux-journal")
    except Exception:  # pylint: disable=broad-except
        return "unknown"


_DESCRIPTION = """\
Read Flux journals: every job's events (the job-manager journal) or the
resource journal, from a Flux instance, a simulated instance or a
captured stream, as text or JSON lines, or store them in SQLite and list
the archived jobs like flux jobs.
"""

_EPILOG = """\
examples:
  flux-journal jobs --sim                       simulated instance, 1000 jobs
  flux-journal jobs --format json | jq .name    the instance at FLUX_URI
  flux-journal jobs --follow --checkpoint pos.json >> events.jsonl
  flux-journal jobs --jobid f2Wf9hhqD --time-format offset
  flux-journal resource --follow --name drain,undrain
  flux-journal jobs --recursive --follow        child instances (flux batch) too
  flux-journal archive --db journal.sqlite --follow
  flux-journal history --db journal.sqlite -u all -f failed --since -1d

Without --uri, --sim or --replay the Flux instance at FLUX_URI is read.
"""


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
        type=names,
        metavar="NAME[,NAME]",
        help="only events with these names (repeatable)",
    )
    group.add_argument(
        "--exclude",
        action="append",
        type=names,
        metavar="NAME[,NAME]",
        help="no events with these names (repeatable)",
    )
    if what == "jobs":
        group.add_argument(
            "--jobid",
            action="append",
            type=jobid,
            metavar="ID",
            help="only the events of job ID (f58, decimal, hex, dothex or kvs "
            "form; repeatable)",
        )


def add_recursive_options(parser):
    """``--recursive`` and ``--level N`` (which implies it): follow the
    child instances too (:mod:`flux_journal.cli.recursive`)."""
    group = parser.add_argument_group("child instances")
    group.add_argument(
        "-R",
        "--recursive",
        action="store_true",
        help="follow child instances too (running jobs that are Flux instances, such "
        "as flux batch and flux alloc jobs), and theirs: each one's whole history, "
        "then live events until it ends; events carry their instance's path "
        "(/ for this one, /JOBID for a child, /JOBID/JOBID below); a child that "
        "cannot be read is said once on stderr",
    )
    group.add_argument(
        "--level",
        type=positive_int,
        metavar="N",
        help="with --recursive (implied): follow child instances at most N levels "
        "down (1: children only; default: every level)",
    )
    return group


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
        type=seconds,
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
    add_source_arguments(parser, name)
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
        type=seconds,
        default=1.0,
        metavar="SECONDS",
        help="update the checkpoint at most this often (0: after every write; "
        "default 1); it is always updated at the end",
    )
    _add_reorder_option(group, "the checkpoint")
    if name == "jobs":
        add_recursive_options(parser)
    _add_diagnostic_options(parser)
    parser.set_defaults(journal=name)
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
        help="store the job (or resource) journal in SQLite or PostgreSQL",
        description="Store the job-manager journal (or with --resource the resource\n"
        "journal) in an SQLite file (WAL mode) or a PostgreSQL database,\n"
        "resuming exactly where the last committed batch ended.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="tables (every row with its instance):\n"
        "  jobs             one row per job: job-list's record (flux jobs -a -A --json)\n"
        "                   and its fields as columns: jobid, userid, state, result,\n"
        "                   t_submit, ..., nevents, record, jobspec, R\n"
        "  events           one row per job event: id, instance, jobid, seq,\n"
        "                   timestamp, name, context\n"
        "  resource_events  seq, instance, timestamp, name, context, R\n"
        "  resume           where the next run starts, per instance and journal\n"
        "examples:\n"
        "  flux-journal archive --db journal.sqlite --follow\n"
        "  flux-journal archive --db 'postgresql://flux@/flux?host=/run/postgresql' --follow\n"
        "  sqlite3 FILE 'SELECT result, count(*) FROM jobs GROUP BY result'",
    )
    group = parser_archive.add_argument_group("archive")
    group.add_argument(
        "--db",
        required=True,
        metavar="URL",
        help="an SQLite file, or a PostgreSQL database: postgresql://[USER@]HOST/DB "
        "or postgresql://USER@/DB?host=SOCKETDIR (needs flux-journal[postgres])",
    )
    group.add_argument(
        "--instance",
        metavar="NAME",
        help="the name the instance's rows get (default: --uri or FLUX_URI; 'sim' "
        "for --sim; the file's name for --replay)",
    )
    group.add_argument(
        "--resource", action="store_true", help="archive the resource journal instead of jobs"
    )
    group.add_argument(
        "--batch-size",
        type=positive_int,
        metavar="N",
        help="commit after N events (default 100000 on SQLite, 10000 on PostgreSQL)",
    )
    group.add_argument(
        "--batch-time",
        type=seconds,
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
    add_source_arguments(parser_archive, sim_help=_ARCHIVE_SIM_HELP)
    _add_reading_options(parser_archive, "archive")
    add_recursive_options(parser_archive)
    _add_diagnostic_options(parser_archive)
    parser_metrics = metrics_command.add_parser(sub)
    add_source_arguments(parser_metrics, sim_help=_METRICS_SIM_HELP)
    add_recursive_options(parser_metrics)
    history_command.add_parser(sub)
    return parser
