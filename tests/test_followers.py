"""Followers when the instance goes away, and with --reconnect when it
comes back, on the simulated instance (tests/broker/test_restart.py
does the same on a real one).

The command runs in this process (its main thread) so that a driver
thread can shut the simulated instance ``--sim`` opened down and
restart it (:meth:`SimFlux.shutdown`, :meth:`SimFlux.restart`), as
``flux shutdown`` and ``flux start`` on the same statedir and URI do.
Standard output and error go to files the driver reads.
"""

import collections
import errno
import json
import os
import signal
import sqlite3

import pytest

from flux_journal import JournalConsumer, ResourceJournalConsumer
from flux_journal.cli import sources
from flux_journal.cli import follow as follow_module
from flux_journal.sim import SimFlux
from flux_journal.sim.errors import SimError
from flux_journal.sim.services import JobJournalService
from journal_helpers import run_driven, wait_until
from metrics_helpers import free_port, scrape, values



class Run:
    """``flux-journal ARGV`` in this process with a driver thread.

    ``handles``: the simulated instances the command opened, in order.
    """

    def __init__(self, tmp_path, monkeypatch, *, down_at_start=False):
        self.handles = []
        self.out = tmp_path / "stdout"
        self.err = tmp_path / "stderr"
        real = sources.simulated_instance

        def opened(*args, **kwargs):
            handle, label = real(*args, **kwargs)
            if down_at_start:
                handle.shutdown()
            self.handles.append(handle)
            return handle, label

        monkeypatch.setattr(sources, "simulated_instance", opened)
        # reconnection attempts every few ms rather than 1 s, 2 s, ...
        monkeypatch.setattr(follow_module, "BACKOFF_FIRST", 0.02)
        self._monkeypatch = monkeypatch

    def __call__(self, argv, driver):
        """Run the command while *driver(self)* runs in a thread; return
        the exit status."""
        return run_driven(argv, lambda: driver(self), self.out, self.err, self._monkeypatch)

    def handle(self, index=0):
        wait_until(lambda: len(self.handles) > index, "the command to open the instance")
        return self.handles[index]

    def lines(self):
        return self.out.read_text(encoding="utf-8").splitlines() if self.out.exists() else []

    def stderr(self):
        return self.err.read_text(encoding="utf-8").splitlines() if self.err.exists() else []

    def records(self):
        return [json.loads(line) for line in self.lines()]

    @staticmethod
    def stop():
        """Interrupt the command (as Ctrl-C does)."""
        os.kill(os.getpid(), signal.SIGINT)


def history_keys(handle, journal="jobs"):
    """The identities of the events of *handle*'s whole history."""
    if journal == "jobs":
        consumer = JournalConsumer(handle, include_sentinel=True, full=True)
    else:
        consumer = ResourceJournalConsumer(handle, include_sentinel=True)
    consumer.start()
    keys = []
    while not (event := consumer.poll(10.0)).is_empty():
        keys.append(event_key(event))
    consumer.stop()
    while consumer.poll(10.0) is not None:
        pass
    return keys


def event_key(event):
    jobid = getattr(event, "jobid", None)
    return (None if jobid is None else int(jobid), event.name, event.timestamp)


def record_key(record):
    return (record.get("jobid"), record["name"], record["timestamp"])


def archived(db, journal="jobs"):
    with sqlite3.connect(db) as conn:
        if journal == "jobs":
            return conn.execute("SELECT jobid, name, timestamp FROM events ORDER BY id").fetchall()
        return [(None, name, ts) for name, ts in conn.execute(
            "SELECT name, timestamp FROM resource_events ORDER BY seq")]


def archive_rows(db, journal):
    try:
        return archived(db, journal)
    except sqlite3.Error:
        return []


# Shut down: one line, exit 3 ---------------------------------------------

COMMANDS = {
    "jobs": lambda db: ["jobs", "--sim", "30", "--format", "json"],
    "resource": lambda db: ["resource", "--sim", "30", "--format", "json"],
    "archive": lambda db: ["archive", "--db", str(db), "--sim", "30"],
    "archive-resource": lambda db: ["archive", "--db", str(db), "--resource", "--sim", "30"],
}


