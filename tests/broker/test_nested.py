"""--recursive on a real Flux hierarchy (issue 20): ``flux batch`` jobs
two levels deep, each running jobs, followed by ``flux-journal jobs
--recursive --follow --format json``, ``archive --recursive --follow``
and ``metrics --recursive``, all started before the batch job.  Every
job of every level must come with its ``clean`` event under its
instance path, be archived under its instance's name (and listed by
``history --instance``), and be counted in the exporter's series of its
instance.  Run as:

    flux start -s1 env PYTHONPATH=PREFIX/lib/python3.11/site-packages \\
        python -m pytest -m broker tests/broker/test_nested.py
"""

import collections
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from broker_helpers import REPO, flux_command
from flux_journal.tree import ROOT, child_path
from metrics_helpers import free_port, scrape

pytestmark = pytest.mark.broker

# Each level runs these jobs of its own (the inner level's batch job too).
_LEVEL1 = """#!/bin/sh
set -e
flux submit --wait -n1 true >/dev/null
flux submit --wait -n1 true >/dev/null
inner=$(flux batch -n1 "$NESTED_DIR/level2.sh")
flux job wait-event -t 300 "$inner" clean
flux submit --wait -n1 true >/dev/null
flux jobs -a -no '{id.dec}' > "$NESTED_DIR/level1.ids"
flux job id --to=dec "$inner" > "$NESTED_DIR/level2.id"
"""
_LEVEL2 = """#!/bin/sh
set -e
flux submit --wait -n1 true >/dev/null
flux submit --wait -n1 true >/dev/null
flux jobs -a -no '{id.dec}' > "$NESTED_DIR/level2.ids"
"""
_PATIENCE = 300.0


def flux(*args, env=None, cwd=None):
    """Run a flux command in the instance; its stdout."""
    proc = subprocess.run([flux_command(), *args], capture_output=True, text=True,
                          timeout=_PATIENCE, check=False, env=env, cwd=cwd)
    assert proc.returncode == 0, f"flux {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


def journal_command(*args):
    return [sys.executable, "-m", "flux_journal", *args]


