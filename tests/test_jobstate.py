"""The job model (flux_journal.jobstate): job-list's record of each job.

Hand-built event sequences, one per outcome, checked against the values
job-list and ``flux jobs --json`` give for them (worked out from
flux-core's rules, not from the model); then the captured fixture and
simulated workloads, checked against metrics_oracle's independent
whole-life reading.  tests/broker/test_job_records.py compares the
records with a real job-list.
"""

import errno
import json
import os
import pwd

import pytest

from flux_journal.job import JobID, JournalConsumer, JournalEvent
from flux_journal import jobstate
from flux_journal.jobstate import INACTIVE, JobModel
from flux_journal.sim import JOB_KINDS, JOB_SENTINEL, SimFlux, Workload, generate_jobs

import metrics_oracle

TOPIC = "job-manager.events-journal"
JOBID = 1234

JOBSPEC = {
    "version": 1,
    "resources": [{"type": "slot", "count": 1, "label": "task",
                   "with": [{"type": "core", "count": 1}]}],
    "tasks": [{"command": ["/bin/sleep", "10"], "slot": "task", "count": {"per_slot": 1}}],
    "attributes": {"system": {"duration": 0, "cwd": "/home/alice"}},
}
R = {"version": 1, "execution": {"R_lite": [{"rank": "3", "children": {"core": "0"}}],
                                 "expiration": 0.0, "nodelist": ["node3"]}}


class Job:
    """Feeds one job's events to a model, one second apart from 1000.0."""

    def __init__(self, model=None, jobid=JOBID, jobspec=JOBSPEC, R=R):
        self.model = model if model is not None else JobModel()
        self.jobid = jobid
        self.jobspec, self.R = jobspec, R
        self.time = 1000.0

    def __call__(self, name, **context):
        self.time += 1.0
        event = {"timestamp": self.time, "name": name}
        if context:
            event["context"] = context
        self.model.apply_events([JournalEvent(self.jobid, event, self.jobspec, self.R)])
        return self

    def to_sched(self, urgency=16):
        self("submit", userid=os.getuid(), urgency=urgency, flags=0, version=1)
        return self("validate")("depend")("priority", priority=urgency)

    def to_run(self):
        return self.to_sched()("alloc")("start")

    def record(self, now=None):
        return self.model.get(self.jobid).to_dict(now)


def ending(job, *events):
    """Apply (name, context) pairs then release, free and clean."""
    for name, context in events:
        job(name, **context)
    return job("release", ranks="all", final=True)("free")("clean").record()


CANCEL = ("exception", {"type": "cancel", "severity": 0, "note": "", "userid": 0})


def test_completed_job_has_every_field_job_list_shows():
    job = Job().to_run()  # submit 1001, validate 1002, ... alloc 1005, start 1006
    record = ending(job, ("finish", {"status": 0}))  # 1007
    assert record == {
        "id": JOBID,
        "jobid": JobID(JOBID).f58,
        "userid": os.getuid(),
        "username": pwd.getpwuid(os.getuid()).pw_name,
        "urgency": 16,
        "priority": 16,
        "state": "INACTIVE",
        "status": "COMPLETED",
        "result": "COMPLETED",
        "success": True,
        "waitstatus": 0,
        "returncode": 0,
        "exception": {"occurred": False},
        "t_submit": 1001.0,
        "t_depend": 1002.0,
        "t_priority": 1003.0,
        "t_sched": 1004.0,
        "t_run": 1005.0,
        "t_cleanup": 1007.0,
        "t_inactive": 1010.0,
        "runtime": 2.0,
        "duration": 0.0,
        "name": "sleep",
        "cwd": "/home/alice",
        "ntasks": 1,
        "ncores": 1,
        "nnodes": 1,
        "ranks": "3",
        "nodelist": "node3",
        "dependencies": [],
        "annotations": {},
    }
    assert isinstance(record["duration"], float)


@pytest.mark.parametrize(
    "status, returncode",
    [(256, 1), (9, -9), (137 << 8, 137)],  # exit 1; SIGKILL; a shell's 128+9
)
def test_failed_exit_and_signal(status, returncode):
    record = ending(Job().to_run(), ("finish", {"status": status}))
    assert (record["result"], record["success"], record["waitstatus"], record["returncode"]) == (
        "FAILED", False, status, returncode)
    assert record["t_cleanup"] == 1007.0


