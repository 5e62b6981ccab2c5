"""Live reading offline: CPU per one-event response, caches warm and cold.

    python bench/live_offline.py                      # 2,000 responses, 3 runs a row (~1 min)
    python bench/live_offline.py --variant before=PATH   # also time another checkout
    python bench/live_offline.py --footprint          # cache misses under callgrind (~5 min)

What bench/broker.py measures on a real broker, without one: a live
reader wakes once per response, and while it slept the broker and other
processes ran, so what it touches per response is cold in the caches.
Here the responses come from the tests' stand-in libflux
(tests/fake_libflux.c, built here), one released per wait or reactor
turn; "cold" writes 16 MB between two responses (untimed), which evicts
the caches as a sleep on a busy machine does, and times each delivery;
"warm" times the same loop without that.  Rows, per response:

- ``pyfloor``: the Python floor of bench/broker.py, against the stand-in:
  flux_future_wait_for() + flux_rpc_get() + ffi.string() +
  flux_future_reset() through cffi in a plain loop
- ``pyfloor+event``: the same, plus the payload decoded (orjson) and its
  event built (a flux-journal JournalEvent), as bench/broker.py's row
- ``step``: flux-journal's one call into C per live step (wait, take,
  parse, order, pop into its C batch), no Python event
- ``step+event``: the same, plus the event built from the C batch in a
  few plain operations, as ``pyfloor+event`` builds it: the least any
  Python around flux-journal's C step pays to deliver events; ``poll``
  above it is what the consumer's own layers cost
- ``poll`` / ``cb``: flux-journal's JournalConsumer, by ``poll()`` and by
  callback (the stand-in's reactor turn runs the C continuation)

``--footprint`` runs each row once, cold, under valgrind's callgrind with
its cache simulation (32 KB first level, 8 MB last level) and counts, per
response, the instructions and cache misses of the timed part alone
(bench/callgrind_toggle.c starts and stops the counting where the clock
would be read).  The counts do not move between runs, so they can tell
apart changes of 1-2% that the times cannot; last-level misses are what
a cold response waits on.  Under valgrind the C core's x87 conversion of
timestamps falls back to strtod (valgrind emulates the x87 with doubles),
which adds about 50 misses to the rows that parse in C.

Medians of ``--reps`` runs, each in a process of its own, taken round-robin
(every row once, then again), so that the load of a shared machine
drifting during the run weighs on all rows alike.  A row's figure
moves by 5-15% between runs; compare rows of one run.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
READERS = ["pyfloor", "pyfloor+event", "step", "step+event", "poll", "cb"]
SENTINEL = b'{"id":-1,"events":[]}'
EVICT_BYTES = 16 << 20
# --footprint's caches: 32 KB first-level, an 8 MB last level, which the
# 16 MB written between responses evicts
SIMULATED_CACHES = ("--I1=32768,8,64", "--D1=32768,8,64", "--LL=8388608,16,64")


def live_payloads(count):
    """*count* one-event live responses of the captured stream, cycled."""
    with open(os.path.join(REPO, "tests", "fixtures", "jobs-full.jsonl"), "rb") as f:
        lines = f.read().splitlines()
    live = [p for p in lines[lines.index(SENTINEL) + 1 :] if len(json.loads(p)["events"]) == 1]
    return [live[i % len(live)] for i in range(count)]


# ----------------------------------------------------------------------
# The child: one reader, one run


class StandIn:
    """The stand-in libflux through ctypes: responses queued, released one
    at a time."""

    def __init__(self, path):
        import ctypes  # pylint: disable=import-outside-toplevel

        self.lib = ctypes.CDLL(path, use_errno=True)
        self.lib.fake_future.restype = ctypes.c_void_p
        self.lib.fake_push.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
        self.lib.fake_one_at_a_time(1)

    def queue(self, payloads):
        for payload in payloads:
            self.lib.fake_push(payload, 0, None)


class Future:
    """What a consumer looks for in a flux-core RPC future to take its
    responses in C (pimpl.handle, pimpl.ffi; pimpl.flux_rpc_get, which C
    then never needs)."""

    def __init__(self, ffi, pointer):
        import types  # pylint: disable=import-outside-toplevel

        def not_called(holder):
            raise AssertionError("the C drain reads the responses")

        self.pimpl = types.SimpleNamespace(
            handle=pointer, ffi=ffi, flux_rpc_get=not_called, get_matchtag=lambda: 1
        )


class Handle:
    """The least of a flux-core handle a consumer needs here, with the
    reactor check flux-core's Flux has (a classmethod reading a
    thread-local), which poll() makes at every wait."""

    tls = threading.local()
    tls.reactor_depth = 0

    def __init__(self, future):
        self.future = future

    @classmethod
    def reactor_running(cls):
        """Whether this thread runs the reactor (never, here)."""
        return cls.tls.reactor_depth > 0

    def rpc(self, topic, payload, nodeid, flags):
        del topic, payload, nodeid, flags
        return self.future


def run_child(args):
    """Time one reader; print {"warm"|"cold": µs per response}."""
    sys.path.insert(0, args.tree)
    # pylint: disable=import-outside-toplevel
    import cffi
    import orjson

    from flux_journal import JournalConsumer, core, libflux
    from flux_journal.core import ffi
    from flux_journal.job import JournalEvent

    stand_in = StandIn(args.lib)
    libflux.bind(args.lib)
    payloads = live_payloads(args.events)
    evict, filler = bytearray(EVICT_BYTES), bytes(EVICT_BYTES)
    cold = args.cold
    if args.toggle:
        # --footprint: the "clock" starts and stops callgrind's counting
        import ctypes

        toggle = ctypes.CDLL(args.toggle).fj_bench_toggle_collect

        def clock():
            toggle()
            return 0.0

    else:
        clock = time.perf_counter
    pointer = ffi.cast("void *", stand_in.lib.fake_future())
    total = 0.0

    if args.reader in ("pyfloor", "pyfloor+event"):
        own = cffi.FFI()
        own.cdef(
            "int flux_future_wait_for (void *f, double timeout);"
            "int flux_rpc_get (void *f, const char **s);"
            "void flux_future_reset (void *f); void *fake_future (void);"
        )
        lib = own.dlopen(args.lib)
        future, holder = lib.fake_future(), own.new("char *[1]")
        wait_for, rpc_get, reset, string = (
            lib.flux_future_wait_for, lib.flux_rpc_get, lib.flux_future_reset, own.string)
        loads, new_event = orjson.loads, dict.__new__
        with_events = args.reader == "pyfloor+event"
        stand_in.queue(payloads)
        for _ in payloads:
            if cold:
                evict[:] = filler
            start = clock()
            if wait_for(future, -1.0) < 0 or rpc_get(future, holder) < 0:
                raise OSError("stand-in libflux failed")
            text = string(holder[0])
            if with_events:
                response = loads(text)
                for entry in response["events"]:
                    event = new_event(JournalEvent)
                    event["timestamp"] = entry["timestamp"]
                    event["name"] = entry["name"]
                    event["context"] = entry.get("context", {})
                    event.jobid = response["id"]
            reset(future)
            total += clock() - start
    elif args.reader in ("step", "step+event"):
        stream = core.CoreStream(core.JOB | core.HISTORY, 0.0)
        c_stream, batch, (timestamps, ids, names, _) = stream.c_parts()
        drained, errnum = stream.drain_result, libflux.new_errnum()
        step, popped, size = core.lib.fj_flux_next, core.lib.FJ_NEXT_POPPED, core.BATCH_SIZE
        with_events = args.reader == "step+event"
        loads, unpack, new_event, names_known = orjson.loads, ffi.unpack, dict.__new__, stream.names
        stand_in.queue(payloads)
        for _ in payloads:
            if cold:
                evict[:] = filler
            start = clock()
            while step(c_stream, pointer, -1.0, 1, batch, size, size, drained, errnum) != popped:
                pass
            if with_events:  # as pyfloor+event builds it, from the C batch
                item = loads(unpack(batch.text, batch.text_len))[0]
                try:
                    name = names_known[names[0]]
                except IndexError:  # a name C met since
                    stream.learn_names(batch.names)
                    name = names_known[names[0]]
                event = new_event(JournalEvent)
                event["timestamp"] = timestamps[0]
                event["name"] = name
                event["context"] = item
                event.jobid = ids[0]
            total += clock() - start
    elif args.reader == "poll":
        consumer = JournalConsumer(Handle(Future(ffi, pointer)), full=False).start()
        stand_in.queue([SENTINEL] + payloads)
        for _ in payloads:
            if cold:
                evict[:] = filler
            start = clock()
            consumer.poll()
            total += clock() - start
    else:  # cb: a reactor turn (the stand-in's) runs the C continuation
        started = [0.0]
        delivered = []

        def on_event(event):
            nonlocal total
            total += clock() - started[0]
            delivered.append(event)

        consumer = JournalConsumer(Handle(Future(ffi, pointer)), full=False)
        consumer.set_callback(on_event).start()
        stand_in.queue([SENTINEL] + payloads)
        turn = stand_in.lib.fake_fulfill
        turn()  # the sentinel
        while len(delivered) < len(payloads):
            if cold:
                evict[:] = filler
            started[0] = clock()
            turn()
    print(json.dumps({"us": 1e6 * total / len(payloads)}))


# ----------------------------------------------------------------------
# The parent: every reader, warm and cold, in children


def build_library(workdir, source, what):
    """The C file *source* built as a shared library in *workdir*, or exit
    saying that *what* needs a C compiler."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise SystemExit(f"bench/live_offline.py: no C compiler for {what}")
    out = os.path.join(workdir, "lib" + os.path.splitext(os.path.basename(source))[0] + ".so")
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", out, source], check=True)
    return out


