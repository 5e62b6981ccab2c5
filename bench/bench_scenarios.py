"""The benchmark scenarios, run identically for both consumer libraries.

Shared by ``bench/compare.py`` (the comparison table), the pytest-benchmark
files (``bench/test_bench_*.py``) and the memory child
(``bench/bench_child.py``), so all three measure exactly the same code.

A *case* is a scenario applied to one stream.  Running a case for a
library means: make a fresh simulated handle serving the stream and a
consumer of that library (not timed: it is the "broker" and the object
construction), then time :func:`body` from ``start()`` to the end of
the stream (ENODATA right after the sentinel, or after the live part).

:func:`sim_floor` times the simulated broker alone (every response read
with get_str() and reset(), nothing parsed; from a then-callback under
the reactor for the callback scenarios): both libraries' times include
that much, which a real broker's transport replaces.

Libraries:

``flux-core``
    flux-core's own pure-Python consumers from the flux-python wheel,
    loaded with ``tests/upstream.py``'s ``load_upstream()`` exactly as the
    differential tests do.
``flux_journal``
    this project's consumers.

Modes (what the timed body does; both libraries drop each event as soon
as it is taken, as a streaming consumer would, so no list of a million
events is measured):

``poll``        ``while consumer.poll() is not None``
``poll_touch``  the same, reading ``event.context``, ``event.jobspec`` and
                ``event.R`` of every event (flux_journal decodes jobspec
                and R only when read; this shows the cost when all is used)
``callback``    ``set_callback(cb)``, ``start()``, ``handle.reactor_run()``
``poll_batch``  ``poll_batch(1000)`` until a batch ends with None
                (flux_journal only; flux-core's side of S5 is ``poll``)
``batch_cb``    ``set_batch_callback(cb, max_events=1000)`` and the reactor
                (flux_journal only; flux-core's side is ``callback``)
``poll_trickle`` ``poll`` with one live response released before each
                poll() (S3t): no consumer can take several at once
``hold``        ``start()`` and one ``poll()``: the whole history is then
                held by the consumer (memory scenario M1 only)
"""

import dataclasses
import gc
import time
from typing import Callable, Dict, List, Optional

# bench_streams first: importing it puts flux_journal on sys.path.
import bench_streams  # noqa: F401  isort: skip

import flux_journal

FLUX_CORE = "flux-core"
FLUX_JOURNAL = "flux_journal"
LIBS = (FLUX_CORE, FLUX_JOURNAL)

BATCH_EVENTS = 1000  # poll_batch / set_batch_callback batch size

# Sizes: jobs in the large generated stream (about ten events per job,
# so 100,000 jobs is about 1M events), live responses for S3, resource
# events for S6.  Quick sizes only check that everything runs.
FULL_SIZES = {"jobs": 100_000, "live": 200_000, "resource_events": 100_000}
QUICK_SIZES = {"jobs": 2_000, "live": 20_000, "resource_events": 10_000}
SMALL_JOBS = 1_000  # about 10k events: S1's smallest size, G1's base
CAPTURE_JOBS = 10_000  # jobs in the real capture, jobs-10k.jsonl


def scaled_capture_copies(jobs):
    """Copies of the real capture that make as many jobs as the large
    generated stream (10 at the default 100,000: 1M events of real
    payloads); 0 when that is not more than the capture itself."""
    copies = jobs // CAPTURE_JOBS
    return copies if copies > 1 else 0


# ----------------------------------------------------------------------
# Timed bodies.  Each takes (handle, consumer) and returns the number of
# events delivered, which compare.py checks is the same for both sides.


def _poll(handle, consumer):
    del handle
    consumer.start()
    poll = consumer.poll
    count = 0
    while poll() is not None:
        count += 1
    return count


def _poll_touch(handle, consumer):
    del handle
    consumer.start()
    poll = consumer.poll
    count = 0
    while (event := poll()) is not None:
        # Everything an event offers: the context and the (possibly
        # lazily decoded) jobspec and R.  ResourceJournalEvent has R only.
        _ = event.context
        _ = getattr(event, "jobspec", None)
        _ = event.R
        count += 1
    return count


def _callback(handle, consumer):
    count = 0

    def event_cb(event):
        nonlocal count
        # flux-core 0.88 never calls back with None at the end (its
        # ENODATA branch forgets to flush), flux_journal does: count only
        # events, so both report the same number.
        if event is not None:
            count += 1

    consumer.set_callback(event_cb)
    consumer.start()
    handle.reactor_run()
    return count


