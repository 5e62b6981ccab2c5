"""Responses taken straight from libflux in C (csrc/fj_flux.c), without Flux:
a stand-in libflux built from tests/fake_libflux.c answers from a scripted
queue, and is bound exactly as flux-core's real library is (by path, with
its functions looked up at run time).

CoreStream.drain_future() must leave the stream exactly as reading and
feeding each response one by one does (tests/test_core_stream.py's
one_by_one), stop where Python has something to do, and read nothing that
has not arrived.
"""

import errno
import os
import signal
import subprocess
import sys
import ctypes
import textwrap

import pytest

from flux_journal import core, libflux
from flux_journal.core import CoreStream, PayloadError

from journal_helpers import (
    BAD,
    HISTORY,
    LIVE,
    SENTINEL,
    compile_shared,
    drained,
    one_by_one,
    script,
)











def drain_all(stream, fake, limit=1000):
    """Drain until nothing is ready, resetting error responses as the
    caller must; the errors returned and the refused payloads, in order,
    each refused one marked at its place as one_by_one() marks it."""
    errors, refused = [], []

    def on_refused(exc):
        refused.append(exc)
        stream.mark(core.FIRST_USER_MARK + len(refused) - 1)

    while fake.fake_ready():
        taken, error = stream.drain_future(fake.fake_future(), limit, on_refused)
        if error is not None:
            errors.append(error)
            libflux.reset(libflux_pointer(fake))
    return errors, refused


def libflux_pointer(fake):
    return core.ffi.cast("void *", fake.fake_future())


KINDS = [core.JOB | core.HISTORY | core.ORDERED, core.JOB]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "payloads",
    [
        HISTORY + [SENTINEL] + LIVE,
        HISTORY[:2] + [BAD[1]] + HISTORY[2:] + [SENTINEL, BAD[2]] + LIVE + [BAD[3]],
        [SENTINEL, BAD[0], BAD[1], SENTINEL] + LIVE,
    ],
    ids=["clean", "refused-in-places", "sentinel-twice"],
)
def test_drain_equals_feeding_one_by_one(fake, payloads, kind):
    script(fake, payloads)
    stream = CoreStream(kind, 0.0)
    errors, refused = drain_all(stream, fake)
    single, single_errors = one_by_one(payloads, kind)
    assert errors == []
    assert [str(e) for e in refused] == [str(e) for e in single_errors]
    assert drained(stream) == drained(single)
    assert stream.stats() == single.stats()
    # every response read once and reset once
    assert fake.fake_gets() == fake.fake_resets() == len(payloads)


def test_drain_stops_after_the_sentinel(fake):
    payloads = HISTORY + [SENTINEL] + LIVE
    script(fake, payloads)
    stream = CoreStream(core.JOB | core.HISTORY | core.ORDERED, 0.0)
    assert stream.gathering
    taken, error = stream.drain_future(fake.fake_future(), 1000, pytest.fail)
    assert (taken, error) == (len(HISTORY) + 1, None)
    assert not stream.gathering and stream.maybe_ready
    assert fake.fake_ready() == len(LIVE)  # live responses left for later
    batch = stream.pop(100)
    assert sorted(batch.timestamps) == batch.timestamps and len(batch.timestamps) == len(HISTORY)


def test_drain_stops_at_the_limit(fake):
    script(fake, LIVE)
    stream = CoreStream(core.JOB, 0.0)
    assert stream.drain_future(fake.fake_future(), 2, pytest.fail) == (2, None)
    assert fake.fake_ready() == len(LIVE) - 2
    assert stream.drain_future(fake.fake_future(), 1000, pytest.fail) == (len(LIVE) - 2, None)
    assert len(stream.pop(100).ids) == len(LIVE)


