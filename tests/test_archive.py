"""Tests of ``flux-journal archive``: the SQLite archive of the journals.

The command runs in a subprocess (``python -m flux_journal archive``)
against simulated instances and replays of the captured streams in
``tests/fixtures``; the database is then compared, row by
row, with what flux-journal's consumer delivers from the same source.
"""

import collections
import errno
import gc
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from flux_journal import JournalConsumer
from flux_journal.job import JournalEvent
from flux_journal.cli.archive import Archive, ArchiveError
from flux_journal.cli.checkpoint import Position
from flux_journal.store import connect, schema
from flux_journal.store.writer import open_writer
from flux_journal.cli import DEFAULT_REORDER_WINDOW, simulated_instance
from flux_journal.sim import SimFlux
from journal_helpers import (
    FAKE_FLUX,
    archive,
    archive_env,
    command,
    journal_events,
    late_cuts,
    paced_env,
    run_cli,
)

import metrics_oracle

TOPICS = {"jobs": "job-manager.events-journal", "resource": "resource.journal"}



class Target:
    """The archive database a test writes (through ``--db``, as its str())
    and reads: an SQLite file, or a database of the test session's
    PostgreSQL server (tests/pg_cluster.py)."""

    def __init__(self, kind, tmp_path, cluster=None):
        self.kind = kind
        if kind == "sqlite":
            self.url = str(tmp_path / "archive.sqlite")
            self._conn = None
        else:
            import psycopg  # pylint: disable=import-outside-toplevel

            self.dbname = cluster.new_database()
            self.url = cluster.url(self.dbname)
            self._conn = psycopg.connect(self.url, autocommit=True)

    def __str__(self):
        return self.url

    def exists(self):
        """Whether the archive's events table exists yet."""
        if self._conn is None:
            return os.path.exists(self.url) and bool(rows(
                self.url, "SELECT 1 FROM sqlite_master WHERE name = 'events'"))
        return self._conn.execute("SELECT to_regclass('events')").fetchone()[0] is not None

    def rows(self, sql, *params):
        """The rows of *sql* (written with ``?`` placeholders)."""
        if self._conn is None:
            return rows(self.url, sql, *params)
        return self._conn.execute(sql.replace("?", "%s"), params).fetchall()

    def indexes(self):
        """The names of the archive's indexes of schema.INDEXES."""
        if self._conn is None:
            found = rows(self.url, "SELECT name FROM sqlite_master WHERE type = 'index'")
        else:
            found = self._conn.execute("SELECT indexname FROM pg_indexes").fetchall()
        wanted = {name for name, *_ in schema.INDEXES}
        return {name for (name,) in found if name in wanted}

    def execute(self, statements):
        """Run *statements* and commit (the archive's owner, as an
        operator at a shell would)."""
        if self._conn is None:
            conn = sqlite3.connect(self.url)
            os.chmod(self.url, 0o600)  # as the archiver makes it: no warning
            for statement in statements:
                conn.execute(statement)
            conn.commit()
            conn.close()
        else:
            for statement in statements:
                self._conn.execute(statement)

    def close(self):
        """Close the connection used to read."""
        if self._conn is not None:
            self._conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def target(request, tmp_path):
    """An empty archive database, on each backend in turn."""
    cluster = request.getfixturevalue("pg_cluster") if request.param == "postgres" else None
    db = Target(request.param, tmp_path, cluster)
    yield db
    db.close()


def _process_stat(pid):
    """(state, parent pid) of process *pid*, None if there is none."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1])


def children(pid):
    """The processes whose parent is *pid*."""
    return [int(entry) for entry in os.listdir("/proc")
            if entry.isdigit() and (_process_stat(entry) or ("", 0))[1] == pid]


def ended(pid):
    """Whether process *pid* has exited (a zombie has)."""
    stat = _process_stat(pid)
    return stat is None or stat[0] in ("Z", "X")


def kill_archiver(proc):
    """SIGKILL a running archiver; (True if the kill, not an exit, ended
    it; how many writer processes it had).  It must not have printed a
    traceback either way, and its writer process
    (flux_journal.store.writer) must end with it."""
    writers = children(proc.pid)
    proc.kill()
    proc.wait(30)
    assert b"Traceback" not in proc.stderr.read()
    proc.stderr.close()
    deadline = time.monotonic() + 30
    while not all(map(ended, writers)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert all(map(ended, writers)), "the writer process outlived its archiver"
    return proc.returncode == -signal.SIGKILL, len(writers)


#: What an archiver prints when its writer process was SIGKILLed.
_WRITER_KILLED = re.compile(
    r"flux-journal: .+: the archive's writer process ended \(killed by SIGKILL\)\n")


def kill_writer(proc, timeout):
    """SIGKILL the writer process of the running archiver *proc*, and
    wait *timeout* seconds for the archiver to end: (its status, its
    stdout, its stderr as text)."""
    writers = children(proc.pid)
    assert len(writers) == 1, "the archiver ended before its writer was killed"
    os.kill(writers[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err.decode()


def replay(path, journal="jobs"):
    return SimFlux.replay(str(path), topic=TOPICS[journal], end=errno.ENODATA)


def rows(db, sql, *params):
    if isinstance(db, Target):
        return db.rows(sql, *params)
    # Read-only, as a reader should: a plain connect() would create a
    # missing database (with the umask's mode, which the archiver would
    # then rightly warn about).
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def event_rows(db):
    """The events table by job and seq, as comparable tuples (a history
    is archived as it arrives, job by job: the rows' order is not time's)."""
    return [
        (jobid, seq, ts, name, json.loads(context))
        for jobid, seq, ts, name, context in rows(
            db, "SELECT jobid, seq, timestamp, name, context FROM events ORDER BY jobid, seq"
        )
    ]


def expected_event_rows(events):
    """Rows the events table should hold for *events*, by job and seq."""
    seqs = {}
    out = []
    for event in events:
        jobid = int(event.jobid)
        seq = seqs.get(jobid, 0)
        seqs[jobid] = seq + 1
        out.append((jobid, seq, event.timestamp, event.name, event.context))
    return sorted(out, key=lambda row: row[:2])


def assert_archived_part(have, want):
    """*have* (event_rows) is part of *want* (expected_event_rows):
    each job's first events, none twice (nothing lost of what is there:
    a job's events are archived in its order)."""
    counts = collections.Counter(row[0] for row in have)
    assert have == [row for row in want if row[1] < counts[row[0]]]


@pytest.fixture(scope="module")
def full_stream(fixtures_dir):
    """jobs-full.jsonl: (history, whole stream)."""
    path = fixtures_dir / "jobs-full.jsonl"
    return journal_events("jobs", replay(path)), journal_events("jobs", replay(path), follow=True)


