"""Memory child: run one scenario for one library in a fresh process.

    python bench/bench_child.py '<json spec>'     # one measurement
    python bench/bench_child.py --serve           # the launcher (below)

Peak memory (``ru_maxrss``) is a high-water mark of the whole process,
so each measurement gets a process of its own: one library's garbage,
arenas and freed-but-kept pages cannot inflate the other's figure.
compare.py starts this script once per (scenario, library), plus once
per stream with mode "baseline", which does everything up to the
consumer's ``start()`` and nothing more: the lines read, both libraries
imported, flux-core's classes loaded, the handle made.  The peak of a
scenario minus that baseline is what the consumer itself needed.

Why a launcher: Linux carries the high-water RSS of the process that
calls exec() over into the new program's ``ru_maxrss`` (exec_mmap()
records the old mm's peak; with vfork, the parent's).  Children started
straight from compare.py, which by then holds the streams and has run a
million flux-core events, would all report its peak.  So compare.py
starts ``--serve`` first thing, while it is small, and has it start
every measuring child; their inherited floor is the launcher's ~10 MB,
below any real measurement.  ``VmHWM`` from /proc/self/status, which
exec resets, is recorded too as a cross-check.

The spec (see ``Case.spec``) names the library, the mode (a body of
bench_scenarios, or "baseline"), the stream kind and topic, the
consumer's keyword arguments and the file holding the stream's lines.
Prints one JSON object: ``peak_kb`` (ru_maxrss after the run),
``hwm_kb`` (VmHWM after the run), ``before_kb`` (ru_maxrss just before
start(): this process's own baseline), ``rss_kb`` (resident set size
right after the run, while the consumer and whatever it holds are still
alive), ``delivered`` and ``wall`` (seconds, for information only: this
process is not the timing run).
"""

import errno
import json
import os
import resource
import subprocess
import sys
import time

# Nothing heavy is imported at module level: the --serve launcher must
# stay small (see above); a measuring child imports what it needs in
# measure().


def _maxrss_kb():
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _status_kb(field):
    """A "VmRSS"/"VmHWM"-style field of /proc/self/status, in KiB."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _rss_kb():
    """Current resident set size (KiB)."""
    return _status_kb("VmRSS")


def serve():
    """Launcher loop: read one JSON spec per line on stdin, run a
    measuring child for it, write its one-line JSON result (or an
    {"error": ...} object) to stdout.  Ends at end of input."""
    for line in sys.stdin:
        if not line.strip():
            continue
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__), line.strip()],
            capture_output=True,
            text=True,
            check=False,
        )
        out = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not out:
            reply = {"error": f"exit {proc.returncode}: {proc.stderr[-4000:]}"}
            sys.stdout.write(json.dumps(reply) + "\n")
        else:
            sys.stdout.write(out[-1] + "\n")
        sys.stdout.flush()
    return 0


class Launcher:
    """The small process that starts every memory child.

    Start it first thing, while the benchmarking process is small: Linux
    hands the peak RSS of whoever starts a program down to that
    program's ru_maxrss (see above), so children started from
    compare.py or pytest themselves would inherit their peak.
    """

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, spec):
        """Run one measuring child; return its JSON result."""
        self.proc.stdin.write(json.dumps(spec) + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        if not reply:
            raise RuntimeError("the memory launcher died")
        result = json.loads(reply)
        if "error" in result:
            raise RuntimeError(f"memory child failed for {spec}:\n{result['error']}")
        return result

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def measure(spec):
    """Run one spec in this process and print its result."""
    import bench_streams
    from bench_scenarios import BODIES, load_libraries

    # Everything a run needs besides the consumer itself, so that the
    # baseline child and the measuring children hold the same things.
    libs = load_libraries()
    from flux_journal.sim import SimFlux

    lines = bench_streams.read_lines(spec["path"])
    handle = SimFlux.replay(
        lines, topic=spec["topic"], end=errno.ENODATA, hold=spec.get("hold")
    )
    result = {"lines": len(lines)}
    if spec["mode"] == "baseline":
        peak = _maxrss_kb()
        result.update(
            peak_kb=peak, before_kb=peak, hwm_kb=_status_kb("VmHWM"), rss_kb=_rss_kb()
        )
        print(json.dumps(result))
        return 0
    consumer = libs.consumer_class(spec["lib"], spec["kind"])(handle, **spec["kwargs"])
    body = BODIES[spec["mode"]]
    before = _maxrss_kb()
    start = time.perf_counter()
    delivered = body(handle, consumer)
    wall = time.perf_counter() - start
    # Read while the consumer (and, for "hold", the history) is alive.
    result.update(
        peak_kb=_maxrss_kb(),
        hwm_kb=_status_kb("VmHWM"),
        before_kb=before,
        rss_kb=_rss_kb(),
        delivered=delivered,
        wall=wall,
    )
    print(json.dumps(result))
    sys.stdout.flush()
    # Skip tearing down a million objects: the measurement is done.
    os._exit(0)


def main(argv):
    if len(argv) == 2 and argv[1] == "--serve":
        return serve()
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    return measure(json.loads(argv[1]))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