def test_drain_takes_only_what_has_arrived(fake):
    stream = CoreStream(core.JOB, 0.0)
    assert stream.drain_future(fake.fake_future(), 1000, pytest.fail) == (0, None)
    script(fake, LIVE, arrive=False)
    fake.fake_arrive(3)
    assert stream.drain_future(fake.fake_future(), 1000, pytest.fail) == (3, None)
    assert stream.drain_future(fake.fake_future(), 1000, pytest.fail) == (0, None)
    # nothing was read or reset beyond the three
    assert fake.fake_gets() == fake.fake_resets() == 3
    assert stream.pop(100).ids == [1, 2, 3]


def test_error_response_mid_burst(fake):
    script(fake, LIVE[:2] + [(errno.EPERM, "journal: not allowed")] + LIVE[2:])
    stream = CoreStream(core.JOB, 0.0)
    taken, error = stream.drain_future(fake.fake_future(), 1000, pytest.fail)
    assert taken == 2
    # the OSError subclass for the errno, with flux's message, as
    # flux-core's check_future_error() raises it
    assert isinstance(error, PermissionError)
    assert error.errno == errno.EPERM and error.strerror == "journal: not allowed"
    # the error response is left current: its message lives in the future
    assert fake.fake_ready() == 1 + len(LIVE) - 2 and fake.fake_resets() == 2
    assert stream.pop(100).ids == [1, 2]
    libflux.reset(libflux_pointer(fake))
    assert stream.drain_future(fake.fake_future(), 1000, pytest.fail) == (len(LIVE) - 2, None)


def test_enodata_ends_with_its_errno(fake):
    script(fake, LIVE[:1] + [(errno.ENODATA, None)])
    stream = CoreStream(core.JOB, 0.0)
    taken, error = stream.drain_future(fake.fake_future(), 1000, pytest.fail)
    assert taken == 1
    assert type(error) is OSError and error.errno == errno.ENODATA
    # no message from flux: the errno's own text, as flux's wrapper gives
    assert error.strerror == os.strerror(errno.ENODATA)


def test_refused_payload_and_missing_payload_in_place(fake):
    script(fake, [LIVE[0], b"[", None, LIVE[1]])
    stream = CoreStream(core.JOB, 0.0)
    refused = []

    def on_refused(exc):
        refused.append(exc)
        stream.mark(core.FIRST_USER_MARK + len(refused) - 1)

    assert stream.drain_future(fake.fake_future(), 1000, on_refused) == (4, None)
    assert all(isinstance(e, PayloadError) for e in refused)
    assert str(refused[1]).endswith("response has no payload")
    out = drained(stream)
    markers = [item for item in out if item[0] == "marker"]
    assert markers == [
        ("marker", core.FIRST_USER_MARK),
        ("marker", core.FIRST_USER_MARK + 1),
        ("marker", core.END),
    ]
    assert out.index(markers[0]) > 0  # after the first response's event


def test_bind_failure_says_why(tmp_path):
    with pytest.raises(OSError, match="cannot use libflux from"):
        libflux.bind(str(tmp_path / "missing.so"))
    src = tmp_path / "partial.c"
    src.write_text("int flux_future_is_ready (void *f) { return 0; }\n")
    so = tmp_path / "libpartial.so"
    compile_shared(src, so)
    with pytest.raises(OSError, match="flux_rpc_get"):
        libflux.bind(str(so))


def test_wait_returns_when_a_response_arrives_and_times_out(fake):
    pointer = libflux_pointer(fake)
    script(fake, LIVE[:2], arrive=False)
    libflux.wait(pointer, -1.0, False)
    assert fake.fake_ready() == 2
    libflux.reset(pointer)
    libflux.reset(pointer)
    with pytest.raises(TimeoutError):
        libflux.wait(pointer, 0.01, False)


CHILD = textwrap.dedent(
    """
    import sys
    from flux_journal import core, libflux
    libflux.bind(sys.argv[1])
    import ctypes
    fake = ctypes.CDLL(sys.argv[1])
    fake.fake_future.restype = ctypes.c_void_p
    libflux.wait(core.ffi.cast("void *", fake.fake_future()), -1.0, sys.argv[2] == "1")
    """
)


