"""Followers across a real instance's shutdown and restart (skipped
without flux-core installed).

Each test starts its own instance, ``flux start -s1
-Sstatedir=DIR -Slocal-uri=local://PATH sleep inf``, and runs the
followers outside it with ``--uri local://PATH``: ``jobs --follow``,
``resource --follow``, ``archive --follow`` and ``metrics``.  Shut down,
each says once what happened and exits 3; with ``--reconnect`` they
follow the instance restarted on the same statedir and URI, and
afterwards the printed stream and the archive hold every event exactly
once and the exporter has counted each once.
"""

import collections
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from metrics_helpers import free_port, scrape, values  # noqa: E402

pytestmark = pytest.mark.broker

REPO = Path(__file__).resolve().parents[2]
# How long an instance may take to start or stop, and a follower to
# catch up (a ceiling on waits, not a timed assertion).
_PATIENCE = 120.0


def _flux_command():
    prefix = os.environ.get("FLUX_PREFIX")
    candidates = [Path(prefix, "bin", "flux")] if prefix else []
    found = shutil.which("flux")
    if found:
        candidates.append(Path(found))
    candidates.append(Path("/opt/flux/bin/flux"))
    for path in candidates:
        if path.exists():
            return str(path)
    return None


@pytest.fixture(scope="module")
def flux():
    """flux-core's ``flux`` command, or skip."""
    path = _flux_command()
    if path is None:
        pytest.skip("needs flux-core installed: no flux command (set FLUX_PREFIX)")
    probe = subprocess.run([path, "env", sys.executable, "-c", "import flux"],
                           capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"flux-core's bindings do not import in {sys.executable}: "
                    f"{probe.stderr.decode(errors='replace').strip()[-200:]}")
    return path


