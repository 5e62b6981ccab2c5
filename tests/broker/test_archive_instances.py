"""Two real Flux instances archived into one PostgreSQL database at once
(issue 19), one archiver killed and restarted mid-stream (skipped without
a broker or a PostgreSQL server).

The instance the tests run in and a second one started here (``flux
start -Slocal-uri=...``) each run jobs while an archiver per instance
follows its journal into one database; the second archiver is SIGKILLed
once some of its events are in, and restarted.  Then, per instance, the
archived records equal ``flux jobs -a -A --json``'s field by field, and
each job's archived events are its eventlog's (and the journal's
annotations), each once.  Run as:

    flux start -s1 python -m pytest -m broker tests/broker/test_archive_instances.py
"""

import collections
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from broker_helpers import REPO, differences, flux_command, journal_listeners, wait_for_listeners

pytestmark = pytest.mark.broker

NJOBS = 20


def flux_at(uri, *args):
    """Run a flux command against the instance at *uri*; its stdout."""
    proc = subprocess.run([flux_command(), *args], capture_output=True, text=True, timeout=120,
                          check=False, env={**os.environ, "FLUX_URI": uri})
    assert proc.returncode == 0, f"flux {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


def wait_until(predicate, what, seconds=120):
    """Poll *predicate* until it holds (fail after *seconds*)."""
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture
def second_instance(tmp_path, flux_handle):
    """The URI of a second Flux instance, started for this test."""
    del flux_handle  # the first instance is the one the tests run in
    uri = f"local://{tmp_path}/second"
    broker = subprocess.Popen([flux_command(), "start", "-s1", f"-Slocal-uri={uri}",
                               "sleep", "3600"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up():
        return subprocess.run([flux_command(), "uptime"], capture_output=True, timeout=30,
                              check=False, env={**os.environ, "FLUX_URI": uri}).returncode == 0

    try:
        wait_until(up, "the second broker")
        yield uri
    finally:
        # the broker outlives its `flux start` front end if only that is
        # signalled: ask the instance itself to end
        subprocess.run([flux_command(), "shutdown", "--quiet"], capture_output=True,
                       timeout=120, check=False, env={**os.environ, "FLUX_URI": uri})
        try:
            broker.wait(60)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait(60)


def history(url, *args):
    """The lines ``flux-journal history`` prints for every job (any user)
    of the archive at *url*."""
    proc = subprocess.run(
        [sys.executable, "-m", "flux_journal", "history", "--db", url, "-A", "-c", "0", *args],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))},
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_two_instances_one_postgres(second_instance, pg_cluster):
    import psycopg  # pylint: disable=import-outside-toplevel

    first = os.environ["FLUX_URI"]
    uris = {"first": first, "second": second_instance}
    url = pg_cluster.url(pg_cluster.new_database())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}

    def archiver(uri):
        # the instance's name: its URI, the default
        return subprocess.Popen(
            [sys.executable, "-m", "flux_journal", "archive", "--db", url, "--uri", uri,
             "--follow", "--batch-size", "3", "--batch-time", "0.05"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    db = psycopg.connect(url, autocommit=True)

    def archived(uri):
        try:
            return db.execute("SELECT count(*) FROM events WHERE instance = %s",
                              (uri,)).fetchone()[0]
        except psycopg.errors.UndefinedTable:
            return 0

    listeners = {name: journal_listeners(uri) for name, uri in uris.items()}
    procs = {name: archiver(uri) for name, uri in uris.items()}
    try:
        for name, uri in uris.items():  # each archiver follows: it gets annotations
            wait_for_listeners(listeners[name] + 1, uri)
        jobids = {}
        for name, uri in uris.items():
            out = flux_at(uri, "submit", f"--cc=1-{NJOBS}", "--quiet", "true")
            jobids[name] = out.split()
        # kill the second one's archiver once it has stored some events
        wait_until(lambda: archived(second_instance) > 5, "the second archiver's first events")
        procs["second"].kill()
        procs["second"].communicate(timeout=60)
        at_kill = archived(second_instance)
        procs["second"] = archiver(second_instance)
        for name, uri in uris.items():
            flux_at(uri, "queue", "drain")

        def all_archived():
            return all(db.execute(
                "SELECT count(*) FROM jobs WHERE instance = %s AND state = 'INACTIVE'",
                (uri,)).fetchone()[0] >= NJOBS for uri in uris.values())

        wait_until(all_archived, "every job archived inactive")
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGINT)
        errors = {name: proc.communicate(timeout=60)[1] for name, proc in procs.items()}
        # shown with a failure above (a wait that timed out says no more)
        print("archivers' status and stderr:",
              {name: (proc.returncode, errors[name]) for name, proc in procs.items()})
    assert all(b"Traceback" not in err for err in errors.values()), errors

    for name, uri in uris.items():
        listed = json.loads(flux_at(uri, "jobs", "-a", "-A", "--json"))["jobs"]
        records = {jobid: json.loads(record) for jobid, record in db.execute(
            "SELECT jobid, record FROM jobs WHERE instance = %s", (uri,))}
        assert set(records) == {job["id"] for job in listed}, name
        if uri == second_instance:
            # annotations reach the journal live only: those sent while
            # its archiver was down are in no history it resumed from
            records = {jobid: {**record, "annotations": {}} for jobid, record in records.items()}
            listed = [{**job, "annotations": {}} for job in listed]
        problems = [(job["id"], *diff) for job in listed
                    for diff in differences(records[job["id"]], job)]
        assert problems == [], name
        # what a site's users see: flux-journal history, as flux jobs shows it
        shown = [json.loads(line) for line in history(url, "--instance", uri, "--json")]
        assert all(job.pop("instance") == uri for job in shown)
        if uri == second_instance:
            shown = [{**job, "annotations": {}} for job in shown]
        assert [job["id"] for job in shown] == [job["id"] for job in listed], name
        problems = [(job["id"], *diff) for job, want in zip(shown, listed)
                    for diff in differences(job, want)]
        assert problems == [], name
        shown_events = collections.Counter(
            (event["jobid"], event["timestamp"], event["name"])
            for event in map(json.loads, history(url, "--instance", uri, "--events", "--json")))
        assert set(shown_events.values()) == {1}, name  # each journal event once
        assert set(shown_events) == {
            (jobid, timestamp, event_name) for jobid, timestamp, event_name in db.execute(
                "SELECT jobid, timestamp, name FROM events WHERE instance = %s", (uri,))}
        for job in listed:
            eventlog = [json.loads(line) for line in flux_at(
                uri, "job", "eventlog", "--format=json", str(job["id"])).splitlines()]
            events = db.execute(
                "SELECT seq, timestamp, name FROM events WHERE instance = %s AND jobid = %s "
                "ORDER BY seq", (uri, job["id"])).fetchall()
            # the journal adds the scheduler's annotations, which no
            # eventlog keeps
            assert [(e[1], e[2]) for e in events if e[2] != "annotations"] == [
                (entry["timestamp"], entry["name"]) for entry in eventlog], (name, job["id"])
            assert [e[0] for e in events] == list(range(len(events)))
    (killed,) = db.execute("SELECT events FROM resume WHERE instance = %s AND journal = 'jobs'",
                           (second_instance,)).fetchone()
    assert killed == archived(second_instance)
    assert at_kill < killed  # it was killed mid-stream
    db.close()


def test_history_read_again_after_a_kill_in_it(tmp_path, flux_handle):
    """A run killed in the middle of a history leaves some jobs' first
    events committed and the resume position where that run began: the
    next run reads the whole history again and stores what each job
    misses, once, by the broker's own timestamps, past the annotations
    the job manager sends live only (which no history repeats)."""
    del flux_handle
    uri = os.environ["FLUX_URI"]
    db = tmp_path / "archive.sqlite"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "flux_journal", "archive", "--db", str(db), "--uri", uri]
    follower = subprocess.Popen(command + ["--follow", "--batch-time", "0.05"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        jobids = [int(flux_at(uri, "job", "id", "--to=dec", jobid))
                  for jobid in flux_at(uri, "submit", f"--cc=1-{NJOBS}", "true").split()]
        assert len(jobids) == NJOBS
        flux_at(uri, "queue", "drain")

        def inactive():
            with sqlite3.connect(db) as conn:
                return conn.execute(
                    f"SELECT count(*) FROM jobs WHERE state = 'INACTIVE' AND jobid IN "
                    f"({', '.join('?' * len(jobids))})", jobids).fetchone()[0] == NJOBS

        wait_until(lambda: db.exists() and inactive(), "the jobs archived inactive")
    finally:
        follower.send_signal(signal.SIGINT)
        _, err = follower.communicate(timeout=60)
    assert b"Traceback" not in err, err

    def job_events(conn):
        events = collections.defaultdict(list)
        for jobid, seq, timestamp, name in conn.execute(
                "SELECT jobid, seq, timestamp, name FROM events ORDER BY jobid, seq"):
            events[jobid].append((seq, timestamp, name))
        return events

    with sqlite3.connect(db) as conn:
        before = job_events(conn)
        # as a kill in the middle of a history leaves it: of every other
        # job only its first three events, the position where it began
        cut = sorted(before)[::2]
        conn.executemany("DELETE FROM events WHERE jobid = ? AND seq >= 3",
                         [(jobid,) for jobid in cut])
        conn.execute("UPDATE resume SET cursor = NULL, "
                     "events = (SELECT count(*) FROM events) WHERE journal = 'jobs'")
    assert any(name == "annotations" for jobid in cut for _, _, name in before[jobid][3:])
    proc = subprocess.run(command, env=env, capture_output=True, timeout=120, check=False)
    assert (proc.returncode, proc.stderr) == (0, b"")

    with sqlite3.connect(db) as conn:
        after = job_events(conn)
        (counted,) = conn.execute("SELECT events FROM resume WHERE journal = 'jobs'").fetchone()
        records = {jobid: json.loads(record)
                   for jobid, record in conn.execute("SELECT jobid, record FROM jobs")}
    assert counted == sum(map(len, after.values()))
    assert set(after) == set(before)
    for jobid, events in after.items():
        assert [seq for seq, _, _ in events] == list(range(len(events)))  # none twice
        lost = set(before[jobid][3:]) if jobid in cut else set()
        # what came back: all but the annotations no history repeats
        assert [event[1:] for event in events] == [
            event[1:] for event in before[jobid]
            if event not in lost or event[2] != "annotations"], jobid
    listed = json.loads(flux_at(uri, "jobs", "-a", "-A", "--json"))["jobs"]
    problems = [(job["id"], *diff) for job in listed if job["id"] in jobids
                for diff in differences({**records[job["id"]], "annotations": {}},
                                        {**job, "annotations": {}})]
    assert problems == []