@pytest.mark.parametrize("sigint_default", [True, False])
def test_ctrl_c_during_a_wait(fake_libflux_build, sigint_default):
    """With sigint_default, Ctrl-C ends a process blocked in the C wait,
    as flux-core's interruptible waits do; without it, Python's handler
    only sets a flag and the wait goes on (why poll() asks for it)."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(fake_libflux_build), "1" if sigint_default else "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline() == "blocked\n"
        child.send_signal(signal.SIGINT)
        if sigint_default:
            assert child.wait(timeout=30) == -signal.SIGINT
        else:
            with pytest.raises(subprocess.TimeoutExpired):
                child.wait(timeout=1)
    finally:
        child.kill()
        child.wait()


def test_c_continuation_enters_python_only_with_something_to_do(fake):
    """fj_flux_then(): each fulfillment is drained in C; deliver(rc) is
    called for a live stream, but not while ordered history gathers."""
    fake.fake_future.restype = ctypes.c_void_p
    stream = CoreStream(core.JOB | core.HISTORY | core.ORDERED, 0.0)
    calls = []
    cell = stream.then_future(fake.fake_future(), calls.append)
    script(fake, HISTORY[:3], arrive=False)
    fake.fake_fulfill()
    assert calls == [] and fake.fake_ready() == 0  # taken, nothing to deliver
    script(fake, HISTORY[3:] + [SENTINEL] + LIVE[:1], arrive=False)
    fake.fake_fulfill()
    assert calls == [core.lib.FJ_DRAIN_SENTINEL]
    assert stream.drained(calls[-1], cell.d, pytest.fail) == (False, None)
    assert not stream.gathering and fake.fake_ready() == 1  # live one left
    fake.fake_fulfill()
    assert calls[-1] == core.lib.FJ_DRAIN_IDLE
    assert len(stream.pop(100).ids) == len(HISTORY)


def test_c_continuation_reports_an_error_response(fake):
    stream = CoreStream(core.JOB, 0.0)
    calls = []
    cell = stream.then_future(fake.fake_future(), calls.append)
    script(fake, LIVE[:1] + [(errno.ENODATA, None)], arrive=False)
    fake.fake_fulfill()
    assert calls == [core.lib.FJ_DRAIN_ERROR]
    more, error = stream.drained(calls[0], cell.d, pytest.fail)
    assert not more and error.errno == errno.ENODATA
    assert stream.pop(100).ids == [1]


UNBOUND_CHILD = textwrap.dedent(
    """
    from flux_journal import core, libflux
    from flux_journal.core import CoreStream
    null = core.ffi.cast("void *", 0)
    for what, call in (
        ("wait", lambda: libflux.wait(null, 0.0, False)),
        ("drain", lambda: CoreStream(core.JOB, 0.0).drain_future(null, 1, print)),
        ("then", lambda: CoreStream(core.JOB, 0.0).then_future(null, print)),
        ("next", lambda: CoreStream(core.JOB, 0.0).next_from_future(
            null, 0.0, False, print, libflux.new_errnum())),
    ):
        try:
            call()
        except RuntimeError as exc:
            print(what, exc)
    """
)


def test_calls_before_bind_raise_runtime_error():
    """Out of order (libflux never bound: a fresh process), every C entry
    point refuses with the C core's own error, and Python says which call."""
    proc = subprocess.run(
        [sys.executable, "-c", UNBOUND_CHILD], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "wait flux-journal: waiting for a response: libflux is not bound",
        "drain flux-journal: draining a response: libflux is not bound",
        "then flux-journal: setting a continuation: libflux is not bound",
        "next flux-journal: taking the next events: libflux is not bound",
    ]


# -- fj_flux_next(): poll()'s pop, drain, wait and pop in one call --------


def next_events(stream, fake, timeout=0.0, refused=pytest.fail):
    """One CoreStream.next_from_future() call: (batch, error)."""
    return stream.next_from_future(
        libflux_pointer(fake), timeout, False, refused, libflux.new_errnum()
    )


