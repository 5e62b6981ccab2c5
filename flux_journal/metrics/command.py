"""``flux-journal metrics``: serve Prometheus metrics built from the journals.

The command line registers the subcommand with :func:`add_parser`, adds
its usual source options (``--uri``, ``--sim``, ``--replay``, ...) and
calls :func:`run` with the parsed arguments and its source opener.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from flux_journal.cli.errors import (
    EXIT_ERROR,
    EXIT_STREAM_LOST,
    PROG,
    say,
    service_error,
    service_name,
)
from flux_journal.cli.follow import (
    DEFAULT_REORDER_WINDOW,
    Follower,
    StopRequest,
    StreamLost,
    loss_reason,
    open_consumer,
)

if TYPE_CHECKING:
    from flux_journal.metrics.reader import JournalReader

__all__ = ["DEFAULT_LISTEN", "add_parser", "replay_journal", "run"]

#: Where the exporter listens unless told otherwise (loopback only).
DEFAULT_LISTEN = "127.0.0.1:9464"

_PROG = f"{PROG} metrics"
# How often the main thread looks at the readers.
_WATCH_PERIOD = 0.2
# How long to wait for reader threads once asked to stop.
_JOIN_SECONDS = 3.0
# Lines of a capture looked at to tell which journal it holds.
_SNIFF_LINES = 100

_DESCRIPTION = """\
Serve Prometheus metrics of a Flux instance, built from its job-manager and
resource journals: jobs per state, finished jobs per result, queue and run
time histograms, events per name, ranks online/offline/drained/torpid.  The
full history is read first (so counts are exact after every restart), then
live events are followed until interrupted.  With --replay FILE (a capture
of either journal) the final values are served until interrupted.  --sim N
simulates N jobs and N resource events, then live events at --sim-rate.
"""

_EPILOG = """\
examples:
  flux-journal metrics                          the instance at FLUX_URI
  flux-journal metrics --sim --listen 127.0.0.1:9464
  curl -s 127.0.0.1:9464/metrics | grep ^flux_jobs
"""


def _listen(text: str) -> Tuple[str, int]:
    from flux_journal.metrics.server import parse_listen  # pylint: disable=import-outside-toplevel

    try:
        return parse_listen(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``metrics`` subcommand to *subparsers* (from
    ``add_subparsers()``) with its own options; return its parser.  The
    caller adds the source options."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "metrics",
        help="serve Prometheus metrics built from the job and resource journals",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--listen", type=_listen, default=DEFAULT_LISTEN, metavar="HOST:PORT",
        help="address to serve /metrics on (default %s: this machine only; "
        "name another address to expose it)" % DEFAULT_LISTEN,
    )
    return parser


def replay_journal(path: str) -> str:
    """Which journal the capture at *path* holds: ``"jobs"`` when its
    responses carry a job id, else ``"resource"`` (``"jobs"`` when that
    cannot be told, and the source opener reports an unreadable file)."""
    try:
        with open(path, "rb") as capture:
            for _, line in zip(range(_SNIFF_LINES), capture):
                try:
                    response = json.loads(line)
                except ValueError:
                    continue
                if isinstance(response, dict):
                    return "jobs" if "id" in response else "resource"
    except OSError:
        pass
    return "jobs"


def _say(message: str) -> None:
    say(message, prog=_PROG)


def _watch(
    readers: List["JournalReader"], stop: threading.Event, replay: bool, started: float
) -> int:
    """Wait for a stop request (then return 0) or a journal failing
    (then say why and return its exit status); say when the history is
    consumed."""
    announced = False
    while not stop.wait(_WATCH_PERIOD):
        for reader in readers:
            failure = reader.failure
            if isinstance(failure, StreamLost):
                _say(str(failure))
                return EXIT_STREAM_LOST
            if failure is not None:
                reason = getattr(failure, "strerror", None) or f"{type(failure).__name__}: {failure}"
                _say(f"reading the {reader.journal} journal failed: {reason}")
                return EXIT_ERROR
        if not announced and all(reader.history_complete or reader.ended for reader in readers):
            announced = True
            events = sum(
                value
                for reader in readers
                for (family, _), value in reader.counters.values().items()
                if family == "events"
            )
            _say(f"history consumed: {events:.0f} events in {time.monotonic() - started:.1f} s"
                 + ("; serving the final values" if replay else "; following live events"))
    return 0


def _reader(journal: str, source: Any, args: argparse.Namespace, stop: threading.Event) -> Any:
    """The JournalReader of *journal* from *source*: the whole history,
    then live events; with ``--reconnect`` a lost stream is reopened and
    its state rebuilt from the returning instance's history."""
    # pylint: disable=import-outside-toplevel
    from flux_journal.metrics.reader import JournalReader
    from flux_journal.metrics.resource import RankTracker
    from flux_journal.metrics.state import JobTracker

    new_tracker = JobTracker if journal == "jobs" else RankTracker
    reconnect = getattr(args, "reconnect", False)
    # The cursor where a stream was lost tells the counters which events
    # of the history read again were counted already.
    window = DEFAULT_REORDER_WINDOW if reconnect else None

    def reopen(cursor: Optional[str]) -> Any:
        del cursor  # the whole history again: the state is rebuilt from it
        return open_consumer(journal, source.reconnect(), cursor_window=window)

    follow: Dict[str, Any] = {
        "label": source.label,
        "service": service_name(journal),
        "reopen": reopen if source.can_reconnect else None,
        "reconnect": reconnect,
        "ends": source.ends,
        "stop": stop,
        "prog": _PROG,
    }
    follower = None
    if source.handle is not None:
        try:
            follower = Follower(open_consumer(journal, source.handle, cursor_window=window),
                                **follow)
        except OSError as exc:
            reason = loss_reason(exc, running=False)
            if not (reconnect and source.can_reconnect and reason):
                raise
            _say(f"cannot reach the {follow['service']} of {source.label}: {reason}; retrying")
    if follower is None:
        follower = Follower.connecting(**follow)
    instances = None
    if journal == "jobs" and getattr(args, "recursive", False):
        # pylint: disable-next=import-outside-toplevel
        from flux_journal.cli.recursive import TreeFollower, UnreachableReport
        from flux_journal.metrics.instances import InstanceCounters

        instances = InstanceCounters(new_tracker)
        report = UnreachableReport(prog=_PROG)

        counters = instances

        def unreachable(record: Any) -> None:
            counters.report(record)
            report(record)

        tree = TreeFollower(follower, connect=source.connect_child, level=args.level,
                            on_unreachable=unreachable, cursor_window=window)
        return JournalReader(journal, None, new_tracker(), follower=tree,
                             new_tracker=new_tracker, instances=instances)
    return JournalReader(journal, None, new_tracker(), follower=follower,
                         new_tracker=new_tracker)


