"""The ``flux-journal history`` subcommand: its options
(:func:`add_parser`) and what it does (:func:`run`)."""

import argparse
import json
import sys
import time

from flux_journal.cli.argtypes import count
from flux_journal.cli.errors import EXIT_OK, CliError
from flux_journal.cli.format import TIME_FORMATS, TextFormatter
from flux_journal.history.format import (
    FORMATS,
    JobFormat,
    format_jobs,
    parse_sort_keys,
    resolve_format,
)
from flux_journal.history.query import (
    JobQuery,
    QueryError,
    default_user,
    parse_filter,
    parse_jobid,
    parse_list,
    parse_user,
    parse_when,
)
from flux_journal.history.reader import ReaderError, open_reader
from flux_journal.job import JournalEvent

__all__ = ["add_parser", "run", "build_query", "DEFAULT_COUNT"]

#: Jobs listed at most unless ``-c`` says otherwise (as ``flux jobs``).
DEFAULT_COUNT = 1000

_DESCRIPTION = """\
List the jobs an archive holds (flux-journal archive --db), the way
`flux jobs -a` lists an instance's: a table in flux jobs' formats, or with
--json one job per line as `flux jobs --json` prints it (plus "instance"),
or with --events the archived events of those jobs.
"""

_EPILOG = """\
order: pending jobs (highest priority first), then running jobs (latest
started first), then inactive jobs (latest ended first); --sort or a
format's sort: prefix sorts the jobs listed (after --count) instead.
--since/--until TIME: seconds since the epoch, ISO 8601 (2026-12-01,
2026-12-01T08:00), now, or a duration ago (--since -6h,
--since -1.5d); --since keeps jobs active after TIME, --until jobs
submitted by TIME.
examples:
  flux-journal history --db archive.sqlite -u all -f failed --since -1d
  flux-journal history --db archive.sqlite -o long --queue batch
  flux-journal history --db archive.sqlite --json ƒ2yWoXVq | jq .runtime
  flux-journal history --db archive.sqlite --events ƒ2yWoXVq
"""


def _option(parse):
    """An argparse type from one of query's parsers (QueryError -> usage
    error naming the option)."""

    def convert(text):
        try:
            return parse(text)
        except QueryError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = parse.__name__
    return convert


def add_parser(subparsers):
    """Add ``history`` to *subparsers* (from ``add_subparsers()``); return
    its parser."""
    parser = subparsers.add_parser(
        "history",
        help="list archived jobs like flux jobs (or their events)",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "jobids", nargs="*", type=_option(parse_jobid), metavar="JOBID",
        help="only these jobs (any encoding: f58, decimal, hex, dothex, words)",
    )
    parser.add_argument(
        "--db", required=True, metavar="URL",
        help="the archive: an SQLite file (or a postgresql:// URL)",
    )
    group = parser.add_argument_group("which jobs")
    group.add_argument(
        "-u", "--user", type=_option(parse_user), metavar="USER",
        help="jobs of USER (name or id), or all (default: yours; with job ids: any user's)",
    )
    group.add_argument(
        "-A", dest="all_users", action="store_true", help="jobs of all users (-u all)"
    )
    group.add_argument(
        "-f", "--filter", type=_option(parse_filter), action="append", metavar="STATE|RESULT",
        help="jobs in these states or with these results, comma-separated: pending, "
        "running, active, inactive, depend, priority, sched, run, cleanup, new, "
        "completed, failed, canceled, timeout (default: all)",
    )
    group.add_argument("--since", type=_option(parse_when), metavar="TIME",
                       help="jobs active after TIME (see below)")
    group.add_argument("--until", type=_option(parse_when), metavar="TIME",
                       help="jobs submitted at or before TIME")
    group.add_argument("--name", action="append", metavar="NAME",
                       help="jobs named NAME (repeatable)")
    group.add_argument("--queue", type=_option(lambda text: parse_list(text, "queue")),
                       action="append", metavar="QUEUE[,QUEUE]", help="jobs of these queues")
    group.add_argument("--instance", type=_option(lambda text: parse_list(text, "instance")),
                       action="append", metavar="NAME[,NAME]",
                       help="jobs of these archived instances (default: all)")
    group.add_argument("-R", "--recursive", action="store_true",
                       help="with --instance: the instances nested under them too "
                       "(archive --recursive stores a child as NAME/ƒID)")
    group.add_argument("-c", "--count", type=count, default=DEFAULT_COUNT, metavar="N",
                       help=f"at most N jobs (default {DEFAULT_COUNT}, 0: no limit)")
    group = parser.add_argument_group("output")
    group.add_argument(
        "-o", "--format", default="default", metavar="FORMAT",
        help="flux jobs' format: a name (%s) or a format string such as "
        "'{id.f58} {status} {runtime!F}'" % ", ".join(FORMATS),
    )
    group.add_argument(
        "--sort", metavar="KEY[,KEY]",
        help="sort the listed jobs by these fields (-KEY: reversed), in place of "
        "the format's sort: prefix (default: the order below)",
    )
    group.add_argument("-n", "--no-header", action="store_true", help="no heading line")
    group.add_argument("--json", action="store_true",
                       help="one JSON object per line: a job (or with --events an event)")
    group.add_argument("--events", action="store_true",
                       help="the jobs' archived events instead of the jobs")
    group.add_argument("--time-format", choices=TIME_FORMATS, default="raw",
                       help="event timestamps in text (default raw)")
    return parser


