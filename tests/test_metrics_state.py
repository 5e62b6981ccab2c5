"""Job states and results of ``flux-journal metrics`` (flux_journal.metrics.state).

The tracker is fed through the real consumer and reader (JournalReader
over a simulated or replayed journal) and checked against what each
simulated job's kind implies, against tests/metrics_oracle.py's
whole-life reading of the same payloads, and on hand-written event
sequences for the rules of flux-core's job-list.
"""

import errno

import pytest

from flux_journal.job import JournalConsumer, JournalEvent
from flux_journal.metrics.histogram import DURATION_BUCKETS, Histogram
from flux_journal.metrics.reader import JournalReader
from flux_journal.metrics.state import (
    CLEANUP,
    INACTIVE,
    SCHED,
    STATE_NAMES,
    JobTracker,
)
from flux_journal.sim import JOB_KINDS, JOB_SENTINEL, SimFlux, Workload, generate_jobs

import metrics_oracle

TOPIC = "job-manager.events-journal"

# The result flux jobs shows for each kind of simulated job.
KIND_RESULTS = {
    "success": "COMPLETED",
    "long": "COMPLETED",
    "released": "COMPLETED",
    "expedited": "COMPLETED",
    "afterok": "COMPLETED",
    "afterany": "COMPLETED",
    "memo": "COMPLETED",
    "multinode": "COMPLETED",
    "failed": "FAILED",
    "exception": "FAILED",
    "unsatisfiable": "FAILED",
    "afternotok": "FAILED",
    "cancel-pending": "CANCELED",
    "cancel-running": "CANCELED",
    "timeout": "TIMEOUT",
}


def track(lines):
    """Feed a replayed journal through the consumer into a tracker."""
    handle = SimFlux.replay(lines, topic=TOPIC, end=errno.ENODATA)
    reader = JournalReader("jobs", JournalConsumer(handle, full=True), JobTracker())
    reader.run()
    assert reader.ended and reader.failure is None
    assert reader.history_complete
    return reader.tracker


def states_of(tracker):
    return {STATE_NAMES[state]: count for state, count in tracker.states.items()}


def test_every_kind_of_simulated_job_gets_flux_jobs_result():
    kinds = [kind for kind in JOB_KINDS if kind != "held"] * 5
    jobs = generate_jobs(len(kinds), seed=3, kinds=kinds)
    tracker = track([job.history_payload() for job in jobs] + [JOB_SENTINEL])
    expected = {result: 0 for result in metrics_oracle.RESULTS}
    for job in jobs:
        # afterok & co. fall back to plain success when no job to depend on
        expected[KIND_RESULTS[job.kind]] += 1
    assert tracker.results == expected
    assert states_of(tracker)["INACTIVE"] == len(jobs)
    assert sum(tracker.states.values()) == len(jobs)
    # every record was dropped at clean: memory is bounded by active jobs
    assert tracker.active == 0
    assert tracker.errors == {}


def test_held_jobs_wait_in_sched():
    jobs = generate_jobs(4, seed=1, kinds=["held"])
    tracker = track([job.history_payload() for job in jobs] + [JOB_SENTINEL])
    assert states_of(tracker)["SCHED"] == 4
    assert tracker.active == 4
    assert sum(tracker.results.values()) == 0


@pytest.mark.parametrize("seed", [0, 7])
def test_simulated_workload_matches_independent_reading(seed):
    workload = Workload(njobs=3000, seed=seed, live_jobs=50, ties=0.03)
    lines = workload.stream(full=True)
    tracker = track(lines)
    expected = metrics_oracle.expected_jobs(lines)
    assert states_of(tracker) == expected["states"]
    assert tracker.results == expected["results"]
    assert tracker.events == expected["events"]
    assert tracker.errors == {}
    assert tracker.active == sum(
        n for state, n in expected["states"].items() if state != "INACTIVE"
    )


