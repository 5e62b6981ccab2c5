"""flux-journal against flux-core's own consumer code, on the same streams.

flux-core's pure-Python consumers come from its flux-python wheel (see
tests/upstream.py).  Both are fed byte-identical streams by the simulated
instance: every capture in tests/fixtures and generated workloads of
several seeds.  The delivered sequences must match event for event: the
same dict contents in the same key order, the same attributes, the same
str(), in the same order.  The only differences allowed are the ones
flux-journal makes on purpose (documented in flux_journal/abc.py): the
callback also receives a final None, and SENTINEL_EVENT is each library's
own object.
"""

import errno

import pytest

from flux_journal import JournalConsumer, ResourceJournalConsumer
from flux_journal.sim import ResourceWorkload, SimFlux, Workload

from journal_helpers import poll_all

JOBS = "job-manager.events-journal"
RESOURCE = "resource.journal"


def same_event(ours, theirs):
    if theirs.is_empty():
        return ours.is_empty()
    return (
        dict(ours) == dict(theirs)
        and list(ours) == list(theirs)
        and str(ours) == str(theirs)
        and ours.timestamp == theirs.timestamp
        and ours.context_string == theirs.context_string
        and getattr(ours, "jobid", None) == getattr(theirs, "jobid", None)
        and getattr(ours, "jobspec", None) == getattr(theirs, "jobspec", None)
        and getattr(ours, "R", None) == getattr(theirs, "R", None)
    )


def assert_same_sequence(ours, theirs):
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert same_event(a, b), f"event {i} differs: {a!r} != {b!r}"


def callback_all(handle, consumer):
    out = []
    consumer.set_callback(out.append).start()
    handle.reactor_run()
    return out


FIXTURES = [
    ("jobs-full.jsonl", JOBS),
    ("jobs-active.jsonl", JOBS),
    pytest.param(
        "jobs-10k.jsonl", JOBS, marks=pytest.mark.slow, id="jobs-10k.jsonl-job-manager.events-journal"
    ),
    ("resource.jsonl", RESOURCE),
    ("resource-many.jsonl", RESOURCE),
]


def consumers(upstream, topic):
    if topic == JOBS:
        return JournalConsumer, upstream.JournalConsumer
    return ResourceJournalConsumer, upstream.ResourceJournalConsumer


@pytest.mark.parametrize("name,topic", FIXTURES)
@pytest.mark.parametrize("include_sentinel", [False, True])
def test_fixture_poll_matches_flux_core(upstream, fixtures_dir, name, topic, include_sentinel):
    lines = (fixtures_dir / name).read_text().splitlines()
    ours_cls, theirs_cls = consumers(upstream, topic)
    kwargs = {"include_sentinel": include_sentinel}
    ours = poll_all(ours_cls(SimFlux.replay(lines, topic=topic, end=errno.ENODATA), **kwargs).start())
    theirs = poll_all(theirs_cls(SimFlux.replay(lines, topic=topic, end=errno.ENODATA), **kwargs).start())
    assert_same_sequence(ours, theirs)
    assert len(ours) > 0


@pytest.mark.parametrize("name,topic", FIXTURES)
def test_fixture_callback_matches_flux_core(upstream, fixtures_dir, name, topic):
    lines = (fixtures_dir / name).read_text().splitlines()
    ours_cls, theirs_cls = consumers(upstream, topic)
    h = SimFlux.replay(lines, topic=topic, end=errno.ENODATA)
    ours = callback_all(h, ours_cls(h, include_sentinel=True))
    h = SimFlux.replay(lines, topic=topic, end=errno.ENODATA)
    theirs = callback_all(h, theirs_cls(h, include_sentinel=True))
    assert ours[-1] is None  # flux-journal's documented fix
    assert_same_sequence(ours[:-1], theirs)


@pytest.mark.parametrize("full", [True, False])
def test_active_jobs_fixture_full_false(upstream, fixtures_dir, full):
    lines = (fixtures_dir / "jobs-active.jsonl").read_text().splitlines()
    ours = poll_all(JournalConsumer(SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA), full=full).start())
    theirs = poll_all(
        upstream.JournalConsumer(SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA), full=full).start()
    )
    assert_same_sequence(ours, theirs)


def history_then_stop(consumer):
    """Read history to the sentinel, stop, then read to the end."""
    out = []
    consumer.start()
    while True:
        event = consumer.poll(10)
        out.append(event)
        if event.is_empty():
            break
    consumer.stop()
    out += poll_all(consumer)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_generated_workloads_match_flux_core(upstream, seed):
    njobs = 150 + 40 * seed
    since = 0.0
    if seed % 2:
        # resume from the middle of the history
        events = history_then_stop(JournalConsumer(SimFlux(jobs=Workload(njobs=njobs, seed=seed)), include_sentinel=True))
        since = events[len(events) // 2].timestamp
    ours = history_then_stop(
        JournalConsumer(SimFlux(jobs=Workload(njobs=njobs, seed=seed)), include_sentinel=True, since=since)
    )
    theirs = history_then_stop(
        upstream.JournalConsumer(SimFlux(jobs=Workload(njobs=njobs, seed=seed)), include_sentinel=True, since=since)
    )
    assert_same_sequence(ours, theirs)
    assert len(ours) > njobs


@pytest.mark.parametrize("seed", range(3))
def test_generated_resource_workloads_match_flux_core(upstream, seed):
    def make():
        return SimFlux(resources=ResourceWorkload(nnodes=4 + seed, nevents=150 * (seed + 1), seed=seed))

    ours = history_then_stop(ResourceJournalConsumer(make(), include_sentinel=True))
    theirs = history_then_stop(upstream.ResourceJournalConsumer(make(), include_sentinel=True))
    assert_same_sequence(ours, theirs)


def test_live_events_match_flux_core(upstream):
    """History, sentinel, then live events as the instance runs jobs."""

    def run(cls):
        h = SimFlux(jobs=Workload(njobs=60, seed=9, live_jobs=20))
        consumer = cls(h, include_sentinel=True).start()
        out = []
        while True:
            try:
                out.append(consumer.poll(0.3))
            except TimeoutError:
                break
        consumer.stop()
        return out + poll_all(consumer)

    ours, theirs = run(JournalConsumer), run(upstream.JournalConsumer)
    assert_same_sequence(ours, theirs)
    sentinel = next(i for i, e in enumerate(ours) if e.is_empty())
    assert len(ours) - sentinel > 20  # live events were compared too
