"""Journal streams for the benchmarks: built once, served from memory.

Every benchmark feeds both consumers (flux_journal's and flux-core's own
pure-Python one) the very same list of raw response payloads through a
fresh ``SimFlux.replay(lines, topic=..., end=errno.ENODATA)`` handle, so
what differs between the two runs is only the consumer.  Generating a
stream takes seconds, so it happens once, before anything is timed.

Streams:

``jobs(njobs)``
    A generated job-manager backlog (``Workload(njobs, seed=1)``, about
    ten events per job, so 100,000 jobs is about 1M events) followed by
    the sentinel.  The service then ends the stream with ENODATA.
``fixture()``
    tests/fixtures/jobs-10k.jsonl.gz: a real capture of 10,000 jobs
    (100,000 events), kept gzipped in the repository (read through
    tests/captures.py); it already ends with the sentinel.
``fixture(copies=N)``
    N copies of that capture's history one after the other, each with its
    own job ids and timestamps, then the sentinel: 10 copies make a
    1M-event stream of real payloads (jobspec and R on every job's
    response), a check of S1's target on a stream the simulator did not
    generate.
``live(nevents)``
    The backlog of the jobs active at the snapshot (``full=False``), the
    sentinel, then *nevents* single-event live responses.
``resource(nevents)``
    A resource journal backlog of *nevents* events in the resource
    module's 100-event responses, then its sentinel.

This module also makes ``flux_journal`` and ``tests/upstream.py``
importable (see :func:`setup_paths`), so every bench entry point
imports it first.
"""

import dataclasses
import errno
import importlib.util
import os
import re
import sys
import time
from pathlib import Path
from typing import List, Optional

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
TESTS_DIR = REPO_ROOT / "tests"
FIXTURE_NAME = "jobs-10k.jsonl"

JOB_TOPIC = "job-manager.events-journal"
RESOURCE_TOPIC = "resource.journal"

# One seed for everything: streams are a deterministic function of
# their size, so runs on different days compare.
SEED = 1


def setup_paths():
    """Make flux_journal and tests/upstream.py importable.

    An installed flux_journal (CI installs the package into a fresh
    virtual environment; its checkout has no built extension) wins;
    otherwise the checkout itself is used, as in a developer's tree with
    the extension built in place.  The tests directory goes last on the
    path so that its module names shadow nothing.
    """
    if importlib.util.find_spec("flux_journal") is None:
        sys.path.insert(0, str(REPO_ROOT))
    if str(TESTS_DIR) not in sys.path:
        sys.path.append(str(TESTS_DIR))


setup_paths()

import orjson  # noqa: E402  (a flux_journal dependency, so always present)
from captures import capture_dir  # noqa: E402  (tests/captures.py)

from flux_journal.sim import (  # noqa: E402
    JOB_SENTINEL,
    RESOURCE_SENTINEL,
    ResourceWorkload,
    SimFlux,
    Workload,
    read_capture,
)


@dataclasses.dataclass
class Stream:
    """One benchmark stream: the raw payload lines and what is in them.

    Attributes:
        key: short identifier ("jobs-100000", "fixture", ...)
        label: what a reader of the table sees ("gen 1M", "jobs-10k.jsonl")
        kind: "job" or "resource" (which consumer classes read it)
        topic: the journal topic it is served on
        lines: the payloads, str, in the order the service sends them
        events: number of events in all responses
        nbytes: total payload size in bytes (UTF-8)
        full: the consumers' *full* argument (False for live streams)
        timestamps: sorted event timestamps (kept for resume scenarios)
        backlog_lines: lines up to and including the sentinel (the rest
            are live responses)
    """

    key: str
    label: str
    kind: str
    topic: str
    lines: List[str]
    events: int
    nbytes: int
    full: bool = True
    timestamps: Optional[List[float]] = None
    backlog_lines: int = 0

    def handle(self, hold=None):
        """A fresh simulated broker serving this stream once per request,
        ending it with ENODATA after the last line.  With *hold*, only
        that many lines go out at first (ReplayService.release)."""
        return SimFlux.replay(
            self.lines, topic=self.topic, end=errno.ENODATA, hold=hold
        )

    def since_for_last(self, count):
        """The *since* that leaves the last *count* events of the stream:
        the timestamp of event number ``events - count`` in time order."""
        stamps = self.timestamps
        return stamps[len(stamps) - count - 1]

    def write(self, path):
        """Write the lines to *path*, one per line (for child processes)."""
        with open(path, "w", encoding="utf-8", newline="\n") as out:
            for line in self.lines:
                out.write(line)
                out.write("\n")


def read_lines(path):
    """Read a file written by :meth:`Stream.write` back into a list.

    Line by line on purpose: reading the whole file at once would leave a
    transient buffer the size of the stream in the process's peak RSS,
    inflating the baseline a memory measurement subtracts.
    """
    lines = []
    append = lines.append
    with open(path, "r", encoding="utf-8", newline="\n") as src:
        for line in src:
            append(line[:-1] if line.endswith("\n") else line)
    return lines


