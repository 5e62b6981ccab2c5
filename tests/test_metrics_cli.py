"""End-to-end tests of ``flux-journal metrics``: the installed console
script serving /metrics on 127.0.0.1, scraped over HTTP and read with
prometheus_client's parser; every count is compared with one worked out
from the same journal by tests/metrics_oracle.py."""

import signal
import socket
import time

import pytest

from flux_journal.cli import simulated_instance
from flux_journal.metrics.histogram import Histogram
from flux_journal.sim import JOB_SENTINEL, RESOURCE_SENTINEL

import metrics_oracle
from metrics_helpers import Exporter, get, scrape, values


def events_of(samples, journal):
    """{event name: events consumed} of one journal."""
    return {
        dict(labels)["name"]: value
        for (name, labels), value in samples.items()
        if name == "flux_journal_events_total" and dict(labels)["journal"] == journal
    }


def flux_only(samples):
    return {key: value for key, value in samples.items() if key[0].startswith("flux_")}


def total_events(samples, journal):
    return sum(events_of(samples, journal).values())


def check_jobs(samples, expected):
    """Every job count of a scrape against the oracle's."""
    assert events_of(samples, "jobs") == expected["events"]
    assert values(samples, "flux_jobs", "state") == expected["states"]
    assert values(samples, "flux_jobs_finished_total", "result") == expected["results"]
    for metric, observed in (("flux_job_queue_seconds", expected["queue"]),
                             ("flux_job_run_seconds", expected["run"])):
        reference = Histogram()
        for value in observed:
            reference.observe(value)
        buckets, total = reference.cumulative()
        got = values(samples, f"{metric}_bucket", "le")
        assert {float(le): count for le, count in got.items()} == {
            float(le): count for le, count in buckets
        }
        assert samples[(f"{metric}_count", ())] == len(observed)
        assert samples[(f"{metric}_sum", ())] == pytest.approx(total)


def replay(path, journal, every):
    """Start the exporter on a capture; return it once it has consumed
    *every* event."""
    exporter = Exporter("--replay", str(path)).start()
    try:
        samples = exporter.wait_for(
            lambda s: total_events(s, journal) == every, "every event of the capture"
        )
    except BaseException:
        exporter.stop()
        raise
    return exporter, samples


def test_replay_of_job_fixture(fixtures_dir):
    path = fixtures_dir / "jobs-full.jsonl"
    lines = metrics_oracle.read_lines(path)
    expected = metrics_oracle.expected_jobs(lines)
    exporter, samples = replay(path, "jobs", sum(expected["events"].values()))
    with exporter:
        # a replay serves its final values until interrupted (the
        # process_* metrics of the exporter's own process move on)
        time.sleep(0.5)
        assert flux_only(scrape(exporter.port)) == flux_only(samples)
        check_jobs(samples, expected)
        assert samples[("flux_journal_history_complete", ())] == 1.0
        stamps = [ts for life in metrics_oracle.job_lives(lines).values() for ts, _, _ in life]
        assert samples[("flux_journal_last_event_timestamp_seconds",
                        (("journal", "jobs"),))] == pytest.approx(max(stamps))
        assert values(samples, "flux_journal_errors_total", "kind") == {}
        assert not values(samples, "flux_resource_ranks", "state")
    assert exporter.returncode == 128 + signal.SIGTERM
    assert "history consumed" in exporter.stderr


def test_replay_of_resource_fixture(fixtures_dir):
    path = fixtures_dir / "resource-many.jsonl"
    expected = metrics_oracle.expected_resource(metrics_oracle.read_lines(path))
    exporter, samples = replay(path, "resource", sum(expected["events"].values()))
    with exporter:
        assert events_of(samples, "resource") == expected["events"]
        assert values(samples, "flux_resource_ranks", "state") == expected["ranks"]
        assert samples[("flux_journal_history_complete", ())] == 1.0
        assert not values(samples, "flux_jobs", "state")
    assert exporter.returncode == 128 + signal.SIGTERM