def test_cancelled_while_running_cleans_up_at_the_exception():
    job = Job().to_run()
    record = ending(job, CANCEL, ("finish", {"status": 143 << 8}))
    # job-list's t_cleanup: when the job entered CLEANUP (the exception at
    # 1007), not the finish (1008)
    assert record["t_cleanup"] == 1007.0
    assert record["runtime"] == 2.0
    assert record["result"] == "CANCELED" and record["returncode"] == 143
    assert record["exception"] == {"occurred": True, "severity": 0, "type": "cancel", "note": ""}


def test_cancelled_job_that_traps_sigterm_and_exits_0_is_canceled():
    record = ending(Job().to_run(), CANCEL, ("finish", {"status": 0}))
    assert (record["result"], record["success"], record["returncode"]) == ("CANCELED", False, 0)
    assert record["t_cleanup"] == 1007.0


def test_cancelled_while_pending():
    record = ending(Job().to_sched(urgency=0), CANCEL)
    assert record["result"] == "CANCELED" and record["returncode"] == -128
    assert record["t_cleanup"] == 1005.0
    for absent in ("t_run", "runtime", "waitstatus", "ranks", "nodelist", "nnodes"):
        assert absent not in record
    assert record["priority"] == 0


def test_timeout():
    timeout = ("exception", {"type": "timeout", "severity": 0, "note": "expired", "userid": 0})
    record = ending(Job().to_run(), timeout, ("finish", {"status": 36352}))
    assert record["result"] == "TIMEOUT" and record["t_cleanup"] == 1007.0
    assert record["returncode"] == 142
    assert record["exception"]["note"] == "expired"


def test_non_fatal_exception_is_shown_but_the_job_completes():
    raised = ("exception", {"type": "test", "severity": 1, "note": "hello", "userid": 0})
    job = Job().to_run()
    job(raised[0], **raised[1])
    # exceptions are shown once the job is inactive
    assert job.record()["exception"] == {"occurred": False}
    assert job.record()["state"] == "RUN"
    record = ending(job, ("finish", {"status": 0}))
    assert record["result"] == "COMPLETED" and record["t_cleanup"] == 1008.0
    assert record["exception"] == {"occurred": True, "severity": 1, "type": "test",
                                   "note": "hello"}


def test_fatal_exception_before_running_fails_with_returncode_1():
    unsatisfiable = ("exception", {"type": "alloc", "severity": 0, "note": "no", "userid": 0})
    record = ending(Job().to_sched(), unsatisfiable)
    assert record["result"] == "FAILED" and record["returncode"] == 1


def test_most_severe_then_first_exception_is_shown():
    job = Job().to_run()
    for kind, severity in (("a", 2), ("timeout", 0), ("cancel", 0)):
        job("exception", type=kind, severity=severity, note="", userid=0)
    record = ending(job, ("finish", {"status": 36352}))
    assert record["result"] == "TIMEOUT" and record["exception"]["type"] == "timeout"


def test_dependency_and_its_list():
    job = Job()
    job("submit", userid=0, urgency=16, version=1)("validate")
    job("dependency-add", description="after-success=fA")
    job("dependency-add", description="after=fB")
    record = job.record()
    assert record["state"] == "DEPEND" and record["status"] == "DEPEND"
    assert record["dependencies"] == ["after-success=fA", "after=fB"]
    assert "t_priority" not in record and "priority" not in record
    job("dependency-remove", description="after-success=fA")
    # a description once removed is never added again
    job("dependency-add", description="after-success=fA")
    job("depend")
    record = job.record()
    assert record["dependencies"] == ["after=fB"]
    assert record["state"] == "PRIORITY" and record["t_priority"] == 1007.0


def test_pending_job_and_reprioritisation():
    job = Job().to_sched(urgency=0)
    record = job.record()
    assert (record["state"], record["urgency"], record["priority"]) == ("SCHED", 0, 0)
    assert "result" not in record and "success" not in record and "returncode" not in record
    job("urgency", urgency=16, userid=0)
    record = job.record()
    # back in PRIORITY: job-list does not show the priority until SCHED again
    assert record["state"] == "PRIORITY" and "priority" not in record
    job("priority", priority=16)
    record = job.record()
    assert (record["state"], record["priority"]) == ("SCHED", 16)
    assert record["t_sched"] == 1004.0  # the first time