def test_next_pops_what_the_stream_holds_before_reading(fake):
    stream = CoreStream(core.JOB, 0.0)
    stream.feed(LIVE[0])
    script(fake, LIVE[1:])
    batch, error = next_events(stream, fake)
    assert (batch.ids, error) == ([1], None)
    assert fake.fake_gets() == 0 and fake.fake_ready() == len(LIVE) - 1


def test_next_takes_what_has_arrived_without_waiting(fake):
    script(fake, LIVE)
    stream = CoreStream(core.JOB, 0.0)
    # a wait would time out at once: nothing more is queued
    batch, error = next_events(stream, fake)
    assert (batch.ids, error) == ([1, 2, 3, 4, 5], None)
    assert fake.fake_gets() == fake.fake_resets() == len(LIVE)


def test_next_waits_for_a_response(fake):
    script(fake, LIVE[:2], arrive=False)
    stream = CoreStream(core.JOB, 0.0)
    batch, error = next_events(stream, fake, timeout=-1.0)
    assert (batch.ids, error) == ([1, 2], None)
    with pytest.raises(TimeoutError):
        next_events(stream, fake, timeout=0.01)


def test_next_waits_once_per_call(fake):
    """A response with nothing deliverable (its event denied) after the
    wait: the call returns, so that poll() counts the time left, rather
    than wait again."""
    stream = CoreStream(core.JOB, 0.0)
    stream.filter("finish", deny=True)
    script(fake, LIVE[:1], arrive=False)
    assert next_events(stream, fake, timeout=5.0) == (None, None)
    assert fake.fake_gets() == fake.fake_resets() == 1


def test_next_returns_at_an_error_response(fake):
    script(fake, LIVE[:1] + [(errno.EPERM, "journal: not allowed")])
    stream = CoreStream(core.JOB, 0.0)
    batch, error = next_events(stream, fake)
    assert batch is None and isinstance(error, PermissionError)
    assert error.strerror == "journal: not allowed"
    # left current, unreset, as drain_future() leaves it
    assert fake.fake_resets() == 1 and fake.fake_ready() == 1
    libflux.reset(libflux_pointer(fake))
    batch, error = next_events(stream, fake)
    assert (batch.ids, error) == ([1], None)


def test_next_reports_a_refused_payload_at_its_place(fake):
    script(fake, [LIVE[0], b"[", LIVE[1]])
    stream = CoreStream(core.JOB, 0.0)
    refused = []

    def on_refused(exc):
        refused.append(exc)
        stream.mark(core.FIRST_USER_MARK)

    assert next_events(stream, fake, refused=on_refused) == (None, None)
    assert len(refused) == 1 and isinstance(refused[0], PayloadError)
    # the first response's event, the marker, then the rest
    assert next_events(stream, fake)[0].ids == [1]
    assert next_events(stream, fake)[0].marker == core.FIRST_USER_MARK
    assert next_events(stream, fake)[0].ids == [2]


def test_next_takes_at_most_a_batch_of_responses_per_call(fake):
    """While ordered history gathers, nothing is deliverable: the call
    still returns after BATCH_SIZE responses, for Python to check its
    backlog and signals."""
    history = [
        b'{"id":%d,"events":[{"timestamp":%d.5,"name":"submit"}]}' % (i, 1000 - i)
        for i in range(1, core.BATCH_SIZE + 11)
    ]
    script(fake, history + [SENTINEL])
    stream = CoreStream(core.JOB | core.HISTORY | core.ORDERED, 0.0)
    assert next_events(stream, fake) == (None, None)
    assert fake.fake_gets() == core.BATCH_SIZE and stream.gathering
    # the rest, then the sentinel: history complete, in time order
    assert next_events(stream, fake) == (None, None)
    assert not stream.gathering
    batch, _ = next_events(stream, fake)
    assert len(batch.ids) == core.BATCH_SIZE and batch.timestamps == sorted(batch.timestamps)
