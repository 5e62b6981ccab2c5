"""``flux-journal history`` end to end: the real command in a subprocess
on small SQLite archives in the layout of the archive's jobs/events
tables, holding job records captured from a real broker."""

import hashlib
import json
import os
import sqlite3
import subprocess
import sys

import pytest

from history_helpers import captured_outputs, load_jobs, write_archive
from journal_helpers import archive as archive_command
from flux_journal.job import JobID

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOBS = load_jobs()
FORMATS = dict(captured_outputs())


def history(*args, check_rc=0):
    """Run ``flux-journal history``; return (stdout, stderr) text."""
    env = dict(os.environ, TZ="UTC", LC_ALL="C.UTF-8", PYTHONPATH=REPO)
    env.pop("FLUX_F58_FORCE_ASCII", None)
    proc = subprocess.run(
        [sys.executable, "-m", "flux_journal", "history", *map(str, args)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == check_rc, proc.stderr
    return proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """The captured jobs of instance "cluster", with a few events."""
    path = str(tmp_path_factory.mktemp("history") / "archive.sqlite")
    first = JOBS[-1]["id"]
    write_archive(path, JOBS, instance="cluster", events=[
        (first, 0, 1796400000.25, "submit", {"userid": 0, "urgency": 16}),
        (first, 1, 1796400001.5, "clean", {}),
        (JOBS[-2]["id"], 0, 1796400001.0, "submit", {"userid": 0, "urgency": 16}),
    ])
    return path


def test_default_table_is_flux_jobs_a(archive):
    out, err = history("--db", archive, "-u", "all")
    assert out.splitlines() == FORMATS["default"] and err == ""


@pytest.mark.parametrize("name", ["long", "deps", "endreason"])
def test_named_formats(archive, name):
    out, _ = history("--db", archive, "-A", "-o", name)
    assert out.splitlines() == FORMATS[name]


def test_format_string_and_no_header(archive):
    fmt = "{id.f58:>12} {userid:>4} {username} {urgency:<3} {priority:>3} {state:<8} {state_single} {result:>9} {result_abbrev:2} {status} {status_abbrev}"  # noqa: E501
    out, _ = history("--db", archive, "-A", "-o", fmt)
    assert out.splitlines() == FORMATS[fmt]
    out, _ = history("--db", archive, "-A", "-n", "-o", fmt)
    assert out.splitlines() == FORMATS[fmt][1:]


def test_json_is_flux_jobs_json_plus_instance(archive):
    out, _ = history("--db", archive, "-A", "--json")
    records = [json.loads(line) for line in out.splitlines()]
    # runtime recomputed from the record's timestamps, as job-list's
    # users compute it; every captured job has ended or never ran
    assert records == [dict(job, instance="cluster") for job in JOBS]


def test_default_user_is_the_invoking_user(tmp_path):
    path = str(tmp_path / "a.sqlite")
    mine = dict(JOBS[-1], userid=os.getuid(), username="me")
    theirs = dict(JOBS[-2], userid=os.getuid() + 1, username="them")
    write_archive(path, [mine, theirs])
    out, _ = history("--db", path, "--json")
    assert [json.loads(line)["id"] for line in out.splitlines()] == [mine["id"]]
    out, _ = history("--db", path, "--json", "-u", str(os.getuid() + 1))
    assert [json.loads(line)["id"] for line in out.splitlines()] == [theirs["id"]]
    out, _ = history("--db", path, "--json", "-u", "them")
    assert [json.loads(line)["id"] for line in out.splitlines()] == [theirs["id"]]
    # a job asked for by id is listed whoever submitted it
    out, _ = history("--db", path, "--json", JobID(theirs["id"]).dothex)
    assert [json.loads(line)["id"] for line in out.splitlines()] == [theirs["id"]]


def test_filters_on_the_command_line(archive):
    def listed(*args):
        out, _ = history("--db", archive, "-A", "-n", "-o", "{id.dec}", *args)
        return [int(line) for line in out.splitlines()]

    assert listed("-f", "failed") == [j["id"] for j in JOBS if j.get("result") == "FAILED"]
    assert listed("-f", "PENDING", "-f", "timeout") == [
        j["id"] for j in JOBS if j["state"] != "INACTIVE" or j.get("result") == "TIMEOUT"]
    assert listed("--queue", "debug", "--name", "sh") == [
        j["id"] for j in JOBS if j["queue"] == "debug" and j["name"] == "sh"]
    assert listed("--instance", "cluster") == [j["id"] for j in JOBS]
    assert listed("--instance", "elsewhere") == []
    last_end = max(j.get("t_inactive", 0) for j in JOBS)
    assert listed(f"--since={last_end}", "-f", "inactive") == []
    assert listed(f"--since={last_end - 1e-3}", "-f", "inactive") == [
        j["id"] for j in JOBS if j.get("t_inactive") == last_end]
    assert listed("--since=-36500d", "--until=+1h") == [j["id"] for j in JOBS]
    # a time before now needs no "=" (argparse would take -6h for an option)
    assert listed("--since", "-36500d", "--until", "-1.5h") == [j["id"] for j in JOBS]
    assert listed("--since", "-1h", "-f", "inactive") == []
    assert listed("--until=2000-01-01") == []
    assert listed("--since=2000-01-01T00:00:00Z", "--until=now") == [j["id"] for j in JOBS]
    jobid = JobID(JOBS[4]["id"])
    assert listed(jobid.f58, jobid.hex) == [JOBS[4]["id"]]
    by_submit = [j["id"] for j in sorted(JOBS, key=lambda j: -j["t_submit"])]
    assert listed("--sort=-t_submit") == by_submit
    assert listed("--sort=-t_submit", "-c", "3") == [
        j["id"] for j in sorted(JOBS[:3], key=lambda j: -j["t_submit"])]


def test_count_truncates_with_a_warning(archive):
    out, err = history("--db", archive, "-A", "-c", "3")
    assert out.splitlines() == FORMATS["default"][:4]
    assert "truncated at 3 jobs" in err
    out, err = history("--db", archive, "-A", "-c", "0")
    assert out.splitlines() == FORMATS["default"] and err == ""
    out, err = history("--db", archive, "-A", "--json", "-c", "2")
    assert [json.loads(line)["id"] for line in out.splitlines()] == [j["id"] for j in JOBS[:2]]
    assert "truncated at 2 jobs" in err


def test_names_utf8_cannot_carry(tmp_path):
    # a lone surrogate (valid in JSON text, not in UTF-8) is escaped, not fatal
    path = str(tmp_path / "a.sqlite")
    write_archive(path, [JOBS[-1]])
    db = sqlite3.connect(path)
    # the record is JSON text, where the surrogate is an ASCII escape
    db.execute("UPDATE jobs SET record = ?", (json.dumps(dict(JOBS[-1], name="bad\udc80name")),))
    db.commit()
    db.close()
    out, _ = history("--db", path, "-A", "--json")
    assert json.loads(out)["name"] == "bad\udc80name"


def test_events(archive):
    out, _ = history("--db", archive, "-A", "--events", "--instance", "cluster")
    first, second = JobID(JOBS[-1]["id"]).f58, JobID(JOBS[-2]["id"]).f58
    assert out.splitlines() == [
        f"1796400000.250000 {first} submit userid=0 urgency=16",
        f"1796400001.000000 {second} submit userid=0 urgency=16",
        f"1796400001.500000 {first} clean",
    ]
    # several instances (all, here): each line says which
    out, _ = history("--db", archive, "-A", "--events", JOBS[-2]["id"])
    assert out.splitlines() == [f"cluster 1796400001.000000 {second} submit userid=0 urgency=16"]
    out, _ = history("--db", archive, "-A", "--events", "--json", JOBS[-1]["id"])
    assert [json.loads(line) for line in out.splitlines()] == [
        {"instance": "cluster", "jobid": JOBS[-1]["id"], "timestamp": 1796400000.25,
         "name": "submit", "context": {"userid": 0, "urgency": 16}},
        {"instance": "cluster", "jobid": JOBS[-1]["id"], "timestamp": 1796400001.5,
         "name": "clean", "context": {}},
    ]


def test_archive_is_not_modified(archive):
    before = hashlib.sha256(open(archive, "rb").read()).hexdigest()
    history("--db", archive, "-A")
    history("--db", archive, "-A", "--events")
    assert hashlib.sha256(open(archive, "rb").read()).hexdigest() == before


def test_errors_are_one_line(tmp_path, archive):
    def error(*args, rc=1):
        _, err = history(*args, check_rc=rc)
        assert len(err.splitlines()) == 1 if rc == 1 else err
        return err

    assert "no such archive" in error("--db", tmp_path / "missing.sqlite")
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a database at all" * 100)
    assert "junk" in error("--db", junk)
    old = tmp_path / "old.sqlite"
    db = sqlite3.connect(old)
    db.executescript("CREATE TABLE jobs (jobid INTEGER PRIMARY KEY, userid INTEGER);"
                     "CREATE TABLE events (id INTEGER, jobid INTEGER);")
    db.close()
    assert "not a flux-journal archive" in error("--db", old)
    assert "No such file or directory" in error(
        "--db", f"postgresql://user@/flux?host={tmp_path}/nowhere")
    assert "Unknown format field: nope" in error("--db", archive, "-o", "{nope}")
    assert "invalid format" in error("--db", archive, "-A", "-o", "{name:d}")
    assert "Invalid sort key: nope" in error("--db", archive, "--sort", "name,nope")
    assert "invalid filter 'done'" in error("--db", archive, "-f", "done", rc=2)
    assert "not a time" in error("--db", archive, "--since", "yesterday", rc=2)
    assert "not a valid Flux job id" in error("--db", archive, "notajob", rc=2)


# ----------------------------------------------------------------------
# The same archive on both backends


@pytest.fixture(scope="module")
def twin_archives(tmp_path_factory, pg_cluster):
    """One simulated instance archived into SQLite and into PostgreSQL,
    under the same instance name: (sqlite path, postgresql url)."""
    sqlite_path = tmp_path_factory.mktemp("twins") / "twin.sqlite"
    postgres_url = pg_cluster.url(pg_cluster.new_database("twin"))
    for db in (sqlite_path, postgres_url):
        archive_command("--db", db, "--sim", "400", "--seed", "4", "--instance", "site")
    return sqlite_path, postgres_url


# Listings whose output does not depend on when they run (a running job's
# runtime does), so that the two backends' answers compare byte for byte.
TWIN_QUERIES = [
    ("-u", "all", "-f", "inactive"),
    ("-A", "-f", "inactive", "--json", "-c", "0"),
    ("-A", "-o", "{id.f58} {state} {result} {name} {ntasks} {t_submit}", "-c", "0"),
    ("-A", "-f", "failed,canceled,timeout", "-o", "long"),
    ("-A", "-f", "pending,running", "-o", "{id} {state} {priority} {queue}"),
    ("-A", "--since", "1795800000", "--until", "1795900000", "-o", "{id} {t_inactive}"),
    # the middle of the simulated submits: read up to until + the longest job
    ("-A", "--until", "1795812840.48", "-c", "40", "-o", "{id} {t_submit} {t_inactive}"),
    ("-A", "--name", "sleep", "--instance", "site", "-o", "{id.dec} {name}"),
    ("-A", "-c", "30", "-o", "{id} {state} {result}"),
    ("-A", "-f", "run,failed", "-c", "25", "-o", "{id} {state} {result}"),
    ("-A", "-c", "5", "--events", "--json"),
    ("-A", "-c", "3", "--events"),
]


@pytest.mark.parametrize("query", TWIN_QUERIES, ids=[" ".join(q) for q in TWIN_QUERIES])
def test_sqlite_and_postgresql_answer_alike(twin_archives, query):
    sqlite_path, postgres_url = twin_archives
    from_sqlite, _ = history("--db", sqlite_path, *query)
    from_postgres, _ = history("--db", postgres_url, *query)
    assert from_sqlite.strip(), "the query selects something"
    assert from_postgres == from_sqlite


# ----------------------------------------------------------------------
# --recursive: an instance and the instances archived under it


@pytest.fixture(scope="module")
def twin_trees(tmp_path_factory, pg_cluster):
    """Simulated hierarchies archived with ``archive --recursive`` into
    SQLite and into PostgreSQL: "tree" (children and grandchildren), and
    "Tree" and "tree2", whose names a case-blind or plain prefix match
    would take for part of "tree"; (sqlite path, postgresql url)."""
    sqlite_path = tmp_path_factory.mktemp("trees") / "trees.sqlite"
    postgres_url = pg_cluster.url(pg_cluster.new_database("trees"))
    for db in (sqlite_path, postgres_url):
        for name, recursive in (("tree", True), ("Tree", True), ("tree2", False)):
            proc = archive_command("--db", db, "--sim", "20", "--seed", "4", "--instance", name,
                                   *(["--recursive"] if recursive else []), check_rc=None)
            assert proc.returncode == 0, proc.stderr
    return sqlite_path, postgres_url


def test_recursive_lists_an_instance_and_those_nested_under_it(twin_trees):
    sqlite_path, postgres_url = twin_trees
    db = sqlite3.connect(sqlite_path)
    jobs = {}
    for instance, jobid in db.execute("SELECT instance, jobid FROM jobs"):
        jobs.setdefault(instance, set()).add(JobID(jobid).f58)
    db.close()
    child = min(name for name in jobs if name.count("/") == 2).rsplit("/", 1)[0]
    assert {"tree", "Tree", "tree2", child, "Tree" + child[4:]} <= set(jobs)
    listing = ("-A", "-c", "0", "-n", "-o", "{instance} {id.f58}")
    for root in ("tree", child):
        under = {name for name in jobs if name == root or name.startswith(root + "/")}
        assert len(under) >= 2
        wanted = sorted(f"{name} {jobid}" for name in under for jobid in jobs[name])
        out, _ = history("--db", sqlite_path, "--instance", root, "-R", *listing)
        assert sorted(out.splitlines()) == wanted
        assert history("--db", postgres_url, "--instance", root, "-R", *listing)[0] == out
        # without -R, the instance named alone
        alone, _ = history("--db", sqlite_path, "--instance", root, *listing)
        assert sorted(alone.splitlines()) == sorted(f"{root} {jobid}" for jobid in jobs[root])
    # --events: each line starts with its instance, as several are listed
    out, _ = history("--db", sqlite_path, "--instance", child, "-R", "-A", "-c", "0", "--events")
    assert {line.split()[0] for line in out.splitlines()} == {
        name for name in jobs if name.startswith(child)}
    _, err = history("--db", sqlite_path, "-R", check_rc=2)
    assert "--instance" in err
