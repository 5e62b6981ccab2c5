"""flux-journal's additions to the upstream interface: name filters,
unordered history, batches, iteration, exact resume cursors, statistics
and the backlog bound."""

import errno
import gc
import json
import random

import pytest

from flux_journal import (
    BacklogFullError,
    JournalConsumer,
    ResourceJournalConsumer,
)
from flux_journal import core
from flux_journal.sim import ResourceWorkload, SimFlux, Workload

from journal_helpers import poll_all

JOBS = "job-manager.events-journal"
RESOURCE = "resource.journal"


def replay(fixtures_dir, name, topic=JOBS, **kwargs):
    lines = (fixtures_dir / name).read_text().splitlines()
    return SimFlux.replay(lines, topic=topic, end=errno.ENODATA, **kwargs)


def key(event):
    return (event.timestamp, event.name, getattr(event, "jobid", None), str(event))


# ---------------------------------------------------------------------------
# Name filters


@pytest.mark.parametrize(
    "allow,deny",
    [({"submit", "clean"}, None), (None, {"submit", "alloc", "priority"}), ({"alloc", "free"}, {"free"})],
)
def test_job_name_filters_match_filtering_flux_core_stream(upstream, allow, deny):
    def stream(cls, **kwargs):
        h = SimFlux(jobs=Workload(njobs=300, seed=4), autolive=False)
        consumer = cls(h, include_sentinel=True, **kwargs).start()
        out = []
        while not (event := consumer.poll(10)).is_empty():
            out.append(event)
        return out

    theirs = [
        e
        for e in stream(upstream.JournalConsumer)
        if (allow is None or e.name in allow) and (deny is None or e.name not in deny)
    ]
    ours = stream(JournalConsumer, allow=allow, deny=deny)
    assert [key(e) for e in ours] == [key(e) for e in theirs]
    assert ours  # something passed the filter


def test_job_filters_are_sent_to_the_service():
    consumer = JournalConsumer(SimFlux(), allow=["submit"], deny=["free"])
    assert consumer.request_payload == {"full": True, "allow": {"submit": 1}, "deny": {"free": 1}}
    assert JournalConsumer(SimFlux()).request_payload == {"full": True}


def test_resource_name_filter_applied_in_c(fixtures_dir):
    every = poll_all(ResourceJournalConsumer(replay(fixtures_dir, "resource-many.jsonl", RESOURCE)).start())
    consumer = ResourceJournalConsumer(
        replay(fixtures_dir, "resource-many.jsonl", RESOURCE), deny={"drain"}, include_sentinel=True
    ).start()
    filtered = poll_all(consumer)
    assert [key(e) for e in filtered if not e.is_empty()] == [key(e) for e in every if e.name != "drain"]
    assert sum(1 for e in filtered if e.is_empty()) == 1  # sentinel unaffected
    stats = consumer.stats
    assert stats["filtered_name"] == sum(1 for e in every if e.name == "drain") > 0
    assert stats["delivered"] == len(filtered) - 1


def test_filter_that_empties_history_keeps_sentinel(fixtures_dir):
    consumer = JournalConsumer(replay(fixtures_dir, "jobs-full.jsonl"), allow={"no-such-event"}, include_sentinel=True)
    assert poll_all(consumer.start()) == [JournalConsumer.SENTINEL_EVENT]


# ---------------------------------------------------------------------------
# Unordered history