def _joined(groups):
    return tuple(item for group in (groups or ()) for item in group)


def build_query(args):
    """The :class:`JobQuery` of parsed *args*."""
    userid = username = None
    if args.user is not None:
        userid, username = args.user
    elif not args.all_users and not args.jobids:
        userid = default_user()
    states, results = frozenset(), frozenset()
    for more_states, more_results in args.filter or ():
        states |= more_states
        results |= more_results
    return JobQuery(
        userid=userid,
        username=username,
        states=states,
        results=results,
        since=args.since,
        until=args.until,
        names=tuple(args.name or ()),
        queues=_joined(args.queue),
        instances=_joined(args.instance),
        nested=args.recursive,
        jobids=tuple(args.jobids),
        count=args.count or None,
    )


def _json_line(value):
    """*value* as one line of compact JSON, UTF-8 where it can be (text
    with lone surrogates, which UTF-8 cannot carry, is escaped)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, separators=(",", ":"))
    return text + "\n"


def _print_jobs(reader, query, args, fmt, out):
    now = time.time()
    records = reader.jobs(query, now)
    truncated = False
    if args.json:
        # streamed: a listing without --count can be a year of jobs
        for n, record in enumerate(records):
            if n == query.count:
                truncated = True
                break
            out.write(_json_line(record))
    else:
        # the whole listing: ?: and +: columns depend on every job
        records = list(records)
        if query.count is not None and len(records) > query.count:
            records, truncated = records[: query.count], True
        try:
            lines = format_jobs(records, fmt, now=now, header=not args.no_header,
                                sort=args.sort)
        except (ValueError, KeyError) as exc:
            # a value the format cannot print (e.g. {name:d} of a name)
            raise CliError(f"invalid format for these jobs: {exc}") from exc
        for line in lines:
            out.write(line + "\n")
    if truncated and not args.no_header:
        out.flush()
        print(f"warning: output truncated at {query.count} jobs; use --count to "
              "list more", file=sys.stderr)


def _print_events(reader, query, args, out):
    # One instance named: lines exactly as `flux-journal jobs` prints;
    # otherwise each starts with its instance, as job ids repeat across them.
    prefix = len(query.instances) != 1 or query.nested
    text = TextFormatter(args.time_format, color=False, jobs=True)
    for instance, jobid, timestamp, name, context in reader.events(query):
        if args.json:
            out.write(_json_line({"instance": instance, "jobid": jobid,
                                  "timestamp": timestamp, "name": name,
                                  "context": context}))
            continue
        line = text.line(JournalEvent(jobid, {"timestamp": timestamp, "name": name,
                                              "context": context}))
        out.write(f"{instance} {line}" if prefix else line)


def run(args, out=None):
    """Run ``history`` with parsed *args*, writing to *out* (default
    stdout); return the exit status."""
    out = sys.stdout if out is None else out
    fmt = resolve_format(args.format)
    if not args.json and not args.events:
        try:
            JobFormat(fmt)
            if args.sort is not None:
                parse_sort_keys(args.sort)
        except ValueError as exc:
            raise CliError(f"invalid format: {exc}") from exc
    query = build_query(args)
    try:
        reader = open_reader(args.db)
    except ReaderError as exc:
        raise CliError(str(exc)) from exc
    if reader.indexes_deferred:
        print(f"warning: {reader.name}: its first history is still being archived, without "
              "indexes: queries read whole tables until it is in", file=sys.stderr)
    try:
        if args.events:
            _print_events(reader, query, args, out)
        else:
            _print_jobs(reader, query, args, fmt, out)
    except ReaderError as exc:
        raise CliError(str(exc)) from exc
    finally:
        reader.close()
    return EXIT_OK
