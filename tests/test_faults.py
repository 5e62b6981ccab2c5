"""Hostile input and faults through the public interface: nothing crashes,
nothing is lost, every error is clear and arrives where it happened."""

import ctypes
import errno
import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from flux_journal import JournalConsumer, PayloadError, ResourceJournalConsumer
from flux_journal.sim import SimFlux, Workload

from journal_helpers import poll_all, poll_all_raising

JOBS = "job-manager.events-journal"
REPO = Path(__file__).resolve().parent.parent
SENTINEL = '{"id":-1,"events":[]}'


def job_line(jobid, *stamps, name="submit"):
    events = ",".join('{"timestamp":%r,"name":"%s"}' % (ts, name) for ts in stamps)
    return '{"id":%d,"events":[%s]}' % (jobid, events)


# ---------------------------------------------------------------------------
# Payloads


@pytest.mark.parametrize(
    "bad",
    [
        b'{"id":3,"events":[{"timestamp":3.0,"name":"x\xff"}]}',  # invalid UTF-8
        b'{"id":3,"events":[{"timestamp":3.0,"name":"x"}',  # truncated
        b'{"id":3,"events":[{"timestamp":3.0,"name":"x","context":' + b"[" * 2100 + b"]" * 2100 + b"}]}",
        b'{"id":3,"events":[{"timestamp":3.0,"name":"x","context":{"a":NaN}}]}',
        b'{"id":3,"events":[{"timestamp":03.0,"name":"x"}]}',
        b"",
    ],
)
def test_bad_payload_is_payload_error_with_offset_and_stream_continues(bad):
    lines = [SENTINEL, job_line(1, 1.0), bad, job_line(2, 2.0)]
    consumer = JournalConsumer(SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)).start()
    got = poll_all_raising(consumer)
    assert [type(x) for x in got] == [type(got[0]), PayloadError, type(got[0])]
    assert got[0].jobid == 1 and got[2].jobid == 2
    err = got[1]
    assert isinstance(err, ValueError) and 0 <= err.offset <= len(bad)
    assert f"at byte {err.offset}" in str(err)


def test_duplicate_keys_behave_like_json():
    line = '{"id":4,"id":5,"events":[{"timestamp":1.0,"name":"a","context":{"k":1,"k":2}}]}'
    event = poll_all(JournalConsumer(SimFlux.replay([SENTINEL, line], topic=JOBS, end=errno.ENODATA)).start())[0]
    assert event.jobid == 5 and event.context == {"k": 2}
    assert dict(event) == {"timestamp": 1.0, "name": "a", "context": json.loads(line)["events"][0]["context"]}


@pytest.mark.slow
def test_gigantic_payload():
    """One response of ~200 MB (a huge context) goes through intact."""
    blob = "x" * (200 * 1024 * 1024)
    line = '{"id":9,"events":[{"timestamp":1.0,"name":"memo","context":{"blob":"%s"}},{"timestamp":2.0,"name":"clean"}]}' % blob
    consumer = JournalConsumer(SimFlux.replay([line, SENTINEL], topic=JOBS, end=errno.ENODATA)).start()
    memo = consumer.poll(30)
    assert memo.name == "memo" and len(memo.context["blob"]) == len(blob)
    assert consumer.poll(30).name == "clean"
    assert consumer.poll(30) is None


def test_resource_malformed_payload():
    lines = ['{"events":[{"timestamp":1.0,"name":"online"}]}', '{"events":[]}', '{"events":[{"timestamp":2.0}]}']
    consumer = ResourceJournalConsumer(SimFlux.replay(lines, topic="resource.journal", end=errno.ENODATA)).start()
    got = poll_all_raising(consumer)
    assert got[0].name == "online"
    assert isinstance(got[1], PayloadError) and got[1].shape and "name" in got[1].reason


# ---------------------------------------------------------------------------
# Service errors


@pytest.mark.parametrize(
    "errnum,cls",
    [
        (errno.EPERM, PermissionError),
        (errno.ENOSYS, OSError),
        (errno.EPROTO, OSError),
        (errno.ECONNRESET, ConnectionResetError),
        (errno.EHOSTUNREACH, OSError),
    ],
)
@pytest.mark.parametrize("where", [1, 3, 5])
def test_service_error_after_events_loses_nothing(errnum, cls, where):
    lines = [job_line(2, 5.0), job_line(1, 4.0), SENTINEL, job_line(3, 6.0), job_line(4, 7.0)]
    h = SimFlux.replay(lines, topic=JOBS, errors={where: errnum})
    got = poll_all_raising(JournalConsumer(h).start())
    assert isinstance(got[-1], cls) and got[-1].errno == errnum
    received = [json.loads(x)["events"][0]["timestamp"] for x in lines[:where] if x != SENTINEL]
    assert [e.timestamp for e in got[:-1]] == sorted(received)