@pytest.mark.slow
def test_unordered_history_same_multiset_streamed_as_it_arrives(fixtures_dir):
    ordered = poll_all(JournalConsumer(replay(fixtures_dir, "jobs-10k.jsonl")).start())
    consumer = JournalConsumer(replay(fixtures_dir, "jobs-10k.jsonl"), ordered=False, include_sentinel=True).start()
    peak = 0
    unordered = []
    while (event := consumer.poll(10)) is not None:
        unordered.append(event)
        peak = max(peak, consumer.stats["backlog"])
    assert unordered[-1] is JournalConsumer.SENTINEL_EVENT
    unordered.pop()
    assert sorted(map(key, unordered)) == sorted(map(key, ordered))
    assert [key(e) for e in unordered] != [key(e) for e in ordered]  # arrival order
    # nothing accumulates: at most the responses taken in one go (those
    # that had already arrived, up to BATCH_SIZE) wait in C
    lines = (fixtures_dir / "jobs-10k.jsonl").read_text().splitlines()
    per_response = max(line.count('"timestamp"') for line in lines)
    assert peak <= core.BATCH_SIZE * per_response < len(ordered) / 10
    assert consumer.stats["history"] == len(unordered)


# ---------------------------------------------------------------------------
# Batches


@pytest.mark.parametrize("size", [1, 7, 256, 1000, 5000])
def test_batches_concatenate_to_the_poll_sequence(fixtures_dir, size):
    expected = poll_all(JournalConsumer(replay(fixtures_dir, "jobs-10k.jsonl"), include_sentinel=True).start())
    consumer = JournalConsumer(replay(fixtures_dir, "jobs-10k.jsonl"), include_sentinel=True).start()
    got = []
    while True:
        batch = consumer.poll_batch(size)
        assert 1 <= len(batch) <= size
        assert None not in batch[:-1]
        got += batch
        if batch[-1] is None:
            break
    assert got.pop() is None
    assert got == expected
    assert consumer.poll_batch(size) == [None]


def test_poll_batch_timeout_and_shared_queue(fixtures_dir):
    lines = (fixtures_dir / "jobs-active.jsonl").read_text().splitlines()
    assert lines[3] == '{"id":-1,"events":[]}'
    consumer = JournalConsumer(SimFlux.replay(lines, topic=JOBS))
    consumer.start()
    first = consumer.poll()
    history = consumer.poll_batch(10_000, timeout=1.0)
    assert consumer.history_complete  # a batch ends with the history
    live = []
    with pytest.raises(TimeoutError):
        while True:
            live += consumer.poll_batch(10_000, timeout=0.2)
    expected = poll_all(JournalConsumer(replay(fixtures_dir, "jobs-active.jsonl")).start())
    assert [first] + history + live == expected
    nhistory = sum(len(json.loads(line)["events"]) for line in lines[:3])
    assert len(history) + 1 == nhistory and live


def test_batch_stops_before_an_error(fixtures_dir):
    lines = ['{"id":-1,"events":[]}'] + [
        '{"id":%d,"events":[{"timestamp":%d.0,"name":"submit"}]}' % (i, i) for i in range(1, 6)
    ]
    h = SimFlux.replay(lines, topic=JOBS, errors={4: errno.EPERM})
    consumer = JournalConsumer(h).start()
    assert [e.timestamp for e in consumer.poll_batch(100)] == [1.0, 2.0, 3.0]
    with pytest.raises(PermissionError):
        consumer.poll_batch(100)
    assert consumer.poll_batch(100) == [None]


def test_batch_callback(fixtures_dir):
    expected = poll_all(JournalConsumer(replay(fixtures_dir, "jobs-full.jsonl")).start())
    h = replay(fixtures_dir, "jobs-full.jsonl")
    batches = []
    JournalConsumer(h).set_batch_callback(batches.append, max_events=64).start()
    h.reactor_run()
    assert all(1 <= len(b) <= 64 for b in batches)
    flat = [e for b in batches for e in b]
    assert flat.pop() is None
    assert flat == expected


