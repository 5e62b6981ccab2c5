"""Archives as ``flux-journal history`` reads them (the archive's schema:
one ``jobs`` row per job with job-list's record, one ``events`` row per
event, both labelled with an ``instance``), written straight from ``flux
jobs --json`` records, and the fixtures captured for them
(tests/fixtures/history, see capture.sh there)."""

import json
import os
import sqlite3

from flux_journal import store

HISTORY_FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "history")


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
    """Create (or add to) an archive at *path*, with the archive's own
    schema (flux_journal.store): *jobs* are flux jobs --json records,
    *events* (jobid, seq, timestamp, name, context dict) tuples, all of
    *instance*."""
    backend = store.open_backend(str(path))
    try:
        backend.open_schema(instance, None)
    finally:
        backend.close()
    db = sqlite3.connect(path)
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
            "INSERT INTO events (instance, jobid, seq, timestamp, name, context)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (instance, jobid, seq, timestamp, name, json.dumps(context)),
        )
    db.commit()
    db.close()
