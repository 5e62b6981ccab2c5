"""X1: what ``flux-journal metrics`` adds to reading a job history.

Times, on the same generated history (``bench_streams.jobs``: 100,000
jobs, about 1M events, by default), side by side and interleaved:

``poll_batch``
    flux_journal's ``poll_batch(1000)`` to the end of the stream, each
    event looked at (bench_scenarios' ``poll_batch`` body, as in S5);
``exporter``
    the exporter's own reading path: ``JournalReader.run()`` feeding
    every batch to a ``JobTracker`` (states, results, histograms, event
    counts), exactly as ``flux-journal metrics`` reads its history.

Each run gets a fresh simulated handle and consumer (not timed).  The
figure is ``exporter / poll_batch``, the median of the paired
per-repetition ratios, for wall and CPU time; issue 14's target is at
most 2.  Usage::

    python bench/bench_metrics.py                 # 1M events, 3 repetitions
    python bench/bench_metrics.py --quick         # 2,000 jobs (CI: checks it runs)
    python bench/bench_metrics.py --jobs 20000 --reps 5
"""

import argparse
import gc
import statistics
import sys
import time

# bench_streams first: importing it puts flux_journal on sys.path.
import bench_streams  # noqa: F401  isort: skip
from bench_scenarios import BATCH_EVENTS, BODIES

from flux_journal import JournalConsumer
from flux_journal.metrics.reader import JournalReader
from flux_journal.metrics.state import JobTracker

TARGET = 2.0


def _exporter(handle, consumer):
    del handle
    reader = JournalReader("jobs", consumer, JobTracker())
    reader.run()
    assert reader.ended and reader.failure is None
    return sum(reader.tracker.events.values())


MODES = {"poll_batch": BODIES["poll_batch"], "exporter": _exporter}


def run_once(stream, mode):
    """One timed run of *mode* on *stream*: (wall, cpu, events)."""
    handle = stream.handle()
    consumer = JournalConsumer(handle, full=True)
    gc.collect()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    events = MODES[mode](handle, consumer)
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    return wall, cpu, events


def main(argv=None):
    """Run the comparison; print the table; return 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000,
                        help="jobs in the generated history (default 100000, ~1M events)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--quick", action="store_true", help="2,000 jobs, 1 repetition")
    args = parser.parse_args(argv)
    if args.quick:
        args.jobs, args.reps = 2_000, 1
    assert BATCH_EVENTS == 1000
    started = time.perf_counter()
    stream = bench_streams.jobs(args.jobs)
    print(f"X1 stream {stream.label}: {stream.events} events, {len(stream.lines)} responses, "
          f"built in {time.perf_counter() - started:.1f} s; {bench_streams.environment_note()}")
    samples = {mode: [] for mode in MODES}
    for rep in range(args.reps):
        order = list(MODES) if rep % 2 == 0 else list(reversed(MODES))
        for mode in order:
            wall, cpu, events = run_once(stream, mode)
            if events != stream.events:
                print(f"{mode} consumed {events} events, not {stream.events}", file=sys.stderr)
                return 1
            samples[mode].append((wall, cpu))
    print(f"{'':12} {'wall s':>8} {'cpu s':>8} {'µs/event (cpu)':>15}")
    for mode, runs in samples.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"{mode:12} {wall:8.3f} {cpu:8.3f} {cpu / stream.events * 1e6:15.2f}")
    ratios = [
        (e[0] / p[0], e[1] / p[1]) for e, p in zip(samples["exporter"], samples["poll_batch"])
    ]
    wall_ratio = statistics.median(r[0] for r in ratios)
    cpu_ratio = statistics.median(r[1] for r in ratios)
    verdict = "met" if cpu_ratio <= TARGET else "NOT met"
    print(f"X1 exporter / poll_batch: {wall_ratio:.2f}x wall, {cpu_ratio:.2f}x cpu "
          f"(target <= {TARGET:g}x: {verdict}); {args.reps} repetitions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