@pytest.mark.parametrize("name", ["jobs-full.jsonl", "jobs-10k.jsonl", "jobs-active.jsonl"])
def test_fixture_matches_independent_reading(fixtures_dir, name):
    lines = metrics_oracle.read_lines(fixtures_dir / name)
    tracker = track(lines)
    expected = metrics_oracle.expected_jobs(lines)
    assert states_of(tracker) == expected["states"]
    assert tracker.results == expected["results"]
    assert tracker.events == expected["events"]
    reference = Histogram()
    for value in expected["queue"]:
        reference.observe(value)
    assert tracker.queue_seconds.counts == reference.counts
    assert tracker.queue_seconds.total == pytest.approx(sum(expected["queue"]))
    assert sum(tracker.run_seconds.counts) == len(expected["run"])
    assert tracker.run_seconds.total == pytest.approx(sum(expected["run"]))


def test_jobs_full_fixture_results(fixtures_dir):
    """The capture's own story: cancelled, timed out, failed jobs."""
    tracker = track(metrics_oracle.read_lines(fixtures_dir / "jobs-full.jsonl"))
    assert tracker.results["CANCELED"] >= 3
    assert tracker.results["TIMEOUT"] == 1
    assert tracker.results["FAILED"] >= 3
    assert tracker.errors.get("unknown_job", 0) == 0


# ----------------------------------------------------------------------
# Hand-written sequences


class Job:
    """Builds one job's events for a tracker, one second apart."""

    def __init__(self, tracker, jobid=1234):
        self.tracker = tracker
        self.jobid = jobid
        self.time = 1000.0

    def __call__(self, name, at=None, **context):
        self.time = at if at is not None else self.time + 1.0
        event = {"timestamp": self.time, "name": name}
        if context:
            event["context"] = context
        self.tracker.consume([JournalEvent(self.jobid, event)])
        return self

    def run_to_sched(self):
        self("submit", urgency=16, userid=0)("validate")("depend")("priority", priority=16)
        return self


def state(tracker):
    (name,) = [STATE_NAMES[s] for s, n in tracker.states.items() if n]
    return name


def test_lifecycle_states_and_durations():
    tracker = JobTracker()
    job = Job(tracker)
    job("submit", at=1000.0, urgency=16, userid=0)
    assert state(tracker) == "NEW"
    job("validate")
    assert state(tracker) == "DEPEND"
    job("depend")
    assert state(tracker) == "PRIORITY"
    job("priority", priority=16)
    assert state(tracker) == "SCHED"
    job("alloc", at=1010.0)
    assert state(tracker) == "RUN"
    job("start", at=1012.0)("finish", at=1112.0, status=0)
    assert state(tracker) == "CLEANUP"
    job("release", ranks="all", final=True)("free")("clean")
    assert state(tracker) == "INACTIVE"
    assert tracker.results["COMPLETED"] == 1
    assert tracker.queue_seconds.total == 10.0
    assert tracker.run_seconds.total == 100.0
    assert tracker.queue_seconds.counts[DURATION_BUCKETS.index(10.0)] == 1
    assert tracker.run_seconds.counts[DURATION_BUCKETS.index(300.0)] == 1
    assert tracker.active == 0


def test_urgency_sends_scheduled_job_back_to_priority():
    tracker = JobTracker()
    job = Job(tracker).run_to_sched()
    job("urgency", urgency=0, userid=0)
    assert state(tracker) == "PRIORITY"
    job("priority", priority=0)
    assert state(tracker) == "SCHED"
    # a priority change of a scheduled job keeps it scheduled
    job("priority", priority=5)
    assert state(tracker) == "SCHED"
    job("jobspec-update", **{"attributes.system.duration": 60})
    assert state(tracker) == "PRIORITY"
    job("flux-restart")
    assert state(tracker) == "PRIORITY"


def test_fatal_exception_moves_to_cleanup_once():
    tracker = JobTracker()
    job = Job(tracker).run_to_sched()
    job("exception", type="cancel", severity=0, note="", userid=0)
    assert state(tracker) == "CLEANUP"
    job("exception", type="cancel", severity=0, note="", userid=0)
    assert tracker.states[CLEANUP] == 1
    job("clean")
    assert tracker.results == {"COMPLETED": 0, "FAILED": 0, "CANCELED": 1, "TIMEOUT": 0}