def test_running_job_and_query_time_values():
    R_timed = {"version": 1, "execution": {"R_lite": [{"rank": "0-1", "children": {"core": "0-3"}}],
                                           "expiration": 2000.0, "nodelist": ["n[0-1]"]}}
    job = Job(R=R_timed).to_run()
    record = job.record()
    assert record["status"] == "RUN" and "runtime" not in record and "t_remaining" not in record
    assert (record["nnodes"], record["ncores"], record["ranks"], record["nodelist"]) == (
        2, 8, "[0-1]", "n[0-1]")
    assert record["expiration"] == 2000.0
    record = job.record(now=1500.0)
    assert record["runtime"] == 1500.0 - 1005.0 and record["t_remaining"] == 500.0


def test_new_job_shows_no_status():
    job = Job()("submit", userid=0, urgency=16, version=1)
    record = job.record()
    assert record["state"] == "NEW" and "status" not in record and "t_depend" not in record
    assert "name" not in record  # the jobspec is read in DEPEND
    # a submit without version (before flux-core 0.41) has t_depend = t_submit
    old = Job(jobid=77)("submit", userid=0, urgency=16).record()
    assert old["t_depend"] == old["t_submit"]


def test_jobspec_fields():
    spec = {
        "version": 1,
        "resources": [{"type": "node", "count": 2, "exclusive": True,
                       "with": [{"type": "slot", "count": 1, "label": "task",
                                 "with": [{"type": "core", "count": 1}]}]}],
        "tasks": [{"command": ["a.out"], "slot": "task", "count": {"total": 5}}],
        "attributes": {"system": {"duration": 60, "queue": "batch",
                                  "job": {"name": "my job"}}},
    }
    job = Job(jobspec=spec).to_sched()
    record = job.record()
    assert (record["name"], record["queue"], record["duration"]) == ("my job", "batch", 60.0)
    assert (record["ntasks"], record["nnodes"]) == (5, 2)
    assert "ncores" not in record  # exclusive nodes: known from R
    assert "cwd" not in record
    job("jobspec-update", **{"attributes.system.bank": "b1", "attributes.system.project": "p",
                             "nonsense.key": 1})
    record = job.record()
    assert (record["bank"], record["project"], record["state"]) == ("b1", "p", "PRIORITY")
    job("priority", priority=1)("alloc")
    record = job.record()
    assert (record["ncores"], record["nnodes"], record["nodelist"]) == (1, 1, "node3")


def test_per_resource_tasks_counted_from_R():
    spec = dict(JOBSPEC, attributes={"system": {
        "duration": 0, "shell": {"options": {"per-resource": {"type": "core", "count": 2}}}}},
        resources=[{"type": "node", "count": 1, "with": [
            {"type": "slot", "count": 1, "label": "task", "with": [{"type": "core", "count": 1}]}]}])
    R4 = {"version": 1, "execution": {"R_lite": [{"rank": "0", "children": {"core": "0-3"}}]}}
    job = Job(jobspec=spec, R=R4).to_sched()
    assert "ntasks" not in job.record()
    job("alloc")
    assert job.record()["ntasks"] == 8


def test_jobs_sharing_an_allocation_each_read_their_own_R():
    """Allocations repeat from job to job (the model reads each distinct
    one once): each job still shows its own R, a malformed R shows
    nothing of it even after the same ranks were read well, and a
    different R_lite or nodelist is read anew."""
    model = JobModel()
    wide = {"version": 1, "execution": {
        "R_lite": [{"rank": "0-1", "children": {"core": "0-3"}},
                   {"rank": "2", "children": {"core": "0", "gpu": "0"}}],
        "expiration": 7000.0, "nodelist": ["n[0-1]", "n2"]}}
    shown = {}
    for jobid, R in (
        (1, wide), (2, wide), (3, dict(wide, execution=dict(wide["execution"], expiration="x"))),
        (4, dict(wide, execution=dict(wide["execution"], nodelist=["n[0-1]"]))),
        (5, dict(wide, execution=dict(wide["execution"], nodelist=["m[0-2]"]))),
        (6, {"version": 1, "execution": {"R_lite": [{"rank": "0-1", "children": {"core": 3}}],
                                         "nodelist": ["n[0-1]"]}}),
        (7, dict(wide, execution=dict(wide["execution"], expiration=8000.0))),
    ):
        record = Job(model, jobid=jobid, R=R).to_run().record()
        shown[jobid] = tuple(record.get(key) for key in
                             ("ranks", "nodelist", "nnodes", "ncores", "expiration"))
    assert shown[1] == shown[2] == ("[0-2]", "n[0-2]", 3, 9, 7000.0)
    assert shown[3] == shown[4] == shown[6] == (None, None, None, 1, None)
    assert shown[5] == ("[0-2]", "m[0-2]", 3, 9, 7000.0)
    assert shown[7] == ("[0-2]", "n[0-2]", 3, 9, 8000.0)


