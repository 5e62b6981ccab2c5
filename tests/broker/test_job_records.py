"""Job records on a real Flux broker: the archive and the exporter agree
with job-list (skipped without a broker).

A workload with every outcome runs while ``flux-journal archive
--follow`` archives the journal; once it has settled, each job's archived
record is compared, field by field, with what ``flux jobs -a -A --json``
prints for it, and the exporter's counts (a JobTracker fed the journal's
history through the library) with job-list's counts.  An archive made
afterwards from the history alone has the same records but for the
annotations (scheduler annotations reach the journal live only).  Run as:

    flux start -s1 python -m pytest -m broker tests/broker/test_job_records.py
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter

import pytest

from flux_journal import JournalConsumer
from flux_journal.jobstate import RESULTS, STATE_NAMES
from flux_journal.metrics.state import JobTracker

from broker_helpers import (REPO, differences, flux_command, full_history, journal_listeners,
                            wait_for_listeners)

pytestmark = pytest.mark.broker

# Values flux jobs computes at the time of the query, for a running job.
QUERY_TIME = ("runtime", "t_remaining")


def run_flux(*args):
    """Run a flux command; return its stripped stdout."""
    proc = subprocess.run([flux_command(), *args], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, f"flux {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


def submit(*args):
    """flux submit; the new job's id (an int)."""
    return int(run_flux("job", "id", run_flux("submit", *args)))


def wait_event(jobid, name):
    run_flux("job", "wait-event", "-t", "120", str(jobid), name)


def run_workload():
    """Jobs with every outcome, once every job that ends has ended and the
    others are where they stay; returns ({jobid: what it is}, the running
    job, the pending job)."""
    jobs = {}
    jobs[submit("--job-name=ok", "true")] = "completed"
    jobs[submit("false")] = "failed exit"
    jobs[submit("sh", "-c", "kill -9 $$")] = "killed by a signal"
    running = submit("sleep", "300")
    jobs[running] = "cancelled while running"
    pending = submit("--urgency=hold", "true")
    jobs[pending] = "cancelled while pending"
    trap = submit("sh", "-c", 'trap "exit 0" TERM; while :; do sleep 0.1; done')
    jobs[trap] = "cancelled, traps SIGTERM and exits 0"
    jobs[submit("-t", "1s", "sleep", "300")] = "time limit"
    nonfatal = submit("sleep", "3")
    jobs[nonfatal] = "non-fatal exception"
    target = submit("true")
    jobs[target] = "dependency target"
    jobs[submit(f"--dependency=afterok:{target}", "true")] = "afterok dependency"
    jobs[submit("-N1", "-n2", "--setattr=system.bank=b1", "hostname")] = "2 tasks"
    # (a 2-core test instance runs two of these at a time)
    for jobid in (running, trap):
        wait_event(jobid, "start")
    run_flux("cancel", str(running), str(trap), str(pending))
    wait_event(nonfatal, "start")
    run_flux("job", "raise", "--severity=1", "--type=test", str(nonfatal), "a non-fatal note")
    held = submit("--urgency=hold", "true")
    jobs[held] = "pending"
    still = submit("sleep", "3000")
    jobs[still] = "running"
    for jobid in jobs:
        if jobid not in (held, still):
            wait_event(jobid, "clean")
    wait_event(held, "priority")
    wait_event(still, "start")
    return jobs, still, held


def archived_records(db):
    conn = sqlite3.connect(db)
    try:
        return {jobid: json.loads(record)
                for jobid, record in conn.execute("SELECT jobid, record FROM jobs")}
    finally:
        conn.close()


def test_archive_and_exporter_agree_with_job_list(flux_handle, tmp_path):
    db = tmp_path / "jobs.sqlite"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    listeners = journal_listeners()
    archiver = subprocess.Popen(
        [sys.executable, "-m", "flux_journal", "archive", "--db", str(db), "--follow",
         "--batch-time", "0.1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        wait_for_listeners(listeners + 1)  # the archiver follows: it gets annotations
        jobs, running, held = run_workload()
        # Everything the journal sent is archived once every job's archived
        # record is in the state the workload left it in.  (The running
        # job may start before the others end: its start alone does not
        # tell that their last events are archived.)
        settled = {jobid: "INACTIVE" for jobid in jobs}
        settled.update({running: "RUN", held: "SCHED"})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if db.exists():
                archived = archived_records(db)
                if all(archived.get(jobid, {}).get("state") == state
                       for jobid, state in settled.items()):
                    break
            time.sleep(0.1)
    finally:
        archiver.send_signal(signal.SIGINT)
        _, err = archiver.communicate(timeout=60)
    assert b"Traceback" not in err, err.decode(errors="replace")

    before = time.time()
    listed = json.loads(run_flux("jobs", "-a", "-A", "--json"))["jobs"]
    after = time.time()
    job_list = {job["id"]: job for job in listed if job["id"] in jobs}
    assert set(job_list) == set(jobs)
    records = archived_records(db)

    # archived afterwards, from the history alone: the same records but
    # for the annotations, which the job manager sends live only
    later = tmp_path / "later.sqlite"
    proc = subprocess.run([sys.executable, "-m", "flux_journal", "archive", "--db", str(later)],
                          env=env, capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    from_history = archived_records(later)
    assert {jobid: {**record, "annotations": {}} for jobid, record in from_history.items()
            if jobid in jobs} == {jobid: {**records[jobid], "annotations": {}} for jobid in jobs}
    assert any(records[jobid]["annotations"] for jobid in jobs)

    problems = []
    for jobid, theirs in job_list.items():
        mine = records.get(jobid)
        if mine is None:
            problems.append((jobs[jobid], "not archived"))
            continue
        if theirs["state"] == "RUN":
            # computed by flux jobs at the query: bracket it
            for key in QUERY_TIME:
                value = theirs.pop(key, None)
                if key == "runtime":
                    assert before - mine["t_run"] <= value <= after - mine["t_run"]
        problems.extend((jobs[jobid], *diff) for diff in differences(mine, theirs))
    assert problems == []
    # every outcome happened as planned
    outcome = {jobs[jobid]: job.get("result", job["state"]) for jobid, job in job_list.items()}
    assert outcome == {
        "completed": "COMPLETED",
        "failed exit": "FAILED",
        "killed by a signal": "FAILED",
        "cancelled while running": "CANCELED",
        "cancelled while pending": "CANCELED",
        "cancelled, traps SIGTERM and exits 0": "CANCELED",
        "time limit": "TIMEOUT",
        "non-fatal exception": "COMPLETED",
        "dependency target": "COMPLETED",
        "afterok dependency": "COMPLETED",
        "2 tasks": "COMPLETED",
        "pending": "SCHED",
        "running": "RUN",
    }

    # the exporter's counts, from the same journal through the library
    tracker = JobTracker()
    tracker.consume(full_history(JournalConsumer(flux_handle, full=True, include_sentinel=True)))
    every_job = json.loads(run_flux("jobs", "-a", "-A", "--json"))["jobs"]
    states = Counter(job["state"] for job in every_job)
    results = Counter(job["result"] for job in every_job if "result" in job)
    assert {STATE_NAMES[s]: n for s, n in tracker.states.items()} == {
        name: states[name] for name in STATE_NAMES.values()
    }
    assert tracker.results == {result: results[result] for result in RESULTS}
    assert tracker.errors == {}