def env_with_repo():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def wait_until(predicate, what):
    deadline = time.monotonic() + _PATIENCE
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def json_lines(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


@pytest.fixture(scope="module")
def hierarchy(tmp_path_factory, flux_handle):
    """Run the readers, then the two-level batch job; return what they
    saw and the jobs of each instance."""
    del flux_handle
    work = tmp_path_factory.mktemp("nested")
    (work / "level1.sh").write_text(_LEVEL1)
    (work / "level2.sh").write_text(_LEVEL2)
    for script in ("level1.sh", "level2.sh"):
        (work / script).chmod(0o755)
    env = env_with_repo()
    out, err = work / "jobs.jsonl", work / "jobs.err"
    db = work / "tree.sqlite"
    port = free_port()
    with open(out, "w") as stdout, open(err, "w") as stderr:
        follower = subprocess.Popen(
            journal_command("jobs", "--recursive", "--follow", "--format", "json"),
            stdout=stdout, stderr=stderr, env=env)
    archiver = subprocess.Popen(
        journal_command("archive", "--recursive", "--follow", "--db", str(db),
                        "--instance", "broker", "--batch-time", "0.2"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    exporter = subprocess.Popen(
        journal_command("metrics", "--recursive", "--listen", f"127.0.0.1:{port}"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    readers = (follower, archiver, exporter)
    try:
        # every reader is listening once it has seen a job of this test
        marker = int(flux("job", "id", "--to=dec", flux("submit", "--wait", "true")))
        wait_until(lambda: any(r["name"] == "clean" and r["jobid"] == marker
                               for r in json_lines(out)), "the follower")
        # the batch job, two levels deep (its jobs' output files, in
        # the directory it is submitted from, are the test's)
        batch_env = {**os.environ, "NESTED_DIR": str(work)}
        level1 = int(flux("job", "id", "--to=dec",
                          flux("batch", "-n1", str(work / "level1.sh"), env=batch_env,
                               cwd=work)))
        flux("job", "wait-event", "-t", str(int(_PATIENCE)), str(level1), "clean")
        level2 = int((work / "level2.id").read_text())
        root_path = ROOT
        path1 = child_path(ROOT, level1)
        path2 = child_path(path1, level2)
        jobs = {
            path1: {int(x) for x in (work / "level1.ids").read_text().split()},
            path2: {int(x) for x in (work / "level2.ids").read_text().split()},
            root_path: {marker, level1},
        }
        wait_until(lambda: sum(1 for r in json_lines(out) if r["name"] == "clean")
                   >= sum(map(len, jobs.values())), "every clean event")
        samples = None

        def counted():
            nonlocal samples
            samples = scrape(port)
            return all(finished(samples, path) >= len(ids) for path, ids in jobs.items())

        wait_until(counted, "the exporter's counts")
        # the archive commits every 0.2 s
        time.sleep(2.0)
    finally:
        for reader in readers:
            reader.send_signal(signal.SIGTERM)
        statuses = [reader.wait(60) for reader in readers]
    return {
        "jobs": jobs,
        "records": json_lines(out),
        "stderr": err.read_text(),
        "statuses": statuses,
        "archiver_stderr": archiver.stderr.read(),
        "exporter_stderr": exporter.stderr.read(),
        "db": db,
        "samples": samples,
    }


def finished(samples, path):
    """Jobs finished in the instance at *path*, as the exporter counts them."""
    return sum(value for (name, labels), value in samples.items()
               if name == "flux_jobs_finished_total" and dict(labels).get("instance") == path)


def test_every_job_of_every_level_has_its_clean_under_its_path(hierarchy):
    assert hierarchy["statuses"][0] == 128 + signal.SIGTERM, hierarchy["stderr"]
    cleans = collections.defaultdict(collections.Counter)
    for record in hierarchy["records"]:
        if record["name"] == "clean":
            cleans[record["instance"]][record["jobid"]] += 1
    for path, ids in hierarchy["jobs"].items():
        # the root's history holds the jobs of earlier tests too
        if path == ROOT:
            assert set(cleans[path]) >= ids
        else:
            assert set(cleans[path]) == ids, path
        assert set(cleans[path].values()) == {1}, path
    assert set(cleans) == set(hierarchy["jobs"])
    # each instance's events: every job's whole life, nothing twice
    seen = collections.Counter((r["instance"], r["jobid"], r["name"], r["timestamp"])
                               for r in hierarchy["records"] if r["name"] != "annotations")
    assert set(seen.values()) == {1}
    # nothing was unreachable: the children were read from their start
    assert "not followed" not in hierarchy["stderr"], hierarchy["stderr"]


def test_the_archive_stores_them_by_instance(hierarchy):
    assert hierarchy["statuses"][1] == 128 + signal.SIGTERM, hierarchy["archiver_stderr"]
    env = env_with_repo()
    for path, ids in hierarchy["jobs"].items():
        name = "broker" if path == ROOT else "broker" + path
        proc = subprocess.run(
            journal_command("history", "--db", str(hierarchy["db"]), "-u", "all",
                            "--instance", name, "--json"),
            capture_output=True, text=True, timeout=120, check=False, env=env)
        assert proc.returncode == 0, proc.stderr
        listed = [json.loads(line) for line in proc.stdout.splitlines()]
        assert {job["id"] for job in listed} >= ids, name
        assert {job["instance"] for job in listed} == {name}
        if path != ROOT:
            # a child instance holds only its own jobs
            assert {job["id"] for job in listed} == ids, name
        assert all(job["state"] == "INACTIVE" for job in listed if job["id"] in ids)
    # -R: the root and every instance under it in one listing
    proc = subprocess.run(
        journal_command("history", "--db", str(hierarchy["db"]), "-u", "all", "-c", "0",
                        "--instance", "broker", "-R", "--json"),
        capture_output=True, text=True, timeout=120, check=False, env=env)
    assert proc.returncode == 0, proc.stderr
    listed = collections.defaultdict(set)
    for line in proc.stdout.splitlines():
        job = json.loads(line)
        listed[job["instance"]].add(job["id"])
    assert set(listed) == {"broker" if path == ROOT else "broker" + path
                           for path in hierarchy["jobs"]}
    for path, ids in hierarchy["jobs"].items():
        assert listed["broker" if path == ROOT else "broker" + path] >= ids, path


def test_the_exporter_counts_each_instance(hierarchy):
    assert hierarchy["statuses"][2] == 128 + signal.SIGTERM, hierarchy["exporter_stderr"]
    samples = hierarchy["samples"]
    for path, ids in hierarchy["jobs"].items():
        if path == ROOT:  # earlier tests' jobs too
            assert finished(samples, path) >= len(ids)
        else:
            assert finished(samples, path) == len(ids), path
        cleans = samples[("flux_journal_events_total",
                          (("instance", path), ("journal", "jobs"), ("name", "clean")))]
        assert cleans >= len(ids)
    unreachable = {dict(labels)["kind"]: value for (name, labels), value in samples.items()
                   if name == "flux_journal_unreachable_instances_total"}
    assert unreachable == {"ended": 0.0, "unreachable": 0.0, "denied": 0.0, "lost": 0.0}


_HOLD1 = """#!/bin/sh
flux submit --wait -n1 true >/dev/null
flux batch -n1 "$NESTED_DIR/hold2.sh" >/dev/null
sleep 600
"""
_HOLD2 = """#!/bin/sh
flux submit --wait -n1 true >/dev/null
touch "$NESTED_DIR/hold2.ran"
sleep 600
"""


def test_archive_resumes_every_running_instance(tmp_path, flux_handle):
    """A second ``archive --recursive`` (no --follow) while the children
    still run: it resumes each instance from its own position, finds the
    children running (their start and memo lie before the root's
    cursor), reads them, adds nothing and ends."""
    del flux_handle
    for name, text in (("hold1.sh", _HOLD1), ("hold2.sh", _HOLD2)):
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o755)
    env = env_with_repo()
    db = tmp_path / "resume.sqlite"
    job = flux("batch", "-n1", str(tmp_path / "hold1.sh"),
               env={**os.environ, "NESTED_DIR": str(tmp_path)}, cwd=tmp_path)
    try:
        wait_until(lambda: (tmp_path / "hold2.ran").exists(), "the inner batch job's job")
        runs = []
        for _ in range(2):
            proc = subprocess.run(
                journal_command("archive", "--recursive", "--db", str(db), "--instance", "here",
                                "--stats"),
                capture_output=True, text=True, timeout=120, check=False, env=env)
            assert proc.returncode == 0, proc.stderr
            runs.append(proc.stderr)
        assert "events delivered: 0" in runs[1], runs[1]
        import sqlite3  # pylint: disable=import-outside-toplevel

        connection = sqlite3.connect(db)
        names = {name for (name,) in connection.execute("SELECT instance FROM resume")}
        connection.close()
        level1 = int(flux("job", "id", "--to=dec", job))
        assert names >= {"here", "here" + child_path(ROOT, level1)}
        assert len(names) >= 3  # the inner batch job's instance too
    finally:
        flux("cancel", job)