@pytest.mark.parametrize(
    "kind, severity, status, result",
    [
        # flux-core: a failed job with any exception takes its type
        ("timeout", 1, 256, "TIMEOUT"),
        # exit 0 is no success after a fatal exception...
        ("test", 0, 0, "FAILED"),
        # ...but is after a non-fatal one
        ("cancel", 3, 0, "COMPLETED"),
        # a cancelled job that traps SIGTERM and exits 0 is CANCELED
        ("cancel", 0, 0, "CANCELED"),
    ],
)
def test_result_of_a_job_with_an_exception_while_running(kind, severity, status, result):
    tracker = JobTracker()
    job = Job(tracker).run_to_sched()
    job("alloc")("start")("exception", type=kind, severity=severity, note="", userid=0)
    assert state(tracker) == ("CLEANUP" if severity == 0 else "RUN")
    job("finish", status=status)("clean")
    assert tracker.results[result] == 1
    assert sum(tracker.results.values()) == 1


def test_most_severe_first_exception_decides():
    tracker = JobTracker()
    job = Job(tracker).run_to_sched()
    job("alloc")("start")
    job("exception", type="cancel", severity=2, note="", userid=0)
    job("exception", type="timeout", severity=0, note="", userid=0)
    job("exception", type="cancel", severity=0, note="", userid=0)
    job("finish", status=36352)("clean")
    assert tracker.results["TIMEOUT"] == 1


def test_counts_come_from_the_job_model():
    """The tracker's states and results are those of the job model's
    records (flux_journal.jobstate), job by job."""
    from flux_journal.jobstate import JobModel

    workload = Workload(njobs=600, seed=11, live_jobs=30)
    lines = workload.stream(full=True)
    tracker = track(lines)
    model = JobModel()
    handle = SimFlux.replay(lines, topic=TOPIC, end=errno.ENODATA)
    for event in JournalConsumer(handle, full=True):
        model.apply_events([event])
    assert tracker.states == model.states
    assert tracker.results == model.results
    assert tracker.active == sum(1 for r in model.records() if r.state != INACTIVE)


def test_invalidated_job_is_forgotten():
    tracker = JobTracker()
    Job(tracker)("submit", urgency=16, userid=0)("invalidate")
    assert sum(tracker.states.values()) == 0
    assert tracker.active == 0
    assert tracker.events == {"submit": 1, "invalidate": 1}


def test_bad_input_is_counted_and_ignored():
    tracker = JobTracker()
    Job(tracker, jobid=99)("alloc")  # never submitted
    job = Job(tracker).run_to_sched()
    job("alloc")("start")
    job("finish")  # no status: job-list rejects it
    assert state(tracker) == "RUN"
    job("exception", severity=0)  # no type
    assert state(tracker) == "RUN"
    job("no-such-event")
    job("prolog-start", description="x")("epilog-finish", description="x", status=0)
    job("memo", at=900.0, progress=1)  # dated before the job's previous event
    job("finish", at=5000.0, status=0)("clean")
    assert tracker.errors == {
        "unknown_job": 1,
        "bad_context": 2,
        "unknown_event": 1,
        "out_of_order": 1,
    }
    assert tracker.results["COMPLETED"] == 1
    assert tracker.states[INACTIVE] == 1


def test_context_that_is_not_an_object_is_bad_context():
    tracker = JobTracker()
    job = Job(tracker).run_to_sched()
    event = JournalEvent(job.jobid, {"timestamp": 2000.0, "name": "finish", "context": {}})
    event["context"] = "status=0"
    tracker.consume([event])
    assert tracker.errors == {"bad_context": 1}
    assert tracker.states[SCHED] == 1


def test_states_sum_to_known_jobs_as_events_arrive():
    workload = Workload(njobs=400, seed=2)
    lines = workload.stream(full=True)
    handle = SimFlux.replay(lines, topic=TOPIC, end=errno.ENODATA)
    consumer = JournalConsumer(handle, full=True).start()
    tracker = JobTracker()
    seen = set()
    while True:
        batch = consumer.poll_batch(37, 5.0)
        if batch[-1] is None:
            batch.pop()
        if not batch:
            break
        tracker.consume(batch)
        for event in batch:
            if event.name == "submit":
                seen.add(event.jobid)
        assert sum(tracker.states.values()) == len(seen)
        assert tracker.active == len(seen) - tracker.states[INACTIVE]
