"""Rank sets of ``flux-journal metrics`` (flux_journal.metrics.resource)."""

import errno

import pytest

from flux_journal.metrics.reader import JournalReader
from flux_journal.metrics.resource import RankTracker, decode_idset
from flux_journal.resource import ResourceJournalConsumer, ResourceJournalEvent
from flux_journal.sim import SimFlux, ResourceWorkload

import metrics_oracle

TOPIC = "resource.journal"


def track(lines):
    handle = SimFlux.replay(lines, topic=TOPIC, end=errno.ENODATA)
    reader = JournalReader("resource", ResourceJournalConsumer(handle), RankTracker())
    reader.run()
    assert reader.ended and reader.failure is None and reader.history_complete
    return reader.tracker


@pytest.mark.parametrize(
    "text, ranks",
    [("", set()), ("3", {3}), ("0-3,5", {0, 1, 2, 3, 5}), ("[1-2,7]", {1, 2, 7}),
     ("10-12", {10, 11, 12})],
)
def test_decode_idset(text, ranks):
    assert decode_idset(text) == ranks


@pytest.mark.parametrize("text", ["a", "1-", "3-1", "1,,2", "-4", "1-2-3"])
def test_decode_idset_rejects(text):
    with pytest.raises(ValueError):
        decode_idset(text)


def test_resource_fixture(fixtures_dir):
    """resource.jsonl: 4 brokers, all online; rank 3 drained and
    undrained in history; live: 1 drained and undrained, then 2-3."""
    tracker = track(metrics_oracle.read_lines(fixtures_dir / "resource.jsonl"))
    assert tracker.counts() == {"online": 4, "offline": 0, "drained": 2, "torpid": 0}
    assert tracker.drained == {2, 3}
    assert tracker.events == {
        "restart": 1, "online": 2, "resource-define": 1, "drain": 3, "undrain": 2,
    }
    assert tracker.errors == {}


def test_resource_many_fixture(fixtures_dir):
    lines = metrics_oracle.read_lines(fixtures_dir / "resource-many.jsonl")
    tracker = track(lines)
    expected = metrics_oracle.expected_resource(lines)
    assert tracker.counts() == expected["ranks"]
    assert tracker.events == expected["events"]
    assert tracker.counts()["online"] == 8


@pytest.mark.parametrize("seed, restarts", [(0, 0), (1, 2), (5, 1)])
def test_simulated_resource_journal(seed, restarts):
    workload = ResourceWorkload(nnodes=16, seed=seed, nevents=400, live_events=100,
                                restarts=restarts)
    lines = workload.stream()
    tracker = track(lines)
    # the workload's own record of what it did
    assert tracker.drained == workload._drained  # pylint: disable=protected-access
    assert tracker.ranks - tracker.online == workload._offline  # pylint: disable=protected-access
    assert tracker.torpid == workload._torpid  # pylint: disable=protected-access
    assert tracker.counts() == metrics_oracle.expected_resource(lines)["ranks"]


def test_bad_resource_events_are_counted():
    tracker = RankTracker()

    def event(name, **context):
        return ResourceJournalEvent({"timestamp": 1.0, "name": name, "context": context})

    tracker.consume([
        event("restart", ranks="0-3", online="0-3"),
        event("drain", idset="x-y"),
        event("drain", nodelist="vm"),
        event("offline"),
        event("restart", ranks="0-3"),
        event("brand-new", idset="1"),
        event("drain", idset="1"),
    ])
    assert tracker.errors == {"bad_context": 4, "unknown_event": 1}
    assert tracker.counts() == {"online": 4, "offline": 0, "drained": 1, "torpid": 0}