def _poll_batch(handle, consumer):
    del handle
    consumer.start()
    poll_batch = consumer.poll_batch
    count = 0
    while True:
        batch = poll_batch(BATCH_EVENTS)
        for event in batch:  # a consumer looks at every event
            pass
        if batch[-1] is None:
            return count + len(batch) - 1
        count += len(batch)


def _batch_cb(handle, consumer):
    count = 0

    def batch_cb(events):
        nonlocal count
        for event in events:
            if event is not None:
                count += 1

    consumer.set_batch_callback(batch_cb, max_events=BATCH_EVENTS)
    consumer.start()
    handle.reactor_run()
    return count


def _poll_trickle(handle, consumer):
    # The handle was made with hold=<backlog lines> (Case.handle): each
    # live response is released just before the poll() that needs it,
    # so no consumer ever finds more than one response waiting, as with
    # a live stream that is not bursting.  release() is the simulated
    # broker's cost, the same for both libraries (see the sim floor).
    release = handle.service(consumer.topic).release
    consumer.start()
    poll = consumer.poll
    count = 0
    while True:
        release(1)
        if poll() is None:
            return count
        count += 1


def _hold(handle, consumer):
    del handle
    consumer.start()
    # The first poll() returns only once the whole history is in.
    return 0 if consumer.poll() is None else 1


BODIES: Dict[str, Callable] = {
    "poll": _poll,
    "poll_touch": _poll_touch,
    "callback": _callback,
    "poll_batch": _poll_batch,
    "batch_cb": _batch_cb,
    "poll_trickle": _poll_trickle,
    "hold": _hold,
}


def sim_floor(handle, topic, request, trickle=False, reactor=False):
    """The simulated broker's own share of a run: read every response
    payload with get_str() and reset(), as any consumer must, and do
    nothing with it.  Both libraries' times include this much (real
    Flux's transport costs differ), so compare.py reports it and the
    ratio with it subtracted from both sides.  With *reactor*, the
    responses are read from a then-callback under ``reactor_run()``, as
    in the callback scenarios, whose dispatch costs the broker more."""
    from flux_journal._flux import FLUX_RPC_STREAMING

    release = handle.service(topic).release if trickle else None
    future = handle.rpc(topic, request, 0, FLUX_RPC_STREAMING)
    count = 0
    if reactor:

        def read(future):
            nonlocal count
            try:
                future.get_str()
            except OSError:  # ENODATA: the end
                future.stop()
                return
            future.reset()
            count += 1

        future.then(read)
        handle.reactor_run()
        return count
    while True:
        if release is not None:
            release(1)
        try:
            future.wait_for(-1.0)
            future.get_str()
        except OSError:  # ENODATA: the end
            return count
        future.reset()
        count += 1


# ----------------------------------------------------------------------
# Scenarios


@dataclasses.dataclass(frozen=True)
class Scenario:
    """What is measured, independent of the stream it is measured on.

    Attributes:
        name: "S1", "S1a", ...
        title: one-line description for the table
        modes: library -> body name (see BODIES)
        target: the issue's target ratio (flux-core / flux_journal), or
            None where there is none
        resume_last: if set, consumers get since = the timestamp that
            leaves this many events (S2)
        trickle: serve live responses one per poll() (S3t; needs a
            stream with a live part)
    """

    name: str
    title: str
    modes: Dict[str, str]
    target: Optional[float] = None
    resume_last: Optional[int] = None
    trickle: bool = False


def _same(mode):
    return {FLUX_CORE: mode, FLUX_JOURNAL: mode}


SCENARIOS: Dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("S1", "full history, poll() to the end", _same("poll"), 20.0),
        Scenario(
            "S1a",
            "S1 reading context, jobspec, R of every event",
            _same("poll_touch"),
        ),
        Scenario(
            "S2",
            "resume: since = ts of event N-1000, last 1,000",
            _same("poll"),
            50.0,
            resume_last=1000,
        ),
        Scenario(
            "S3", "live single-event responses, all queued, poll()", _same("poll"), 4.0
        ),
        Scenario(
            "S3t",
            "S3, one response released per poll()",
            _same("poll_trickle"),
            4.0,
            trickle=True,
        ),
        Scenario("S4", "S1 in callback mode (reactor_run)", _same("callback"), 15.0),
        Scenario(
            "S5",
            "S1 via poll_batch (flux-core: poll)",
            {FLUX_CORE: "poll", FLUX_JOURNAL: "poll_batch"},
            40.0,
        ),
        Scenario(
            "S5cb",
            "S1 via set_batch_callback (flux-core: callback)",
            {FLUX_CORE: "callback", FLUX_JOURNAL: "batch_cb"},
            40.0,
        ),
        Scenario("S6", "resource journal, 100-event responses", _same("poll"), 10.0),
        Scenario(
            "M1", "memory holding the whole history (fc MB / fj MB)", _same("hold"), 8.0
        ),
    )
}

