"""A1: ``flux-journal archive`` against the floor of each database.

Stores a generated job history (``bench_streams.jobs``: 100,000 jobs,
about 1M events, by default) into SQLite and into PostgreSQL, and beside
it, in the same run, the *floor*: the very same ``events`` rows written
by a bare ``executemany`` (SQLite) or ``COPY`` (PostgreSQL) into the
archive's own ``events`` table (same schema and indexes), committed in
the archive's batches (``--batch-size``'s default for the database), with
no reading or parsing.

Beside them, ``+jobs``: the floor's rows in the order the archive gets
them (job by job, as the job manager sends its history) and, as the
archive must also write them, each job's ``jobs`` row once (its final
record, taken from an archive made beforehand, inserted as the archive
inserts a new job's row), bare, in the same
batches: what the archive writes, in its order, with nothing read, parsed
or modelled; written as the archive writes a first history (on SQLite
without the indexes of ``schema.DEFERRED_INDEXES``, made at the end,
within the time).  ``+jobs-t``: the same rows in time order, as the
floor's: what the order of a history costs the database.

And ``read``: the command's reading alone (the consumer, with
the cursor window an archive needs, and the ``Reader``), into a sink that
keeps nothing: the part of the archive's time and memory that is not
storing.  The archive run is the command's own path: ``Archive``, ``ArchiveSink``
and the ``Reader`` over a consumer of a simulated handle (the stream,
the handle and the archive's tables are made before the clock starts,
as the floor's tables are), with the database written by its writer
process (:mod:`flux_journal.store.writer`), whose peak RSS is added to
the run's; ``archive-1p``: the same, written from the archive's own
process (``Archive(writer_process=False)``).  Each run is a child process of its
own, so that its peak RSS (VmHWM, reset once the stream is in memory) is
its own; the run is repeated at a quarter of the history's size to show
whether memory grows with it.  PostgreSQL is a throwaway server
(tests/pg_cluster.py) on a unix socket, ``fsync=off``, each run into a
database of its own, made after a ``CHECKPOINT`` and dropped after the
run (left in place, the databases of earlier runs had the server
vacuuming them during the next: the same run took 11 to 20 s); SQLite
files are in a temporary directory, removed after each run,
``synchronous=NORMAL`` (the archive's default).  Before each run, what
the runs before it wrote is synced to disk.  Each run is taken
``--reps`` times (3), all of them in turns, and the table shows each
one's median with its range: a single floor run once took 4.4 s where
its neighbours took 2.4 to 3.1, and made a ratio look met.

Target (issue 19): the archive within 2.0x its floor on both backends,
and peak RSS flat in the history's size.  Usage::

    python bench/bench_archive.py                  # 100,000 jobs (~1M events) and 25,000
    python bench/bench_archive.py --quick          # 2,000 and 500 jobs (CI: checks it runs)
    python bench/bench_archive.py --jobs 20000 --backends sqlite
    python bench/bench_archive.py --batch-size 10000 --indexes 2   # what each change did
    python bench/bench_archive.py --keep-indexes   # a first history without deferred indexes
    python bench/bench_archive.py --backends postgres --pg-setting shared_buffers=1GB
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

# bench_streams first: importing it puts flux_journal and tests/ on sys.path.
import bench_streams  # isort: skip
from pg_cluster import Cluster, ClusterUnavailable  # tests/pg_cluster.py

from flux_journal import JournalConsumer
from flux_journal.cli import DEFAULT_REORDER_WINDOW
from flux_journal.cli.archive import Archive, _json, _rebuilt_row
from flux_journal.cli.checkpoint import Position
from flux_journal.cli.progress import Progress
from flux_journal.cli.follow import Follower, StopRequest, open_consumer
from flux_journal.cli.reader import Reader
from flux_journal.cli.sinks import ArchiveSink
from flux_journal.store import open_backend, schema
from flux_journal.store.sqlite import SQLiteBackend
from flux_journal.store.schema import JOB_COLUMNS

TARGET = 2.0
INSTANCE = "bench"


# -- in the child -----------------------------------------------------------


def _reset_peak():
    """Start a new peak RSS measurement (Linux: clear_refs 5); False if
    the kernel does not allow it (the peak is then the process's)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as out:
            out.write("5")
        return True
    except OSError:
        return False


def _rss(field, pid="self"):
    """VmRSS or VmHWM of process *pid* in bytes (this one's ru_maxrss if
    absent)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _event_rows(stream, ordered=True):
    """The events rows the archive writes for *stream* (what the floor
    writes), in time order or (not *ordered*) as the archive gets them,
    built by reading it (not timed)."""
    rows, seqs = [], {}
    consumer = JournalConsumer(stream.handle(), full=True, ordered=ordered).start()
    ended = False
    while not ended:
        batch = consumer.poll_batch(1000)
        for event in batch:
            if event is None:  # the end of the stream
                ended = True
                break
            jobid = int(event.jobid)
            seq = seqs.get(jobid, 0)
            seqs[jobid] = seq + 1
            rows.append((INSTANCE, jobid, seq, event.timestamp, event.name, _json(event.context)))
    return rows


def _floor(url, rows, job_rows=(), batch_size=None):
    """Write *rows* bare, in the archive's batches (*batch_size* events,
    or the database's default), and *job_rows* spread over the same
    batches; return the event count and the seconds."""
    backend = open_backend(url)
    backend.open_schema(INSTANCE, _rebuilt_row)
    size = batch_size or backend.batch_size  # the archive's commits
    batches = max(1, -(-len(rows) // size))
    per_batch = -(-len(job_rows) // batches)
    defer = bool(job_rows) and backend.defers_indexes  # as the archive's first history
    _reset_peak()
    start = time.perf_counter()
    for batch in range(batches):
        backend.begin()
        if defer and batch == 0:
            backend.defer_indexes()
        backend.insert_events(rows[batch * size:(batch + 1) * size])  # executemany / COPY
        if job_rows:
            backend.insert_jobs(job_rows[batch * per_batch:(batch + 1) * per_batch])
        if defer and batch == batches - 1:
            backend.build_indexes()
        backend.commit()
    seconds = time.perf_counter() - start
    backend.close()
    return len(rows), seconds


def _job_rows(stream):
    """Each job's final ``jobs`` row, as the archive leaves it (from an
    archive of *stream* made in a scratch file; not timed)."""
    with tempfile.TemporaryDirectory() as scratch:
        url = os.path.join(scratch, "jobs.sqlite")
        _archive(url, stream)
        backend = open_backend(url)
        backend.cursor.execute(f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs ORDER BY rowid")
        job_rows = backend.cursor.fetchall()
        backend.close()
    return job_rows


class _Discard:
    """A sink that keeps nothing but, like the archive, needs positions
    (so the consumer keeps its cursor window): reading alone."""

    records_position = True
    unordered_history = True
    written = 0

    def start(self, position):
        """Nothing to note."""

    def timeout(self):
        """Block briefly, as the archive's sink does."""
        return 0.2

    def write(self, events, history=False):
        """Count and drop (none was written before)."""
        del history
        self.written += len(events)
        return 0

    def new_stream(self):
        """Nothing to skip."""

    def history_written(self):
        """Nothing to index."""

    def flushed(self, position):
        """Nothing to commit."""

    def close(self, position):
        """Nothing to commit."""


