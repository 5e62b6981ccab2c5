"""Journal readers on a real Flux broker, side by side (issue 13's table).

    python bench/broker.py                 # live 300 jobs, history 2,000 jobs (~5 min)
    python bench/broker.py --quick         # live 100 jobs, history 500 jobs (~2 min)
    python bench/broker.py --jobs 1000     # the issue's live size (~15 min on a busy machine)
    python bench/broker.py --readers floor,poll   # only readers whose name holds one of these
    python bench/broker.py --variant main=/work/main   # also time another checkout
    python bench/broker.py --flux-prefix /opt/flux --json out.json

It starts its own one-broker instance (``flux start -s1``, the job-ingest
validator off and test execution, so that jobs come fast) and runs every
reader in a child process of its own, on the same workload:

- ``floor``: libflux in C alone, flux_rpc_get() + flux_future_reset() per
  response (bench/floor.c, built here against the local flux-core when its
  headers are found through pkg-config; the row says why when not)
- ``pyfloor``: the Python floor, the least any Python reader can pay:
  flux_future_wait_for() (no time limit, as the other readers wait),
  flux_rpc_get() + ffi.string() + flux_future_reset() through flux-core's
  own cffi ``lib`` (``_flux._core``) in a plain ``while`` loop
- ``pyfloor+event``: the same, plus what any reader of flux.abc events
  must add: the payload decoded (orjson) and one event object built per
  entry (flux-journal's JournalEvent, a dict subclass, made as its C
  pipeline makes it): the least a Python reader delivering events pays
- ``get_str``: Python loop of flux-core's ``get_str()`` + ``reset()``
- ``wait+get_str``: the same with ``wait_for(30)`` before each read
- ``flux-core poll`` / ``flux-core cb``: flux-core's own ``JournalConsumer``
  from the installed bindings (flux-journal is not even imported there)
- ``flux-journal poll`` / ``flux-journal cb``: this checkout's, and one row
  pair per ``--variant LABEL=PATH`` (PATH's flux_journal shadows the
  installed one in that child)
- ``flux-journal drain``: the least Python flux-journal's C path needs
  per wakeup: a loop of its one call into C that waits, drains and pops
  (the step poll() takes), building no event
- ``flux-journal step``: that one call into C alone (wait, take, parse,
  order, pop into its C batch), with no Python Batch made: what
  flux-journal's C costs a live reader, to set beside the Python floor
- ``flux-journal step+event``: the same, plus each event built from the
  C batch in pyfloor+event's plain operations: the least any Python
  around flux-journal's C step pays to deliver events, to set beside
  ``poll`` and ``cb`` (what the consumer's own layers add)

Live: each reader follows ``full=False`` while a fresh batch of N jobs is
submitted at once (about 11 single-event responses per job), until N
"clean" events; the figure is the child's own CPU time (user + system,
from the request to the last event) per response.  History: 2,000 jobs
are run once, then every reader reads the full history to the sentinel;
wall time, time to the first event (for the raw loops and the floor, the
sentinel: nothing is ordered before it), and CPU time, medians of
``--reps``.  Ratios are against the C floor and the Python floor (live)
and the get_str loop (history); the spread (min-max) of the live figure
is printed beside its median when there is more than one run.  Skipped, with the reason, when no flux command with working
Python bindings is found.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TOPIC = "job-manager.events-journal"
RAW_READERS = ["get_str", "wait+get_str"]
CONSUMERS = ["poll", "cb"]


# ----------------------------------------------------------------------
# Readers (child processes, inside the instance)


class Tally:
    """What a reader counts, and when it stops: N "clean" events (live),
    or the sentinel (history)."""

    def __init__(self, live, jobs):
        self.live, self.jobs = live, jobs
        self.count = self.cleans = 0
        self.first = None
        self.t0 = self.c0 = 0.0

    def begin(self):
        self.t0, self.c0 = time.perf_counter(), time.process_time()

    def report(self):
        return {
            "responses": self.count,
            "cpu": time.process_time() - self.c0,
            "wall": time.perf_counter() - self.t0,
            "first": (self.first or time.perf_counter()) - self.t0,
        }


def read_raw(h, tally, with_wait):
    """get_str() (+ wait_for()) + reset() until done."""
    import flux.constants  # pylint: disable=import-outside-toplevel

    live, jobs = tally.live, tally.jobs
    tally.begin()
    f = h.rpc(TOPIC, {"full": not live}, flags=flux.constants.FLUX_RPC_STREAMING)
    print("ready", flush=True)
    count = cleans = 0
    while True:
        if with_wait:
            f.wait_for(30)
        s = f.get_str()
        count += 1
        if live:
            if '"clean"' in s:
                cleans += 1
                if cleans == jobs:
                    break
        elif s.startswith('{"id":-1,'):
            break
        f.reset()
    tally.count = count
    tally.first = time.perf_counter()  # nothing is ordered before the sentinel


def read_python_floor(h, tally, with_events):
    """The Python floor: flux-core's cffi lib called directly, wait +
    flux_rpc_get() + ffi.string() + reset, until done; *with_events*:
    each payload decoded and its events built, too."""
    import flux.constants  # pylint: disable=import-outside-toplevel
    import orjson  # pylint: disable=import-outside-toplevel
    from _flux._core import ffi, lib  # pylint: disable=import-outside-toplevel

    if with_events:
        from flux_journal.job import JournalEvent  # pylint: disable=import-outside-toplevel
    live, jobs = tally.live, tally.jobs
    tally.begin()
    f = h.rpc(TOPIC, {"full": not live}, flags=flux.constants.FLUX_RPC_STREAMING)
    print("ready", flush=True)
    future = f.pimpl.handle
    holder = ffi.new("char *[1]")
    wait_for, rpc_get, reset, string = (
        lib.flux_future_wait_for, lib.flux_rpc_get, lib.flux_future_reset, ffi.string)
    loads, new_event = orjson.loads, dict.__new__
    count = cleans = 0
    while True:
        if wait_for(future, -1.0) < 0 or rpc_get(future, holder) < 0:
            raise OSError(ffi.errno, os.strerror(ffi.errno))
        s = string(holder[0])
        count += 1
        if with_events:
            response = loads(s)
            for entry in response["events"]:
                event = new_event(JournalEvent)
                event["timestamp"] = entry["timestamp"]
                event["name"] = entry["name"]
                event["context"] = entry.get("context", {})
                event.jobid = response["id"]
                # the consumer rows' look at each event
                if live and event.name == "clean":
                    cleans += 1
        elif live and b'"clean"' in s:
            cleans += 1
        if live:
            if cleans >= jobs:
                break
        elif s.startswith(b'{"id":-1,'):
            break
        reset(future)
    tally.count = count
    tally.first = time.perf_counter()  # nothing is ordered before the sentinel


def read_consumer(h, tally, cls, callback):
    """A JournalConsumer class, by poll() or by callback, until done.  Per
    event the loop does what the floor rows' loops do per response, in
    locals: a count, and (live) a look at the name for "clean"."""
    live, jobs = tally.live, tally.jobs
    consumer = cls(h, full=not live, include_sentinel=not live)
    sentinel = consumer.SENTINEL_EVENT
    count = cleans = 0
    first = None
    tally.begin()
    if callback:

        def on_event(event):
            # one call per event, as any callback; the count inline
            nonlocal count, cleans, first
            if first is None:
                first = time.perf_counter()
            if event is None or event is sentinel:
                h.reactor_stop()
                return
            count += 1
            if live and event.name == "clean":
                cleans += 1
                if cleans == jobs:
                    h.reactor_stop()

        consumer.set_callback(on_event).start()
        print("ready", flush=True)
        h.reactor_run()
    else:
        consumer.start()
        print("ready", flush=True)
        poll = consumer.poll
        while True:  # the same count, inline: the floor rows' loops call nothing
            event = poll()
            if first is None:
                first = time.perf_counter()
            if event is None or event is sentinel:
                break
            count += 1
            if live and event.name == "clean":
                cleans += 1
                if cleans == jobs:
                    break
    tally.count, tally.cleans, tally.first = count, cleans, first


def _start_c_stream(h, tally):
    """What the readers of flux-journal's C core start with: libflux
    bound, a C job stream, the journal request sent (the clock started
    first) and "ready" said; returns (stream, the request's future, that
    future as C sees it, a place for a wait's errno).  The caller keeps
    the future: it owns what C reads."""
    import flux.constants  # pylint: disable=import-outside-toplevel
    from flux_journal import core, libflux  # pylint: disable=import-outside-toplevel

    if not libflux.bind_flux_bindings():
        raise RuntimeError("flux-journal cannot reach libflux")
    stream = core.CoreStream(core.JOB | core.HISTORY, 0.0)
    errnum = libflux.new_errnum()
    tally.begin()
    f = h.rpc(TOPIC, {"full": not tally.live}, flags=flux.constants.FLUX_RPC_STREAMING)
    pointer = libflux.future_pointer(f)
    print("ready", flush=True)
    return stream, f, pointer, errnum


def read_drain_loop(h, tally):
    """flux-journal's C core driven by the smallest Python loop: its one
    call that waits, drains and pops, then the "clean" names counted; no
    event objects."""
    from flux_journal import core  # pylint: disable=import-outside-toplevel

    live, jobs = tally.live, tally.jobs
    stream, future, pointer, errnum = _start_c_stream(h, tally)  # future: kept while C reads it
    names = stream.names
    try:
        while True:
            batch, error = stream.next_from_future(pointer, -1.0, True, lambda exc: None, errnum)
            if error is not None:
                raise error
            if batch is None:
                continue
            if batch.marker:
                if batch.marker == core.SENTINEL and not live:
                    tally.first = time.perf_counter()
                    return
                continue
            for name in batch.names:
                if live and names[name] == "clean":
                    tally.cleans += 1
                    if tally.cleans == jobs:
                        return
    finally:
        tally.count = stream.stats()["responses"]


def read_c_step(h, tally, with_events):
    """flux-journal's one call into C (fj_flux_next()) in a loop, the
    popped events left in its C batch: only their name indexes are read,
    to count the "clean" events; no Batch, no event.  *with_events*:
    each popped event is built too, from the C batch, in the plain
    operations of pyfloor+event."""
    import orjson  # pylint: disable=import-outside-toplevel

    from flux_journal import core  # pylint: disable=import-outside-toplevel
    from flux_journal._core import ffi, lib  # pylint: disable=import-outside-toplevel
    from flux_journal.job import JournalEvent  # pylint: disable=import-outside-toplevel

    live, jobs = tally.live, tally.jobs
    stream, future, pointer, errnum = _start_c_stream(h, tally)  # future: kept while C reads it
    # the bench reaches into the stream to call C as poll() does, minus
    # the Batch poll() makes of what C popped
    c_stream, b = stream._stream, stream._batch  # pylint: disable=protected-access
    d = ffi.new("fj_drain_t *")
    step, popped, size = lib.fj_flux_next, lib.FJ_NEXT_POPPED, core.BATCH_SIZE
    failed = (lib.FJ_DRAIN_REFUSED, lib.FJ_DRAIN_NO_PAYLOAD, lib.FJ_DRAIN_ERROR)
    timestamps, ids, name_ids, _ = stream.c_parts()[2]
    loads, unpack, new_event, names = orjson.loads, ffi.unpack, dict.__new__, stream.names
    clean = -1
    try:
        while True:
            rc = step(c_stream, pointer, -1.0, 1, b, size, size, d, errnum)
            if rc != popped:
                if rc < 0 or rc in failed:
                    raise RuntimeError(f"fj_flux_next: {rc} (errno {errnum[0] or d.errnum})")
                continue
            if b.marker:
                if b.marker == core.SENTINEL and not live:
                    tally.first = time.perf_counter()
                    return
                continue
            if with_events:
                for i, item in enumerate(loads(unpack(b.text, b.text_len))):
                    try:
                        name = names[name_ids[i]]
                    except IndexError:  # a name C met since
                        stream.learn_names(b.names)
                        name = names[name_ids[i]]
                    event = new_event(JournalEvent)
                    event["timestamp"] = timestamps[i]
                    event["name"] = name
                    event["context"] = item
                    event.jobid = ids[i]
                    # the consumer rows' look at each event
                    if live and event.name == "clean":
                        tally.cleans += 1
                        if tally.cleans >= jobs:
                            return
                continue
            if clean < 0:
                stream.learn_names(b.names)
                clean = stream.names.index("clean") if "clean" in stream.names else -1
            if live and clean >= 0:
                tally.cleans += ffi.unpack(b.name, b.count).count(clean)
                if tally.cleans >= jobs:
                    return
    finally:
        tally.count = stream.stats()["responses"]


def run_reader(args):
    """Child: one reader, one run; prints "ready" then a JSON result."""
    import flux  # pylint: disable=import-outside-toplevel

    h = flux.Flux()
    tally = Tally(args.mode == "live", args.jobs)
    kind, _, how = args.reader.partition(":")
    origin = None
    if kind in ("pyfloor", "pyfloor+event"):
        read_python_floor(h, tally, kind == "pyfloor+event")
    elif kind == "raw":
        read_raw(h, tally, how == "wait+get_str")
    elif kind == "flux-core":
        from flux.job import JournalConsumer  # pylint: disable=import-outside-toplevel

        assert "flux_journal" not in sys.modules
        origin = sys.modules[JournalConsumer.__module__].__file__
        read_consumer(h, tally, JournalConsumer, how == "cb")
    else:
        import flux_journal  # pylint: disable=import-outside-toplevel

        origin = flux_journal.__file__
        if how == "drain":
            read_drain_loop(h, tally)
        elif how in ("step", "step+event"):
            read_c_step(h, tally, how == "step+event")
        else:
            read_consumer(h, tally, flux_journal.JournalConsumer, how == "cb")
    result = tally.report()
    result["origin"] = origin
    print(json.dumps(result), flush=True)


# ----------------------------------------------------------------------
# The instance side: jobs, children, the table


def submit(h, count):
    """Submit count test-execution jobs at once; their ids."""
    import flux.job  # pylint: disable=import-outside-toplevel

    spec = flux.job.JobspecV1.from_command(["true"])
    spec.setattr("system.exec.test.run_duration", "0.001s")
    text = spec.dumps()
    futures = [flux.job.submit_async(h, text) for _ in range(count)]
    return [f.get_id() for f in futures]


def wait_inactive(h, total, timeout=600):
    """Until total jobs are inactive (their clean event posted)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = h.rpc("job-list.job-stats").get()
        if stats["job_states"]["inactive"] >= total:
            return
        time.sleep(0.2)
    raise TimeoutError(f"jobs not inactive after {timeout} s")


def build_floor(prefix, workdir):
    """Compile bench/floor.c against flux-core; (path, None) or (None, why)."""
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc is None:
        return None, "no C compiler"
    env = dict(os.environ)
    pc_dir = os.path.join(prefix, "lib", "pkgconfig")
    env["PKG_CONFIG_PATH"] = pc_dir + os.pathsep + env.get("PKG_CONFIG_PATH", "")
    try:
        flags = subprocess.run(
            ["pkg-config", "--cflags", "--libs", "flux-core"],
            env=env, capture_output=True, text=True, check=True,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError) as exc:
        return None, f"flux-core headers not found through pkg-config in {pc_dir} ({exc})"
    libdirs = [f[2:] for f in flags if f.startswith("-L")]
    out = os.path.join(workdir, "floor")
    cmd = [cc, "-O2", "-o", out, os.path.join(HERE, "floor.c")] + flags
    cmd += [f"-Wl,-rpath,{d}" for d in libdirs]
    built = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if built.returncode:
        return None, f"floor.c does not build: {built.stderr.strip()[:300]}"
    return out, None


class Bench:
    """Runs readers in children against one instance."""

    def __init__(self, args, h, floor):
        self.args, self.h, self.floor = args, h, floor
        self.jobs_run = 0

    def command(self, reader, mode, jobs):
        if reader == "floor":
            return [self.floor, mode] + ([str(jobs)] if mode == "live" else [])
        return [sys.executable, os.path.abspath(__file__), "--reader", reader.split("@")[0],
                "--mode", mode, "--jobs", str(jobs)]

    def env(self, reader):
        env = dict(os.environ)
        _, _, variant = reader.partition("@")
        if reader.startswith("flux-journal") or reader == "pyfloor+event":
            path = dict(self.args.variant).get(variant, REPO)
            env["PYTHONPATH"] = path + os.pathsep + env.get("PYTHONPATH", "")
        return env

    def run(self, reader, mode, jobs):
        """One run of a reader; its result dict."""
        child = subprocess.Popen(
            self.command(reader, mode, jobs), stdout=subprocess.PIPE, text=True,
            env=self.env(reader),
        )
        try:
            line = child.stdout.readline()
            if line != "ready\n":
                raise RuntimeError(f"{reader}: did not start ({line!r})")
            if mode == "live":
                time.sleep(0.3)  # the request reaches the job manager first
                self.jobs_run += len(submit(self.h, jobs))
            result = json.loads(child.stdout.readline())
            child.wait(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        if mode == "live":
            wait_inactive(self.h, self.jobs_run)
        return result


def readers(args, floor_why):
    names = ([] if floor_why else ["floor"]) + ["pyfloor", "pyfloor+event"] + [f"raw:{r}" for r in RAW_READERS]
    names += [f"flux-core:{c}" for c in CONSUMERS]
    names += [f"flux-journal:{c}" for c in CONSUMERS + ["drain", "step", "step+event"]]
    for label, _ in args.variant:
        names += [f"flux-journal:{c}@{label}" for c in CONSUMERS]
    if args.readers:
        wanted = args.readers.split(",")
        names = [n for n in names if any(w in n for w in wanted)]
    return names


def measure(bench, names, mode, jobs, reps):
    """Every reader, reps times, the order rotating; results by reader."""
    results = {name: [] for name in names}
    for rep in range(reps):
        order = names[rep % len(names):] + names[: rep % len(names)]
        for name in order:
            results[name].append(bench.run(name, mode, jobs))
            print(f"  {mode} {name}: {results[name][-1]}", file=sys.stderr, flush=True)
    return results


def median(runs, key):
    return statistics.median(r[key] for r in runs)


def live_us(runs):
    """Median CPU µs per response over a reader's live runs, and each run's."""
    each = sorted(1e6 * r["cpu"] / r["responses"] for r in runs)
    return statistics.median(each), each


def table(live, history, floor_why):
    """The issue's table, as Markdown lines."""
    # history "responses" are events for the consumers, responses for the
    # raw loops and the floor: per-response figures are live only
    lines = ["| reader | live µs CPU/response (min-max) | × C floor | × Python floor "
             "| history wall s | first event s | history CPU s | wall × get_str "
             "| CPU × flux-core poll |", "|---" * 9 + "|"]
    nan = float("nan")
    floor_us = live_us(live["floor"])[0] if "floor" in live else nan
    pyfloor_us = live_us(live["pyfloor"])[0] if "pyfloor" in live else nan
    raw_wall = median(history["raw:get_str"], "wall") if "raw:get_str" in history else nan
    fc_cpu = median(history["flux-core:poll"], "cpu") if "flux-core:poll" in history else nan
    for name in live:
        hs = history[name]
        us, each = live_us(live[name])
        spread = f" ({each[0]:.1f}-{each[-1]:.1f})" if len(each) > 1 else ""
        lines.append(
            f"| {name} | {us:.1f}{spread} | {us / floor_us:.2f} | {us / pyfloor_us:.2f} "
            f"| {median(hs, 'wall'):.3f} | {median(hs, 'first'):.3f} | {median(hs, 'cpu'):.3f} "
            f"| {median(hs, 'wall') / raw_wall:.2f} | {median(hs, 'cpu') / fc_cpu:.2f} |"
        )
    if floor_why:
        lines.append(f"\nC floor not measured: {floor_why}")
    return lines


def inside(args):
    """In the instance: build the floor, run history then live."""
    import flux  # pylint: disable=import-outside-toplevel

    h = flux.Flux()
    with tempfile.TemporaryDirectory() as workdir:
        floor, floor_why = build_floor(args.flux_prefix, workdir)
        bench = Bench(args, h, floor)
        names = readers(args, floor_why)
        print(f"history: running {args.history} jobs", file=sys.stderr, flush=True)
        bench.jobs_run += len(submit(h, args.history))
        wait_inactive(h, bench.jobs_run)
        history = measure(bench, names, "history", 0, args.reps)
        live = measure(bench, names, "live", args.jobs, args.live_reps)
    version = subprocess.run(["flux", "version"], capture_output=True, text=True).stdout
    version = version.splitlines()[0].split()[-1] if version else "?"
    print(f"\nflux-core {version}; live: {args.jobs} jobs per reader, median of "
          f"{args.live_reps}; history: {args.history} jobs, median of {args.reps}; "
          f"{time.strftime('%Y-%m-%d')}\n")
    print("\n".join(table(live, history, floor_why)))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"live": live, "history": history}, f, indent=1)


