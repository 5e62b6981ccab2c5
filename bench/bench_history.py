"""H1: ``flux-journal history`` on a year of jobs, with the archive's
indexes of schema version 4 against those of version 2.

Builds an SQLite archive of a generated instance (``bench_streams.jobs``:
10,000 jobs, by the archive itself), then copies its ``jobs`` rows until
the table holds ``--jobs`` of them (default 1,000,000, a busy site's
year): each copy (of the inactive jobs) earlier in time by the base's
span, with its own job ids, all spread over 50 users.  The events stay
the base's (the newest jobs'), which are the ones a ``--count`` listing
shows.

Each query runs through the history reader (:class:`ArchiveReader`,
records decoded as ``history --json`` prints them) on two copies of that
archive:

``v2``
    version 2's indexes ((instance, t_submit), (userid, t_submit), state,
    result, name, queue) and one statement that sorts every selected job
    in flux jobs' order and keeps the first (version 2's reader);
``v4``
    this version's indexes and statements
    (:meth:`~flux_journal.history.query.JobQuery.jobs_statements`; an
    ``--until`` listing bounded by the archive's longest job, version 4).

Both give the same jobs (checked); the table shows each query's best of
``--reps`` runs in milliseconds.  Usage::

    python bench/bench_history.py               # 1,000,000 jobs (about 3 minutes to build)
    python bench/bench_history.py --quick       # 20,000 jobs (CI: checks it runs)
"""

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time

# bench_streams first: importing it puts flux_journal and tests/ on sys.path.
import bench_streams  # isort: skip
import bench_archive

from flux_journal.history.query import JobQuery
from flux_journal.history.reader import open_reader
from flux_journal.store import schema

BASE_JOBS = 10000
USERS = 50


class _Version2Query(JobQuery):
    """Version 2's listing: one statement, every selected job sorted."""

    def jobs_statements(self, placeholder="?", columns="instance, record"):
        (sql, params), = JobQuery(**{**self.__dict__, "count": None}).jobs_statements(
            placeholder, columns)
        if self.count is not None:
            sql += f" LIMIT {placeholder}"
            params = params + [self.count + 1]
        return [(sql, params)]