# Derived rows (no run of their own): G1 from S1's runs, P1 the parser.
DERIVED = {
    "G1": "per-event cost at large / at 10k events (S1)",
    "P1": "C parser on jobs-10k.jsonl payloads, MB/s",
}
ALL_NAMES = tuple(SCENARIOS) + tuple(DERIVED)


@dataclasses.dataclass
class Case:
    """A scenario on one stream."""

    scenario: Scenario
    stream: "bench_streams.Stream"

    @property
    def id(self):
        return f"{self.scenario.name} {self.stream.label}"

    @property
    def since(self):
        if self.scenario.resume_last is None:
            return 0.0
        return self.stream.since_for_last(self.scenario.resume_last)

    @property
    def hold(self):
        """ReplayService's hold for this case: None, or the backlog lines
        (through the sentinel) for trickled live responses."""
        return self.stream.backlog_lines if self.scenario.trickle else None

    def handle(self):
        """A fresh simulated handle serving the stream for this case."""
        return self.stream.handle(hold=self.hold)

    @property
    def request(self):
        """The request payload the consumers send (for sim_floor)."""
        return {"full": self.stream.full} if self.stream.kind == "job" else {}

    def floor(self):
        """Untimed set-up and timed run of sim_floor: (wall, cpu)."""
        handle = self.handle()
        gc.collect()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        sim_floor(
            handle,
            self.stream.topic,
            self.request,
            self.scenario.trickle,
            reactor=self.scenario.modes[FLUX_JOURNAL] in ("callback", "batch_cb"),
        )
        return time.perf_counter() - wall0, time.process_time() - cpu0

    def consumer_kwargs(self):
        """Constructor arguments, identical for both libraries."""
        kwargs = {}
        if self.stream.kind == "job":
            kwargs["full"] = self.stream.full
        since = self.since
        if since:
            kwargs["since"] = since
        return kwargs

    def spec(self, lib, path):
        """A JSON-able description for a child process (bench_child.py)
        that has the stream's lines in file *path*."""
        return {
            "lib": lib,
            "mode": self.scenario.modes[lib] if lib else "baseline",
            "kind": self.stream.kind,
            "topic": self.stream.topic,
            "kwargs": self.consumer_kwargs(),
            "hold": self.hold,
            "path": str(path),
        }


class Libraries:
    """The consumer classes of both libraries, by stream kind."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.classes = {
            FLUX_CORE: {
                "job": upstream.JournalConsumer,
                "resource": upstream.ResourceJournalConsumer,
            },
            FLUX_JOURNAL: {
                "job": flux_journal.JournalConsumer,
                "resource": flux_journal.ResourceJournalConsumer,
            },
        }

    def consumer_class(self, lib, kind):
        return self.classes[lib][kind]


def load_libraries():
    """Load flux-core's consumers with tests/upstream.py (as the
    differential tests do) and pair them with flux_journal's."""
    from upstream import load_upstream  # tests/upstream.py

    return Libraries(load_upstream())


def setup_case(libs, case, lib):
    """Untimed set-up for *case* run by *lib*: (args, kwargs) for the body,
    the shape pytest-benchmark's pedantic(setup=...) wants.  Collects
    garbage first, so one run's leftovers are not charged to the next."""
    handle = case.handle()
    consumer = libs.consumer_class(lib, case.stream.kind)(
        handle, **case.consumer_kwargs()
    )
    gc.collect()
    return (handle, consumer), {}


def body_for(case, lib):
    """The timed function of *case* for *lib*: body(handle, consumer)."""
    return BODIES[case.scenario.modes[lib]]


@dataclasses.dataclass
class Sample:
    """One timed run."""

    wall: float
    cpu: float
    delivered: int


def run_once(libs, case, lib):
    """Set up (untimed) and run *case* once for *lib*."""
    (handle, consumer), _ = setup_case(libs, case, lib)
    body = body_for(case, lib)
    wall0 = time.perf_counter()
    cpu0 = time.process_time()
    delivered = body(handle, consumer)
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    del handle, consumer
    return Sample(wall, cpu, delivered)


def run_interleaved(libs, case, reps, on_sample=None):
    """Run *case* reps times for each library, alternating which goes
    first, so both see the same machine conditions.

    Returns:
        dict: library -> list of Sample, in repetition order
    """
    samples: Dict[str, List[Sample]] = {lib: [] for lib in LIBS}
    for rep in range(reps):
        order = LIBS if rep % 2 == 0 else tuple(reversed(LIBS))
        for lib in order:
            sample = run_once(libs, case, lib)
            samples[lib].append(sample)
            if on_sample is not None:
                on_sample(case, lib, rep, sample)
    return samples