# ----------------------------------------------------------------------


def test_archive_matches_stream(target, full_stream, fixtures_dir):
    history, stream = full_stream
    db = target
    archive("--db", db, "--replay", fixtures_dir / "jobs-full.jsonl", "--follow")
    assert event_rows(db) == expected_event_rows(stream)
    if db.kind == "sqlite":
        assert rows(db, "PRAGMA journal_mode") == [("wal",)]
    (resume,) = rows(db, "SELECT journal, cursor, timestamp, events FROM resume")
    # the cursor of a consumer that delivered the whole stream, with the
    # command's default window for late events
    consumer = JournalConsumer(replay(fixtures_dir / "jobs-full.jsonl"),
                               cursor_window=DEFAULT_REORDER_WINDOW)
    assert len(list(consumer)) == len(stream)
    newest = max(e.timestamp for e in stream)
    assert resume == ("jobs", consumer.cursor, newest, len(stream))

    # one jobs row per job, built from its events
    # every row is the instance's, named after the replayed file
    for table in ("events", "jobs", "resume"):
        assert rows(db, f"SELECT DISTINCT instance FROM {table}") == [("jobs-full.jsonl",)]
    jobs = {r[0]: r for r in rows(db, "SELECT jobid, userid, state, result, t_submit, t_run, "
                                      "t_cleanup, t_inactive, nevents, jobspec, R FROM jobs")}
    by_job = {}
    for event in stream:
        by_job.setdefault(int(event.jobid), []).append(event)
    assert set(jobs) == set(by_job)
    for jobid, events in by_job.items():
        _, userid, state, result, t_submit, t_run, t_cleanup, t_inactive, nevents, jobspec, R = (
            jobs[jobid])
        first = {}
        for e in events:
            first.setdefault(e.name, e)
        assert nevents == len(events)
        assert t_submit == first["submit"].timestamp
        assert userid == first["submit"].context["userid"]
        assert json.loads(jobspec) == first["submit"].jobspec
        if "alloc" in first:
            assert t_run == first["alloc"].timestamp
            assert json.loads(R) == first["alloc"].R
        else:
            assert t_run is None and R is None
        # state and result as metrics_oracle's whole-life reading of
        # job-list's rules has them; CLEANUP entered at the first of
        # finish and a fatal exception
        life = [(e.timestamp, e.name, e.context) for e in events]
        assert state == metrics_oracle.job_state(life)
        assert result == (metrics_oracle.job_result(life) if state == "INACTIVE" else None)
        ends = [e.timestamp for e in events
                if e.name == "finish" or (e.name == "exception" and e.context["severity"] == 0)]
        assert t_cleanup == (ends[0] if ends else None)
        if "clean" in first:
            assert t_inactive == first["clean"].timestamp
        else:
            assert t_inactive is None
    # the typed columns repeat the record's fields
    for row in rows(db, "SELECT state, result, t_cleanup, name, nodelist, ncores, returncode, "
                        "exception_type, record FROM jobs"):
        record = json.loads(row[-1])
        assert row[:-1] == (
            record["state"], record.get("result"), record.get("t_cleanup"), record.get("name"),
            record.get("nodelist"), record.get("ncores"), record.get("returncode"),
            record["exception"].get("type"),
        )


def test_job_results_and_states(target, fixtures_dir):
    """Results as `flux jobs` shows them, for the capture's kinds of jobs."""
    db = target
    archive("--db", db, "--replay", fixtures_dir / "jobs-full.jsonl", "--follow")
    result = dict(rows(db, "SELECT jobid, result FROM jobs"))
    state = dict(rows(db, "SELECT jobid, state FROM jobs"))
    assert result[70548193280] == "TIMEOUT"  # exception type=timeout
    assert result[49442455552] == "CANCELED"  # canceled while pending
    assert result[77309411328] == "CANCELED"  # canceled while running
    assert result[81705041920] == "FAILED"  # unsatisfiable (alloc exception)
    assert result[73651978240] == "FAILED"  # injected exception
    assert result[21273509888] == "FAILED"  # exit status 1
    assert result[13623099393] == "COMPLETED"
    assert rows(db, "SELECT exception_type, waitstatus FROM jobs WHERE jobid = 70548193280") == [
        ("timeout", 36352)
    ]
    # job-list's t_cleanup of a timed-out or cancelled job: the fatal
    # exception, not the finish that followed it
    for jobid in (70548193280, 77309411328):
        exception, finish = rows(
            db, "SELECT timestamp FROM events WHERE jobid = ? AND name IN ('exception', 'finish') "
                "ORDER BY seq", jobid)
        assert exception < finish
        assert rows(db, "SELECT t_cleanup FROM jobs WHERE jobid = ?", jobid) == [exception]
    assert state[93147103232] == "RUN" and result[93147103232] is None
    counts = dict(rows(db, "SELECT result, count(*) FROM jobs WHERE state = 'INACTIVE' "
                           "GROUP BY 1"))
    cleaned = rows(db, "SELECT count(*) FROM events WHERE name = 'clean'")[0][0]
    assert sum(counts.values()) == cleaned


def test_resume_continues_exactly(target, full_stream, fixtures_dir):
    history, stream = full_stream
    path = fixtures_dir / "jobs-full.jsonl"
    db = target
    archive("--db", db, "--replay", path)  # history only
    assert event_rows(db) == expected_event_rows(history)
    archive("--db", db, "--replay", path)  # nothing new
    assert event_rows(db) == expected_event_rows(history)
    archive("--db", db, "--replay", path, "--follow")  # the live part
    assert event_rows(db) == expected_event_rows(stream)
    assert rows(db, "SELECT events FROM resume") == [(len(stream),)]


def test_sim_archive_and_stats(target):
    events = journal_events("jobs", simulated_instance("jobs", 500, 4)[0])
    db = target
    proc = archive("--db", db, "--sim", "500", "--seed", "4", "--stats", "--batch-size", "777",
                   check_rc=None)
    assert proc.returncode == 0 and proc.stdout == b""
    assert b"events delivered: %d\n" % len(events) in proc.stderr
    assert event_rows(db) == expected_event_rows(events)
    assert rows(db, "SELECT count(*) FROM jobs") == [(500,)]


def _stat(stderr, name):
    """The number --stats printed as *name*."""
    (line,) = [line for line in stderr.decode().splitlines() if f": {name}: " in line]
    return int(line.rsplit(" ", 1)[1])