@pytest.mark.parametrize("errnum, what", [
    (errno.ENODATA, "the instance ended the stream (ENODATA"),
    (errno.EPROTO, "the connection was lost (EPROTO"),
    (errno.ECONNRESET, "the connection was lost (ECONNRESET"),
])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_shutdown_ends_a_follower_with_status_3(tmp_path, monkeypatch, command, errnum, what):
    journal = "resource" if "resource" in command else "jobs"
    db = tmp_path / "journal.sqlite"
    run = Run(tmp_path, monkeypatch)
    seen = []

    def driver(run):
        handle = run.handle()
        expected = history_keys(handle, journal)
        seen.extend(expected)

        def read():
            if command.startswith("archive"):
                return len(archive_rows(db, journal))
            return len(run.lines())

        wait_until(lambda: read() >= len(expected), "the history")
        handle.shutdown(errnum)

    argv = COMMANDS[command](db) + ["--follow", "--sim-rate", "0.001"]
    assert run(argv, driver) == 3
    service = "resource journal" if journal == "resource" else "job-manager journal"
    label = sources.simulated_instance(journal, 30)[1]
    lines = run.stderr()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"flux-journal: lost the {service} of {label}: {what}"), lines
    # everything received was written (committed) first; an archive
    # stores a job history in the order it arrives
    if command == "archive":
        assert sorted(archived(db, journal)) == sorted(seen)
    elif command.startswith("archive"):
        assert archived(db, journal) == seen
    else:
        assert [record_key(r) for r in run.records()] == seen


def test_metrics_exits_3_when_the_instance_shuts_down(tmp_path, monkeypatch):
    port = free_port()
    run = Run(tmp_path, monkeypatch)

    def driver(run):
        wait_until(lambda: any("history consumed" in line for line in run.stderr()),
                   "the history")
        run.handle(0).shutdown()

    status = run(["metrics", "--sim", "30", "--sim-rate", "0.001", "--listen",
                  f"127.0.0.1:{port}"], driver)
    assert status == 3
    lost = [line for line in run.stderr() if "lost" in line]
    assert lost == [
        "flux-journal metrics: lost the job-manager journal of simulated instance (30 jobs, "
        "seed 0): the instance ended the stream (ENODATA: it shut down or unloaded the service)"
    ]


def test_without_follow_the_history_ends_with_status_0(tmp_path, monkeypatch):
    run = Run(tmp_path, monkeypatch)
    assert run(["jobs", "--sim", "30", "--format", "json"], lambda run: None) == 0
    assert [record_key(r) for r in run.records()] == history_keys(run.handle())


# --reconnect: every event exactly once -------------------------------------


def _restart_with_jobs(run, read_keys):
    """Drive the instance: 3 jobs, shutdown, 2 jobs while it is down (as
    if run between the restart and the reconnection), restart, 2 more;
    wait until *read_keys()* holds the whole history, then interrupt."""
    handle = run.handle()
    wait_until(lambda: set(history_keys(handle)) <= set(read_keys()), "the history")
    for _ in range(3):
        handle.inject_job("success")
    wait_until(lambda: set(history_keys(handle)) <= set(read_keys()), "the live jobs")
    handle.shutdown()
    wait_until(lambda: any("reconnecting" in line for line in run.stderr()), "the loss")
    for _ in range(2):
        handle.inject_job("failed")
    handle.restart()
    wait_until(lambda: any("reconnected" in line for line in run.stderr()), "the return")
    for _ in range(2):
        handle.inject_job("success")
    wait_until(lambda: set(history_keys(handle)) <= set(read_keys()), "every event")
    run.stop()


def _check_once(keys, handle):
    """Every event of *handle*'s history, and the journal-only events
    (never in a history), exactly once."""
    assert len(set(keys)) == len(keys), [k for k, n in collections.Counter(keys).items() if n > 1]
    history = set(history_keys(handle))
    assert history <= set(keys)
    assert {name for _, name, _ in set(keys) - history} <= {"annotations"}


