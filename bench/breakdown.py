"""Where flux_journal's time goes, stage by stage, and what that leaves.

    python bench/breakdown.py                 # S1 at 1M events, S2, S3, S6
    python bench/breakdown.py --jobs 20000 --reps 3
    python bench/breakdown.py --flux-core     # also time flux-core's poll()

The same in-memory streams as bench/compare.py, each consumed through ever
more of flux_journal's path, so that the difference between two stages is
the cost of one part:

``sim``      reading every response off the simulated broker (get_str()
             and reset()): what any consumer pays here, and less than a
             real broker's transport.
``feed``     the consumer taking every response into the C core (scan,
             filter, copy, history heap), nothing popped.
``pop``      the same, then every batch popped from C: the C merge, the
             contexts decoded by orjson, the batch columns as lists.
``poll``     the real thing: ``poll()`` until the end, an event object
             per event (the S1 / S2 / S3 / S6 body of compare.py); timed
             again with Python's cyclic collector disabled, the difference
             being the collector's share.

``pop`` is everything but the event objects, which a flux.abc consumer
must build (a dict subclass per event, holding its decoded context) and
which cffi cannot build in C: flux-core's time divided by it is the
ratio flux_journal would show if events cost nothing to make and hand
out, a ceiling on this design (printed with ``--flux-core``).
Times are medians of ``--reps`` runs, also as nanoseconds per event of
the stream, with each stage's increment.  This reads flux_journal's
internals (``_take_response``, ``_core``); it measures, it does not test.
"""

import argparse
import gc
import statistics
import sys
import time

# bench_streams first: importing it puts flux_journal on sys.path.
import bench_streams as bs  # isort: skip
import bench_scenarios as sc

from flux_journal import core


def _take_all(consumer):
    """Take every response into C, popping nothing."""
    rpc = consumer.rpc
    while not consumer._pipeline.over:
        rpc.wait_for(-1.0)
        consumer._take_response(rpc)
        consumer._take_arrived(1 << 30)


def _stage_sim(handle, consumer, case):
    sc.sim_floor(handle, case.stream.topic, case.request)


def _stage_feed(handle, consumer, case):
    consumer.start()
    _take_all(consumer)


def _stage_pop(handle, consumer, case):
    consumer.start()
    _take_all(consumer)
    while True:
        batch = consumer._pipeline.core.pop()  # core.BATCH_SIZE, as poll() pops
        if batch is not None and batch.marker == core.END:
            return


def _stage_poll(handle, consumer, case):
    sc.BODIES["poll"](handle, consumer)


def _stage_poll_nogc(handle, consumer, case):
    gc.disable()
    try:
        sc.BODIES["poll"](handle, consumer)
    finally:
        gc.enable()


STAGES = (
    ("sim", _stage_sim),
    ("feed", _stage_feed),
    ("pop", _stage_pop),
    ("poll", _stage_poll),
)


def median_time(libs, case, lib, stage, reps):
    """Median seconds of *stage* over *reps* fresh handles and consumers."""
    times = []
    for _ in range(reps):
        (handle, consumer), _ = sc.setup_case(libs, case, lib)
        start = time.perf_counter()
        stage(handle, consumer, case)
        times.append(time.perf_counter() - start)
        del handle, consumer
    return statistics.median(times)


def report(libs, case, reps, with_flux_core):
    """Print the stages of one case."""
    events = case.stream.events
    delivered = sc.expected_delivered(case)
    print(f"\n{case.id}: {case.scenario.title}")
    print(f"  {events} events in the stream, {delivered} delivered; ns per stream event")
    times = {}
    previous = 0.0
    for name, stage in STAGES:
        times[name] = median_time(libs, case, sc.FLUX_JOURNAL, stage, reps)
        step = times[name] - previous
        previous = times[name]
        print(
            f"  {name:5s} {times[name]:8.3f} s {times[name] * 1e9 / events:8.0f} ns"
            f"   (+{step * 1e9 / events:.0f} ns)"
        )
    nogc = median_time(libs, case, sc.FLUX_JOURNAL, _stage_poll_nogc, reps)
    print(f"  of which the cyclic garbage collector: {(times['poll'] - nogc) * 1e9 / events:.0f} ns")
    if with_flux_core:
        flux_core = median_time(libs, case, sc.FLUX_CORE, _stage_poll, reps)
        print(
            f"  flux-core {flux_core:.3f} s: ratio {flux_core / times['poll']:.1f}x now;"
            f" {flux_core / times['pop']:.1f}x if event objects cost nothing;"
            f" {flux_core / times['sim']:.1f}x if only the broker did"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="bench/breakdown.py", description=__doc__.split("\n", 1)[0]
    )
    parser.add_argument("--jobs", type=int, default=sc.FULL_SIZES["jobs"])
    parser.add_argument("--live", type=int, default=sc.FULL_SIZES["live"])
    parser.add_argument(
        "--resource-events", type=int, default=sc.FULL_SIZES["resource_events"]
    )
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--scenarios", default="S1,S2,S3,S6")
    parser.add_argument(
        "--flux-core", action="store_true", help="also time flux-core's poll() (slow)"
    )
    args = parser.parse_args(argv)
    libs = sc.load_libraries()
    streams = bs.StreamCache(log=lambda msg: print(msg, file=sys.stderr))
    largest = f"jobs-{args.jobs}"
    print(bs.environment_note())
    for case in sc.plan(
        args.scenarios.split(","), args.jobs, args.live, args.resource_events, streams
    ):
        # S1 at its largest size only
        if case.scenario.name == "S1" and case.stream.key != largest:
            continue
        report(libs, case, args.reps, args.flux_core)
    return 0


if __name__ == "__main__":
    sys.exit(main())