def test_resource_update_changes_expiration():
    job = Job().to_run()
    job("resource-update", expiration=5000.0)
    assert job.record()["expiration"] == 5000.0


def test_memo_and_annotations():
    job = Job().to_run()
    job("memo", progress=1, phase="a")
    assert job.record()["annotations"] == {"user": {"progress": 1, "phase": "a"}}
    job("memo", phase=None)
    assert job.record()["annotations"] == {"user": {"progress": 1}}
    job("annotations", annotations={"sched": {"resource_summary": "rank3/core0"}})
    assert job.record()["annotations"] == {"sched": {"resource_summary": "rank3/core0"}}
    job("annotations", annotations=None)
    assert job.record()["annotations"] == {}
    job("memo", uri="ssh://host/tmp/x")
    record = job.record()
    assert record["uri"] == "ssh://host/tmp/x" and record["annotations"] == {}


def test_invalidated_job_is_forgotten():
    model = JobModel()
    Job(model)("submit", userid=0, urgency=16, version=1)("invalidate")
    assert model.get(JOBID) is None and model.active == 0
    assert sum(model.states.values()) == 0


def test_unusable_events_are_counted_and_ignored():
    model = JobModel()
    Job(model, jobid=99)("alloc")  # never submitted
    job = Job(model).to_run()
    job("finish")  # no status
    job("exception", severity=0, note="")  # no type
    job("no-such-event")("prolog-start", description="x")
    assert job.record()["state"] == "RUN"
    assert model.errors == {"unknown_job": 1, "bad_context": 2, "unknown_event": 1}


# ----------------------------------------------------------------------
# Whole journals


def model_of(lines, look=None):
    """A model fed a replayed journal through the real consumer (*look*:
    called with each batch's events before the model gets them)."""
    handle = SimFlux.replay(lines, topic=TOPIC, end=errno.ENODATA)
    model = JobModel()
    consumer = JournalConsumer(handle, full=True).start()
    while (batch := consumer.poll_batch(500, 5.0)) and batch[0] is not None:
        events = [event for event in batch if event is not None]
        if look is not None:
            look(events)
        model.apply_events(events)
        if batch[-1] is None:
            break
    return model


def test_fixture_records_follow_job_lists_rules(fixtures_dir):
    lines = metrics_oracle.read_lines(fixtures_dir / "jobs-full.jsonl")
    model = model_of(lines)
    lives = metrics_oracle.job_lives(lines)
    assert {record.id for record in model.records()} == set(lives)
    assert model.errors == {}
    for record in model.records():
        life = lives[record.id]
        shown = record.to_dict()
        assert shown["state"] == metrics_oracle.job_state(life)
        if shown["state"] == "INACTIVE":
            assert shown["result"] == metrics_oracle.job_result(life)
        cleanup = [ts for ts, name, context in life
                   if name == "finish" or (name == "exception" and context["severity"] == 0)]
        assert shown.get("t_cleanup") == (cleanup[0] if cleanup else None)
        first = {}
        for ts, name, _ in life:
            first.setdefault(name, ts)
        assert shown.get("t_run") == first.get("alloc")
        assert shown.get("t_inactive") == first.get("clean")
        assert ("nodelist" in shown) == ("alloc" in first)
        assert shown["name"] and shown["cwd"] == "/home/alice/work"
    counted = {result: 0 for result in metrics_oracle.RESULTS}
    for record in model.records():
        if record.state == INACTIVE:
            counted[record.result] += 1
    assert model.results == counted
    assert counted["CANCELED"] >= 3 and counted["TIMEOUT"] == 1


def _journal_of(jobs):
    """History payloads of *jobs*, (jobid, jobspec, R, [(name, context)])
    each, one second apart from 1000.0, then the sentinel; and the time
    before each job's first event."""
    lines, time, starts = [], 1000.0, []
    for jobid, jobspec, R, events in jobs:
        starts.append(time)
        entries = []
        for name, context in events:
            time += 1.0
            entries.append({"timestamp": time, "name": name, "context": context})
        lines.append(json.dumps({"id": jobid, "events": entries, "jobspec": jobspec, "R": R}))
    return lines + [JOB_SENTINEL], starts


_LIFE = [("submit", {"userid": 0, "urgency": 16, "flags": 0, "version": 1}), ("validate", {}),
         ("depend", {}), ("priority", {"priority": 16}), ("alloc", {}), ("start", {}),
         ("finish", {"status": 0}), ("release", {"ranks": "all", "final": True}),
         ("free", {}), ("clean", {})]