def _stderr_says_once(run):
    lines = run.stderr()
    assert sum("reconnecting" in line for line in lines) == 1, lines
    assert sum("reconnected" in line for line in lines) == 1, lines


def test_jobs_reconnect_prints_every_event_once(tmp_path, monkeypatch):
    run = Run(tmp_path, monkeypatch)
    argv = ["jobs", "--sim", "30", "--follow", "--sim-rate", "0.001", "--format", "json",
            "--reconnect"]
    status = run(argv, lambda run: _restart_with_jobs(
        run, lambda: [record_key(r) for r in run.records()]))
    assert status == 128 + signal.SIGINT
    _stderr_says_once(run)
    _check_once([record_key(r) for r in run.records()], run.handles[0])


def test_jobs_reconnect_resumes_from_the_checkpoint(tmp_path, monkeypatch):
    run = Run(tmp_path, monkeypatch)
    ck = tmp_path / "ck.json"
    argv = ["jobs", "--sim", "30", "--follow", "--sim-rate", "0.001", "--format", "json",
            "--reconnect", "--checkpoint", str(ck), "--checkpoint-interval", "0"]
    status = run(argv, lambda run: _restart_with_jobs(
        run, lambda: [record_key(r) for r in run.records()]))
    assert status == 128 + signal.SIGINT
    _check_once([record_key(r) for r in run.records()], run.handles[0])
    assert json.loads(ck.read_text())["events"] == len(run.records())


def test_archive_reconnect_stores_every_event_once(tmp_path, monkeypatch):
    db = tmp_path / "journal.sqlite"
    run = Run(tmp_path, monkeypatch)
    argv = ["archive", "--db", str(db), "--sim", "30", "--follow", "--sim-rate", "0.001",
            "--batch-time", "0.01", "--reconnect"]
    status = run(argv, lambda run: _restart_with_jobs(run, lambda: archive_rows(db, "jobs")))
    assert status == 128 + signal.SIGINT
    _stderr_says_once(run)
    _check_once(archived(db), run.handles[0])
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (30 + 7,)