def build_stand_in(workdir):
    """tests/fake_libflux.c as a shared library."""
    return build_library(workdir, os.path.join(REPO, "tests", "fake_libflux.c"),
                         "the stand-in libflux")


def build_toggle(workdir):
    """bench/callgrind_toggle.c as a shared library, or exit saying why."""
    if shutil.which("valgrind") is None:
        raise SystemExit("bench/live_offline.py --footprint: needs valgrind")
    return build_library(workdir, os.path.join(HERE, "callgrind_toggle.c"), "--footprint")


def footprint_once(args, lib, toggle, reader, tree, workdir):
    """{callgrind event: count per response} of one cold child under
    callgrind's cache simulation, counting the timed part alone."""
    out = os.path.join(workdir, "callgrind.out")
    cmd = ["valgrind", "--tool=callgrind", "--collect-atstart=no", "--cache-sim=yes",
           *SIMULATED_CACHES, f"--callgrind-out-file={out}",
           sys.executable, os.path.abspath(__file__), "--reader", reader, "--lib", lib,
           "--tree", tree, "--events", str(args.events), "--cold", "--toggle", toggle]
    # the same dict layouts in every run
    env = dict(os.environ, PYTHONHASHSEED="0")
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    with open(out, encoding="utf-8") as f:
        lines = f.read().splitlines()
    names = next(line.split()[1:] for line in lines if line.startswith("events:"))
    totals = next(line.split()[1:] for line in lines if line.startswith(("summary:", "totals:")))
    return {name: int(value) / args.events for name, value in zip(names, totals)}


