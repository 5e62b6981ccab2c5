"""End-to-end tests of the ``flux-journal`` command (``jobs``, ``resource``).

Every test runs the real command in a subprocess (``python -m
flux_journal``, plus one check of the installed console script) against a
simulated instance (``--sim``) or a replay of the captured streams in
``tests/fixtures``, and checks its output event by event
against what flux-journal's consumer delivers from the same source.
"""

import errno
import json
import os
import pty
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from flux_journal import JournalConsumer
from flux_journal.cli import DEFAULT_SIM_JOBS, simulated_instance
from flux_journal.cli.argtypes import join_relative_times
from flux_journal.job import JobID
from flux_journal.sim import SimFlux, Workload
from journal_helpers import (
    FAKE_FLUX,
    cli_env,
    command,
    journal_events,
    late_cuts,
    paced_env,
    run_cli,
)

TOPICS = {"jobs": "job-manager.events-journal", "resource": "resource.journal"}


# ----------------------------------------------------------------------
# Helpers








def lines_of(data):
    """Decoded complete lines of output bytes (a partial last line, left
    by a killed process, is not a delivered event and is dropped)."""
    text = data.decode("utf-8")
    lines = text.split("\n")
    return lines[:-1]


def replay(path, journal):
    """A handle replaying a capture the way ``--replay`` does."""
    return SimFlux.replay(str(path), topic=TOPICS[journal], end=errno.ENODATA)


def expected_text(event, jobs=True):
    """An event as the text format prints it (ASCII F58, raw time)."""
    parts = [f"{event.timestamp:11.6f}"]
    if jobs:
        parts.append(event.jobid.f58plain)
    parts.append(event.name)
    for key, value in event.context.items():
        parts.append(f"{key}={json.dumps(value, separators=(',', ':'), ensure_ascii=False)}")
    return " ".join(parts)


def expected_record(event, jobs=True):
    """An event as the JSON format writes it."""
    record = {"timestamp": event.timestamp, "name": event.name, "context": event.context}
    if jobs:
        record["jobid"] = int(event.jobid)
        if event.jobspec is not None:
            record["jobspec"] = event.jobspec
    if getattr(event, "R", None) is not None:
        record["R"] = event.R
    return record


def json_records(data):
    """Each output line parsed as JSON (orjson: same values as json, and
    quicker on 100,000 lines)."""
    return [orjson.loads(line) for line in lines_of(data)]


def assert_records(data, events, jobs=True):
    """JSON output equals *events*, one line each, in order (timestamps
    bit for bit, keys exactly those expected)."""
    records = json_records(data)
    expected = [expected_record(event, jobs) for event in events]
    if records != expected:
        assert len(records) == len(expected)
        for i, (record, want) in enumerate(zip(records, expected)):
            assert record == want, f"event {i}"
    assert all(type(record["timestamp"]) is float for record in records)


@pytest.fixture(scope="module")
def sim_jobs():
    """History of the default simulated instance, 300 jobs, seed 7."""
    return journal_events("jobs", simulated_instance("jobs", 300, 7)[0])


@pytest.fixture(scope="module")
def full_jobs(fixtures_dir):
    """jobs-full.jsonl: (history, whole stream) per the consumer."""
    path = fixtures_dir / "jobs-full.jsonl"
    return (
        journal_events("jobs", replay(path, "jobs")),
        journal_events("jobs", replay(path, "jobs"), follow=True),
    )


@pytest.fixture(scope="module")
def big_jobs_json(fixtures_dir):
    """JSON lines of an uninterrupted run over jobs-10k.jsonl."""
    proc = run_cli("jobs", "--replay", fixtures_dir / "jobs-10k.jsonl", "--format", "json")
    lines = lines_of(proc.stdout)
    assert len(lines) == 100000
    return lines


# ----------------------------------------------------------------------
# Text and JSON output, event by event


def test_sim_text_output_matches_consumer(sim_jobs):
    proc = run_cli("jobs", "--sim", "300", "--seed", "7")
    assert lines_of(proc.stdout) == [expected_text(e) for e in sim_jobs]
    assert len(sim_jobs) > 2000


def test_default_sim_is_documented_size_and_ends_by_itself():
    proc = run_cli("jobs", "--sim", timeout=60)
    events = journal_events("jobs", simulated_instance("jobs", DEFAULT_SIM_JOBS, 0)[0])
    assert len({int(e.jobid) for e in events}) == DEFAULT_SIM_JOBS
    assert lines_of(proc.stdout) == [expected_text(e) for e in events]


def test_sim_json_output_matches_consumer(sim_jobs):
    proc = run_cli("jobs", "--sim", "300", "--seed", "7", "--format", "json")
    assert_records(proc.stdout, sim_jobs)
    records = json_records(proc.stdout)
    assert any("jobspec" in r for r in records) and any("R" in r for r in records)
    assert all(("jobspec" in r) == (r["name"] == "submit") for r in records)


@pytest.mark.parametrize("name", ["jobs-full", "jobs-active"])
def test_replay_job_fixtures_json(fixtures_dir, name):
    path = fixtures_dir / f"{name}.jsonl"
    proc = run_cli("jobs", "--replay", path, "--format", "json")
    assert_records(proc.stdout, journal_events("jobs", replay(path, "jobs")))