def test_batches_leave_the_garbage_collector_as_they_found_it(fixtures_dir):
    """A batch is built with Python's cyclic collector paused (no
    collection runs while a thousand new events pile up), and the
    collector is running again, or still off, as before, when the batch
    reaches the caller or the batch callback."""
    collections = []

    def note(phase, info):
        if phase == "start":
            collections.append(info["generation"])

    consumer = JournalConsumer(replay(fixtures_dir, "jobs-10k.jsonl")).start()
    consumer.poll()  # the history is in: the next batch only builds events
    gc.callbacks.append(note)
    try:
        batch = consumer.poll_batch(2000)
    finally:
        gc.callbacks.remove(note)
    assert len(batch) == 2000 and collections == []
    assert gc.isenabled()

    gc.disable()
    try:
        assert len(consumer.poll_batch(2000)) == 2000
        assert not gc.isenabled()
    finally:
        gc.enable()

    h = replay(fixtures_dir, "jobs-10k.jsonl")
    states = []

    def batch_cb(events):
        states.append(gc.isenabled())
        if len(states) == 2:
            raise RuntimeError("callback failed")

    JournalConsumer(h).set_batch_callback(batch_cb, max_events=500).start()
    with pytest.raises(RuntimeError):
        h.reactor_run()
    assert states == [True, True] and gc.isenabled()


# ---------------------------------------------------------------------------
# Iteration and lifetime


def test_iteration_ends_at_end_of_stream(fixtures_dir):
    expected = poll_all(JournalConsumer(replay(fixtures_dir, "jobs-full.jsonl")).start())
    consumer = JournalConsumer(replay(fixtures_dir, "jobs-full.jsonl"))
    assert list(consumer) == expected  # starts by itself


def test_events_until_sentinel_leaves_stream_open():
    h = SimFlux(jobs=Workload(njobs=80, seed=5, live_jobs=5))
    consumer = JournalConsumer(h)
    history = list(consumer.events(until_sentinel=True))
    assert history and history == sorted(history, key=lambda e: e.timestamp)
    live = consumer.poll(5)  # the stream goes on
    assert live.timestamp >= history[-1].timestamp
    with_sentinel = list(JournalConsumer(SimFlux(jobs=Workload(njobs=80, seed=5)), include_sentinel=True).events(until_sentinel=True))
    assert with_sentinel[:-1] == history and with_sentinel[-1].is_empty()


def test_events_timeout():
    consumer = JournalConsumer(SimFlux(jobs=Workload(njobs=10, seed=1), autolive=False))
    with pytest.raises(TimeoutError):
        for _ in consumer.events(timeout=0.1):
            pass


def test_context_manager_cancels_and_drains():
    h = SimFlux(jobs=Workload(njobs=40, seed=6, live_jobs=50))
    with JournalConsumer(h, include_sentinel=True) as consumer:
        assert consumer.rpc is not None
        while not consumer.poll(5).is_empty():
            pass
    assert consumer.poll(0) is None  # cancelled and read to its end
    assert h.jobs.listeners == 0


# ---------------------------------------------------------------------------
# Resume cursors


def resume_suffix_check(make_handle, consumer_cls, positions, **kwargs):
    full = poll_all(consumer_cls(make_handle(), **kwargs).start())
    for i in positions:
        resumed = poll_all(consumer_cls(make_handle(), since=full[i].cursor, **kwargs).start())
        assert [key(e) for e in resumed] == [key(e) for e in full[i + 1 :]], f"resume after event {i}"
    return full


@pytest.mark.slow
def test_resume_from_every_cursor_around_equal_timestamps(fixtures_dir):
    path = fixtures_dir / "jobs-10k.jsonl"
    lines = path.read_text().splitlines()

    def make():
        return SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)

    full = poll_all(JournalConsumer(make()).start())
    ties = [i for i in range(1, len(full)) if full[i].timestamp == full[i - 1].timestamp]
    assert len(ties) >= 3
    positions = sorted({p for i in ties for p in range(i - 2, i + 2)} | set(random.Random(1).sample(range(len(full)), 6)))
    resume_suffix_check(make, JournalConsumer, positions)
    # a plain timestamp, as upstream, can lose the second event of a tie
    i = ties[0]
    after_ts = poll_all(JournalConsumer(make(), since=full[i - 1].timestamp).start())
    assert len(after_ts) < len(full) - i