def wait_until(predicate, what):
    """Wait (up to _PATIENCE) until predicate() is true."""
    deadline = time.monotonic() + _PATIENCE
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Instance:
    """A one-broker instance with a statedir and a local URI of its own,
    started and stopped at will: its history outlives each run."""

    def __init__(self, flux, tmp_path):
        self.flux = flux
        self.statedir = tmp_path / "state"
        self.statedir.mkdir()
        # a socket path must be short (sun_path)
        self.socket = Path(f"/tmp/fj-{os.getpid()}-{id(self):x}.sock")
        self.uri = f"local://{self.socket}"
        self.proc = None

    def env(self):
        return {**os.environ, "FLUX_URI": self.uri}

    def run(self, *args):
        return subprocess.run([self.flux, *args], env=self.env(), capture_output=True,
                              check=True, timeout=_PATIENCE)

    def start(self):
        self.proc = subprocess.Popen(
            [self.flux, "start", "-s1", f"-Sstatedir={self.statedir}",
             f"-Slocal-uri={self.uri}", "sleep", "inf"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )

        def running():
            if not self.socket.exists():
                return False
            up = subprocess.run([self.flux, "uptime"], env=self.env(), capture_output=True,
                                check=False)
            return up.returncode == 0 and b" run " in up.stdout

        wait_until(running, "the instance to start")

    def submit(self, njobs):
        """Run *njobs* jobs to completion."""
        self.run("submit", f"--cc=1-{njobs}", "--wait", "--quiet", "true")

    def shutdown(self):
        self.run("shutdown", "--quiet")
        self.proc.wait(_PATIENCE)
        self.proc = None

    def kill(self):
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(_PATIENCE)
            self.proc = None


@pytest.fixture
def instance(flux, tmp_path):
    inst = Instance(flux, tmp_path)
    inst.start()
    yield inst
    inst.kill()


# Followers still running when a test ends (it failed): killed then.
_RUNNING = []


@pytest.fixture(autouse=True)
def _no_follower_left():
    yield
    while _RUNNING:
        proc = _RUNNING.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(_PATIENCE)


class Follower:
    """``flux-journal ARGS`` in a subprocess, outside the instance."""

    def __init__(self, flux, tmp_path, name, *args):
        self.out = tmp_path / f"{name}.out"
        self.err = tmp_path / f"{name}.err"
        env = {k: v for k, v in os.environ.items() if k != "FLUX_URI"}
        env["PYTHONPATH"] = str(REPO)
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            # flux env: flux-core's bindings on the path, no instance
            self.proc = subprocess.Popen(
                [flux, "env", sys.executable, "-m", "flux_journal", *map(str, args)],
                stdout=out, stderr=err, env=env,
            )
        _RUNNING.append(self.proc)

    def stderr_lines(self):
        return self.err.read_text().splitlines()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(_PATIENCE)


def json_events(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def event_key(record):
    return (record["jobid"], record["name"], record["timestamp"])


def history(flux, instance):
    """The instance's whole job history as ``flux-journal jobs`` prints it."""
    proc = subprocess.run(
        [flux, "env", sys.executable, "-m", "flux_journal", "jobs", "--uri", instance.uri,
         "--format", "json"],
        capture_output=True, check=True, timeout=_PATIENCE,
        env={**{k: v for k, v in os.environ.items() if k != "FLUX_URI"},
             "PYTHONPATH": str(REPO)},
    )
    return [json.loads(line) for line in proc.stdout.decode().splitlines()]


def start_followers(flux, tmp_path, instance, *extra):
    uri = ("--uri", instance.uri)
    port = free_port()
    followers = {
        "jobs": Follower(flux, tmp_path, "jobs", "jobs", "--follow", "--format", "json",
                         *uri, *extra),
        "resource": Follower(flux, tmp_path, "resource", "resource", "--follow", *uri, *extra),
        "archive": Follower(flux, tmp_path, "archive", "archive", "--db",
                            tmp_path / "journal.sqlite", "--follow", "--batch-time", "0.1",
                            *uri, *extra),
        "metrics": Follower(flux, tmp_path, "metrics", "metrics", "--listen",
                            f"127.0.0.1:{port}", *uri, *extra),
    }
    return followers, port


def archived(db):
    """(jobid, name, timestamp) of the events archived in *db*; none while
    the archiver has not made the file or its tables yet."""
    if not Path(db).exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT jobid, name, timestamp FROM events").fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    finally:
        conn.close()


def test_shutdown_ends_every_follower_with_status_3(flux, instance, tmp_path):
    instance.submit(2)
    followers, _ = start_followers(flux, tmp_path, instance)
    wait_until(lambda: len(json_events(followers["jobs"].out)) >= 2 * 8
               and len(archived(tmp_path / "journal.sqlite")) >= 2 * 8
               and any("history consumed" in line
                       for line in followers["metrics"].stderr_lines()),
               "the followers to read the history")
    instance.shutdown()
    statuses = {name: f.proc.wait(_PATIENCE) for name, f in followers.items()}
    assert statuses == dict.fromkeys(followers, 3)
    for name, follower in followers.items():
        lost = [line for line in follower.stderr_lines() if "lost" in line]
        assert len(lost) == 1, (name, follower.stderr_lines())
        assert instance.uri in lost[0] and "ENODATA" in lost[0], lost[0]
    # everything received was printed once, and committed
    printed = json_events(followers["jobs"].out)
    assert len({event_key(r) for r in printed}) == len(printed)
    assert sorted(archived(tmp_path / "journal.sqlite")) == sorted(
        event_key(r) for r in printed)


def test_reconnect_follows_a_restarted_instance(flux, instance, tmp_path):
    instance.submit(3)
    followers, port = start_followers(flux, tmp_path, instance, "--reconnect")
    wait_until(lambda: any("history consumed" in line
                           for line in followers["metrics"].stderr_lines())
               and len(json_events(followers["jobs"].out)) >= 3 * 8,
               "the followers to read the history")
    instance.shutdown()
    for name, follower in followers.items():
        wait_until(lambda f=follower: any("reconnecting" in line for line in f.stderr_lines()),
                   f"{name} to report the loss")
        assert follower.proc.poll() is None, follower.stderr_lines()
    instance.start()
    instance.submit(2)
    expected = history(flux, instance)
    want = {event_key(r) for r in expected}
    db = tmp_path / "journal.sqlite"

    def caught_up():
        printed = {event_key(r) for r in json_events(followers["jobs"].out)}
        counted = values(scrape(port), "flux_journal_events_total", "name")
        return (want <= printed and want <= set(archived(db))
                and counted.get("clean", 0) >= 5)

    wait_until(caught_up, "the followers to catch up after the restart")
    for name, follower in followers.items():
        # one line per outage and one when back, per journal read
        journals = 2 if name == "metrics" else 1
        lines = follower.stderr_lines()
        assert sum("reconnecting" in line for line in lines) == journals, (name, lines)
        assert sum("reconnected" in line for line in lines) == journals, (name, lines)
    samples = scrape(port)
    statuses = {name: f.stop() for name, f in followers.items()}
    assert statuses == dict.fromkeys(followers, 128 + signal.SIGTERM)

    printed = json_events(followers["jobs"].out)
    keys = [event_key(r) for r in printed]
    # nothing twice, nothing lost (the history after the restart holds
    # every job of both runs)
    assert len(set(keys)) == len(keys)
    assert want <= set(keys)
    rows = archived(db)
    assert len(set(rows)) == len(rows) and sorted(rows) == sorted(keys)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (5,)
    # the exporter counted each event once, by name, over both runs
    jobs_counted = {
        dict(labels)["name"]: value
        for (sample, labels), value in samples.items()
        if sample == "flux_journal_events_total" and dict(labels)["journal"] == "jobs"
    }
    assert jobs_counted == dict(collections.Counter(r["name"] for r in printed))
    finished = values(samples, "flux_jobs_finished_total", "result")
    assert sum(finished.values()) == 5