def _read(url, stream):
    """Read *stream* as ``flux-journal archive`` does, storing nothing."""
    del url
    return _run_reader(stream.handle(), _Discard())


def _run_reader(handle, sink, position=None):
    """The command's reading path from *handle* into *sink*; returns the
    position it reached."""
    position = Position() if position is None else position
    since = position.cursor if position.cursor is not None else 0.0
    consumer = open_consumer("jobs", handle, since=since, cursor_window=DEFAULT_REORDER_WINDOW,
                             include_sentinel=True, ordered=not sink.unordered_history)
    stop = StopRequest()
    follower = Follower(consumer, label="bench", service="job-manager.events-journal",
                        stop=stop.event)
    sink.start(position)
    reader = Reader(follower, sink, position, stop=stop, follow=False, filters=[],
                    drop_history=False, progress=Progress(enabled=False, shares_terminal=False))
    reader.run()
    sink.close(reader.position)
    return sink.written


def _archive(url, stream, batch_size=None, writer_process=True):
    """Archive *stream* as ``flux-journal archive`` does (``--batch-size``
    *batch_size*; without its writer process unless *writer_process*);
    return the events archived and the seconds it took."""
    handle = stream.handle()
    # its tables made, as the floor's are
    archive = Archive(url, "jobs", INSTANCE, writer_process=writer_process)
    _reset_peak()
    start = time.perf_counter()
    _run_reader(handle, ArchiveSink(archive, batch_size, 1.0), archive.position.copy())
    # The writer's own peak (ru_maxrss would count this process's RSS,
    # which the writer had between its fork and its exec).
    writer_peak = _rss("VmHWM", archive.backend.pid) if writer_process else 0
    archive.close()
    seconds = time.perf_counter() - start
    return archive.committed, seconds, writer_peak