def build(path, njobs):
    """The version 4 archive at *path*: the base archived, its jobs copied up to
    *njobs*; returns the newest job's t_inactive."""
    stream = bench_streams.jobs(BASE_JOBS)
    bench_archive._archive(path, stream)  # pylint: disable=protected-access
    db = sqlite3.connect(path)
    span, newest, largest = db.execute(
        "SELECT max(t_submit) - min(t_submit), max(t_inactive), max(jobid) FROM jobs").fetchone()
    base, inactive = db.execute(
        "SELECT count(*), count(*) FILTER (WHERE state = 'INACTIVE') FROM jobs").fetchone()
    copies = 1 + -(-(njobs - base) // inactive)
    # job ids go by submit time, as Flux's do: the earlier a copy, the smaller
    step = 1 << largest.bit_length()  # above any of the base's ids
    db.execute(f"UPDATE jobs SET userid = 1000 + rowid % {USERS}, jobid = jobid + ?",
               (copies * step,))
    db.execute("UPDATE events SET jobid = jobid + ?", (copies * step,))
    shifted = {"jobid": "jobid - :copy * :step"}
    for column in schema.JOB_COLUMNS:
        if column.startswith("t_") or column == "expiration":
            shifted[column] = f"{column} - :copy * :span"
    select = ", ".join(shifted.get(column, column) for column in schema.JOB_COLUMNS)
    columns = ", ".join(schema.JOB_COLUMNS)
    total = base
    for copy in range(1, copies):
        # an earlier period: its jobs have all ended
        db.execute(f"INSERT INTO jobs ({columns}) SELECT {select} FROM jobs "
                   f"WHERE rowid <= {base} AND state = 'INACTIVE' LIMIT {njobs - total}",
                   {"copy": copy, "span": span, "step": step})
        total += min(inactive, njobs - total)
    db.commit()
    db.close()
    return newest


def as_version_2(source, path):
    """A copy of the archive at *source* with version 2's indexes."""
    shutil.copy(source, path)
    db = sqlite3.connect(path)
    for name, table, *_ in schema.INDEXES:
        if table == "jobs":
            db.execute(f"DROP INDEX {name}")
    for name, table, columns, _ in schema.V2_INDEXES:
        db.execute(f"CREATE INDEX {name} ON {table} ({columns})")
    db.commit()
    db.close()


def queries(newest, oldest):
    """(label, JobQuery keyword arguments) of the listings timed; *newest*
    and *oldest*: the archive's last t_inactive and first t_submit."""
    return [
        ("default: one user, -c 1000", {"userid": 1007, "count": 1000}),
        ("-u all -c 20", {"count": 20}),
        ("-u all --instance bench -c 20", {"instances": ("bench",), "count": 20}),
        ("-u all -f failed -c 20", {"results": frozenset({"FAILED"}), "count": 20}),
        ("-u all -f running -c 20", {"states": frozenset({"RUN", "CLEANUP"}), "count": 20}),
        ("-u all --name sleep -c 20", {"names": ("sleep",), "count": 20}),
        ("-u all --since -1d -c 1000", {"since": newest - 86400, "count": 1000}),
        ("-u all --until <middle> -c 20", {"until": (newest + oldest) / 2, "count": 20}),
        ("-u all JOBID", {"jobids": (None,), "count": 1000}),
        ("-u all --events -c 20", {"count": 20, "events": True}),
    ]


def run(path, query_class, kwargs, reps):
    """Best seconds of *reps* runs of one listing, and the jobs it gave."""
    events = kwargs.pop("events", False)
    query = query_class(**kwargs)
    best, listed = float("inf"), None
    for _ in range(reps):
        reader = open_reader(path)
        start = time.perf_counter()
        if events:
            listed = [row[:4] for row in reader.events(query)]
        else:
            listed = [(job["instance"], job["id"]) for job in reader.jobs(query, time.time())]
        best = min(best, time.perf_counter() - start)
        reader.close()
    return best, listed


def main(argv=None):
    """Build the archive, time the listings, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--jobs", type=int, default=1000000, help="jobs in the archive")
    parser.add_argument("--quick", action="store_true", help="20,000 jobs (CI)")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    njobs = 20000 if args.quick else args.jobs
    work = tempfile.mkdtemp(prefix="fj-bench-history-")
    try:
        v4 = os.path.join(work, "v4.sqlite")
        v2 = os.path.join(work, "v2.sqlite")
        started = time.perf_counter()
        newest = build(v4, njobs)
        as_version_2(v4, v2)
        db = sqlite3.connect(v4)
        total, oldest = db.execute("SELECT count(*), min(t_submit) FROM jobs").fetchone()
        some_job, = db.execute("SELECT jobid FROM jobs WHERE rowid = ?",
                               (total // 2,)).fetchone()
        db.close()
        print(f"H1: history listings on {total} archived jobs (built in "
              f"{time.perf_counter() - started:.0f} s); {bench_streams.environment_note()}")
        header = f"{'listing':<30} {'v2 ms':>9} {'v4 ms':>9} {'v2/v4':>7} {'jobs':>5}"
        print(header)
        print("-" * len(header))
        for label, kwargs in queries(newest, oldest):
            if kwargs.get("jobids") == (None,):
                kwargs["jobids"] = (some_job,)
            old, old_listed = run(v2, _Version2Query, dict(kwargs), args.reps)
            new, new_listed = run(v4, JobQuery, dict(kwargs), args.reps)
            if old_listed != new_listed:
                raise SystemExit(f"bench_history: {label}: the two listings differ")
            print(f"{label:<30} {old * 1000:>9.1f} {new * 1000:>9.1f} {old / new:>6.0f}x "
                  f"{len(new_listed):>5}")
    finally:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
