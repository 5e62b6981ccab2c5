"""``flux-journal metrics``: serve Prometheus metrics built from the journals.

The command line registers the subcommand with :func:`add_parser`, adds
its usual source options (``--uri``, ``--sim``, ``--replay``, ...) and
calls :func:`run` with the parsed arguments and its source opener.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

if TYPE_CHECKING:
    from flux_journal.metrics.reader import JournalReader

__all__ = ["DEFAULT_LISTEN", "add_parser", "replay_journal", "run"]

#: Where the exporter listens unless told otherwise (loopback only).
DEFAULT_LISTEN = "127.0.0.1:9464"

_PROG = "flux-journal metrics"
# Exit status when the exporter could not start or a journal failed.
_EXIT_ERROR = 1
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


def _consumer(journal: str, handle: Any) -> Any:
    # pylint: disable=import-outside-toplevel
    if journal == "jobs":
        from flux_journal.job import JournalConsumer

        return JournalConsumer(handle, full=True)
    from flux_journal.resource import ResourceJournalConsumer

    return ResourceJournalConsumer(handle)


class _Signals:
    """SIGINT/SIGTERM set *stop*; :meth:`restore` puts the old handlers back."""

    def __init__(self, stop: threading.Event) -> None:
        self.received: Optional[int] = None
        self._stop = stop
        self._previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }

    def _on_signal(self, signum: int, frame: Any) -> None:
        del frame
        self.received = signum
        self._stop.set()

    def restore(self) -> None:
        """Reinstall the handlers in place before."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _say(message: str) -> None:
    print(f"{_PROG}: {message}", file=sys.stderr, flush=True)


def _watch(readers: List["JournalReader"], stop: threading.Event, replay: bool) -> int:
    """Wait for a signal (then return 0) or a journal failing (then say
    why and return 1); say when the history is consumed."""
    started = time.monotonic()
    announced = False
    while not stop.wait(_WATCH_PERIOD):
        for reader in readers:
            failure = reader.failure
            if failure is not None:
                reason = getattr(failure, "strerror", None) or f"{type(failure).__name__}: {failure}"
                _say(f"reading the {reader.journal} journal failed: {reason}")
                return _EXIT_ERROR
            if reader.ended and not replay:
                _say(f"the {reader.journal} journal ended")
                return _EXIT_ERROR
        if not announced and all(reader.history_complete or reader.ended for reader in readers):
            announced = True
            events = sum(sum(r.tracker.events.copy().values()) for r in readers)
            _say(f"history consumed: {events} events in {time.monotonic() - started:.1f} s"
                 + ("; serving the final values" if replay else "; following live events"))
    return 0


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
    from flux_journal.metrics.reader import JournalReader
    from flux_journal.metrics.resource import RankTracker
    from flux_journal.metrics.server import MetricsServer
    from flux_journal.metrics.state import JobTracker

    replay = getattr(args, "replay", None) is not None
    journals = [replay_journal(args.replay)] if replay else ["jobs", "resource"]
    sources: Dict[str, Any] = {}
    readers: Dict[str, "JournalReader"] = {}
    stop = threading.Event()
    server = None
    signals = _Signals(stop)
    try:
        for journal in journals:
            # the exporter always follows live events
            sources[journal] = open_source(args, journal, live=True)
            tracker = JobTracker() if journal == "jobs" else RankTracker()
            readers[journal] = JournalReader(
                journal, _consumer(journal, sources[journal].handle), tracker
            )
        registry = make_registry(JournalCollector(readers.get("jobs"), readers.get("resource")))
        host, port = args.listen
        try:
            server = MetricsServer(host, port, registry).start()
        except OSError as exc:
            _say(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
            return _EXIT_ERROR
        host, port = server.address
        shown = f"[{host}]" if ":" in host else host
        labels = ", ".join(source.label for source in sources.values())
        _say(f"serving metrics of {labels} at http://{shown}:{port}/metrics")
        for journal, reader in readers.items():
            reader.start(stop)
            sources[journal].start()
        status = _watch(list(readers.values()), stop, replay)
        if signals.received is not None:
            status = 128 + signals.received
        return status
    finally:
        stop.set()
        for reader in readers.values():
            reader.join(_JOIN_SECONDS)
        if server is not None:
            server.close()
        for source in sources.values():
            source.close()
        signals.restore()