def find_flux(prefix):
    """The flux command: under --flux-prefix, on PATH, or None."""
    if prefix:
        path = os.path.join(prefix, "bin", "flux")
        return path if os.access(path, os.X_OK) else None
    return shutil.which("flux")


def outside(args):
    """Start an instance and run this script inside it under flux python."""
    flux_cmd = find_flux(args.flux_prefix)
    if flux_cmd is None:
        where = f"under {args.flux_prefix}/bin" if args.flux_prefix else "on PATH"
        print(f"bench/broker.py: skipped: no flux command {where} (use --flux-prefix)")
        return 0
    prefix = args.flux_prefix or os.path.dirname(os.path.dirname(os.path.realpath(flux_cmd)))
    check = subprocess.run([flux_cmd, "python", "-c", "import flux"], capture_output=True, text=True)
    if check.returncode:
        print(f"bench/broker.py: skipped: flux-core's Python bindings do not import "
              f"({check.stderr.strip().splitlines()[-1:]})")
        return 0
    with tempfile.TemporaryDirectory() as conf:
        with open(os.path.join(conf, "bench.toml"), "w", encoding="utf-8") as f:
            f.write("[ingest.validator]\ndisable = true\n")
        argv = sys.argv[1:]
        cmd = [flux_cmd, "start", "-s1", "-c", conf, flux_cmd, "python",
               os.path.abspath(__file__), "--inside", "--flux-prefix", prefix] + argv
        return subprocess.run(cmd, check=False).returncode


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="live 100 jobs, history 500")
    p.add_argument("--jobs", type=int, help="live jobs per reader (300)")
    p.add_argument("--history", type=int, help="jobs in the history (2000)")
    p.add_argument("--reps", type=int, default=3, help="history runs per reader")
    p.add_argument("--live-reps", type=int, default=1, help="live runs per reader")
    p.add_argument("--variant", action="append", default=[], metavar="LABEL=PATH",
                   type=lambda v: tuple(v.split("=", 1)), help="another checkout to time")
    p.add_argument("--flux-prefix", help="flux-core's install prefix (default: from PATH)")
    p.add_argument("--json", help="write every run's figures here")
    p.add_argument("--readers", help="comma-separated parts of reader names to run")
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--reader", help=argparse.SUPPRESS)
    p.add_argument("--mode", choices=["live", "history"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.jobs is None:
        args.jobs = 100 if args.quick else 300
    if args.history is None:
        args.history = 500 if args.quick else 2000
    return args


def main():
    args = parse_args()
    if args.reader:
        run_reader(args)
        return 0
    if args.inside:
        inside(args)
        return 0
    return outside(args)


if __name__ == "__main__":
    sys.exit(main())