def test_replay_big_history_json(fixtures_dir, big_jobs_json):
    """100,000 events: every one as the consumer delivers it."""
    events = journal_events("jobs", replay(fixtures_dir / "jobs-10k.jsonl", "jobs"))
    assert_records(("\n".join(big_jobs_json) + "\n").encode(), events)


def test_replay_follow_includes_live_part(fixtures_dir, full_jobs):
    history, stream = full_jobs
    path = fixtures_dir / "jobs-full.jsonl"
    proc = run_cli("jobs", "--replay", path, "--follow")
    assert lines_of(proc.stdout) == [expected_text(e) for e in stream]
    assert len(stream) > len(history)


@pytest.mark.parametrize("name", ["resource", "resource-many"])
def test_replay_resource_fixtures(fixtures_dir, name):
    path = fixtures_dir / f"{name}.jsonl"
    history = journal_events("resource", replay(path, "resource"))
    stream = journal_events("resource", replay(path, "resource"), follow=True)
    text = run_cli("resource", "--replay", path)
    assert lines_of(text.stdout) == [expected_text(e, jobs=False) for e in history]
    data = run_cli("resource", "--replay", path, "--format", "json", "--follow")
    assert_records(data.stdout, stream, jobs=False)
    defines = [r for r in json_records(data.stdout) if r["name"] == "resource-define"]
    assert defines and all("R" in r for r in defines)


def test_resource_sim():
    events = journal_events("resource", simulated_instance("resource", 200, 3)[0])
    proc = run_cli("resource", "--sim", "200", "--seed", "3", "--format", "json")
    assert_records(proc.stdout, events, jobs=False)


def test_f58_prefix_follows_locale(sim_jobs):
    env = cli_env(FLUX_F58_FORCE_ASCII=None, LC_ALL="C.UTF-8")
    proc = run_cli("jobs", "--sim", "300", "--seed", "7", env=env)
    first = lines_of(proc.stdout)[0].split()
    assert first[1] == "\u0192" + sim_jobs[0].jobid.f58plain[1:]


def test_json_is_jq_friendly(sim_jobs):
    """One compact object per line, UTF-8, jobid a plain integer."""
    proc = run_cli("jobs", "--sim", "300", "--seed", "7", "--format", "json")
    for line in lines_of(proc.stdout)[:50]:
        assert line.startswith('{"timestamp":') and ", " not in line[:40]
        assert isinstance(json.loads(line)["jobid"], int)


# ----------------------------------------------------------------------
# Time formats and colour


def test_time_format_iso(fixtures_dir, full_jobs):
    history = full_jobs[0]
    proc = run_cli("jobs", "--replay", fixtures_dir / "jobs-full.jsonl", "--time-format", "iso")
    pattern = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
    for line, event in zip(lines_of(proc.stdout), history):
        stamp = line.split()[0]
        assert pattern.match(stamp)
        from datetime import datetime

        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        assert abs(parsed - event.timestamp) <= 1e-6
    local = run_cli(
        "jobs",
        "--replay",
        fixtures_dir / "jobs-full.jsonl",
        "--time-format",
        "iso",
        env=cli_env(TZ="Asia/Kolkata"),
    )
    assert lines_of(local.stdout)[0].split()[0].endswith("+05:30")


def test_time_format_offset(fixtures_dir, full_jobs):
    history = full_jobs[0]
    proc = run_cli("jobs", "--replay", fixtures_dir / "jobs-full.jsonl", "--time-format", "offset")
    lines = lines_of(proc.stdout)
    assert lines[0].split()[0] == "0.000000"
    for line, event in zip(lines, history):
        assert line.split()[0] == f"{event.timestamp - history[0].timestamp:.6f}"
        assert line[15:] == expected_text(event)[len(f"{event.timestamp:11.6f}"):]


def test_time_format_human(fixtures_dir, full_jobs):
    history = full_jobs[0]
    proc = run_cli("jobs", "--replay", fixtures_dir / "jobs-full.jsonl", "--time-format", "human")
    lines = lines_of(proc.stdout)
    assert len(lines) == len(history)
    assert re.match(r"^\[[A-Z][a-z]{2}\d\d \d\d:\d\d\] ", lines[0])
    assert lines[0].startswith("[Nov27 20:53]")
    deltas = [line for line in lines if re.match(r"^\[ *\+\d+\.\d{6}\] ", line)]
    assert len(deltas) >= len(lines) - 5


def test_color_always_never_auto(fixtures_dir):
    path = fixtures_dir / "resource.jsonl"
    colored = run_cli("resource", "--replay", path, "--color", "always").stdout
    assert b"\x1b[33mrestart\x1b[0m" in colored and b"\x1b[34midset\x1b[0m" in colored
    assert b"\x1b[32m" in colored
    plain = run_cli("resource", "--replay", path, "--color", "never").stdout
    auto = run_cli("resource", "--replay", path).stdout  # stdout is a pipe
    assert b"\x1b" not in plain and auto == plain
    stripped = re.sub(rb"\x1b\[[0-9;]*m", b"", colored)
    assert stripped == plain
    exception = run_cli(
        "jobs", "--replay", fixtures_dir / "jobs-full.jsonl", "--color", "--name", "exception"
    ).stdout
    assert b"\x1b[1m\x1b[31mexception\x1b[0m" in exception