def test_archive_holds_no_history(tmp_path):
    """An archive takes a job history as it comes, job by job, instead of
    gathering it to sort it as the print commands do: what the consumer
    holds at once does not grow with the history (memory stays flat)."""
    peaks = {}
    for jobs in (2000, 20000):
        proc = archive("--db", tmp_path / f"{jobs}.sqlite", "--sim", str(jobs), "--stats",
                       check_rc=None)
        assert proc.returncode == 0, proc.stderr
        received = _stat(proc.stderr, "events received")
        peaks[jobs] = _stat(proc.stderr, "peak backlog")
        assert peaks[jobs] < received / 5
    assert peaks[20000] < 2 * peaks[2000]
    printed = run_cli("jobs", "--sim", "2000", "--stats", check_rc=None)
    assert printed.returncode == 0, printed.stderr
    assert _stat(printed.stderr, "peak backlog") == _stat(printed.stderr, "events received")


def test_archiver_stops_when_its_writer_process_dies(target):
    """The writer process is killed (as the OOM killer would) in the
    middle of a history: the archiver stops with one line saying so and
    status 1; the database holds what was committed (each job's first
    events, once) with its resume position; a rerun archives the rest,
    every event exactly once."""
    want = expected_event_rows(
        journal_events("jobs", simulated_instance("jobs", 10000, 9)[0]))
    proc = subprocess.Popen(
        command("archive", "--db", target, "--sim", "10000", "--seed", "9",
                "--batch-size", "997"),
        env=archive_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while proc.poll() is None and _count(target) < 3000:
        time.sleep(0.002)
    status, out, err = kill_writer(proc, timeout=60)
    assert (status, out) == (1, b"")
    assert _WRITER_KILLED.fullmatch(err), err
    have = event_rows(target)
    assert len(have) >= 3000
    assert_archived_part(have, want)
    assert rows(target, "SELECT events FROM resume") == [(len(have),)]
    archive("--db", target, "--sim", "10000", "--seed", "9")
    assert event_rows(target) == want


def test_following_archiver_stops_when_its_writer_process_dies(tmp_path):
    """Following a quiet instance, the archiver has nothing to write: its
    writer process killed, it stops within a wait (not at the next
    event, which may be hours away) with one line and status 1, its
    history committed."""
    history = journal_events("jobs", simulated_instance("jobs", 20, 3)[0])
    db = tmp_path / "quiet.sqlite"
    proc = subprocess.Popen(
        command("archive", "--db", db, "--sim", "20", "--seed", "3", "--follow",
                "--sim-rate", "0.001", "--batch-time", "0.1"),
        env=archive_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def resumes_after():
        try:
            return rows(db, "SELECT events FROM resume") if db.exists() else []
        except sqlite3.OperationalError:
            return []  # tables not made yet, or locked for a moment

    try:
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline and resumes_after() != [
                (len(history),)]:
            time.sleep(0.02)
        assert rows(db, "SELECT events FROM resume") == [(len(history),)]
        status, out, err = kill_writer(proc, timeout=10)
    finally:
        if proc.poll() is None:  # it follows for ever
            proc.kill()
            proc.communicate()
    assert (status, out) == (1, b"")
    assert _WRITER_KILLED.fullmatch(err), err
    assert event_rows(db) == expected_event_rows(history)


def _count(db):
    try:
        return rows(db, "SELECT count(*) FROM events")[0][0] if db.exists() else 0
    except sqlite3.OperationalError:
        return 0  # locked for a moment


@pytest.mark.slow
def test_archive_survives_sigkill_at_random_points(target):
    """Kill the archiver at random instants, restart it each time: the
    final database holds every event exactly once, in stream order.  The
    stream is long enough (~1 s of archiving) for a dozen kills to land.
    On PostgreSQL a restarted archiver also finds the killed one's lock
    released."""
    events = journal_events("jobs", simulated_instance("jobs", 10000, 9)[0])
    want = expected_event_rows(events)
    db = target
    rng = random.Random(9)
    args = command("archive", "--db", db, "--sim", "10000", "--seed", "9", "--batch-size", "997")
    kills = writers = 0
    for attempt in range(30):
        if kills == 12:
            break
        have = _count(db)
        if have == len(want):
            break  # a run finished before its kill
        # a few batches further, so that many kills fit in one stream
        target = have + rng.randrange(1, 2000)
        proc = subprocess.Popen(args, env=archive_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        if attempt % 2:
            # at a random instant: start-up, mid-batch or mid-commit
            time.sleep(rng.uniform(0.02, 0.3))
        else:
            # once a random number of events is committed
            while proc.poll() is None and _count(db) < target:
                time.sleep(0.002)
        killed, found = kill_archiver(proc)
        kills += killed
        writers += found
        if db.exists():
            have = event_rows(db)
            # each job's committed first events: nothing lost, nothing twice
            assert_archived_part(have, want)
            if have:
                assert rows(db, "SELECT events FROM resume") == [(len(have),)]
    assert kills >= 8
    assert writers  # the kills' check of the writer process is not empty
    archive("--db", db, "--sim", "10000", "--seed", "9")
    assert event_rows(db) == want
    assert rows(db, "SELECT count(*) FROM jobs") == [(10000,)]
    # the indexes a killed first history left out are made once one is in
    assert db.indexes() == {name for name, *_ in schema.INDEXES}
    assert rows(db, "SELECT key FROM meta") == [("schema_version",)]
    if db.kind == "sqlite":
        assert rows(db, "PRAGMA integrity_check") == [("ok",)]


def test_archive_survives_sigkill_in_out_of_order_live_part(tmp_path, fixtures_dir,
                                                            full_stream):
    """Kill the archiver following jobs-full.jsonl, whose live events come
    one response at a time and partly out of time order (validate events
    ~12 ms late): first where a late event is still in flight, then at
    random points, mid-transaction too.  Every event is archived exactly
    once, in stream order."""
    stream = full_stream[1]
    want = expected_event_rows(stream)
    late = late_cuts(stream)
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "flux.py").write_text(FAKE_FLUX)
    env = paced_env(tmp_path / "fake", fixtures_dir / "jobs-full.jsonl", 0.005)
    # Aiming at a late event still in flight: slow enough that the kill
    # lands before the archiver is past it, on a loaded machine too.
    env_slow = paced_env(tmp_path / "fake", fixtures_dir / "jobs-full.jsonl", 0.03)
    db = tmp_path / "live.sqlite"
    rng = random.Random(11)

    def args(batch_size):
        return command("archive", "--db", db, "--uri", "sim://paced", "--follow",
                       "--batch-size", batch_size)

    kills = 0
    resumed_from = []
    for attempt in range(16):
        have = _count(db) if db.exists() else 0
        if have == len(want) or kills == 8:
            break
        if attempt:
            resumed_from.append(have)
        ahead = [cut for cut in late if cut > have]
        if ahead:
            target, batch_size = ahead[0], 1
        else:
            # within the first half of what is left: the kill lands
            # before the stream ends, however fast the archiver runs
            target = have + rng.randrange(1, max(2, (len(want) - have) // 2))
            batch_size = (1, 4)[attempt % 2]
        proc = subprocess.Popen(args(batch_size), env=env_slow if ahead else env,
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        while proc.poll() is None and _count(db) < target:
            time.sleep(0.001)
        kills += kill_archiver(proc)[0]
        have = event_rows(db)
        # each job's committed first events: nothing lost, nothing twice
        assert_archived_part(have, want)
        assert rows(db, "SELECT events FROM resume") == [(len(have),)]
    assert kills >= 4
    # some run resumed with a late event still to come
    assert set(resumed_from) & set(late), resumed_from
    # the fake instance ends its stream unasked after the capture: exit 3
    # once the last batch is committed
    final = subprocess.run(args(1), env=env, capture_output=True, timeout=60, check=False)
    assert final.returncode == 3, final.stderr
    assert event_rows(db) == want
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]


@pytest.mark.parametrize("to", ["process", "group"])
def test_follow_commits_by_time_and_stops_on_sigint(tmp_path, to):
    """SIGINT to the archiver, or to its whole process group as a
    terminal's Ctrl-C sends it (its writer process too, which leaves the
    last commit to the archiver): it commits what it has and exits 130."""
    history = journal_events("jobs", simulated_instance("jobs", 40, 2)[0])
    db = tmp_path / "f.sqlite"
    proc = subprocess.Popen(
        command("archive", "--db", db, "--sim", "40", "--seed", "2", "--follow", "--sim-rate",
                "200", "--batch-time", "0.1", "--batch-size", "100000"),
        env=archive_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=to == "group",
    )
    # live events reach the database while the archiver runs (WAL lets
    # us read meanwhile), committed by time since the size is never hit
    deadline = time.monotonic() + 30
    count = 0
    while time.monotonic() < deadline and count <= len(history) + 20:
        time.sleep(0.05)
        if db.exists():
            try:
                count = rows(db, "SELECT count(*) FROM events")[0][0]
            except sqlite3.OperationalError:
                pass  # tables not created yet
    assert count > len(history) + 20
    writers = children(proc.pid)
    assert writers
    if to == "group":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 130
    assert all(map(ended, writers))
    assert proc.stderr.read() == b"" and proc.stdout.read() == b""
    proc.stderr.close()
    proc.stdout.close()
    total = rows(db, "SELECT count(*) FROM events")[0][0]
    assert rows(db, "SELECT events FROM resume") == [(total,)]
    history_rows = set(map(repr, expected_event_rows(history)))
    assert history_rows <= set(map(repr, event_rows(db)))
    # per-job sequence numbers have no gaps
    assert rows(db, "SELECT count(*) FROM jobs WHERE nevents != "
                    "(SELECT count(*) FROM events WHERE events.jobid = jobs.jobid)") == [(0,)]


def test_resource_archive(target, fixtures_dir):
    path = fixtures_dir / "resource-many.jsonl"
    history = journal_events("resource", replay(path, "resource"))
    stream = journal_events("resource", replay(path, "resource"), follow=True)
    db = target
    archive("--db", db, "--resource", "--replay", path)
    archive("--db", db, "--resource", "--replay", path, "--follow")
    got = rows(db, "SELECT timestamp, name, context, R FROM resource_events ORDER BY seq")
    assert [(t, n, json.loads(c), R and json.loads(R)) for t, n, c, R in got] == [
        (e.timestamp, e.name, e.context, e.R) for e in stream
    ]
    assert len(stream) > len(history)
    # both journals can share one file
    archive("--db", db, "--replay", fixtures_dir / "jobs-full.jsonl")
    assert {r[0] for r in rows(db, "SELECT journal FROM resume")} == {"jobs", "resource"}


def test_archive_errors(tmp_path):
    proc = archive("--db", tmp_path / "missing" / "x.sqlite", "--sim", check_rc=1)
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and "x.sqlite" in lines[0]
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    proc = archive("--db", junk, "--sim", check_rc=1)
    assert len(proc.stderr.splitlines()) == 1 and b"Traceback" not in proc.stderr
    proc = archive("--db", tmp_path / "n.sqlite", check_rc=1)  # no Flux, no --sim
    assert b"--sim" in proc.stderr
    assert archive(check_rc=2).stderr.count(b"--db")


def _position_after(events):
    position = Position()
    position.advance(events[-1].cursor, len(events))
    return position


@pytest.mark.parametrize("writer_process", [True, False])
def test_archiving_leaves_no_reference_cycles(tmp_path, full_stream, writer_process):
    """An open transaction runs with Python's cyclic collector paused
    (flux_journal.gcpause), which is right only if adding and committing
    make no reference cycle: one left per job (a recursive closure per
    jobspec did that) would be garbage only the collector frees.  Checked
    over a stream with every kind of job of the capture, in 50-event
    commits that build, store and forget their records; the collector is
    running again afterwards, also after a commit the database refused
    and after closing with a transaction open."""
    _, stream = full_stream
    gc.collect()
    gc.disable()
    try:
        archive_ = Archive(str(tmp_path / "archive.sqlite"), instance="cycles",
                           writer_process=writer_process)
        for start in range(0, len(stream), 50):
            part = stream[start:start + 50]
            archive_.add(part)
            archive_.commit(_position_after(stream[:start + len(part)]))
        archive_.close()
        del archive_
        assert gc.collect() == 0
    finally:
        gc.enable()
    assert rows(str(tmp_path / "archive.sqlite"), "SELECT count(*) FROM events") == [
        (len(stream),)]

    # the database refuses a batch (its rows are there already): the
    # error comes and the collector runs again
    again = Archive(str(tmp_path / "archive.sqlite"), instance="cycles",
                    writer_process=writer_process)
    with pytest.raises(ArchiveError):
        again.add(stream)
        again.commit(_position_after(stream))
    assert gc.isenabled()
    again.close()
    assert gc.isenabled()

    # paused from the first add to the commit; closed uncommitted: resumed
    other = Archive(str(tmp_path / "other.sqlite"), instance="cycles",
                    writer_process=writer_process)
    other.add(stream[:50])
    assert not gc.isenabled()
    other.add(stream[50:100])
    assert not gc.isenabled()
    other.commit(_position_after(stream[:100]))
    assert gc.isenabled()
    other.add(stream[100:150])
    assert not gc.isenabled()
    other.close()
    assert gc.isenabled()
    assert rows(str(tmp_path / "other.sqlite"), "SELECT count(*) FROM events") == [(100,)]


def test_a_lost_writer_leaves_nothing_to_flush(tmp_path):
    """The writer process killed with rows still in the archive's pipe
    buffer: the call that finds it gone raises ArchiveError saying so,
    and the backend freed afterwards writes nothing more (it printed
    "Exception ignored ... BrokenPipeError" as the archiver exited)."""
    backend = open_writer(str(tmp_path / "lost.sqlite"))
    os.kill(backend.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while not ended(backend.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    backend.insert_events([("lost", 1, 0, 1.0, "submit", "{}")])  # into the buffer
    unraisable = []
    hook, sys.unraisablehook = sys.unraisablehook, unraisable.append
    try:
        try:
            backend.load_position("lost", "jobs")
        except ArchiveError as exc:  # its traceback holds the backend: not kept
            message = str(exc)
        del backend
        gc.collect()
    finally:
        sys.unraisablehook = hook
    assert message.endswith("the archive's writer process ended (killed by SIGKILL)")
    assert not unraisable, [u.exc_value for u in unraisable]


def test_writer_process_reports_a_failed_write_at_the_next_call(target):
    """The writer process runs bulk writes without a reply: one the
    database refuses drops the writes after it (its transaction is
    aborted), and the next call that waits raises the driver's own
    error; after the rollback the writer goes on.  A call that waits and
    fails raises the driver's error too, and a database the writer
    cannot open the archive's one-line error."""
    backend = open_writer(target.url)
    backend.open_schema("w", None)
    submit = ("w", 1, 0, 1.0, "submit", "{}")
    backend.begin()
    backend.insert_events([submit])
    backend.insert_events([submit])  # the same (instance, jobid, seq): refused
    backend.insert_events([("w", 2, 0, 2.0, "submit", "{}")])  # dropped with it
    with pytest.raises(backend.errors) as refused:
        backend.commit()
    assert type(refused.value).__name__ in ("IntegrityError", "UniqueViolation")
    assert "unique" in str(refused.value).lower()
    backend.rollback()
    backend.begin()
    backend.insert_events([("w", 3, 0, 3.0, "submit", "{}")])
    backend.commit()
    assert target.rows("SELECT jobid FROM events") == [(3,)]
    # a call that waits and fails raises the driver's error as well
    target.execute(["DROP TABLE resume"])
    with pytest.raises(backend.errors, match="resume"):
        backend.load_position("w", "jobs")
    backend.close()
    backend.close()  # once is enough
    # a database the writer cannot open: the archive's one-line error
    if target.kind == "sqlite":
        missing = os.path.join(os.path.dirname(target.url), "missing", "x.sqlite")
    else:
        missing = target.url.replace(f"/{target.dbname}?", "/nosuchdb?")
    with pytest.raises(ArchiveError) as refused:
        open_writer(missing)
    assert "x.sqlite" in str(refused.value) or "nosuchdb" in str(refused.value)


def test_a_job_row_written_twice_in_one_commit(target):
    """The archive writes an ended job's row when the job ends, and again
    at the commit should a late event change it: two upserts of one job
    in one transaction leave the second."""
    backend = open_writer(target.url)
    backend.open_schema("w", None)

    def job_row(state, nevents):
        values = dict.fromkeys(schema.JOB_COLUMNS)
        values.update(instance="w", jobid=7, state=state, nevents=nevents, record="{}")
        return tuple(values[column] for column in schema.JOB_COLUMNS)

    backend.begin()
    backend.upsert_jobs([job_row("INACTIVE", 6)])
    backend.upsert_jobs([job_row("INACTIVE", 7)])
    backend.commit()
    backend.close()
    assert target.rows("SELECT state, nevents FROM jobs") == [("INACTIVE", 7)]


def test_a_new_jobs_row_is_inserted_then_upserted(target, full_stream):
    """A job first seen in a transaction gets its row inserted (on
    PostgreSQL by COPY, without the merge an existing row needs); a late
    event in the same transaction, after its row went to the writer when
    it ended, rewrites that row as an update, and the next job is new
    again."""
    _, stream = full_stream
    jobid = 13623099393  # completed in the capture
    life = [event for event in stream if int(event.jobid) == jobid]
    late = JournalEvent(life[0].jobid, {"timestamp": life[-1].timestamp + 1.0, "name": "memo",
                                        "context": {"late": True}})
    other = [event for event in stream if event.jobid == stream[-1].jobid]
    archive_ = Archive(target.url, instance="rows", writer_process=True)
    try:
        archive_.add(life)
        archive_.add([late] + other)
        archive_.commit(_position_after([*life, late, *other]))
    finally:
        archive_.close()
    (nevents, record), = target.rows("SELECT nevents, record FROM jobs WHERE jobid = ?", jobid)
    assert nevents == len(life) + 1
    assert json.loads(record)["annotations"] == {"user": {"late": True}}
    assert target.rows("SELECT count(*) FROM jobs") == [(2,)]


def test_first_history_is_indexed_once_it_is_in(target, full_stream, fixtures_dir):
    """SQLite: a new archive's first history is written without the
    jobs and events indexes, which are made in the commit after it is all
    in; an archiver killed before that leaves them out, noted in meta,
    and the next one makes them at the end of its history.  Meanwhile
    `history` gives the same answers, with a warning.  An archive that
    holds events keeps its indexes, and so does PostgreSQL (a database
    archivers share)."""
    history, _ = full_stream
    deferred = {name for name, *_ in schema.DEFERRED_INDEXES}
    every = {name for name, *_ in schema.INDEXES}
    defers = target.kind == "sqlite"
    half = len(history) // 2

    def listing():
        proc = run_cli("history", "--db", target, "-u", "all", "--json", env=archive_env(),
                       check_rc=None)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.decode(), proc.stderr.decode()

    first = Archive(target.url, instance="a")
    first.add(history[:half], history=True)
    first.commit(Position())  # an unordered history does not move the cursor
    if defers:
        assert target.indexes() == every - deferred
        assert ("indexes_deferred", "1") in rows(target, "SELECT key, value FROM meta")
    else:
        assert target.indexes() == every
    midway, warning = listing()
    assert ("first history is still being archived" in warning) == defers
    first.close()  # killed before its history was in

    second = Archive(target.url, instance="a")
    second.add(history, history=True)  # repeats the first half: skipped
    second.commit(Position())
    assert target.indexes() == (every - deferred if defers else every)
    second.history_written()
    second.commit(_position_after(history))
    assert target.indexes() == every
    assert rows(target, "SELECT key FROM meta") == [("schema_version",)]
    assert event_rows(target) == expected_event_rows(history)
    after, warning = listing()
    assert warning == ""
    # the first half's jobs, as listed without the indexes and with them
    listed = {json.loads(line)["id"]: line for line in after.splitlines()}
    ended = [line for line in midway.splitlines() if json.loads(line)["state"] == "INACTIVE"]
    assert ended
    for line in ended:
        assert listed[json.loads(line)["id"]] == line
    second.close()

    # another instance's first history, into an archive that holds events
    third = Archive(target.url, instance="b")
    third.add(history[:half], history=True)
    third.commit(Position())
    assert target.indexes() == every
    third.close()


def test_two_writers_are_refused(target):
    """A second archiver of the same journal of the same instance is
    refused, on PostgreSQL at once (the first holds a lock), on SQLite
    when the first finds that the other moved the resume point: neither
    stores events twice."""
    events = journal_events("jobs", simulated_instance("jobs", 5, 1)[0])
    first = Archive(target.url, instance="a")
    if target.kind == "postgres":
        with pytest.raises(ArchiveError, match="another process is archiving the jobs journal"):
            Archive(target.url, instance="a")
        # another instance, or the other journal, is no conflict
        for other in (Archive(target.url, instance="b"),
                      Archive(target.url, "resource", instance="a")):
            other.close()
        first.add(events)
        first.commit(_position_after(events))
        first.close()
        # the lock goes with the first one's connection
        Archive(target.url, instance="a").close()
    else:
        other = Archive(target.url, instance="a")
        other.add(events)
        other.commit(_position_after(events))
        # the first one's rows collide with the other's, or its commit
        # finds the position moved
        with pytest.raises(ArchiveError, match="another process is archiving the jobs journal"):
            first.add(events)
            first.commit(_position_after(events))
        first.close()
        other.close()
    assert rows(target, "SELECT count(*) FROM events") == [(len(events),)]


def test_second_archiver_waits_while_a_new_file_gets_its_schema(tmp_path):
    """Two archivers started on one new SQLite file: while the first
    holds its first write (the file still in rollback mode), the second
    one's switch to WAL waits for it instead of failing with "database
    is locked"."""
    path = tmp_path / "archive.sqlite"
    first = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    os.chmod(path, 0o600)
    first.execute("BEGIN IMMEDIATE")
    first.execute("CREATE TABLE making (x)")
    release = threading.Timer(0.5, first.execute, ("COMMIT",))
    release.start()
    try:
        started = time.monotonic()
        with Archive(str(path), instance="second") as second:
            assert second.position == Position()
        assert time.monotonic() - started >= 0.4  # it did wait for the lock
    finally:
        release.join()
        first.close()
    assert rows(str(path), "SELECT value FROM meta WHERE key = 'schema_version'") == [
        (str(schema.SCHEMA_VERSION),)]


# Jobs per archiver, and tries, in test_two_instances_archived_at_once:
# enough that two archivers started together overlap on a fast machine.
_AT_ONCE_JOBS = 3000
_AT_ONCE_ATTEMPTS = 5


def test_two_instances_archived_at_once(target):
    """Two archivers, one per instance, write into one database at the
    same time, each with its own resume position; then each resumes."""
    streams = {
        seed: journal_events("jobs", simulated_instance("jobs", _AT_ONCE_JOBS, seed)[0])
        for seed in (1, 2)
    }

    def start(name, seed):
        return subprocess.Popen(
            command("archive", "--db", target, "--sim", _AT_ONCE_JOBS, "--seed", seed,
                    "--instance", name, "--batch-size", "200"),
            env=archive_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    # Both start together; should the scheduler of a busy machine still
    # run one to its end before the other writes (a waiting SQLite writer
    # retries only between its busy handler's sleeps, and a fast archiver
    # leaves the lock free only between commits), try again with two new
    # instances in the same database (each pair's rows are checked).
    for attempt in range(_AT_ONCE_ATTEMPTS):
        names = {f"east{attempt}": 1, f"west{attempt}": 2}
        procs = {name: start(name, seed) for name, seed in names.items()}
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=300)
            assert (proc.returncode, out, err) == (0, b"", b""), (name, err)
        for name, seed in names.items():
            events = streams[seed]
            assert [r[1:] for r in rows(
                target, "SELECT instance, jobid, seq, timestamp, name, context FROM events "
                        "WHERE instance = ? ORDER BY jobid, seq", name)] == [
                (jobid, seq, ts, ev, json.dumps(ctx, separators=(",", ":"), ensure_ascii=False))
                for jobid, seq, ts, ev, ctx in expected_event_rows(events)]
            assert rows(target, "SELECT events FROM resume WHERE instance = ? AND journal = 'jobs'",
                        name) == [(len(events),)]
            assert rows(target, "SELECT count(*) FROM jobs WHERE instance = ?", name) == [
                (_AT_ONCE_JOBS,)]
        # both were writing at once: their commits interleave
        order = [instance for (instance,) in rows(
            target, "SELECT instance FROM events WHERE instance IN (?, ?) ORDER BY id", *names)]
        if sum(1 for a, b in zip(order, order[1:]) if a != b) >= 2:
            break
    else:
        pytest.fail(f"the two archivers never wrote at the same time in {_AT_ONCE_ATTEMPTS} "
                    "attempts")
    # a rerun of one finds its own position: nothing new, nothing twice
    before = rows(target, "SELECT count(*) FROM events")
    assert archive("--db", target, "--sim", _AT_ONCE_JOBS, "--seed", "1", "--instance", "east0")
    assert rows(target, "SELECT count(*) FROM events") == before


# Triggers that make the database refuse the events of one job: as they
# are inserted, or (a constraint trigger, which PostgreSQL checks at
# COMMIT) when their batch is committed.
_REFUSE = {
    ("sqlite", "insert"): [
        "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.jobid = {jobid} "
        "BEGIN SELECT RAISE(ABORT, 'refused by a test'); END"],
    ("postgres", "insert"): [
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.jobid = {jobid} THEN RAISE EXCEPTION 'refused by a test'; END IF; "
        "RETURN NEW; END $$",
        "CREATE TRIGGER refuse BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse()",
    ],
    ("postgres", "commit"): [
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.jobid = {jobid} THEN RAISE EXCEPTION 'refused by a test'; END IF; "
        "RETURN NULL; END $$",
        "CREATE CONSTRAINT TRIGGER refuse AFTER INSERT ON events DEFERRABLE INITIALLY DEFERRED "
        "FOR EACH ROW EXECUTE FUNCTION refuse()",
    ],
}


@pytest.mark.parametrize("when", ["insert", "commit"])
def test_refused_batch_is_not_half_written(target, when):
    """The database refuses an event in the middle of a batch, as it is
    inserted or when its batch is committed (a commit the archiver sent
    without waiting while it read on): the run stops with one line, the
    database's reason (not another process's move), and status 1; the
    archive ends at the last committed batch (with its resume position),
    and a later run goes on from there, exactly once."""
    if (target.kind, when) not in _REFUSE:
        pytest.skip("SQLite checks no constraint at COMMIT that a test can add")
    events = journal_events("jobs", simulated_instance("jobs", 300, 3)[0])
    want = expected_event_rows(events)
    # a job whose history comes mid-stream
    arriving = journal_events("jobs", simulated_instance("jobs", 300, 3)[0], ordered=False)
    victim = int(arriving[len(arriving) // 2].jobid)
    args = ("--db", target, "--sim", "300", "--seed", "3", "--batch-size", "100")
    Archive(target.url, instance="sim").close()  # the tables, for the trigger
    target.execute([s.format(jobid=victim) for s in _REFUSE[target.kind, when]])
    proc = archive(*args, check_rc=1)
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and "refused by a test" in lines[0], lines
    have = event_rows(target)
    assert_archived_part(have, want)
    assert have and victim not in {row[0] for row in have}
    assert len(have) % 100 == 0  # whole batches
    assert rows(target, "SELECT events FROM resume") == ([(len(have),)] if have else [])
    target.execute(["DROP TRIGGER refuse" + (" ON events" if target.kind == "postgres" else "")])
    archive(*args)
    assert event_rows(target) == want


def test_other_schema_is_refused(target):
    """Tables named like the archive's with other columns, or a meta
    table of another schema version: one line, status 1, nothing
    written."""
    target.execute(["CREATE TABLE jobs (jobid INTEGER PRIMARY KEY, owner TEXT)"])
    proc = archive("--db", target, "--sim", "20", check_rc=1)
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and "table jobs has columns (jobid, owner)" in lines[0], lines
    assert not target.exists()  # no events table: the schema's transaction rolled back
    future = schema.SCHEMA_VERSION + 1
    target.execute(["DROP TABLE jobs", "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)",
                    f"INSERT INTO meta VALUES ('schema_version', '{future}')"])
    proc = archive("--db", target, "--sim", "20", check_rc=1)
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and f"archive schema version {future}," in lines[0], lines
    assert not target.exists()


# The tables of schema version 1 (flux-journal up to a11ac61): no
# instance columns, a smaller jobs table.
V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE resume (journal TEXT PRIMARY KEY, cursor TEXT, timestamp REAL,
                     events INTEGER NOT NULL, updated REAL NOT NULL);
CREATE TABLE jobs (
    jobid INTEGER PRIMARY KEY, userid INTEGER, urgency INTEGER, state TEXT NOT NULL,
    result TEXT, t_submit REAL, t_run REAL, t_cleanup REAL, t_inactive REAL,
    waitstatus INTEGER, exception_type TEXT, exception_note TEXT, nevents INTEGER NOT NULL,
    jobspec TEXT, R TEXT
);
CREATE INDEX jobs_by_submit ON jobs (t_submit);
CREATE TABLE events (id INTEGER PRIMARY KEY, jobid INTEGER NOT NULL, seq INTEGER NOT NULL,
                     timestamp REAL NOT NULL, name TEXT NOT NULL, context TEXT NOT NULL,
                     UNIQUE (jobid, seq));
CREATE INDEX events_by_time ON events (timestamp);
CREATE TABLE resource_events (seq INTEGER PRIMARY KEY, timestamp REAL NOT NULL,
                              name TEXT NOT NULL, context TEXT NOT NULL, R TEXT);
CREATE INDEX resource_events_by_time ON resource_events (timestamp);
"""
V1_COLUMNS = {
    "jobs": "jobid, userid, urgency, state, result, t_submit, t_run, t_cleanup, t_inactive, "
            "waitstatus, exception_type, exception_note, nevents, jobspec, R",
    "events": "id, jobid, seq, timestamp, name, context",
    "resource_events": "seq, timestamp, name, context, R",
    "resume": "journal, cursor, timestamp, events, updated",
}


def make_v1(db, old):
    """Write at *old* the version 1 archive the old code wrote for the
    events of the version 2 archive *db*: the same rows, without their
    instance; version 1's jobs table, with version 1's t_cleanup (the
    finish)."""
    conn = sqlite3.connect(old)
    conn.executescript(V1_SCHEMA)
    conn.execute("ATTACH DATABASE ? AS v2", (str(db),))
    for table, columns in V1_COLUMNS.items():
        conn.execute(f"INSERT INTO main.{table} ({columns}) SELECT {columns} FROM v2.{table}")
    conn.execute("UPDATE main.jobs SET t_cleanup = (SELECT timestamp FROM main.events WHERE "
                 "events.jobid = jobs.jobid AND name = 'finish') WHERE t_cleanup IS NOT NULL")
    conn.execute("INSERT INTO main.meta VALUES ('schema_version', '1')")
    conn.commit()
    conn.execute("DETACH DATABASE v2")
    conn.close()
    os.chmod(old, 0o600)


def test_version_1_archive_is_upgraded_in_place(tmp_path, fixtures_dir):
    """A version 1 archive gets the instance name given (or the default)
    and version 2's jobs rows; nothing is lost, and it goes on from
    where version 1 stopped."""
    path = fixtures_dir / "jobs-full.jsonl"
    resources = fixtures_dir / "resource-many.jsonl"
    fresh = tmp_path / "fresh.sqlite"
    archive("--db", fresh, "--replay", path)  # history only
    archive("--db", fresh, "--replay", resources, "--resource", "--instance", "jobs-full.jsonl")
    for name, given in (("default", None), ("given", "cluster-a")):
        old = tmp_path / f"{name}.sqlite"
        make_v1(fresh, old)
        instance = given or "jobs-full.jsonl"  # --replay's default: the file's name
        # version 1 had the cancelled and timed-out jobs' t_cleanup wrong
        assert rows(old, "SELECT t_cleanup FROM jobs WHERE jobid = 70548193280") != rows(
            fresh, "SELECT t_cleanup FROM jobs WHERE jobid = 70548193280")
        # opening upgrades it
        archive("--db", old, "--replay", path, *(("--instance", given) if given else ()))
        assert rows(old, "SELECT value FROM meta WHERE key = 'schema_version'") == [
            (str(schema.SCHEMA_VERSION),)]
        for table in ("jobs", "events", "resource_events", "resume"):
            columns = "*" if table != "resume" else "instance, journal, cursor, timestamp, events"
            want = rows(fresh, f"SELECT {columns} FROM {table} ORDER BY 1, 2, 3")
            # the instance column: first, or after the archive order's key
            at = 1 if table in ("events", "resource_events") else 0
            want = [row[:at] + (instance,) + row[at + 1:] for row in want]
            assert rows(old, f"SELECT {columns} FROM {table} ORDER BY 1, 2, 3") == want, table
        assert {name for (name,) in rows(old, "SELECT name FROM sqlite_master WHERE type = "
                                              "'index' AND sql IS NOT NULL")} == {
            name for name, *_ in schema.INDEXES}
        assert rows(old, "PRAGMA integrity_check") == [("ok",)]
    # and it goes on from where version 1 stopped
    old = tmp_path / "default.sqlite"
    archive("--db", old, "--replay", path, "--follow")
    archive("--db", fresh, "--replay", path, "--follow")
    for table in ("jobs", "events"):
        everything = f"SELECT * FROM {table} ORDER BY 1, 2"
        assert rows(old, everything) == rows(fresh, everything)


# The indexes of schema version 2 (flux-journal up to a73e952), which
# version 3 replaced with indexes in history's order.
V2_INDEXES = """
CREATE INDEX jobs_by_instance_submit ON jobs (instance, t_submit);
CREATE INDEX jobs_by_user_submit ON jobs (userid, t_submit);
CREATE INDEX jobs_by_state ON jobs (state);
CREATE INDEX jobs_by_result ON jobs (result);
CREATE INDEX jobs_by_name ON jobs (name);
CREATE INDEX jobs_by_queue ON jobs (queue);
CREATE INDEX events_by_time ON events (timestamp);
CREATE INDEX resource_events_by_time ON resource_events (instance, timestamp)
"""


def index_names(target):
    """The names of the indexes made on the archive's tables (not its keys)."""
    if target.kind == "sqlite":
        return {name for (name,) in target.rows(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
    return {name for (name,) in target.rows(
        "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
        " AND indexname NOT IN (SELECT conname FROM pg_constraint)")}


# The indexes each older version had in place of this version's.
OLDER_INDEXES = {
    2: V2_INDEXES.split(";"),
    # version 3: this version's but the span index
    3: [f"CREATE INDEX {name} ON {table} ({columns})"
        + (f" WHERE {condition}" if condition else "")
        for name, table, columns, condition in schema.INDEXES if name != schema.SPAN_INDEX],
}


@pytest.mark.parametrize("version", sorted(OLDER_INDEXES))
def test_older_archive_is_read_and_upgraded_in_place(target, version):
    """A version 2 archive (its tables are this version's; its indexes
    were not in history's order) or 3 (without the index of job spans):
    history reads it as it is, and the next archiver replaces its
    indexes, keeping every row."""
    archive("--db", target, "--sim", "60", "--seed", "3", "--instance", "x")
    everything = {table: target.rows(f"SELECT * FROM {table} ORDER BY 1, 2, 3")
                  for table in ("jobs", "events", "resume")}
    listing = history_json(target)
    first = history_json(target, "-c", "25")  # the active jobs, then the inactive ones
    middle = str(sorted(job["t_submit"] for job in listing)[30])
    until = history_json(target, "-c", "25", "--until", middle)
    target.execute([f"DROP INDEX {name}" for name, *_ in schema.INDEXES]
                   + OLDER_INDEXES[version]
                   + [f"UPDATE meta SET value = '{version}' WHERE key = 'schema_version'"])
    assert index_names(target) == {  # the name before ON in CREATE INDEX [IF NOT EXISTS] name
        statement.split(" ON ")[0].split()[-1] for statement in OLDER_INDEXES[version]}
    assert len(listing) == 60
    assert {job["state"] == "INACTIVE" for job in first} == {True, False}
    assert until and all(job["t_submit"] <= float(middle) for job in until)
    assert history_json(target) == listing
    assert history_json(target, "-c", "25") == first
    assert history_json(target, "-c", "25", "--until", middle) == until
    archive("--db", target, "--sim", "60", "--seed", "3", "--instance", "x")  # nothing new
    assert target.rows("SELECT value FROM meta WHERE key = 'schema_version'") == [
        (str(schema.SCHEMA_VERSION),)]
    assert index_names(target) == {name for name, *_ in schema.INDEXES}
    for table, want in everything.items():
        got = target.rows(f"SELECT * FROM {table} ORDER BY 1, 2, 3")
        if table == "resume":  # the second run moved its "updated" time only
            got, want = ([row[:-1] for row in rows_] for rows_ in (got, want))
        assert got == want, table
    assert history_json(target) == listing
    assert history_json(target, "-c", "25") == first
    assert history_json(target, "-c", "25", "--until", middle) == until


def history_json(target, *options):
    """``flux-journal history --json`` of *target*'s jobs (every one unless
    *options* say otherwise), parsed, without what it computes at the
    time of the query."""
    proc = run_cli("history", "--db", target, "-A", "--json", "-c", "0", *options,
                   env=archive_env(), check_rc=None)
    assert proc.returncode == 0, proc.stderr
    listing = [json.loads(line) for line in proc.stdout.splitlines()]
    for record in listing:
        record.pop("runtime", None)
        record.pop("t_remaining", None)
    return listing


def test_unknown_schema_version_is_refused(target):
    Archive(target.url).close()
    future = schema.SCHEMA_VERSION + 1
    target.execute([f"UPDATE meta SET value = '{future}' WHERE key = 'schema_version'"])
    with pytest.raises(ArchiveError, match=f"schema version {future},"):
        Archive(target.url)
    with pytest.raises(ArchiveError, match=f"schema version {future},"):
        connect(target.url)


def test_connect_reads_either_backend(target):
    """store.connect(): the archive for reading, with its paramstyle."""
    archive("--db", target, "--sim", "50", "--seed", "5", "--instance", "x")
    reader = connect(target.url)
    try:
        assert (reader.kind, reader.paramstyle) == (
            {"sqlite": ("sqlite", "?"), "postgres": ("postgresql", "%s")}[target.kind])
        cursor = reader.connection.cursor()
        cursor.execute(f"SELECT count(*) FROM jobs WHERE instance = {reader.paramstyle}", ("x",))
        assert cursor.fetchone() == (50,)
        with pytest.raises(reader.errors):
            cursor.execute("DELETE FROM events")
    finally:
        reader.close()
    assert rows(target, "SELECT count(*) FROM jobs") == [(50,)]