# ---------------------------------------------------------------------------
# stop() and friends at every point


def test_stop_at_every_point_delivers_what_arrived_then_none():
    lines = [job_line(3, 3.0, 7.0), job_line(1, 1.0, 5.0), job_line(2, 2.0), SENTINEL, job_line(4, 8.0), job_line(5, 9.0)]
    for sent in range(len(lines) + 1):
        h = SimFlux.replay(lines, topic=JOBS, hold=sent)
        consumer = JournalConsumer(h, include_sentinel=True).start()
        consumer.stop()
        got = poll_all(consumer)
        arrived = lines[:sent]
        history = sorted(
            ts for line in arrived[: arrived.index(SENTINEL)] if SENTINEL in arrived for ts in [
                e["timestamp"] for e in json.loads(line)["events"]
            ]
        ) if SENTINEL in arrived else sorted(
            e["timestamp"] for line in arrived for e in json.loads(line)["events"]
        )
        live = [
            json.loads(line)["events"][0]["timestamp"] for line in arrived[arrived.index(SENTINEL) + 1 :]
        ] if SENTINEL in arrived else []
        expected = history + (["sentinel"] if SENTINEL in arrived else []) + live
        assert [("sentinel" if e.is_empty() else e.timestamp) for e in got] == expected, sent
        assert consumer.poll() is None


def test_stop_twice_and_poll_after_end_are_harmless():
    consumer = JournalConsumer(SimFlux.replay([job_line(1, 1.0), SENTINEL], topic=JOBS)).start()
    consumer.stop()
    consumer.stop()
    assert [e.timestamp for e in poll_all(consumer)] == [1.0]
    consumer.stop()
    assert consumer.poll() is None and consumer.poll(0) is None


def test_set_callback_during_delivery_switches_without_loss():
    lines = [job_line(i, float(i)) for i in range(1, 41)] + [SENTINEL]
    h = SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)
    first, second = [], []
    consumer = JournalConsumer(h)

    def switch(event):
        first.append(event)
        if len(first) == 10:
            consumer.set_callback(second.append)

    consumer.set_callback(switch).start()
    h.reactor_run()
    assert [e.timestamp for e in first] == [float(i) for i in range(1, 11)]
    assert second.pop() is None
    assert [e.timestamp for e in second] == [float(i) for i in range(11, 41)]


def run_callbacks_raising(h, consumer):
    """Run the reactor to the end in callback mode, collecting events
    (None last) and the exceptions reactor_run() raises, resuming after
    each as the documentation says one may."""
    out = []
    consumer.set_callback(out.append).start()
    for _ in range(20):
        try:
            h.reactor_run()
        except (PayloadError, OSError) as exc:
            out.append(exc)
            continue
        return out
    raise AssertionError("reactor_run() kept raising")


@pytest.mark.parametrize("fault", ["payload", "service", "end"])
def test_callback_mode_faults_during_history_wait_for_the_history(fault):
    """In callback mode a fault while ordered history is still coming in
    takes its place after the history, as in poll mode: every event that
    arrived before it is delivered first, in time order."""
    lines = [job_line(2, 5.0), job_line(1, 4.0), job_line(3, 3.0, 6.0), SENTINEL, job_line(4, 7.0)]
    if fault == "payload":
        lines.insert(2, '{"id":9,"events":[{"timestamp":1.0,"name":"x"}')
        h = SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)
        want = [3.0, 4.0, 5.0, 6.0, PayloadError, 7.0, None]
    elif fault == "service":
        h = SimFlux.replay(lines, topic=JOBS, errors={2: errno.EPERM})
        want = [4.0, 5.0, PermissionError, None]
    else:
        h = SimFlux.replay(lines[:2], topic=JOBS, end=errno.ENODATA)
        want = [4.0, 5.0, None]
    got = run_callbacks_raising(h, JournalConsumer(h))
    assert [
        x if x is None else x.timestamp if hasattr(x, "timestamp") else type(x) for x in got
    ] == want


# ---------------------------------------------------------------------------
# Threads and memory