# ----------------------------------------------------------------------
# Filters


def test_name_filters(sim_jobs):
    proc = run_cli("jobs", "--sim", "300", "--seed", "7", "--name", "submit,clean",
                   "--format", "json")
    assert_records(proc.stdout, [e for e in sim_jobs if e.name in ("submit", "clean")])
    proc = run_cli("jobs", "--sim", "300", "--seed", "7", "--name", "submit", "--name", "alloc")
    assert lines_of(proc.stdout) == [
        expected_text(e) for e in sim_jobs if e.name in ("submit", "alloc")
    ]
    proc = run_cli(
        "jobs", "--sim", "300", "--seed", "7", "--exclude", "validate,depend", "--exclude", "memo"
    )
    assert lines_of(proc.stdout) == [
        expected_text(e) for e in sim_jobs if e.name not in ("validate", "depend", "memo")
    ]
    proc = run_cli(
        "jobs", "--sim", "300", "--seed", "7", "--name", "submit,alloc", "--exclude", "alloc"
    )
    assert lines_of(proc.stdout) == [expected_text(e) for e in sim_jobs if e.name == "submit"]


def test_resource_name_filter(fixtures_dir):
    path = fixtures_dir / "resource-many.jsonl"
    stream = journal_events("resource", replay(path, "resource"), follow=True)
    proc = run_cli("resource", "--replay", path, "--follow", "--name", "drain", "--format", "json")
    assert_records(proc.stdout, [e for e in stream if e.name == "drain"], jobs=False)


