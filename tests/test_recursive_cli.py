"""``flux-journal jobs --recursive`` on the simulated hierarchy of
``--sim --recursive`` (flux_journal/cli/sources.py simulated_children):
every event of every instance once under its path, in text and JSON;
--level; name filters; the child that had ended said once; live
children coming and going under --follow.

The truth is each simulated instance's own journal, rebuilt here the
way the command builds it (the same seed gives the same hierarchy).
"""

import collections
import json
import os
import signal
import sqlite3

from flux_journal import JournalConsumer
from flux_journal.cli import main, simulated_instance, sources
from flux_journal.cli.archive import Archive
from flux_journal.cli.checkpoint import Position
from flux_journal.store import schema
from flux_journal.tree import ROOT, child_path
from journal_helpers import PATIENCE, journal_events, run_cli, run_driven, wait_until

_JOBS = 20



def json_lines(path):
    """The complete JSON lines a running command has written to *path*."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def hierarchy_printed(path):
    """Whether the command has written events of every instance of the
    simulated hierarchy (the root, its children and theirs) to *path*."""
    return path.exists() and (
        len({r["instance"] for r in json_lines(path)}) == 1 + 2 * sources.SIM_CHILDREN)


def hierarchy():
    """(root handle, SimHost) as ``--sim 20 --recursive`` builds them."""
    handle, _ = sources.simulated_instance("jobs", _JOBS, 0)
    return handle, sources.simulated_children(handle)


def paths_of(host):
    """{path: handle} of the running instances of *host*'s hierarchy."""
    paths = {id(host.root): ROOT}
    out = {ROOT: host.root}
    for child in host.children:
        path = child_path(paths[id(child.parent)], child.jobid)
        paths[id(child.handle)] = path
        if child.handle.is_up:
            out[path] = child.handle
    return out


def journal_keys(handle, names=None):
    """Counter of (jobid, name, timestamp) of *handle*'s journal."""
    consumer = JournalConsumer(handle, include_sentinel=True).start()
    keys = collections.Counter()
    while True:
        event = consumer.poll(PATIENCE)
        if event is None or event.is_empty():
            break
        if names is None or event.name in names:
            keys[(int(event.jobid), event.name, event.timestamp)] += 1
    consumer.stop()
    return keys


def record_keys(records):
    """{instance: Counter of (jobid, name, timestamp)} of JSON records,
    but annotations, which the journal sends live and never stores."""
    by_path = collections.defaultdict(collections.Counter)
    for record in records:
        if record["name"] == "annotations":
            continue
        by_path[record["instance"]][(record["jobid"], record["name"], record["timestamp"])] += 1
    return by_path


def test_json_lines_carry_every_event_of_every_instance_once():
    proc = run_cli("jobs", "--sim", _JOBS, "--recursive", "--format", "json", check_rc=None)
    assert proc.returncode == 0
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    _, host = hierarchy()
    expected = {path: journal_keys(handle) for path, handle in paths_of(host).items()}
    assert len(expected) == 1 + 2 * sources.SIM_CHILDREN
    assert record_keys(records) == expected
    # the child that finished before the command started, said once
    ended = child_path(ROOT, host.children[0].jobid)
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"flux-journal: child instance {ended} (ssh://")
    assert lines[0].endswith("not followed: it had ended before it could be read")


def test_text_lines_start_with_the_path_and_are_otherwise_unchanged():
    plain = run_cli("jobs", "--sim", _JOBS).stdout.decode().splitlines()
    tree = run_cli("jobs", "--sim", _JOBS, "--recursive", check_rc=None).stdout.decode()
    root_lines = [line[2:] for line in tree.splitlines() if line.startswith("/ ")]
    # The root's own history: the plain command's, plus the jobs that
    # are child instances (submitted after the workload).
    assert root_lines[: len(plain)] == plain
    _, host = hierarchy()
    paths = paths_of(host)
    for path, handle in paths.items():
        lines = [line for line in tree.splitlines() if line.split(" ", 1)[0] == path]
        assert len(lines) == sum(journal_keys(handle).values()), path


def test_level_and_names():
    _, host = hierarchy()
    children = {path for path in paths_of(host) if path.count("/") == 1 and path != ROOT}
    proc = run_cli("jobs", "--sim", _JOBS, "--level", "1", "--format", "json",
                   "--name", "clean", check_rc=None)
    assert proc.returncode == 0
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert {r["name"] for r in records} == {"clean"}
    by_path = record_keys(records)
    assert set(by_path) == {ROOT} | children
    for path in children:
        assert by_path[path] == journal_keys(paths_of(host)[path], {"clean"})