def child(mode, url, njobs, batch_size=None, one_process=False):
    """One measurement (*one_process*: archive without the writer
    process); prints its result as a JSON line."""
    stream = bench_streams.jobs(njobs)
    bare = ("floor", "+jobs", "+jobs-t")
    rows = _event_rows(stream, ordered=mode != "+jobs") if mode in bare else None
    job_rows = _job_rows(stream) if mode in ("+jobs", "+jobs-t") else ()
    if mode == "+jobs-t":
        job_rows.sort(key=lambda row: row[1])  # jobids (FLUIDs) go by submit time
    baseline = _rss("VmRSS")
    if mode in bare:
        events, seconds = _floor(url, rows, job_rows, batch_size)
    elif mode == "read":
        _reset_peak()
        start = time.perf_counter()
        events = _read(url, stream)
        seconds = time.perf_counter() - start
    else:
        events, seconds, writer_peak = _archive(
            url, stream, batch_size, writer_process=mode == "archive" and not one_process)
    # with the whole of the writer's peak, all of it growth
    peak = _rss("VmHWM") + (writer_peak if mode.startswith("archive") else 0)
    print(json.dumps({"events": events, "seconds": seconds, "peak": peak,
                      "baseline": baseline}))


# -- in the parent ----------------------------------------------------------


def _empty(directory):
    """Remove the files in *directory*."""
    for name in os.listdir(directory):
        os.unlink(os.path.join(directory, name))


def measure(mode, url, njobs, options=()):
    """Run one child (with the command line's *options*); its result dict.

    What earlier runs wrote is on disk first: their files' writeback
    would otherwise run during this one (an SQLite run leaves some
    250 MB of dirty pages)."""
    os.sync()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", mode, url, str(njobs), *options],
        capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"bench_archive: {mode} {url} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.splitlines()[-1])


#: The runs of each backend and size, in the order they are taken.
MODES = ("read", "floor", "+jobs", "+jobs-t", "archive-1p", "archive")


def _measure_on(backend, mode, size, options, cluster, work):
    """One run of *mode* on a fresh SQLite file in *work* or a fresh
    PostgreSQL database of *cluster*, cleaned up after."""
    if mode == "read":
        return measure("read", "-", size, options)
    if backend == "sqlite":
        result = measure(mode, os.path.join(work, f"{mode}-{size}.sqlite"), size, options)
        _empty(work)  # the file, its -wal and -shm
        return result
    # a new database, the server's dirty pages written first and the
    # database dropped after: no run pays for an earlier one's
    # checkpoint or autovacuum
    name = cluster.new_database()
    cluster.sql("CHECKPOINT")
    result = measure(mode, cluster.url(name), size, options)
    cluster.sql(f'DROP DATABASE "{name}"')
    return result


