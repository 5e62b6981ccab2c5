"""Archives in the layout ``flux-journal history`` reads (schema v2: one
``jobs`` row per job with job-list's record, one ``events`` row per event,
both labelled with an ``instance``), written straight from ``flux jobs
--json`` records, and the fixtures captured for them
(tests/fixtures/history, see capture.sh there)."""

import json
import os
import sqlite3

HISTORY_FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "history")

SCHEMA = """
CREATE TABLE jobs (
    instance TEXT NOT NULL, jobid INTEGER, userid INTEGER, username TEXT,
    urgency INTEGER, priority INTEGER, state TEXT, result TEXT,
    t_submit REAL, t_depend REAL, t_priority REAL, t_sched REAL, t_run REAL,
    t_cleanup REAL, t_inactive REAL, name TEXT, cwd TEXT, queue TEXT,
    project TEXT, bank TEXT, ntasks INTEGER, ncores INTEGER, nnodes INTEGER,
    nodelist TEXT, ranks TEXT, duration REAL, expiration REAL,
    waitstatus INTEGER, returncode INTEGER, exception_type TEXT,
    exception_severity INTEGER, exception_note TEXT, nevents INTEGER,
    record TEXT, jobspec TEXT, R TEXT,
    PRIMARY KEY (instance, jobid)
);
CREATE TABLE events (
    instance TEXT NOT NULL, jobid INTEGER, seq INTEGER, timestamp REAL,
    name TEXT, context TEXT
);
"""

_COLUMNS = (
    "userid username urgency priority state result t_submit t_depend t_priority "
    "t_sched t_run t_cleanup t_inactive name cwd queue project bank ntasks ncores "
    "nnodes nodelist ranks duration expiration waitstatus returncode"
).split()


def stored_record(record):
    """*record* as the archive keeps it: without the values flux jobs
    computed at the time it printed (runtime, t_remaining)."""
    return {k: v for k, v in record.items() if k not in ("runtime", "t_remaining")}


def load_jobs(name="jobs.json"):
    """The records of a captured ``flux jobs -a -A --json``."""
    with open(os.path.join(HISTORY_FIXTURES, name), encoding="utf-8") as stream:
        return json.load(stream)["jobs"]


def captured_outputs():
    """[(format, flux jobs' output lines)] captured beside jobs.json."""
    outputs = os.path.join(HISTORY_FIXTURES, "outputs")
    pairs = []
    for n in range(len(os.listdir(outputs)) // 2):
        with open(os.path.join(outputs, f"{n}.format"), encoding="utf-8") as stream:
            fmt = stream.read()
        with open(os.path.join(outputs, f"{n}.out"), encoding="utf-8") as stream:
            pairs.append((fmt, stream.read().splitlines()))
    return pairs


def write_archive(path, jobs=(), events=(), instance="test"):
    """Create (or add to) an archive at *path*: *jobs* are flux jobs --json
    records, *events* (jobid, seq, timestamp, name, context dict) tuples,
    all of *instance*."""
    db = sqlite3.connect(path)
    exists = db.execute("SELECT 1 FROM sqlite_master WHERE name='jobs'").fetchone()
    if not exists:
        db.executescript(SCHEMA)
    for record in jobs:
        exception = record.get("exception") or {}
        values = [record.get(column) for column in _COLUMNS]
        values = [None if value == "" else value for value in values]
        db.execute(
            "INSERT INTO jobs (instance, jobid, %s, exception_type, exception_severity,"
            " exception_note, nevents, record) VALUES (?, ?, %s, ?, ?, ?, ?, ?)"
            % (", ".join(_COLUMNS), ", ".join("?" * len(_COLUMNS))),
            [instance, record["id"], *values, exception.get("type"),
             exception.get("severity"), exception.get("note"), 0,
             json.dumps(stored_record(record))],
        )
    for jobid, seq, timestamp, name, context in events:
        db.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)",
            (instance, jobid, seq, timestamp, name, json.dumps(context)),
        )
    db.commit()
    db.close()