def test_jobid_in_every_encoding(fixtures_dir, full_jobs):
    history = full_jobs[0]
    path = fixtures_dir / "jobs-full.jsonl"
    jobid = history[len(history) // 2].jobid
    wanted = [expected_text(e) for e in history if e.jobid == jobid]
    assert len(wanted) >= 5
    encodings = {
        jobid.f58plain,
        "\u0192" + jobid.f58plain[1:],
        jobid.dec,
        jobid.hex,
        jobid.dothex,
        jobid.kvs,
    }
    for text in encodings:
        proc = run_cli("jobs", "--replay", path, "--jobid", text)
        assert lines_of(proc.stdout) == wanted, text
    other = history[0].jobid
    proc = run_cli("jobs", "--replay", path, "--jobid", jobid.dec, "--jobid", other.f58plain)
    assert lines_of(proc.stdout) == [
        expected_text(e) for e in history if e.jobid in (jobid, other)
    ]


def test_invalid_jobid_is_a_usage_error(fixtures_dir):
    proc = run_cli("jobs", "--sim", "--jobid", "fOOOO", check_rc=2)
    assert b"not a valid Flux job id" in proc.stderr and proc.stdout == b""
    assert b"Traceback" not in proc.stderr


def test_since(full_jobs, fixtures_dir):
    history = full_jobs[0]
    path = fixtures_dir / "jobs-full.jsonl"
    cut = history[len(history) // 3].timestamp
    proc = run_cli("jobs", "--replay", path, "--since", repr(cut))
    want = [expected_text(e) for e in history if e.timestamp > cut]
    assert lines_of(proc.stdout) == want
    from datetime import datetime, timezone

    iso = datetime.fromtimestamp(int(cut), timezone.utc).isoformat()
    proc = run_cli("jobs", "--replay", path, "--since", iso)
    assert lines_of(proc.stdout) == [
        expected_text(e) for e in history if e.timestamp > int(cut)
    ]
    bad = run_cli("jobs", "--sim", "--since", "yesterday-ish", check_rc=2)
    assert b"--since" in bad.stderr


def test_no_history(fixtures_dir):
    handle = simulated_instance("jobs", 300, 7)[0]
    consumer = JournalConsumer(handle, full=False).start()
    active = []
    try:
        while True:
            active.append(consumer.poll(0.3))
    except TimeoutError:
        pass  # no sentinel without full history: the active jobs' events came
    proc = run_cli("jobs", "--sim", "300", "--seed", "7", "--no-history", "--format", "json")
    assert_records(proc.stdout, active)
    assert 0 < len(active) < 300 * 3
    path = fixtures_dir / "resource.jsonl"
    stream = journal_events("resource", replay(path, "resource"), follow=True)
    history = journal_events("resource", replay(path, "resource"))
    assert run_cli("resource", "--replay", path, "--no-history").stdout == b""
    proc = run_cli("resource", "--replay", path, "--no-history", "--follow")
    assert lines_of(proc.stdout) == [expected_text(e, False) for e in stream[len(history):]]


# ----------------------------------------------------------------------
# Statistics and progress


def _stats(*args):
    proc = subprocess.run(command(*args, "--stats"), env=cli_env(), capture_output=True,
                          timeout=60, check=True)
    lines = proc.stderr.decode().splitlines()
    assert all(line.startswith("flux-journal: ") for line in lines)
    stats = dict(line[len("flux-journal: "):].split(": ", 1) for line in lines)
    return lines_of(proc.stdout), stats


def test_stats(sim_jobs, fixtures_dir):
    jobid = sim_jobs[100].jobid
    out, stats = _stats("jobs", "--sim", "300", "--seed", "7", "--jobid", jobid.dec)
    delivered = sum(1 for e in sim_jobs if e.jobid == jobid)
    assert len(out) == delivered > 3
    assert int(stats["events delivered"]) == delivered
    assert int(stats["events filtered"]) == len(sim_jobs) - delivered
    assert int(stats["events received"]) == len(sim_jobs)
    assert int(stats["responses"]) > 300 and int(stats["bytes parsed"]) > 100000
    assert float(stats["elapsed"].split()[0]) > 0 and float(stats["events/s"]) > 0
    assert "simulated" in stats["source"]
    # the job manager filters names itself: they never reach the consumer
    out, stats = _stats("jobs", "--sim", "300", "--seed", "7", "--name", "submit")
    assert int(stats["events delivered"]) == len(out) == 300
    assert int(stats["events received"]) == 300
    # the resource journal filters in C: counted as filtered
    path = fixtures_dir / "resource-many.jsonl"
    history = journal_events("resource", replay(path, "resource"))
    stream = journal_events("resource", replay(path, "resource"), follow=True)
    out, stats = _stats("resource", "--replay", path, "--exclude", "drain")
    drains = sum(1 for e in history if e.name == "drain")
    # counted by the consumer as they arrive, including live ones that
    # came before the stop at the sentinel took effect
    assert drains <= int(stats["events filtered"]) <= sum(1 for e in stream if e.name == "drain")
    assert int(stats["events delivered"]) == len(out) == len(history) - drains


def _run_on_pty(args):
    """Run with stderr on a pseudo-terminal; return (stderr bytes, rc,
    seconds)."""
    master, slave = pty.openpty()
    started = time.monotonic()
    proc = subprocess.Popen(
        command(*args), env=cli_env(), stdout=subprocess.DEVNULL, stderr=slave
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the last writer closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    rc = proc.wait(60)
    return b"".join(chunks), rc, time.monotonic() - started


def test_progress_only_on_a_terminal(fixtures_dir):
    path = fixtures_dir / "jobs-10k.jsonl"
    shown, rc, seconds = _run_on_pty(["jobs", "--replay", path])
    assert rc == 0
    if seconds < 0.5 and not shown:
        pytest.skip("history read too fast for a progress update")
    assert b"events received" in shown
    assert shown.endswith(b"\r\x1b[K")  # erased at the end
    quiet, rc, _ = _run_on_pty(["jobs", "--replay", path, "--quiet"])
    assert rc == 0 and quiet == b""


# ----------------------------------------------------------------------
# Checkpoints


def read_checkpoint(path):
    """The number of events a checkpoint file covers (0 if none)."""
    if not path.exists():
        return 0
    return json.loads(path.read_text())["events"]


def test_checkpoint_resume(tmp_path, fixtures_dir, full_jobs):
    history, stream = full_jobs
    path = fixtures_dir / "jobs-full.jsonl"
    ck = tmp_path / "pos.json"
    first = run_cli("jobs", "--replay", path, "--format", "json", "--checkpoint", ck)
    assert_records(first.stdout, history)
    state = json.loads(ck.read_text())
    assert state["events"] == len(history) and state["journal"] == "jobs"
    assert not (tmp_path / "pos.json.tmp").exists()
    again = run_cli("jobs", "--replay", path, "--checkpoint", ck)
    assert again.stdout == b""
    rest = run_cli("jobs", "--replay", path, "--follow", "--format", "json", "--checkpoint", ck)
    assert_records(rest.stdout, stream[len(history):])
    assert read_checkpoint(ck) == len(stream)


def test_checkpoint_without_history_ends_when_nothing_is_new(tmp_path):
    """--no-history delivers no sentinel; a resumed run whose active jobs
    have nothing new still sees the history end, and stops."""
    ck = tmp_path / "ck.json"
    args = ("jobs", "--sim", "300", "--seed", "7", "--no-history", "--checkpoint", ck)
    first = run_cli(*args)
    assert lines_of(first.stdout) and read_checkpoint(ck) == len(lines_of(first.stdout))
    assert run_cli(*args, timeout=20).stdout == b""


def test_checkpoint_with_equal_timestamps(tmp_path):
    """Stop between two events sharing a timestamp, resume: nothing lost,
    nothing repeated."""
    handle = simulated_instance("jobs", 400, 11)[0]
    events = journal_events("jobs", handle)
    ties = [i for i in range(1, len(events)) if events[i].timestamp == events[i - 1].timestamp]
    assert len(ties) >= 3, "the simulated instance has equal timestamps"
    for tie in ties[:3]:
        # a checkpoint as a run stopped right after the first of the pair
        # would have left it
        cut = tie - 1
        ck = tmp_path / f"ck{tie}.json"
        ck.write_text(
            json.dumps(
                {
                    "format": "flux-journal checkpoint",
                    "version": 1,
                    "journal": "jobs",
                    "cursor": events[cut].cursor,
                    "timestamp": events[cut].timestamp,
                    "events": cut + 1,
                }
            )
        )
        ck.chmod(0o600)  # as flux-journal writes it: no warning on stderr
        proc = run_cli("jobs", "--sim", "400", "--seed", "11", "--format", "json",
                       "--checkpoint", ck)
        assert_records(proc.stdout, events[cut + 1 :])
        assert read_checkpoint(ck) == len(events)






def test_resume_keeps_late_events_in_flight(tmp_path, fixtures_dir, fake_flux, full_jobs):
    """jobs-full.jsonl's live part has validate events ~12 ms older than
    events sent before them.  Stop a following run (SIGINT) at each point
    where such an event is still to come; the resumed run writes exactly
    the rest of the stream: the late event is not lost, nothing repeats."""
    history, stream = full_jobs
    path = fixtures_dir / "jobs-full.jsonl"
    expected = [expected_record(e) for e in stream]
    for cut in late_cuts(stream):
        ck = tmp_path / f"ck{cut}.json"
        out = tmp_path / f"run{cut}.jsonl"
        # the source sends the history, then cut - len(history) live
        # responses of one event each, then nothing: the run is
        # interrupted exactly after `cut` events
        env = paced_env(fake_flux, path, 0.001, live=cut - len(history))
        with open(out, "wb") as stream_out:
            proc = subprocess.Popen(
                command("jobs", "--uri", "sim://paced", "--follow", "--format", "json",
                        "--checkpoint", ck),
                env=env, stdout=stream_out, stderr=subprocess.PIPE,
            )
            _wait_for_lines(out, cut, proc)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(10) == 130
            assert proc.stderr.read() == b""
            proc.stderr.close()
        assert json_records(out.read_bytes()) == expected[:cut]
        assert read_checkpoint(ck) == cut
        rest = run_cli("jobs", "--replay", path, "--follow", "--format", "json",
                       "--checkpoint", ck)
        assert json_records(rest.stdout) == expected[cut:], f"resumed after {cut} events"
        assert read_checkpoint(ck) == len(stream)


def test_checkpoint_errors(tmp_path):
    ck = tmp_path / "ck.json"
    run_cli("resource", "--sim", "20", "--checkpoint", ck)
    proc = run_cli("jobs", "--sim", "20", "--checkpoint", ck, check_rc=1)
    assert b"resource journal" in proc.stderr and proc.stdout == b""
    ck.write_text("{not json")
    proc = run_cli("jobs", "--sim", "20", "--checkpoint", ck, check_rc=1)
    assert b"not usable" in proc.stderr and b"Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1
    proc = run_cli("jobs", "--sim", "20", "--checkpoint", tmp_path / "no" / "ck", check_rc=1)
    assert proc.stderr.startswith(b"flux-journal: cannot write checkpoint ")
    assert len(proc.stderr.splitlines()) == 1


def _kill_at(args, out_path, target_bytes, env=None):
    """Start flux-journal writing to out_path; SIGKILL it once the output
    reaches target_bytes (or let it finish).  Returns its exit status."""
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(command(*args), env=env or cli_env(), stdout=out,
                                stderr=subprocess.PIPE)
        while proc.poll() is None:
            if out_path.stat().st_size >= target_bytes:
                proc.kill()
                break
            time.sleep(0.001)
        proc.wait(60)
        assert b"Traceback" not in proc.stderr.read()
        proc.stderr.close()
    return proc.returncode


def _kill_and_resume(tmp_path, full, ck, args, next_target, *, kills_wanted, env=None,
                     final_rc=0):
    """Run ``args(attempt)`` (which checkpoints into *ck*) again and
    again, SIGKILLing each run once its output reaches line
    ``next_target(done)`` (*done*: the events the checkpoint covers), then
    once more to the end (exit status *final_rc*).

    Each run must continue exactly at the checkpoint, which never runs
    ahead of the output: the checkpointed parts of all runs, joined, equal
    *full* (the lines of one uninterrupted run), and a run repeats only
    what the one before had not checkpointed.  Returns the checkpoints
    the runs after the first resumed from.
    """
    done = 0
    joined = []
    kills = 0
    resumed_from = []
    for attempt in range(3 * kills_wanted):
        if done == len(full) or kills == kills_wanted:
            break
        if attempt:
            resumed_from.append(done)
        out = tmp_path / f"run{attempt}.out"
        target = sum(len(line.encode()) + 1 for line in full[done : next_target(done)])
        rc = _kill_at(args(attempt), out, target, env)
        kills += rc == -signal.SIGKILL
        lines = lines_of(out.read_bytes())
        # contiguous: starts exactly at the checkpoint, skips nothing
        assert lines == full[done : done + len(lines)], f"run {attempt}"
        now = read_checkpoint(ck)
        # the checkpoint never runs ahead of what was written
        assert done <= now <= done + len(lines)
        joined.extend(lines[: now - done])
        done = now
    assert kills >= kills_wanted // 2
    resumed_from.append(done)
    final = subprocess.run(command(*args(0)), env=env or cli_env(), capture_output=True,
                           timeout=60, check=False)
    assert final.returncode == final_rc, final.stderr
    joined.extend(lines_of(final.stdout))
    assert joined == full
    return resumed_from


@pytest.mark.slow
def test_checkpoint_survives_sigkill_at_random_points(tmp_path, fixtures_dir, big_jobs_json):
    """Kill runs reading a big history at random points, with checkpoints
    after every write or every 50 ms."""
    full = big_jobs_json
    rng = random.Random(20261127)
    ck = tmp_path / "ck.json"

    def args(attempt):
        return ["jobs", "--replay", fixtures_dir / "jobs-10k.jsonl", "--format", "json",
                "--checkpoint", ck, "--checkpoint-interval", ("0", "0.05")[attempt % 2]]

    def next_target(done):
        return done + rng.randrange(max(1, (len(full) - done) // 20), len(full) - done + 1)

    _kill_and_resume(tmp_path, full, ck, args, next_target, kills_wanted=10)


def test_checkpoint_survives_sigkill_in_out_of_order_live_part(tmp_path, fixtures_dir,
                                                               fake_flux, full_jobs):
    """Kill runs following jobs-full.jsonl, whose live events come one
    response at a time and partly out of time order: first where a late
    event is still in flight, then at random points."""
    stream = full_jobs[1]
    path = fixtures_dir / "jobs-full.jsonl"
    env = paced_env(fake_flux, path, 0.005)
    # the fake instance ends its stream after the capture's last line,
    # unasked: exit 3 after writing everything
    whole = run_cli("jobs", "--uri", "sim://paced", "--follow", "--format", "json", env=env,
                    check_rc=3)
    assert whole.stderr.decode().splitlines() == [
        "flux-journal: lost the job-manager journal of sim://paced: the instance ended the "
        "stream (ENODATA: it shut down or unloaded the service)"
    ]
    full = lines_of(whole.stdout)
    assert json_records("\n".join(full + [""]).encode()) == [expected_record(e) for e in stream]
    late = late_cuts(stream)
    rng = random.Random(7)
    ck = tmp_path / "ck.json"

    def args(attempt):
        interval = "0" if attempt < len(late) else ("0", "0.05")[attempt % 2]
        return ["jobs", "--uri", "sim://paced", "--follow", "--format", "json",
                "--checkpoint", ck, "--checkpoint-interval", interval]

    def next_target(done):
        ahead = [cut for cut in late if cut > done]
        if ahead:
            return ahead[0] + 1
        return done + rng.randrange(1, len(full) - done + 1)

    resumed_from = _kill_and_resume(tmp_path, full, ck, args, next_target, kills_wanted=8,
                                    env=env, final_rc=3)
    assert set(resumed_from) & set(late), resumed_from


# ----------------------------------------------------------------------
# Signals and pipes


def _wait_for_lines(path, count, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        time.sleep(0.01)
    raise AssertionError("no output")


def test_sigint_while_following(tmp_path):
    history = journal_events("jobs", simulated_instance("jobs", 50, 0)[0])
    ck = tmp_path / "ck.json"
    out = tmp_path / "out.jsonl"
    with open(out, "wb") as stream:
        proc = subprocess.Popen(
            command("jobs", "--sim", "50", "--follow", "--sim-rate", "200", "--format",
                    "json", "--checkpoint", ck),
            env=cli_env(),
            stdout=stream,
            stderr=subprocess.PIPE,
        )
        _wait_for_lines(out, len(history) + 20, proc)
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(10)
        stderr = proc.stderr.read()
        proc.stderr.close()
    assert rc == 130, stderr
    assert stderr == b""
    data = out.read_bytes()
    assert data.endswith(b"\n")
    records = json_records(data)
    assert len(records) > len(history)
    assert records[: len(history)] == [expected_record(e) for e in history]
    assert read_checkpoint(ck) == len(records)  # flushed, then checkpointed


def test_sigint_during_history_then_resume(tmp_path, fixtures_dir, big_jobs_json):
    ck = tmp_path / "ck.json"
    out = tmp_path / "out.jsonl"
    args = ("jobs", "--replay", fixtures_dir / "jobs-10k.jsonl", "--format", "json",
            "--checkpoint", ck, "--checkpoint-interval", "1000")
    with open(out, "wb") as stream:
        proc = subprocess.Popen(command(*args), env=cli_env(), stdout=stream,
                                stderr=subprocess.PIPE)
        _wait_for_lines(out, 1, proc)
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(10)
        stderr = proc.stderr.read()
        proc.stderr.close()
    first = lines_of(out.read_bytes())
    if rc == 0:
        pytest.skip("the run ended before the signal arrived")
    assert rc == 130 and stderr == b""
    assert out.read_bytes().endswith(b"\n")
    assert first == big_jobs_json[: len(first)]
    assert read_checkpoint(ck) == len(first)
    rest = run_cli(*args)
    assert first + lines_of(rest.stdout) == big_jobs_json


def test_sigterm_is_clean_too(tmp_path):
    out = tmp_path / "out"
    with open(out, "wb") as stream:
        proc = subprocess.Popen(command("resource", "--sim", "10", "--follow"),
                                env=cli_env(), stdout=stream, stderr=subprocess.PIPE)
        _wait_for_lines(out, 5, proc)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(10)
        assert proc.stderr.read() == b""
        proc.stderr.close()
    assert rc == 143


def test_broken_pipe_exits_quietly():
    proc = subprocess.Popen(command("jobs", "--sim", "2000"), env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline()
    proc.stdout.close()
    rc = proc.wait(30)
    stderr = proc.stderr.read()
    proc.stderr.close()
    assert rc == 141 and stderr == b""


def test_pipe_into_head():
    argv = " ".join(f"'{a}'" for a in command("jobs", "--sim", "--format", "json"))
    proc = subprocess.run(f"{argv} | head -n 3; exit ${{PIPESTATUS[0]}}", shell=True,
                          executable="/bin/bash", env=cli_env(), capture_output=True,
                          timeout=60, check=False)
    assert proc.returncode == 141 and proc.stderr == b""
    assert len(json_records(proc.stdout)) == 3


# ----------------------------------------------------------------------
# Errors: no Flux, service errors




@pytest.fixture
def fake_flux(tmp_path):
    """A directory holding a fake ``flux`` module."""
    (tmp_path / "flux.py").write_text(FAKE_FLUX)
    return tmp_path


def test_without_flux_names_sim():
    proc = run_cli("jobs", check_rc=1)
    assert proc.stdout == b""
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and "--sim" in lines[0] and "FLUX_URI" in lines[0]


def test_flux_uri_without_bindings_names_sim():
    proc = run_cli("resource", env=cli_env(FLUX_URI="local:///run/flux/local"), check_rc=1)
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and "--sim" in lines[0] and "Traceback" not in lines[0]


def test_reads_a_flux_instance_by_uri(fake_flux):
    events = journal_events("jobs", SimFlux(jobs=Workload(njobs=20, seed=5), autolive=False))
    by_option = run_cli("jobs", "--uri", "sim://ok", env=cli_env(pythonpath=[fake_flux]))
    by_env = run_cli("jobs", env=cli_env(pythonpath=[fake_flux], FLUX_URI="sim://ok"))
    assert lines_of(by_option.stdout) == [expected_text(e) for e in events]
    assert by_env.stdout == by_option.stdout


@pytest.mark.parametrize(
    "uri, journal, message",
    [
        ("sim://eperm", "jobs", "permission denied reading the job-manager journal"),
        ("sim://eperm", "resource", "permission denied reading the resource journal"),
        ("sim://enosys", "jobs", "is the job-manager module loaded?"),
        ("sim://enosys", "resource", "is the resource module loaded?"),
        ("sim://down", "jobs", "cannot connect to Flux at sim://down: Connection refused"),
    ],
)
def test_service_errors_are_one_line(fake_flux, uri, journal, message):
    proc = run_cli(journal, "--uri", uri, env=cli_env(pythonpath=[fake_flux]), check_rc=1)
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("flux-journal: ") and message in lines[0]
    assert proc.stdout == b""


def test_error_after_events(fake_flux, fixtures_dir, tmp_path):
    """Events received before the error are written (and checkpointed)."""
    capture = fixtures_dir / "jobs-full.jsonl"
    env = cli_env(pythonpath=[fake_flux], FAKE_FLUX_CAPTURE=str(capture))
    ck = tmp_path / "ck"
    proc = run_cli("jobs", "--uri", "sim://late-eperm", "--checkpoint", ck, env=env, check_rc=1)
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and "permission denied" in lines[0]
    written = lines_of(proc.stdout)
    assert written and read_checkpoint(ck) == len(written)


def test_missing_replay_file(tmp_path):
    proc = run_cli("jobs", "--replay", tmp_path / "nope.jsonl", check_rc=1)
    assert b"nope.jsonl" in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_malformed_responses_are_reported_and_skipped(tmp_path, fixtures_dir):
    lines = (fixtures_dir / "jobs-full.jsonl").read_bytes().split(b"\n")
    lines.insert(3, b'{"id":1,"events":[{"timestamp":1.0,"name":"x"')
    capture = tmp_path / "bad.jsonl"
    capture.write_bytes(b"\n".join(lines))
    proc = run_cli("jobs", "--replay", capture, check_rc=1)
    err = proc.stderr.decode().splitlines()
    assert len(err) == 1 and "malformed" in err[0]
    good = journal_events("jobs", replay(fixtures_dir / "jobs-full.jsonl", "jobs"))
    assert lines_of(proc.stdout) == [expected_text(e) for e in good]


# ----------------------------------------------------------------------
# The command itself


def test_help_and_version():
    top = run_cli("--help").stdout.decode()
    for word in ("jobs", "resource", "archive", "--sim", "FLUX_URI"):
        assert word in top
    jobs = run_cli("jobs", "--help").stdout.decode()
    for option in ("--sim", "--replay", "--uri", "--follow", "--since", "--no-history",
                   "--name", "--exclude", "--jobid", "--format", "--time-format", "--color",
                   "--checkpoint", "--reorder-window", "--stats", "default 1000"):
        assert option in jobs, option
    resource = run_cli("resource", "--help").stdout.decode()
    assert "--jobid" not in resource and "--reorder-window" in resource
    assert "--reorder-window" in run_cli("archive", "--help").stdout.decode()
    assert run_cli("--version").stdout.startswith(b"flux-journal ")
    assert run_cli(check_rc=2).stderr.count(b"\n") >= 1


def test_console_script_is_installed():
    from importlib import metadata

    try:
        dist = metadata.distribution("flux-journal")
    except metadata.PackageNotFoundError:
        pytest.skip("flux-journal is not installed as a distribution")
    scripts = {ep.name: ep.value for ep in dist.entry_points if ep.group == "console_scripts"}
    assert scripts.get("flux-journal") == "flux_journal.cli:main"
    script = shutil.which("flux-journal") or str(Path(sys.executable).parent / "flux-journal")
    assert os.path.exists(script)
    proc = subprocess.run([script, "jobs", "--sim", "5", "--format", "json"], env=cli_env(),
                          capture_output=True, timeout=60, check=True)
    assert len(json_records(proc.stdout)) > 10


def test_main_in_process(capsys):
    """main() is importable and returns its exit status."""
    from flux_journal.cli import main

    assert main(["resource", "--sim", "5", "--format", "json"]) == 0
    assert len(json_records(capsys.readouterr().out.encode())) > 5
    assert JobID  # the JobID class used by --jobid is importable


def test_source_options_serve_another_subcommand(tmp_path, monkeypatch):
    """A new subcommand gets --uri/--sim/--replay from cli.sources and
    reads what the print commands read."""
    import argparse

    from flux_journal.cli import CliError, add_source_arguments, open_source

    parser = argparse.ArgumentParser(prog="flux-journal other")
    add_source_arguments(parser, "jobs")
    with pytest.raises(SystemExit):
        parser.parse_args(["--sim", "--replay", "x"])  # one source at a time

    capture = tmp_path / "capture.jsonl"
    Workload(njobs=30, seed=4).write_jsonl(capture)
    with open_source(parser.parse_args(["--replay", str(capture)]), "jobs") as source:
        assert source.label == str(capture)
        from_replay = journal_events("jobs", source.handle, follow=True)
    assert from_replay == journal_events("jobs", replay(capture, "jobs"), follow=True)

    args = parser.parse_args(["--sim", "30", "--seed", "4"])
    with open_source(args, "jobs") as source:
        assert source.label == "simulated instance (30 jobs, seed 4)"
        history = journal_events("jobs", source.handle)
    assert history == journal_events("jobs", simulated_instance("jobs", 30, 4)[0])

    # live=True: the feeder posts events once the consumer listens.
    args = parser.parse_args(["--sim", "3", "--sim-rate", "500"])
    with open_source(args, "jobs", live=True) as source:
        consumer = JournalConsumer(source.handle, include_sentinel=True).start()
        source.start()
        event = consumer.poll(30.0)
        while not event.is_empty():  # the history, up to the sentinel
            event = consumer.poll(30.0)
        live = consumer.poll(30.0)
        assert live is not None and not live.is_empty()
        consumer.stop()

    monkeypatch.delenv("FLUX_URI", raising=False)
    with pytest.raises(CliError, match="FLUX_URI is not set"):
        open_source(parser.parse_args([]), "jobs")
    with pytest.raises(CliError, match="no such file"):
        open_source(parser.parse_args(["--replay", str(tmp_path / "none")]), "jobs")


# ----------------------------------------------------------------------
# Formatting corner cases (in process)


def test_formatters_on_unusual_values():
    from flux_journal.cli.format import JsonFormatter, TextFormatter
    from flux_journal.job import JournalEvent
    from flux_journal.resource import ResourceJournalEvent

    big = 2**70
    event = JournalEvent(
        12345,
        {"timestamp": 1.5, "name": "memo", "context": {"n": big, "s": "\ud800x", "f": 1e16,
                                                        "b": True, "o": {"k": [1, None]}}},
    )
    text = TextFormatter(jobs=True).format([event]).decode()
    assert text == (
        f"   1.500000 {JobID(12345).f58} memo n={big} s=\"\\ud800x\" f=1e+16 b=true "
        'o={"k":[1,null]}\n'
    )
    line = JsonFormatter(jobs=True).format([event])
    assert json.loads(line) == {"timestamp": 1.5, "name": "memo", "jobid": 12345,
                                "context": event.context}
    odd = ResourceJournalEvent({"timestamp": 2.0, "name": "x", "context": [1, 2]})
    assert TextFormatter(jobs=False).format([odd]) == b"   2.000000 x context=[1,2]\n"
    assert json.loads(JsonFormatter(jobs=False).format([odd]))["context"] == [1, 2]


def test_relative_times_are_joined_to_their_option():
    assert join_relative_times(["history", "--since", "-6h", "--until", "-.5d"]) == [
        "history", "--since=-6h", "--until=-.5d"]
    # other values, other options and anything after "--" are left alone
    assert join_relative_times(["--since", "now", "-n", "-6h", "--", "--since", "-1h"]) == [
        "--since", "now", "-n", "-6h", "--", "--since", "-1h"]
    assert join_relative_times(["--since"]) == ["--since"]