def test_options_refused_with_recursive():
    proc = run_cli("jobs", "--sim", _JOBS, "--recursive", "--checkpoint", "x", check_rc=2)
    assert b"--checkpoint cannot resume --recursive" in proc.stderr
    proc = run_cli("archive", "--db", "x.sqlite", "--sim", "--resource", "--recursive",
                   check_rc=2)
    assert b"not with --resource" in proc.stderr
    run_cli("jobs", "--sim", _JOBS, "--level", "0", check_rc=2)
    run_cli("resource", "--sim", "--recursive", check_rc=2)


def test_follow_children_that_come_and_go(tmp_path, monkeypatch):
    hosts = []
    real = sources.simulated_children

    def built(handle):
        host = real(handle)
        hosts.append(host)
        return host

    monkeypatch.setattr(sources, "simulated_children", built)
    out_path = tmp_path / "out"
    news = []

    def drive():
        wait_until(lambda: hosts and hierarchy_printed(out_path), "the hierarchy's history")
        host = hosts[0]
        new = host.start_child(host.root)
        news.append(new)
        new.handle.inject_job("success")
        grandchild = host.children[2]  # the first running child's child
        grandchild.handle.inject_job("failed")
        wait_until(lambda: sum(1 for r in json_lines(out_path) if r["name"] == "clean"
                             and r["instance"].count("/ƒ") == 1
                             and r["instance"] == child_path(ROOT, new.jobid)) == 1,
                   "the new child's job")
        host.finish_child(new)
        wait_until(lambda: any(r["name"] == "clean" and r["instance"] == ROOT
                             and r["jobid"] == new.jobid for r in json_lines(out_path)),
                   "the new child's own clean")
        os.kill(os.getpid(), signal.SIGINT)

    status = run_driven(["jobs", "--sim", str(_JOBS), "--recursive", "--follow",
                         "--format", "json", "--sim-rate", "1000000"],
                        drive, out_path, tmp_path / "err", monkeypatch)
    assert status == 128 + signal.SIGINT
    host = hosts[0]
    by_path = record_keys(json_lines(out_path))
    new = news[0]
    new.handle.restart()  # to read its journal as it was
    expected = {path: journal_keys(handle) for path, handle in paths_of(host).items()}
    expected[child_path(ROOT, new.jobid)] = journal_keys(new.handle)
    # The root's live events run on (the feeder): compare what was read.
    root_truth = journal_keys(host.root)
    assert by_path[ROOT] - root_truth == collections.Counter()
    assert max(by_path[ROOT].values()) == 1
    del expected[ROOT]
    for path, keys in expected.items():
        assert by_path[path] == keys, path
    err = (tmp_path / "err").read_text().splitlines()
    assert len(err) == 1 and "it had ended before it could be read" in err[0]


def test_metrics_series_carry_the_instance():
    import metrics_oracle
    from metrics_helpers import Exporter

    _, host = hierarchy()
    paths = paths_of(host)
    ended = child_path(ROOT, host.children[0].jobid)

    def by_instance(samples, name, label):
        out = collections.defaultdict(dict)
        for (sample, labels), value in samples.items():
            labels = dict(labels)
            if sample == name and labels.get("journal", "jobs") == "jobs":
                out[labels["instance"]][labels[label]] = value
        return out

    def complete(samples):
        return (samples.get(("flux_journal_history_complete", ())) == 1.0
                and set(by_instance(samples, "flux_jobs", "state")) == set(paths))

    # live events of the root one per 1000 s: the scrape stays still
    with Exporter("--sim", str(_JOBS), "--recursive", "--sim-rate", "0.001") as exporter:
        samples = exporter.wait_for(complete, "every instance's history")
    events = by_instance(samples, "flux_journal_events_total", "name")
    states = by_instance(samples, "flux_jobs", "state")
    results = by_instance(samples, "flux_jobs_finished_total", "result")
    assert set(events) == set(paths)
    for path, handle in paths.items():
        expected = metrics_oracle.expected_jobs(handle.jobs.backlog(True))
        assert events[path] == expected["events"], path
        assert states[path] == expected["states"], path
        assert results[path] == expected["results"], path
        count = samples[("flux_job_run_seconds_count", (("instance", path),))]
        assert count == len(expected["run"]), path
    unreachable = {dict(labels)["kind"]: value for (name, labels), value in samples.items()
                   if name == "flux_journal_unreachable_instances_total"}
    assert unreachable == {"ended": 1.0, "unreachable": 0.0, "denied": 0.0, "lost": 0.0}
    assert f"child instance {ended} (ssh://" in exporter.stderr
    # the resource journal's event series are the root's
    assert any(name == "flux_journal_events_total" and dict(labels) == {
        "instance": "/", "journal": "resource", "name": "drain"} for name, labels in samples)