def print_footprints(args, rows):
    """--footprint: each row once under callgrind; print its table."""
    with tempfile.TemporaryDirectory() as workdir:
        lib, toggle = build_stand_in(workdir), build_toggle(workdir)
        counts = {}
        for name, reader, tree in rows:
            counts[name] = footprint_once(args, lib, toggle, reader, tree, workdir)
            print(f"  {name}: {counts[name]}", file=sys.stderr, flush=True)

    def misses(c):
        return c["ILmr"] + c["DLmr"] + c["DLmw"]

    floor = misses(counts["pyfloor"])
    print(f"\n{args.events} one-event responses, caches cold, simulated by callgrind "
          f"({' '.join(SIMULATED_CACHES)}); {time.strftime('%Y-%m-%d')}\n")
    print("| reader | instructions/response | L1 misses | last-level misses (code + data) "
          "| × Python floor |")
    print("|---|---|---|---|---|")
    for name, c in counts.items():
        l1 = c["I1mr"] + c["D1mr"] + c["D1mw"]
        print(f"| {name} | {c['Ir']:.0f} | {l1:.0f} | {misses(c):.0f} ({c['ILmr']:.0f} + "
              f"{c['DLmr'] + c['DLmw']:.0f}) | {misses(c) / floor:.2f} |")


def run_once(args, lib, reader, tree, cold):
    """µs per response of one child."""
    cmd = [sys.executable, os.path.abspath(__file__), "--reader", reader, "--lib", lib,
           "--tree", tree, "--events", str(args.events)] + (["--cold"] if cold else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[-1])["us"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, help="responses per run (<= 4000; default 2000, "
                   "300 with --footprint)")
    p.add_argument("--footprint", action="store_true",
                   help="count instructions and cache misses under callgrind instead of timing")
    p.add_argument("--reps", type=int, default=3, help="runs per row")
    p.add_argument("--variant", action="append", default=[], metavar="LABEL=PATH",
                   type=lambda v: tuple(v.split("=", 1)), help="another checkout: its poll and cb rows")
    p.add_argument("--reader", help=argparse.SUPPRESS)
    p.add_argument("--lib", help=argparse.SUPPRESS)
    p.add_argument("--tree", default=REPO, help=argparse.SUPPRESS)
    p.add_argument("--cold", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--toggle", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.events is None:
        args.events = 300 if args.footprint else 2000
    if args.reader:
        run_child(args)
        return 0
    rows = [(r, r, REPO) for r in READERS]
    rows += [(f"{r}@{label}", r, path) for label, path in args.variant for r in ("poll", "cb")]
    if args.footprint:
        print_footprints(args, rows)
        return 0
    with tempfile.TemporaryDirectory() as workdir:
        lib = build_stand_in(workdir)
        # round-robin: every row once per round, so that the machine's
        # load drifting over the run falls on all rows alike
        runs = {name: ([], []) for name, _, _ in rows}
        for _ in range(args.reps):
            for name, reader, tree in rows:
                for cold, kept in zip((False, True), runs[name]):
                    kept.append(run_once(args, lib, reader, tree, cold))
                print(f"  {name}: {runs[name]}", file=sys.stderr, flush=True)
        results = {
            name: tuple((statistics.median(r), min(r), max(r)) for r in pair)
            for name, pair in runs.items()
        }
    floor_warm, floor_cold = results["pyfloor"][0][0], results["pyfloor"][1][0]
    print(f"\n{args.events} one-event responses per run, median (min-max) of {args.reps}; "
          f"{time.strftime('%Y-%m-%d')}\n")
    print("| reader | warm µs/response | × Python floor | cold µs/response | × Python floor |")
    print("|---|---|---|---|---|")
    for name, ((warm, wlo, whi), (cold, clo, chi)) in results.items():
        print(f"| {name} | {warm:.2f} ({wlo:.2f}-{whi:.2f}) | {warm / floor_warm:.2f} "
              f"| {cold:.1f} ({clo:.1f}-{chi:.1f}) | {cold / floor_cold:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