def _median(runs):
    """The run of median seconds among *runs* (the lower middle one of an
    even number)."""
    return sorted(runs, key=lambda run: run["seconds"])[(len(runs) - 1) // 2]


def _setting(text):
    """``--pg-setting``'s NAME=VALUE as a (name, value) pair."""
    name, equals, value = text.partition("=")
    if not (equals and name.strip() and value.strip()):
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name.strip(), value.strip()


def main(argv=None):
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--jobs", type=int, default=100000, help="jobs in the history")
    parser.add_argument("--quick", action="store_true", help="2,000 jobs (CI)")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--batch-size", type=int, metavar="N",
                        help="events per commit (default: the database's, as the archive's)")
    parser.add_argument("--reps", type=int,
                        help="runs of each, taken in turns; the table shows the median "
                             "(default 3; 1 with --quick)")
    parser.add_argument("--indexes", choices=("2", str(schema.SCHEMA_VERSION)),
                        default=str(schema.SCHEMA_VERSION),
                        help="the jobs table's indexes of schema version 2 or this one "
                             "(default)")
    parser.add_argument("--keep-indexes", action="store_true",
                        help="write a first history with every index in place (SQLite "
                             "defers them)")
    parser.add_argument("--pg-setting", action="append", default=[], metavar="NAME=VALUE",
                        type=_setting,
                        help="a postgresql.conf setting for the throwaway server "
                             "(repeatable; e.g. shared_buffers=1GB)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    options = []
    if args.batch_size:
        options += ["--batch-size", str(args.batch_size)]
    if args.indexes == "2":
        options += ["--indexes", "2"]
        schema.INDEXES = schema.V2_INDEXES + tuple(i for i in schema.INDEXES if i[1] != "jobs")
        schema.DEFERRED_INDEXES = schema.deferred_indexes(schema.INDEXES)
    if args.keep_indexes:
        options += ["--keep-indexes"]
        SQLiteBackend.defers_indexes = False
    # Those options change this process's modules, which the writer
    # process does not see: the archive then writes from this process.
    one_process = args.indexes == "2" or args.keep_indexes
    if args.child:
        mode, url, njobs = args.child
        return child(mode, url, int(njobs), args.batch_size, one_process)
    njobs = 2000 if args.quick else args.jobs
    args.reps = args.reps or (1 if args.quick else 3)
    sizes = (njobs, max(1, njobs // 4))
    backends = args.backends.split(",")
    commits = f"{args.batch_size}-event" if args.batch_size else "the database's default"
    kept = ", kept during a first history" if args.keep_indexes else ""
    alone = "; archive written from its own process (the options patch it)" if one_process else ""
    server = "".join(f"; PostgreSQL {name}={value}" for name, value in args.pg_setting)
    print(f"A1: archive vs floor, {njobs} jobs (and {sizes[1]} for memory); schema version "
          f"{args.indexes}'s indexes{kept}, {commits} commits{alone}{server}; "
          f"{bench_streams.environment_note()}")
    cluster = None
    work = tempfile.mkdtemp(prefix="fj-bench-archive-")
    try:
        if "postgres" in backends:
            try:
                cluster = Cluster(args.pg_setting)
            except ClusterUnavailable as exc:
                print(f"postgres: skipped ({exc})")
                backends.remove("postgres")
        header = (f"{'backend':<9} {'run':<10} {'jobs':>7} {'events':>9} {'seconds':>8} "
                  f"{'(min-max)':<13} {'events/s':>9} {'x floor':>7} {'peak RSS':>9} "
                  f"{'growth':>8}")
        print(header)
        print("-" * len(header))
        verdicts = []
        reads = {}  # reading alone, the same for every backend
        for backend in backends:
            for size in sizes:
                runs = {mode: [] for mode in MODES}
                if size in reads:
                    runs["read"] = reads[size]
                # round-robin: a slow spell of the machine falls on every run alike
                for _ in range(args.reps):
                    for mode in MODES:
                        if mode == "read" and size in reads:
                            continue
                        runs[mode].append(_measure_on(backend, mode, size, options, cluster, work))
                reads[size] = runs["read"]
                results = {mode: _median(runs[mode]) for mode in MODES}
                floor = results["floor"]
                for mode in ("floor", "+jobs", "+jobs-t", "read", "archive-1p", "archive"):
                    r = results[mode]
                    ratio = r["seconds"] / floor["seconds"]
                    spread = sorted(run["seconds"] for run in runs[mode])
                    print(f"{backend:<9} {mode:<10} {size:>7} {r['events']:>9} "
                          f"{r['seconds']:>8.2f} {spread[0]:>6.2f}-{spread[-1]:<6.2f} "
                          f"{r['events'] / r['seconds']:>9.0f} "
                          f"{ratio:>6.2f}x {r['peak'] / 2**20:>6.0f} MB "
                          f"{(r['peak'] - r['baseline']) / 2**20:>5.0f} MB")
                    if mode == "archive":
                        if r["events"] != floor["events"]:
                            raise SystemExit(f"{backend}: archived {r['events']} events, "
                                             f"floor wrote {floor['events']}")
                        verdicts.append((backend, size, ratio, r["peak"] - r["baseline"],
                                         r["seconds"] / results["+jobs"]["seconds"]))
        print(f"target: archive <= {TARGET}x floor; peak RSS growth (over the process's "
              "RSS with the stream in memory) flat in the history's size")
        for backend in backends:
            mine = [v for v in verdicts if v[0] == backend]
            big, small = mine[0], mine[1]
            print(f"  {backend}: {big[2]:.2f}x floor at {big[1]} jobs "
                  f"({'met' if big[2] <= TARGET else 'NOT met'}; {big[4]:.2f}x +jobs); growth "
                  f"{big[3] / 2**20:.0f} MB at {big[1]} jobs, {small[3] / 2**20:.0f} MB at "
                  f"{small[1]}")
    finally:
        if cluster is not None:
            cluster.stop()
        _empty(work)
        os.rmdir(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