@pytest.mark.slow
def test_resume_from_every_position_of_a_tie_heavy_stream():
    def make():
        return SimFlux(jobs=Workload(njobs=60, seed=11, ties=0.5), autolive=False)

    def bounded(cls, **kwargs):
        consumer = cls(make(), include_sentinel=True, **kwargs).start()
        out = []
        while not (event := consumer.poll(10)).is_empty():
            out.append(event)
        return out

    full = bounded(JournalConsumer)
    stamps = [e.timestamp for e in full]
    assert len(stamps) - len(set(stamps)) > 20  # many ties
    for i, event in enumerate(full):
        resumed = bounded(JournalConsumer, since=event.cursor)
        assert [key(e) for e in resumed] == [key(e) for e in full[i + 1 :]], f"resume after event {i}"
        # cursors of resumed events resume correctly too (chained resume)
        if resumed and i % 7 == 0:
            again = bounded(JournalConsumer, since=resumed[0].cursor)
            assert [key(e) for e in again] == [key(e) for e in full[i + 2 :]]


def test_resource_cursor_resume(fixtures_dir):
    lines = (fixtures_dir / "resource-many.jsonl").read_text().splitlines()

    def make():
        return SimFlux.replay(lines, topic=RESOURCE, end=errno.ENODATA)

    full = poll_all(ResourceJournalConsumer(make()).start())
    resume_suffix_check(make, ResourceJournalConsumer, range(0, len(full), 13))


def test_cursor_format_and_errors():
    h = SimFlux.replay(['{"id":42,"events":[{"timestamp":1.5,"name":"a,b/c"}]}'], topic=JOBS, end=errno.ENODATA)
    event = JournalConsumer(h).start().poll()
    assert event.cursor == "1.5/42.a%2Cb%2Fc"
    with pytest.raises(ValueError, match="not a flux-journal cursor"):
        JournalConsumer(SimFlux(), since="yesterday").start()


# ---------------------------------------------------------------------------
# Statistics and the backlog bound


def test_stats_count_what_happened(fixtures_dir):
    lines = (fixtures_dir / "jobs-full.jsonl").read_text().splitlines()
    everything = poll_all(JournalConsumer(replay(fixtures_dir, "jobs-full.jsonl")).start())
    since = everything[100].timestamp
    consumer = JournalConsumer(replay(fixtures_dir, "jobs-full.jsonl"), since=since)
    delivered = poll_all(consumer.start())
    stats = consumer.stats
    assert stats["responses"] == len(lines)
    assert stats["bytes"] == sum(len(line.encode()) for line in lines)
    assert stats["events"] == len(everything)
    assert stats["filtered_since"] == 101
    assert stats["delivered"] == len(delivered)
    assert stats["backlog"] == 0
    assert stats["peak_backlog"] >= stats["history"] > 0


def test_max_backlog_raises_clear_error_after_buffered_events(fixtures_dir):
    consumer = JournalConsumer(replay(fixtures_dir, "jobs-10k.jsonl"), max_backlog=5000).start()
    got = []
    with pytest.raises(BacklogFullError, match="max_backlog=5000"):
        while True:
            got.append(consumer.poll(10))
    assert 5000 < len(got) < 5100
    assert [e.timestamp for e in got] == sorted(e.timestamp for e in got)
    assert consumer.poll() is None
    assert isinstance(BacklogFullError("x"), MemoryError)


def test_generated_resource_workload_filters_and_cursor():
    def make():
        return SimFlux(resources=ResourceWorkload(nnodes=6, nevents=400, seed=3), autolive=False)

    consumer = ResourceJournalConsumer(make(), include_sentinel=True, allow={"drain", "undrain"}).start()
    events = []
    while not (event := consumer.poll(10)).is_empty():
        events.append(event)
    assert events and {e.name for e in events} <= {"drain", "undrain"}