def test_sim_history_then_live_events():
    njobs, seed = 400, 3
    jobs_handle, _ = simulated_instance("jobs", njobs, seed)
    res_handle, _ = simulated_instance("resource", njobs, seed)
    expected = metrics_oracle.expected_jobs(
        jobs_handle.jobs.workload.history(full=True) + [JOB_SENTINEL]
    )
    expected_res = metrics_oracle.expected_resource(
        res_handle.resources.workload.history() + [RESOURCE_SENTINEL]
    )
    # A live event every 1000 s: nothing but the history during the check.
    with Exporter("--sim", str(njobs), "--seed", str(seed), "--sim-rate", "0.001") as exporter:
        samples = exporter.wait_history()
        check_jobs(samples, expected)
        assert sum(values(samples, "flux_jobs", "state").values()) == sum(
            expected["states"].values()
        )
        assert values(samples, "flux_resource_ranks", "state") == expected_res["ranks"]
        assert events_of(samples, "resource") == expected_res["events"]
    assert exporter.returncode == 128 + signal.SIGTERM

    # Live events are followed: counts grow, and every job stays counted
    # in exactly one state.
    with Exporter("--sim", "50", "--sim-rate", "100") as exporter:
        first = exporter.wait_history()
        later = exporter.wait_for(
            lambda s: total_events(s, "jobs") > total_events(first, "jobs") + 50,
            "live job events",
        )
        states = values(later, "flux_jobs", "state")
        events = events_of(later, "jobs")
        # a scrape may land between two events of one job, never in a
        # job's middle: submits counted = jobs counted
        assert abs(sum(states.values()) - events["submit"]) <= 1
        assert total_events(later, "resource") > total_events(first, "resource")
    assert exporter.returncode == 128 + signal.SIGTERM


def raw_request(port, data, timeout=10.0):
    """Send raw bytes; return what the server answers before closing."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def test_slow_and_bad_clients_do_not_stop_anything():
    with Exporter("--sim", "100", "--sim-rate", "200") as exporter:
        before = exporter.wait_history()
        silent = socket.create_connection(("127.0.0.1", exporter.port), timeout=10)
        half = socket.create_connection(("127.0.0.1", exporter.port), timeout=10)
        try:
            half.sendall(b"GET /metr")  # and then nothing more
            for garbage in (b"NONSENSE\r\n\r\n", b"\x00\xff garbage\r\n\r\n",
                            b"GET /metrics HTTP/x.y\r\n\r\n", b"GET\r\n" + b"x" * 70000):
                # a status line, or for a one-word line an HTTP/0.9 answer
                answer = raw_request(exporter.port, garbage).split(b"\n", 1)[0]
                assert answer.startswith((b"HTTP/1.0 400", b"400", b"HTTP/1.0 414")), answer
            assert get(exporter.port, "/metrics", method="POST")[0] == 405
            assert get(exporter.port, "/metrics", method="HEAD")[0] == 405
            assert get(exporter.port, "/nope")[0] == 404
            assert get(exporter.port, "/metrics/x")[0] == 404
            status, page = get(exporter.port, "/")
            assert status == 200 and 'href="/metrics"' in page
            # with both stalled clients still connected, events are
            # consumed and /metrics answers
            started = time.monotonic()
            after = exporter.wait_for(
                lambda s: total_events(s, "jobs") > total_events(before, "jobs") + 100,
                "events consumed while clients stall",
            )
            assert time.monotonic() - started < 30
            assert values(after, "flux_journal_errors_total", "kind") == {}
        finally:
            silent.close()
            half.close()
        assert scrape(exporter.port)[("flux_journal_history_complete", ())] == 1.0
    assert exporter.returncode == 128 + signal.SIGTERM


def test_sigint_stops_with_130():
    with Exporter("--sim", "10") as exporter:
        exporter.wait_history()
        assert exporter.stop(signal.SIGINT) == 128 + signal.SIGINT


def test_address_in_use_is_a_clear_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with Exporter("--sim", "10", port=port) as exporter:
            exporter.proc.wait(30)
            status = exporter.stop()
    assert status == 1
    assert f"cannot listen on 127.0.0.1:{port}" in exporter.stderr


@pytest.mark.parametrize("listen", ["9464", "host:", ":x", "127.0.0.1:70000"])
def test_bad_listen_is_a_usage_error(listen):
    exporter = Exporter("--sim", "10")
    exporter.argv[-1] = listen
    with exporter:
        exporter.proc.wait(30)
    assert exporter.returncode == 2
    assert "--listen" in exporter.stderr


def test_without_a_source_it_names_the_options():
    with Exporter() as exporter:  # and no FLUX_URI
        exporter.proc.wait(30)
    assert exporter.returncode == 1
    assert "FLUX_URI is not set" in exporter.stderr and "--sim" in exporter.stderr


def test_missing_replay_file(tmp_path):
    with Exporter("--replay", str(tmp_path / "none.jsonl")) as exporter:
        exporter.proc.wait(30)
    assert exporter.returncode == 1
    assert "cannot read" in exporter.stderr


def test_malformed_responses_are_counted(tmp_path, fixtures_dir):
    lines = metrics_oracle.read_lines(fixtures_dir / "jobs-active.jsonl")
    capture = tmp_path / "bad.jsonl"
    capture.write_text("\n".join(lines[:2] + ['{"id":1,"events":[{"timest', "[]"] + lines[2:])
                       + "\n", encoding="utf-8")
    expected = metrics_oracle.expected_jobs(lines)
    exporter, samples = replay(capture, "jobs", sum(expected["events"].values()))
    with exporter:
        check_jobs(samples, expected)
        assert values(samples, "flux_journal_errors_total", "kind") == {"malformed_response": 2}