@pytest.mark.parametrize("batch_time", ["0.01", "2"])
def test_archive_reconnect_in_the_middle_of_history(tmp_path, monkeypatch, batch_time):
    """The first stream is lost halfway through its history, which an
    archive reads unordered (no cursor can say where it stopped): the next
    stream's history repeats it, and what was archived, committed (short
    batches) or still in the open transaction, is stored once."""
    serve = JobJournalService.handle_request
    cut_short = []

    def lose_the_first(service, request):
        if cut_short or request.topic.endswith("-cancel"):
            serve(service, request)
            return
        backlog = service.backlog(True)
        cut_short.append(len(backlog) // 2)
        request.respond_many(backlog[:cut_short[0]] + [SimError(errno.EPROTO, "lost")])

    monkeypatch.setattr(JobJournalService, "handle_request", lose_the_first)
    db = tmp_path / "journal.sqlite"
    run = Run(tmp_path, monkeypatch)

    def driver(run):
        handle = run.handle()
        wait_until(lambda: any("reconnected" in line for line in run.stderr()), "the return")
        keys = set(history_keys(handle))
        wait_until(lambda: keys <= set(archive_rows(db, "jobs")), "the history")
        run.stop()

    # A window shorter than the history's span: the lost stream's cursor
    # would pass jobs that never came.
    argv = ["archive", "--db", str(db), "--sim", "30", "--follow", "--sim-rate", "0.001",
            "--batch-time", batch_time, "--reconnect", "--reorder-window", "0.001"]
    status = run(argv, driver)
    assert status == 128 + signal.SIGINT
    assert cut_short[0] >= 10  # job histories: half of them came before the loss
    _stderr_says_once(run)
    _check_once(archived(db), run.handles[0])
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (30,)
        total = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        assert conn.execute("SELECT events FROM resume").fetchone() == (total,)


def test_reconnect_retries_the_first_connection(tmp_path, monkeypatch):
    run = Run(tmp_path, monkeypatch, down_at_start=True)

    def driver(run):
        handle = run.handle()
        wait_until(lambda: any("retrying" in line for line in run.stderr()), "the retry")
        handle.restart()
        wait_until(lambda: len(run.lines()) >= len(history_keys(handle)), "the history")

    status = run(["jobs", "--sim", "30", "--format", "json", "--reconnect"], driver)
    assert status == 0
    assert [record_key(r) for r in run.records()] == history_keys(run.handles[0])
    assert len(run.stderr()) == 2 and "reconnected" in run.stderr()[1], run.stderr()


def test_metrics_reconnect_counts_each_event_once(tmp_path, monkeypatch):
    port = free_port()
    run = Run(tmp_path, monkeypatch)
    samples = {}

    def counted():
        return {name: value for name, value in
                values_of(scrape(port), "jobs").items()}

    def driver(run):
        wait_until(lambda: any("history consumed" in line for line in run.stderr()),
                   "the history")
        handle = run.handle(0)
        before = scrape(port)
        for _ in range(3):
            handle.inject_job("success")
        handle.shutdown()
        wait_until(lambda: any("reconnecting" in line for line in run.stderr()), "the loss")
        handle.inject_job("failed")
        handle.restart()
        wait_until(lambda: any("reconnected" in line for line in run.stderr()), "the return")
        handle.inject_job("success")
        wait_until(lambda: counted().get("submit", 0) == 30 + 5, "the counts")
        samples["before"] = before
        samples["after"] = scrape(port)
        run.stop()

    status = run(["metrics", "--sim", "30", "--sim-rate", "0.001", "--listen",
                  f"127.0.0.1:{port}", "--reconnect"], driver)
    assert status == 128 + signal.SIGINT
    handle = run.handles[0]
    # each event counted once: the names of the whole history (read
    # again from the instance) plus the journal-only annotations of the
    # four jobs posted while it was up (those of the job posted while it
    # was down reached no one, as with a real instance)
    names = collections.Counter(name for _, name, _ in history_keys(handle))
    names["annotations"] += 4
    assert values_of(samples["after"], "jobs") == dict(names)
    # counters never went down; the job gauges are the instance's
    for key, value in samples["before"].items():
        if key[0].endswith("_total") and key in samples["after"]:
            assert samples["after"][key] >= value, key
    finished = values(samples["after"], "flux_jobs_finished_total", "result")
    states = values(samples["after"], "flux_jobs", "state")
    assert states["INACTIVE"] == sum(finished.values())
    assert sum(states.values()) == names["submit"]


def values_of(samples, journal):
    return {
        dict(labels)["name"]: value
        for (sample, labels), value in samples.items()
        if sample == "flux_journal_events_total" and dict(labels)["journal"] == journal
    }


# The backoff ------------------------------------------------------------------


class RecordedWaits:
    """A stop event whose waits are recorded instead of slept; it is set
    after *attempts* waits."""

    def __init__(self, attempts):
        self.waits = []
        self.attempts = attempts

    def is_set(self):
        return len(self.waits) >= self.attempts

    def wait(self, seconds):
        self.waits.append(seconds)
        return self.is_set()


def test_backoff_doubles_from_1s_to_30s_and_reports_the_outage_once(capsys):
    attempts = []

    def reopen(cursor):
        attempts.append(cursor)
        raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")

    handle = SimFlux()
    consumer = JournalConsumer(handle, cursor_window=0.0).start()
    stop = RecordedWaits(attempts=10)
    follower = follow_module.Follower(consumer, label="local:///x", service="job-manager journal",
                                      reopen=reopen, reconnect=True, stop=stop)
    handle.shutdown()
    while not stop.is_set():
        assert follower.poll(1.0) == []
    assert stop.waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0, 30.0]
    assert attempts == [None] * 9  # nothing was delivered: from the start
    err = capsys.readouterr().err.splitlines()
    assert err == ["flux-journal: lost the job-manager journal of local:///x: the instance "
                   "ended the stream (ENODATA: it shut down or unloaded the service); "
                   "reconnecting"]