def test_jobs_submitted_with_one_jobspec_share_its_reading():
    """Jobs with the same jobspec text share one decoded jobspec and its
    reading (the model reads each distinct text once), yet each shows
    exactly what a job of its own would: a jobspec-update changes only
    its own job, and an event whose jobspec a consumer already read is
    read as it is."""
    other = dict(JOBSPEC, attributes={"system": {"duration": 30, "cwd": "/tmp",
                                                 "job": {"name": "other"}}})
    update = ("jobspec-update", {"attributes.system.bank": "b1", "attributes.system.duration": 9})
    jobs = [
        (1, JOBSPEC, R, _LIFE),
        (2, JOBSPEC, R, _LIFE[:4] + [update] + _LIFE[4:]),
        (3, other, R, _LIFE),
        (4, JOBSPEC, R, _LIFE),  # its jobspec read by the consumer first
        (5, JOBSPEC, R, _LIFE[:1] + [update] + _LIFE[1:]),  # updated before validate
        (6, JOBSPEC, R, _LIFE),
    ]
    lines, starts = _journal_of(jobs)

    def read_job_4s_jobspec(events):
        for event in events:
            if event.jobid == 4 and event.name == "submit":
                assert event.jobspec == JOBSPEC

    model = model_of(lines, look=read_job_4s_jobspec)

    for (jobid, jobspec, R_, events), start in zip(jobs, starts):
        alone = Job(jobid=jobid, jobspec=jobspec, R=R_)  # its events given decoded
        alone.time = start
        for name, context in events:
            alone(name, **context)
        assert model.get(jobid).to_dict() == alone.record(), jobid
    record = model.get
    assert record(1).jobspec is record(6).jobspec is not record(4).jobspec
    assert record(2).jobspec == record(5).jobspec != JOBSPEC == record(1).jobspec
    assert record(2).to_dict()["bank"] == "b1" and "bank" not in record(1).to_dict()
    assert (record(5).to_dict()["bank"], record(5).to_dict()["duration"]) == ("b1", 9.0)
    assert record(3).to_dict()["name"] == "other" and record(1).to_dict()["name"] == "sleep"


def test_a_model_keeps_a_bounded_number_of_jobspec_readings():
    """Each distinct jobspec text is read once, but a model keeps only
    the most recent: a history of ever new jobspecs does not grow it."""
    jobs = [(jobid, dict(JOBSPEC, attributes={"system": {"duration": jobid}}), R, _LIFE)
            for jobid in range(1, 601)]
    model = model_of(_journal_of(jobs)[0])
    assert [model.get(jobid).to_dict()["duration"] for jobid in (1, 300, 600)] == [1, 300, 600]
    assert 0 < len(model._jobspecs) <= jobstate._JOBSPEC_MEMO_SIZE < 600


# The result flux jobs shows for each kind of simulated job.
KIND_RESULTS = {
    "success": "COMPLETED", "long": "COMPLETED", "released": "COMPLETED",
    "expedited": "COMPLETED", "afterok": "COMPLETED", "afterany": "COMPLETED",
    "memo": "COMPLETED", "multinode": "COMPLETED", "failed": "FAILED",
    "exception": "FAILED", "unsatisfiable": "FAILED", "afternotok": "FAILED",
    "cancel-pending": "CANCELED", "cancel-running": "CANCELED", "timeout": "TIMEOUT",
}


def test_simulated_job_kinds_get_flux_jobs_results():
    kinds = [kind for kind in JOB_KINDS if kind != "held"] * 3
    jobs = generate_jobs(len(kinds), seed=5, kinds=kinds)
    model = model_of([job.history_payload() for job in jobs] + [JOB_SENTINEL])
    for job in jobs:
        shown = model.get(job.id).to_dict()
        assert shown["result"] == KIND_RESULTS[job.kind], job.kind
        assert shown["state"] == "INACTIVE"


@pytest.mark.parametrize("seed", [1, 8])
def test_simulated_workload_matches_independent_reading(seed):
    lines = Workload(njobs=1500, seed=seed, live_jobs=40, ties=0.03).stream(full=True)
    model = model_of(lines)
    expected = metrics_oracle.expected_jobs(lines)
    states = {}
    for record in model.records():
        shown = record.to_dict()
        states[shown["state"]] = states.get(shown["state"], 0) + 1
    assert states == {state: n for state, n in expected["states"].items() if n}
    assert model.results == expected["results"]
    assert model.errors == {}