def test_consumer_cursor_with_window_survives_late_live_events(fixtures_dir):
    """jobs-full.jsonl's live part has events dated before events delivered
    earlier (a job's validate comes late).  consumer.cursor with a window
    covering that lateness resumes exactly, at every position."""
    lines = (fixtures_dir / "jobs-full.jsonl").read_text().splitlines()

    def make():
        return SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)

    consumer = JournalConsumer(make(), cursor_window=1.0).start()
    full, cursors = [], []
    while (event := consumer.poll(10)) is not None:
        full.append(event)
        cursors.append(consumer.cursor)
    stamps = [e.timestamp for e in full]
    late = [i for i in range(1, len(stamps)) if stamps[i] < max(stamps[:i])]
    assert late, "the capture has out-of-order live events"
    positions = sorted(set(range(max(0, late[0] - 40), len(full))) | set(range(0, len(full), 50)))
    for i in positions:
        resumed = poll_all(JournalConsumer(make(), since=cursors[i]).start())
        assert [key(e) for e in resumed] == [key(e) for e in full[i + 1 :]], f"resume after event {i}"
    # the per-event cursor assumes time order: it loses a late event
    i = late[0] - 1
    resumed = poll_all(JournalConsumer(make(), since=full[i].cursor).start())
    assert len(resumed) < len(full) - i - 1


@pytest.mark.slow
def test_consumer_cursor_needs_a_window_and_chains_across_resumes(fixtures_dir):
    with pytest.raises(RuntimeError, match="cursor_window"):
        JournalConsumer(SimFlux()).cursor
    lines = (fixtures_dir / "jobs-10k.jsonl").read_text().splitlines()

    def make():
        return SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)

    full = poll_all(JournalConsumer(make()).start())
    # resume three times in a row, each from the consumer cursor
    since, got = 0.0, []
    for stop_after in (30_000, 30_001, 50_000):
        consumer = JournalConsumer(make(), since=since, cursor_window=0.0).start()
        while len(got) < stop_after:
            got.append(consumer.poll(10))
        since = consumer.cursor
    got += poll_all(JournalConsumer(make(), since=since).start())
    assert [key(e) for e in got] == [key(e) for e in full]


def test_batch_opened_by_the_sentinel_ends_with_it(fixtures_dir):
    lines = (fixtures_dir / "jobs-full.jsonl").read_text().splitlines()
    live_since = max(json.loads(line)["events"][-1]["timestamp"] for line in lines[:91] if json.loads(line)["events"])
    h = SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)
    consumer = JournalConsumer(h, since=live_since, include_sentinel=True).start()
    assert consumer.poll_batch(1000) == [JournalConsumer.SENTINEL_EVENT]
    live = consumer.poll_batch(1000)
    assert live and not any(e is None or e.is_empty() for e in live[:-1])


def test_cursor_window_needs_the_builtin_event_building():
    class Custom(JournalConsumer):
        def create_event(self, entry, **kwargs):
            return super().create_event(entry, **kwargs)

    with pytest.raises(TypeError, match="cursor_window"):
        Custom(SimFlux(), cursor_window=1.0).start()


@pytest.mark.parametrize("size", [1, 7, 100, 1000])
def test_batch_callback_delivers_every_event_of_a_big_history(size):
    """Batches that span C pops must not drop the events of a pop."""

    def make():
        return SimFlux(jobs=Workload(njobs=300, seed=8), autolive=False)

    consumer = JournalConsumer(make(), include_sentinel=True).start()
    expected = []
    while not (event := consumer.poll(10)).is_empty():
        expected.append(event)
    h = make()
    got = []

    def collect(events):
        got.extend(events)
        if any(e is not None and e.is_empty() for e in events):
            consumer.stop()

    consumer = JournalConsumer(h, include_sentinel=True).set_batch_callback(collect, max_events=size)
    consumer.start()
    h.reactor_run()
    assert got.pop() is None
    assert got.pop().is_empty()
    assert got == expected