def test_two_consumers_in_two_threads_do_not_interfere():
    def make():
        return SimFlux(jobs=Workload(njobs=400, seed=21), autolive=False)

    def history(consumer):
        out = []
        while not (event := consumer.poll(20)).is_empty():
            out.append((event.timestamp, int(event.jobid), event.name, event.cursor))
        return out

    expected = history(JournalConsumer(make(), include_sentinel=True).start())
    results = [None] * 4

    def work(i):
        results[i] = history(JournalConsumer(make(), include_sentinel=True).start())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == expected for r in results)


def _has_mallinfo2():
    """True where the C library has mallinfo2() (glibc 2.33 and later)."""
    return hasattr(ctypes.CDLL(None), "mallinfo2")


@pytest.mark.slow
@pytest.mark.skipif(
    not _has_mallinfo2(), reason="reads the C heap in use with glibc's mallinfo2() (glibc >= 2.33)"
)
def test_memory_returns_to_baseline_after_a_million_events():
    """C heap in use (glibc mallinfo2) after a 1M-event history has been
    consumed and the consumer dropped, against before it was created."""
    code = textwrap.dedent(
        """
        import ctypes, errno, gc, json
        from flux_journal import JournalConsumer
        from flux_journal.sim import SimFlux, Workload

        class MallInfo2(ctypes.Structure):
            _fields_ = [(n, ctypes.c_size_t) for n in (
                "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                "fsmblks", "uordblks", "fordblks", "keepcost")]
        libc = ctypes.CDLL(None)   # the process's C library: glibc here
        libc.mallinfo2.restype = MallInfo2

        def in_use():
            gc.collect()
            info = libc.mallinfo2()
            return info.uordblks + info.hblkhd

        lines = Workload(njobs=100000, seed=2).history() + ['{"id":-1,"events":[]}']
        # warm up: first use allocates for good (orjson, cffi, interned names)
        warm = SimFlux.replay(lines[:100] + lines[-1:], topic="job-manager.events-journal", end=errno.ENODATA)
        warm_consumer = JournalConsumer(warm).start()
        while warm_consumer.poll() is not None:
            pass
        del warm_consumer, warm
        h = SimFlux.replay(lines, topic="job-manager.events-journal", end=errno.ENODATA)
        before = in_use()
        consumer = JournalConsumer(h).start()
        first = consumer.poll()
        peak = in_use()
        n = 1
        while consumer.poll() is not None:
            n += 1
        del consumer, first
        after = in_use()
        print(json.dumps({"events": n, "before": before, "peak": peak, "after": after}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["events"] > 900_000
    assert report["peak"] - report["before"] > 50 * 2**20  # the history was held in C
    assert report["after"] - report["before"] < 4 * 2**20, report


def test_event_python_cannot_decode_is_isolated():
    """An event Python's json cannot decode (an integer of 5000 digits,
    beyond its int conversion limit) is reported alone; the events around
    it, and one nested 600 deep (isolated too, but decodable), arrive."""
    lines = [
        '{"id":1,"events":[{"timestamp":1.0,"name":"a"},{"timestamp":3.0,"name":"deep","context":{"x":%s}},'
        '{"timestamp":5.0,"name":"b"}]}' % ("[" * 600 + "]" * 600),
        '{"id":2,"events":[{"timestamp":2.0,"name":"c","context":{"n":%s}},{"timestamp":4.0,"name":"d"}]}' % ("9" * 5000),
        SENTINEL,
    ]
    got = poll_all_raising(JournalConsumer(SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)).start())
    assert [x.name if not isinstance(x, Exception) else type(x) for x in got] == ["a", PayloadError, "deep", "d", "b"]
    assert "event c at 2.0" in str(got[1])


def test_event_nested_past_pythons_recursion_limit_affects_only_itself():
    """Nested 1900 deep: whether Python can decode it depends on the
    decoder's recursion limit; either it arrives intact or it alone is
    reported, and its neighbours arrive."""
    lines = [
        '{"id":1,"events":[{"timestamp":1.0,"name":"a"},{"timestamp":3.0,"name":"deep","context":{"x":%s}},'
        '{"timestamp":5.0,"name":"b"}]}' % ("[" * 1900 + "]" * 1900),
        SENTINEL,
    ]
    got = poll_all_raising(JournalConsumer(SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)).start())
    assert got[0].name == "a" and got[2].name == "b" and len(got) == 3
    assert isinstance(got[1], PayloadError) or got[1].name == "deep"