# ----------------------------------------------------------------------
# Planning: which scenario runs on which streams


def stream_keys(jobs, live, resource_events):
    """Scenario name -> keys of the streams it runs on (StreamCache keys).

    S1 runs at three generated sizes (1,000 jobs, jobs/10 and jobs:
    10k, 100k and 1M events by default), on the real capture and on
    copies of it as large as the large stream; the other scenarios at the
    large size, S1a on the capture too.
    """
    big = f"jobs:{jobs}"
    s1 = []
    for size in (SMALL_JOBS, jobs // 10, jobs):
        key = f"jobs:{size}"
        if size >= SMALL_JOBS and key not in s1:
            s1.append(key)
    copies = scaled_capture_copies(jobs)
    return {
        "S1": s1 + ["fixture:"] + ([f"fixture:{copies}"] if copies else []),
        "S1a": [big, "fixture:"],
        "S2": [big],
        "S3": [f"live:{live}"],
        "S3t": [f"live:{live}"],
        "S4": [big],
        "S5": [big],
        "S5cb": [big],
        "S6": [f"resource:{resource_events}"],
        "M1": [big],
    }


def plan(selected, jobs, live, resource_events, streams):
    """The cases of the *selected* scenario names, in table order.
    G1 needs S1 at the smallest and the largest size, so selecting G1
    alone runs those two."""
    keys_by_name = stream_keys(jobs, live, resource_events)
    selected = set(selected)
    cases = []
    for name, scenario in SCENARIOS.items():
        keys = keys_by_name[name]
        if name not in selected:
            if name != "S1" or "G1" not in selected:
                continue
            keys = [f"jobs:{SMALL_JOBS}"]
            if jobs != SMALL_JOBS:
                keys.append(f"jobs:{jobs}")
        for key in keys:
            cases.append(Case(scenario, streams.get(key)))
    return cases


def expected_delivered(case):
    """How many events a correct consumer delivers for *case*."""
    if case.scenario.modes[FLUX_JOURNAL] == "hold":
        return 1
    since = case.since
    if not since:
        return case.stream.events
    return sum(1 for ts in case.stream.timestamps if ts > since)


# ----------------------------------------------------------------------
# P1: the payload parser alone


def parser_functions(lines):
    """Functions that each parse every payload of *lines* (bytes) once.

    ``fj_payload_parse`` is the C scanner through cffi with one reused
    fj_payload_t (what the stream does per response, minus queueing);
    ``cffi call overhead`` the same loop on a 13-byte payload (the
    per-payload cost of the loop and the call, not of parsing);
    ``core.validate`` the public wrapper (a fresh index per call);
    ``orjson.loads`` and ``json.loads`` the Python alternatives on the
    same bytes.  Each function returns how many payloads it accepted.
    Returns (dict name -> function, release function).
    """
    import json

    import orjson
    from flux_journal import core
    from flux_journal._core import ffi, lib

    pairs = [(line, len(line)) for line in lines]
    index = ffi.new("fj_payload_t *")
    lib.fj_payload_init(index)
    err = ffi.new("fj_error_t *")

    def fj_payload_parse():
        parse, ok = lib.fj_payload_parse, lib.FJ_OK
        for line, size in pairs:
            if parse(index, line, size, err) != ok:
                raise ValueError(f"fj_payload_parse failed: code {err.code}")
        return len(pairs)

    tiny = b'{"events":[]}'
    tiny_pairs = [(tiny, len(tiny))] * len(pairs)

    def cffi_call_overhead():
        # The same loop and calls on a 13-byte payload: what the loop and
        # the crossing into C cost per payload, with almost no parsing.
        # compare.py subtracts it to estimate the C parser's own speed.
        parse, ok = lib.fj_payload_parse, lib.FJ_OK
        return sum(parse(index, line, size, err) == ok for line, size in tiny_pairs)

    def fj_validate():
        validate = core.validate
        for line in lines:
            validate(line)
        return len(lines)

    def orjson_loads():
        loads = orjson.loads
        return sum(isinstance(loads(line), dict) for line in lines)

    def json_loads():
        loads = json.loads
        return sum(isinstance(loads(line), dict) for line in lines)

    runs = {
        "fj_payload_parse": fj_payload_parse,
        "cffi call overhead": cffi_call_overhead,
        "core.validate": fj_validate,
        "orjson.loads": orjson_loads,
        "json.loads": json_loads,
    }
    return runs, lambda: lib.fj_payload_release(index)