def human(count):
    """A table label, two significant digits: 9743 -> '9.7k', 99428 ->
    '99k', 998295 -> '1M'."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if count >= scale * 0.995:
            value = count / scale
            if value >= 99.5:
                return f"{round(value):d}{suffix}"
            return f"{value:.2g}{suffix}"
    return str(count)


def _scan(lines, keep_timestamps):
    """Count events and bytes; collect timestamps if asked."""
    events = 0
    nbytes = 0
    stamps = [] if keep_timestamps else None
    for line in lines:
        raw = line.encode("utf-8")
        nbytes += len(raw)
        entries = orjson.loads(raw)["events"]
        events += len(entries)
        if keep_timestamps:
            stamps.extend(entry["timestamp"] for entry in entries)
    if stamps is not None:
        stamps.sort()
    return events, nbytes, stamps


def _make(key, label, kind, lines, full=True, keep_timestamps=False):
    topic = JOB_TOPIC if kind == "job" else RESOURCE_TOPIC
    events, nbytes, stamps = _scan(lines, keep_timestamps)
    sentinel = JOB_SENTINEL if kind == "job" else RESOURCE_SENTINEL
    backlog = lines.index(sentinel) + 1 if sentinel in lines else len(lines)
    return Stream(key, label, kind, topic, lines, events, nbytes, full, stamps, backlog)


def jobs(njobs, keep_timestamps=False):
    """The generated backlog of *njobs* jobs, then the sentinel."""
    lines = Workload(njobs=njobs, seed=SEED).history(full=True)
    lines.append(JOB_SENTINEL)
    stream = _make(f"jobs-{njobs}", "", "job", lines, keep_timestamps=keep_timestamps)
    stream.label = f"gen {human(stream.events)}"
    return stream


# A copy's job ids are the capture's plus copy * ID_STRIDE (the
# capture's ids are below 2**38: the copies' ids never meet).
ID_STRIDE = 1 << 40
_ID = re.compile(r'^\{"id":(\d+),')
_TIMESTAMP = re.compile(r'"timestamp":(-?[0-9.eE+]+)')


def fixture(fixtures_dir=None, copies=1):
    """The captured jobs-10k.jsonl stream (real payloads), or *copies*
    copies of its history (see the module's docstring)."""
    directory = Path(fixtures_dir) if fixtures_dir else capture_dir()
    path = directory / FIXTURE_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (the capture is tests/fixtures/{FIXTURE_NAME}.gz)")
    lines = read_capture(str(path))
    if any(not isinstance(line, str) for line in lines):
        raise ValueError(f"{path} holds a line that is not UTF-8")
    if lines[-1] != JOB_SENTINEL:  # the capture says it ends with one
        lines.append(JOB_SENTINEL)
    if copies == 1:
        return _make("fixture", FIXTURE_NAME, "job", lines)
    history = lines[: lines.index(JOB_SENTINEL)]
    stamps = [float(m) for line in history for m in _TIMESTAMP.findall(line)]
    span = max(stamps) - min(stamps) + 1.0
    scaled = []
    for copy in range(copies):
        scaled.extend(_shifted(line, copy * ID_STRIDE, copy * span) for line in history)
    scaled.append(JOB_SENTINEL)
    return _make(f"fixture-x{copies}", f"{FIXTURE_NAME} x{copies}", "job", scaled)


def _shifted(line, id_offset, time_offset):
    """A history response with its job id and timestamps moved."""
    if not id_offset:
        return line
    line = _ID.sub(lambda m: f'{{"id":{int(m.group(1)) + id_offset},', line, count=1)
    return _TIMESTAMP.sub(lambda m: f'"timestamp":{float(m.group(1)) + time_offset!r}', line)


def live(nevents, njobs=1000):
    """Active jobs' backlog, the sentinel, then *nevents* live responses
    of one event each (read with ``full=False``)."""
    workload = Workload(njobs=njobs, seed=SEED, live_events=nevents)
    lines = workload.history(full=False)
    lines.append(JOB_SENTINEL)
    lines.extend(workload.live_payloads())
    stream = _make(f"live-{nevents}", "", "job", lines, full=False)
    stream.label = f"gen live {human(nevents)}"
    return stream


def resource(nevents, nnodes=16):
    """A resource journal backlog of *nevents* events in 100-event
    responses, then the sentinel."""
    # Some draws produce no event (nothing left to mark torpid), so ask
    # for a few more and let the journal's size limit cut to nevents.
    workload = ResourceWorkload(
        nnodes=nnodes, seed=SEED, nevents=nevents + nevents // 10 + 64
    )
    lines = workload.history(journal_max=nevents)
    lines.append(RESOURCE_SENTINEL)
    stream = _make(f"resource-{nevents}", "", "resource", lines)
    stream.label = f"gen res {human(stream.events)}"
    return stream


class StreamCache:
    """Builds each stream once, on first use, by key, and remembers how
    long generation took (reported, never timed with a consumer).

    Keys: ``jobs:<njobs>``, ``fixture:`` (``fixture:<copies>``), ``live:<nevents>``,
    ``resource:<nevents>``.
    """

    def __init__(self, fixtures_dir=None, log=None):
        self.fixtures_dir = fixtures_dir
        self.log = log
        self.cache = {}
        self.generation = {}

    def get(self, key):
        """The stream for *key*, built now if it was not yet."""
        if key not in self.cache:
            start = time.perf_counter()
            kind, _, size = key.partition(":")
            if kind == "jobs":
                # Timestamps are kept for resume scenarios' since (S2).
                stream = jobs(int(size), keep_timestamps=True)
            elif kind == "fixture":
                stream = fixture(self.fixtures_dir, int(size or 1))
            elif kind == "live":
                stream = live(int(size))
            elif kind == "resource":
                stream = resource(int(size))
            else:
                raise KeyError(f"unknown stream key {key!r}")
            self.cache[key] = stream
            self.generation[key] = time.perf_counter() - start
            if self.log is not None:
                self.log(
                    f"stream {stream.label}: {stream.events} events, "
                    f"{len(stream.lines)} responses, {stream.nbytes / 1e6:.1f} MB, "
                    f"built in {self.generation[key]:.1f} s"
                )
        return self.cache[key]


def payload_lines(stream):
    """The stream's payloads as bytes (for the parser benchmark, P1)."""
    return [line.encode("utf-8") for line in stream.lines]


def environment_note():
    """One line on the machine's state: load average and CPU count."""
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    return (
        f"load average {load}; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}"
    )