def run(args: argparse.Namespace, open_source: Callable[..., Any]) -> int:
    """Run the exporter until interrupted; return the exit status.

    *open_source(args, journal, live=True)* (the command line's
    :func:`~flux_journal.cli.sources.open_source`) opens what
    ``--uri``/``--sim``/``--replay`` name for *journal* (``"jobs"`` or
    ``"resource"``), with a simulated instance's live events, and returns
    an object with ``handle`` (a Flux handle), ``label``, ``start()``
    (the consumer listens: start simulated live events) and ``close()``.
    """
    # pylint: disable=import-outside-toplevel
    from flux_journal.metrics.collector import JournalCollector, make_registry
    from flux_journal.metrics.server import MetricsServer

    replay = getattr(args, "replay", None) is not None
    journals = [replay_journal(args.replay)] if replay else ["jobs", "resource"]
    sources: Dict[str, Any] = {}
    readers: Dict[str, "JournalReader"] = {}
    stop = StopRequest()
    server = None
    restore = stop.install()
    try:
        for journal in journals:
            # the exporter always follows live events
            sources[journal] = open_source(args, journal, live=True)
            try:
                readers[journal] = _reader(journal, sources[journal], args, stop.event)
            except OSError as exc:
                _say(service_error(exc, journal))
                return EXIT_ERROR
        registry = make_registry(JournalCollector(readers.get("jobs"), readers.get("resource")))
        host, port = args.listen
        try:
            server = MetricsServer(host, port, registry).start()
        except OSError as exc:
            _say(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
            return EXIT_ERROR
        host, port = server.address
        shown = f"[{host}]" if ":" in host else host
        # one source per journal, usually the same instance: named once
        labels = ", ".join(dict.fromkeys(source.label for source in sources.values()))
        _say(f"serving metrics of {labels} at http://{shown}:{port}/metrics")
        started = time.monotonic()
        for journal, reader in readers.items():
            reader.start(stop.event)
            sources[journal].start()
        status = _watch(list(readers.values()), stop.event, replay, started)
        if stop.signum is not None:
            status = 128 + stop.signum
        return status
    finally:
        stop.event.set()
        for reader in readers.values():
            reader.join(_JOIN_SECONDS)
        if server is not None:
            server.close()
        for source in sources.values():
            source.close()
        restore()