def archived(db):
    """{instance: Counter of (jobid, name, timestamp)} of an archive's
    events, and {instance: set of job ids} of its jobs rows."""
    import sqlite3

    connection = sqlite3.connect(db)
    events = collections.defaultdict(collections.Counter)
    for instance, jobid, name, timestamp in connection.execute(
            "SELECT instance, jobid, name, timestamp FROM events"):
        events[instance][(jobid, name, timestamp)] += 1
    jobs = collections.defaultdict(set)
    for instance, jobid in connection.execute("SELECT instance, jobid FROM jobs"):
        jobs[instance].add(jobid)
    positions = {instance: journal for instance, journal in connection.execute(
        "SELECT instance, journal FROM resume")}
    connection.close()
    return events, jobs, positions


def test_archive_stores_each_instance_under_its_name_and_resumes_each(tmp_path, monkeypatch):
    db = tmp_path / "tree.sqlite"
    proc = run_cli("archive", "--db", db, "--sim", _JOBS, "--recursive", check_rc=None)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.decode().count("not followed") == 1
    _, host = hierarchy()
    paths = paths_of(host)
    events, jobs, positions = archived(db)
    expected = {("sim" if path == ROOT else "sim" + path): journal_keys(handle)
                for path, handle in paths.items()}
    assert events == expected
    assert set(positions) == set(expected)
    assert {name: {jobid for jobid, _, _ in keys} for name, keys in expected.items()} == jobs
    # history --instance lists each instance's jobs
    child = "sim" + child_path(ROOT, host.children[1].jobid)
    listed = run_cli("history", "--db", db, "-u", "all", "--instance", child, "--json")
    assert {json.loads(line)["id"] for line in listed.stdout.splitlines()} == jobs[child]
    assert {json.loads(line)["instance"] for line in listed.stdout.splitlines()} == {child}

    # A second run, each child having run one more job meanwhile: only
    # those jobs' events are added, each to its own instance.
    real = sources.simulated_children
    added = {}

    def grown(handle):
        grown_host = real(handle)
        for index, sim_child in enumerate(grown_host.children[1:]):
            sim_child.handle.inject_job("failed" if index % 2 else "success")
        added["host"] = grown_host
        return grown_host

    monkeypatch.setattr(sources, "simulated_children", grown)
    monkeypatch.setenv("FLUX_F58_FORCE_ASCII", "1")
    assert main(["archive", "--db", str(db), "--sim", str(_JOBS), "--recursive"]) == 0
    events_after, _, _ = archived(db)
    truth = {("sim" if path == ROOT else "sim" + path): journal_keys(handle)
             for path, handle in paths_of(added["host"]).items()}
    assert events_after == truth
    for name in truth:
        if name != "sim":
            assert sum(truth[name].values()) > sum(expected[name].values()), name


