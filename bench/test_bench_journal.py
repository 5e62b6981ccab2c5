"""pytest-benchmark benchmarks: flux_journal vs flux-core, per scenario.

    pytest bench/ --benchmark-only                      # full sizes
    pytest bench/ --benchmark-only --bench-quick        # small sizes
    pytest bench/ --benchmark-only --bench-scenarios S1,P1 --bench-jobs 10000

Every timed case runs once for flux-core's consumer (from the flux-python
wheel) and once for flux_journal's, on the identical in-memory stream,
in one benchmark group named after the case ("S1 gen 1M"), so
pytest-benchmark's table lists the two side by side.  Each round gets a
fresh simulated handle and consumer from the untimed ``setup``; the
round times ``start()`` to the end of the stream (see bench_scenarios).

extra_info carries ``events`` (in the stream), ``delivered`` and
``us_per_event`` (median): G1, the growth of the per-event cost, is
``us_per_event`` of "S1 gen 1M" over that of "S1 gen 9.7k".

compare.py reports the same scenarios as one table with ratios, CPU
time and memory; this file is for pytest-benchmark's history and
comparison tools (--benchmark-autosave, --benchmark-compare).
"""

import tempfile
from pathlib import Path

import pytest

import bench_scenarios as sc
import bench_streams
from conftest import rounds_for, selected_scenarios


def test_scenario(benchmark, libs, case, lib):
    """One scenario on one stream, for one library."""
    benchmark.group = case.id
    benchmark.extra_info["scenario"] = case.scenario.title
    benchmark.extra_info["events"] = case.stream.events
    body = sc.body_for(case, lib)
    delivered = benchmark.pedantic(
        body,
        setup=lambda: sc.setup_case(libs, case, lib),
        rounds=rounds_for(case.stream.events),
        iterations=1,
        warmup_rounds=0,
    )
    benchmark.extra_info["delivered"] = delivered
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # None with --benchmark-disable
        benchmark.extra_info["us_per_event"] = (
            stats.stats.median / case.stream.events * 1e6
        )
    # A consumer that drops or repeats events would be measured doing
    # other work than its rival: that is a failure, not a number.
    assert delivered == sc.expected_delivered(case), (
        f"{lib} delivered {delivered} events, expected {sc.expected_delivered(case)}"
    )


@pytest.mark.memory
def test_memory(benchmark, launcher, case, lib):
    """M1: peak RSS while the consumer holds the whole history.

    Measured in a child process (bench_child.py) per library, minus a
    baseline child that only built the lines; the benchmark's time is the
    round trip to the child, startup included, and means little: read
    extra_info (``peak_mb``, ``baseline_mb``, ``delta_mb`` = peak -
    baseline, and the same from VmHWM).
    """
    benchmark.group = case.id
    with tempfile.TemporaryDirectory(prefix="fj-bench-") as tmpdir:
        path = Path(tmpdir) / "lines.jsonl"
        case.stream.write(path)
        baseline = launcher.run(case.spec(None, path))
        result = benchmark.pedantic(
            launcher.run, args=(case.spec(lib, path),), rounds=1, iterations=1
        )
    # A child that delivered less held less: its peak would mean nothing.
    assert result["delivered"] == sc.expected_delivered(case), result
    mib = 1024.0
    benchmark.extra_info.update(
        events=case.stream.events,
        baseline_mb=baseline["peak_kb"] / mib,
        peak_mb=result["peak_kb"] / mib,
        delta_mb=(result["peak_kb"] - baseline["peak_kb"]) / mib,
        baseline_hwm_mb=baseline["hwm_kb"] / mib,
        hwm_mb=result["hwm_kb"] / mib,
        delta_hwm_mb=(result["hwm_kb"] - baseline["hwm_kb"]) / mib,
        rss_holding_mb=result["rss_kb"] / mib,
    )


@pytest.fixture(scope="module")
def fixture_payloads(streams):
    return bench_streams.payload_lines(streams.get("fixture:"))


@pytest.mark.parametrize(
    "parser",
    [
        "fj_payload_parse",
        "cffi call overhead",
        "core.validate",
        "orjson.loads",
        "json.loads",
    ],
)
def test_parser(benchmark, request, fixture_payloads, parser):
    """P1: one parser over every payload of jobs-10k.jsonl (MB/s in
    extra_info; target: fj_payload_parse >= 1 GB/s and >= 3x orjson)."""
    if "P1" not in selected_scenarios(request.config):
        pytest.skip("P1 not selected")
    benchmark.group = f"P1 parse {bench_streams.FIXTURE_NAME}"
    runs, release = sc.parser_functions(fixture_payloads)
    try:
        accepted = benchmark.pedantic(runs[parser], rounds=10, iterations=1, warmup_rounds=1)
    finally:
        release()
    # Every payload of the capture is a valid response object.
    assert accepted == len(fixture_payloads)
    nbytes = sum(len(line) for line in fixture_payloads)
    benchmark.extra_info["bytes"] = nbytes
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        benchmark.extra_info["mb_per_s"] = nbytes / stats.stats.median / 1e6