def test_archive_makes_the_indexes_a_cut_first_history_left_out(tmp_path):
    """A tree's histories come in time order, so ``--recursive`` leaves
    no index out; indexes that a plain archiver left out for a first
    history it did not finish (SQLite, see Archive.history_written) are
    made in its first commit."""
    db = tmp_path / "tree.sqlite"
    other = journal_events("jobs", simulated_instance("jobs", 5, 1)[0])
    cut = Archive(str(db), instance="other")
    cut.add(other[: len(other) // 2], history=True)
    cut.commit(Position())
    cut.close()
    wanted = {name for name, *_ in schema.INDEXES}

    def indexes():
        connection = sqlite3.connect(db)
        names = {name for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index'")}
        meta = connection.execute("SELECT key FROM meta ORDER BY key").fetchall()
        connection.close()
        return names & wanted, meta

    assert indexes() == (wanted - {name for name, *_ in schema.DEFERRED_INDEXES},
                         [("indexes_deferred",), ("schema_version",)])
    proc = run_cli("archive", "--db", db, "--sim", _JOBS, "--recursive", check_rc=None)
    assert proc.returncode == 0, proc.stderr
    assert indexes() == (wanted, [("schema_version",)])


def test_reconnect_applies_to_the_root_and_the_children_go_on(tmp_path, monkeypatch):
    from flux_journal.cli import follow as follow_module

    roots, hosts = [], []
    real_instance, real_children = sources.simulated_instance, sources.simulated_children

    def instance(*args, **kwargs):
        handle, label = real_instance(*args, **kwargs)
        roots.append(handle)
        return handle, label

    def children(handle):
        host = real_children(handle)
        hosts.append(host)
        return host

    monkeypatch.setattr(sources, "simulated_instance", instance)
    monkeypatch.setattr(sources, "simulated_children", children)
    monkeypatch.setattr(follow_module, "BACKOFF_FIRST", 0.02)
    out_path, err_path = tmp_path / "out", tmp_path / "err"
    marks = {}

    def cleaned(path, jobid):
        return any(r["name"] == "clean" and r["instance"] == path and r["jobid"] == jobid
                   for r in json_lines(out_path))

    def drive():
        wait_until(lambda: hosts and hierarchy_printed(out_path), "the hierarchy's history")
        root, host = roots[0], hosts[0]
        root.shutdown()
        wait_until(lambda: "reconnecting" in err_path.read_text(), "the root's loss")
        child = host.children[1]
        marks["child"] = (child_path(ROOT, child.jobid), child.handle.inject_job("success"))
        root.restart()
        marks["root"] = (ROOT, root.inject_job("success"))
        for path, jobid in marks.values():
            wait_until(lambda p=path, j=jobid: cleaned(p, j), f"job {jobid} of {path}")
        os.kill(os.getpid(), signal.SIGINT)

    status = run_driven(["jobs", "--sim", str(_JOBS), "--recursive", "--follow", "--reconnect",
                         "--format", "json", "--sim-rate", "0.001"],
                        drive, out_path, err_path, monkeypatch)
    assert status == 128 + signal.SIGINT
    err = err_path.read_text().splitlines()
    assert sum("reconnecting" in line for line in err) == 1
    assert sum("reconnected to" in line for line in err) == 1
    # every instance's events once, the root's across its reconnection
    by_path = record_keys(json_lines(out_path))
    for path, handle in paths_of(hosts[0]).items():
        assert by_path[path] == journal_keys(handle), path


def test_a_resumed_root_reached_late_still_finds_its_running_children(tmp_path, monkeypatch):
    """archive --recursive --reconnect resumed from its archive while the
    root cannot be reached: once it connects, the children already
    running (their start and memo lie before its resume position) are
    found and followed, and their new jobs archived; every event once."""
    from flux_journal.cli import follow as follow_module

    db = tmp_path / "tree.sqlite"
    proc = run_cli("archive", "--db", db, "--sim", _JOBS, "--recursive", check_rc=None)
    assert proc.returncode == 0, proc.stderr
    hosts = []
    real_children = sources.simulated_children

    def children(handle):
        host = real_children(handle)
        hosts.append(host)
        handle.shutdown()  # down when the command first connects
        return host

    monkeypatch.setattr(sources, "simulated_children", children)
    monkeypatch.setattr(follow_module, "BACKOFF_FIRST", 0.02)
    monkeypatch.setenv("FLUX_F58_FORCE_ASCII", "1")
    out_path, err_path = tmp_path / "out", tmp_path / "err"
    added = {}

    def drive():
        wait_until(lambda: hosts and "cannot reach" in err_path.read_text(),
                   "the first connection's failure")
        host = hosts[0]
        for path, handle in paths_of(host).items():
            if path != ROOT:
                added["sim" + path] = handle.inject_job("success")
        host.root.restart()
        wait_until(lambda: all(any(name == "clean" and jobid == added[instance]
                                   for jobid, name, _ in archived(db)[0][instance])
                               for instance in added), "the children's new jobs archived")
        os.kill(os.getpid(), signal.SIGINT)

    status = run_driven(["archive", "--db", str(db), "--sim", str(_JOBS), "--recursive",
                         "--follow", "--reconnect", "--sim-rate", "0.001"],
                        drive, out_path, err_path, monkeypatch)
    assert status == 128 + signal.SIGINT, err_path.read_text()
    events, _, _ = archived(db)
    truth = {("sim" if path == ROOT else "sim" + path): journal_keys(handle)
             for path, handle in paths_of(hosts[0]).items()}
    assert events == truth


def test_archive_recursive_on_postgresql(pg_cluster):
    """The same on PostgreSQL: every instance's rows under its name, a
    position each, committed on one connection; a second run adds
    nothing."""
    import pytest

    pytest.importorskip("psycopg", reason="needs psycopg (flux-journal[postgres])")
    db = pg_cluster.new_database()
    url = pg_cluster.url(db)
    for _ in range(2):
        proc = run_cli("archive", "--db", url, "--sim", _JOBS, "--recursive", check_rc=None)
        assert proc.returncode == 0, proc.stderr
    _, host = hierarchy()
    expected = {("sim" if path == ROOT else "sim" + path): journal_keys(handle)
                for path, handle in paths_of(host).items()}
    events = collections.defaultdict(collections.Counter)
    for instance, jobid, name, timestamp in pg_cluster.sql(
            "SELECT instance, jobid, name, timestamp FROM events", db):
        events[instance][(jobid, name, timestamp)] += 1
    assert events == expected
    positions = {name for (name,) in pg_cluster.sql("SELECT instance FROM resume", db)}
    assert positions == set(expected)
