"""The consumer on the C drain (DrainIntake), without Flux: a flux-core-like
handle whose RPC future is the stand-in libflux of tests/fake_libflux.c,
bound as flux-core's own library is.

Whatever path a response takes, the user sees the same thing: the events
of a captured stream are those the text path (the simulator's replay of
the same payloads) delivers, in poll() and callback mode, and errors,
timeouts, bad payloads and a callback that raises behave as they do there.
The same on a real broker: tests/broker/test_drain.py.
"""

import ctypes
import errno
import json
import os
import signal
import subprocess
import sys
import time
import types

import pytest

from flux_journal import BacklogFullError, JournalConsumer, ResourceJournalConsumer, libflux
from flux_journal.consumer.intake import DrainIntake
from flux_journal.core import CoreStream, ffi
from flux_journal.errors import PayloadError
from flux_journal.sim import SimFlux

from journal_helpers import script


class Boom(Exception):
    pass


class FakeFluxFuture:
    """What the consumer reads of a flux-core RPC future (flux.future.Future),
    over the stand-in libflux: the C drain reads it through pimpl.handle;
    without the drain, flux_rpc_get() and the waits are flux-core's calls
    as its bindings make them."""

    def __init__(self, lib):
        self.lib = lib
        self.pimpl = types.SimpleNamespace(
            handle=ffi.cast("void *", lib.fake_future()),
            ffi=ffi,
            flux_rpc_get=self._rpc_get,
            get_matchtag=lambda: 42,
        )

    def _rpc_get(self, holder):
        payload = ctypes.c_void_p()
        if self.lib.flux_rpc_get(ctypes.c_void_p(self.lib.fake_future()),
                                 ctypes.byref(payload)) < 0:
            code = ctypes.get_errno() or errno.EPROTO
            raise OSError(code, os.strerror(code))
        holder[0] = ffi.cast("char *", payload.value or 0)

    def is_ready(self):
        return bool(self.lib.flux_future_is_ready(ctypes.c_void_p(self.lib.fake_future())))

    def wait_for(self, timeout=-1.0):
        libflux.wait(self.pimpl.handle, timeout, False)
        return self

    def reset(self):
        libflux.reset(self.pimpl.handle)


class FakeTimer:
    """A 0 s timer watcher of FakeFluxHandle's reactor."""

    def __init__(self, handle, callback):
        self.handle, self.callback, self.active = handle, callback, False

    def start(self):
        self.active = True

    def stop(self):
        self.active = False


class FakeFluxHandle:
    """A flux-core-like handle: one journal request answered by the stand-in
    libflux, a cancel that ends it with ENODATA, and a reactor that runs
    the future's continuation while responses arrive, and 0 s timers."""

    _exception = None

    def __init__(self, lib):
        self.lib = lib
        self.requests = []
        self.stopped = False
        self.timers = []

    def timer_watcher_create(self, after, callback):
        assert after == 0.0
        timer = FakeTimer(self, callback)
        self.timers.append(timer)
        return timer

    def rpc(self, topic, payload, nodeid, flags):
        del nodeid, flags
        self.requests.append((topic, payload))
        if topic.endswith("-cancel"):
            self.lib.fake_push(None, errno.ENODATA, None)
            return None
        return FakeFluxFuture(self.lib)

    @classmethod
    def set_exception(cls, exc):
        cls._exception = exc

    def reactor_stop(self):
        self.stopped = True

    def reactor_stop_error(self):
        self.stopped = True

    def reactor_run(self):
        self.stopped = False
        self.lib.fake_fulfill()
        while not self.stopped:
            timers = [t for t in self.timers if t.active]
            for timer in timers:
                timer.callback(self, timer, 0, None)
            if self.lib.fake_ready():
                self.lib.fake_fulfill()
            elif not timers:
                break
        exc, FakeFluxHandle._exception = FakeFluxHandle._exception, None
        if exc is not None:
            raise exc


def capture(fixtures_dir):
    """jobs-full.jsonl: history, the sentinel, live responses."""
    return (fixtures_dir / "jobs-full.jsonl").read_bytes().splitlines()


def key(event):
    return None if event is None else str(event)


def by_poll(consumer):
    events = []
    while True:
        event = consumer.poll(1.0)
        events.append(key(event))
        if event is None:
            return events


def text_path(payloads, **kwargs):
    """What the simulator's replay of the same payloads delivers."""
    handle = SimFlux.replay([p.decode() for p in payloads], end=errno.ENODATA)
    return by_poll(JournalConsumer(handle, **kwargs).start())


@pytest.fixture
def handle(fake):
    return FakeFluxHandle(fake)


def test_poll_through_the_c_drain_delivers_what_the_text_path_does(fake, handle, fixtures_dir):
    payloads = capture(fixtures_dir)
    script(fake, payloads + [(errno.ENODATA, None)])
    consumer = JournalConsumer(handle, include_sentinel=True).start()
    assert isinstance(consumer._intake, DrainIntake)
    assert by_poll(consumer) == text_path(payloads, include_sentinel=True)


def test_callback_mode_through_the_c_continuation(fake, handle, fixtures_dir):
    payloads = capture(fixtures_dir)
    got = []
    consumer = JournalConsumer(handle, include_sentinel=True).set_callback(
        lambda event: got.append(key(event))
    )
    consumer.start()
    script(fake, payloads[:40], arrive=False)  # history still gathering
    handle.reactor_run()
    assert got == []
    script(fake, payloads[40:] + [(errno.ENODATA, None)], arrive=False)
    handle.reactor_run()
    assert got == text_path(payloads, include_sentinel=True)


def test_a_callback_that_raises_ends_that_run_and_loses_nothing(fake, handle, fixtures_dir):
    payloads = capture(fixtures_dir)
    got = []

    def cb(event):
        got.append(key(event))
        if len(got) == 3:
            handle.reactor_stop()
            raise Boom()

    consumer = JournalConsumer(handle).set_callback(cb).start()
    script(fake, payloads + [(errno.ENODATA, None)], arrive=False)
    with pytest.raises(Boom):
        handle.reactor_run()
    assert len(got) == 3
    handle.reactor_run()
    assert got == text_path(payloads)


def test_service_error_is_raised_after_the_events_before_it(fake, handle, fixtures_dir):
    payloads = capture(fixtures_dir)[:20]
    script(fake, payloads + [(errno.EPERM, "journal: not allowed")])
    consumer = JournalConsumer(handle, full=False).start()
    expected = text_path(payloads, full=False)[:-1]  # without its end
    assert [key(consumer.poll(1.0)) for _ in expected] == expected
    with pytest.raises(PermissionError) as info:
        consumer.poll(1.0)
    assert info.value.errno == errno.EPERM
    assert info.value.strerror == "journal: not allowed"
    assert consumer.poll(1.0) is None


def test_a_malformed_payload_is_reported_at_its_place(fake, handle, fixtures_dir):
    live = capture(fixtures_dir)[-3:]
    script(fake, [b'{"id":-1,"events":[]}', live[0], b'{"id":1,"events":[', live[1]])
    consumer = JournalConsumer(handle, full=False).start()
    assert key(consumer.poll(1.0)) == text_path(live[:1], full=False)[0]
    with pytest.raises(PayloadError):
        consumer.poll(1.0)
    assert key(consumer.poll(1.0)) == text_path(live[1:2], full=False)[0]


def test_poll_timeout_then_the_next_response(fake, handle, fixtures_dir):
    live = capture(fixtures_dir)[-1:]
    consumer = JournalConsumer(handle, full=False).start()
    with pytest.raises(TimeoutError):
        consumer.poll(0.05)
    script(fake, live, arrive=False)  # arrives during the next wait
    assert key(consumer.poll(1.0)) == text_path(live, full=False)[0]


def test_live_responses_one_at_a_time_as_the_text_path(fake, handle, fixtures_dir):
    """A live stream sends a response at a time: poll() waits for each
    and delivers exactly what the text path does, ties, jobspec and R
    carriers and cursors included."""
    payloads = capture(fixtures_dir)
    sentinel = payloads.index(b'{"id":-1,"events":[]}')
    consumer = JournalConsumer(handle, include_sentinel=True).start()
    script(fake, payloads[: sentinel + 1])
    history = text_path(payloads[: sentinel + 1])[:-1]  # without its end
    got = [key(consumer.poll(1.0)) for _ in range(len(history) + 1)]  # and the sentinel
    for payload in payloads[sentinel + 1 :]:
        script(fake, [payload], arrive=False)  # arrives at the next wait
        for _ in json.loads(payload)["events"]:
            event = consumer.poll(-1.0)
            got.append(key(event))
            assert event.cursor is not None
    script(fake, [(errno.ENODATA, None)], arrive=False)
    got.append(key(consumer.poll(1.0)))
    assert got == text_path(payloads, include_sentinel=True)


def _count_batches(monkeypatch):
    """How many Python Batches the C pipeline makes: the live step makes
    none for a response of one plain event."""
    made = []
    pop = CoreStream.pop

    def counting_pop(self, *args, **kwargs):
        batch = pop(self, *args, **kwargs)
        if batch is not None:
            made.append(batch)
        return batch

    monkeypatch.setattr(CoreStream, "pop", counting_pop)
    return made


def test_live_events_are_built_past_the_batch_and_queue(fake, handle, fixtures_dir, monkeypatch):
    """The live step (consumer/live.py) takes a one-event response from C
    to its event with no Batch, jobspec and R carriers included, and
    delivers what the general path would."""
    payloads = capture(fixtures_dir)
    sentinel = payloads.index(b'{"id":-1,"events":[]}')
    live = [p for p in payloads[sentinel + 1 :] if len(json.loads(p)["events"]) == 1]
    assert any(b'"submit"' in p for p in live) and any(b'"alloc"' in p for p in live)
    consumer = JournalConsumer(handle, full=False).start()
    script(fake, [payloads[sentinel]])
    batches = _count_batches(monkeypatch)
    got = []
    for payload in live:
        script(fake, [payload], arrive=False)  # arrives at the next wait
        event = consumer.poll(-1.0)
        got.append((key(event), event.jobspec, event.R))
    made = len(batches)
    expected_consumer = JournalConsumer(
        SimFlux.replay([p.decode() for p in [payloads[sentinel]] + live], end=errno.ENODATA),
        full=False,
    ).start()
    expected = []
    for _ in live:
        event = expected_consumer.poll(1.0)
        expected.append((key(event), event.jobspec, event.R))
    assert got == expected
    # the sentinel's marker, ties and irregular entries take a Batch
    assert made < len(live) // 10


def test_live_resource_events_one_at_a_time(fake, handle, fixtures_dir, monkeypatch):
    """The resource journal's live responses, one per wait, take the live
    step too (ResourceEventBuilder.one) and deliver what the text path
    does, the R a response carries included."""
    payloads = (fixtures_dir / "resource.jsonl").read_bytes().splitlines()
    sentinel = next(i for i, p in enumerate(payloads) if json.loads(p)["events"] == [])
    consumer = ResourceJournalConsumer(handle).start()
    script(fake, payloads[: sentinel + 1])
    history = sum(len(json.loads(p)["events"]) for p in payloads[:sentinel])
    got = [key(consumer.poll(1.0)) for _ in range(history)]
    batches = _count_batches(monkeypatch)
    made = []
    for payload in payloads[sentinel + 1 :]:
        script(fake, [payload], arrive=False)  # arrives at the next wait
        event = consumer.poll(-1.0)
        got.append((key(event), event.R))
        made.append(len(batches))
    # the poll that meets the sentinel's marker goes the general way
    # (its event too); every later one-event response takes the step
    assert len(payloads) - sentinel - 1 >= 3 and made[-1] == made[0]
    replayed = ResourceJournalConsumer(
        SimFlux.replay([p.decode() for p in payloads], topic="resource.journal", end=errno.ENODATA)
    ).start()
    expected = [key(replayed.poll(1.0)) for _ in range(history)]
    for _ in payloads[sentinel + 1 :]:
        event = replayed.poll(1.0)
        expected.append((key(event), event.R))
    assert got == expected


def test_live_callbacks_one_response_per_reactor_turn(fake, handle, fixtures_dir, monkeypatch):
    """Callback mode on a live stream, a response per turn of the reactor:
    each event goes from the C continuation straight to the callback, the
    same events as the text path; a callback that raises ends that run
    and the next run goes on from the next event."""
    payloads = capture(fixtures_dir)
    sentinel = payloads.index(b'{"id":-1,"events":[]}')
    live = [p for p in payloads[sentinel + 1 :] if len(json.loads(p)["events"]) == 1]
    got = []

    def cb(event):
        got.append(key(event))
        if len(got) == 5:
            raise Boom()

    consumer = JournalConsumer(handle, full=False).set_callback(cb).start()
    script(fake, [payloads[sentinel]], arrive=False)
    handle.reactor_run()
    batches = _count_batches(monkeypatch)
    raised = 0
    for payload in live:
        script(fake, [payload], arrive=False)
        try:
            handle.reactor_run()
        except Boom:
            raised += 1
    assert raised == 1
    assert len(batches) < len(live) // 10
    assert got == text_path([payloads[sentinel]] + live, full=False)[:-1]  # without its end


def test_live_poll_with_a_time_limit(fake, handle, fixtures_dir):
    """poll(timeout) on a live stream: the time limit is the whole call's,
    and a batch of several events still comes one per poll()."""
    live = capture(fixtures_dir)[-3:]
    consumer = JournalConsumer(handle, full=False).start()
    script(fake, [b'{"id":-1,"events":[]}'])
    with pytest.raises(TimeoutError):
        consumer.poll(0.05)
    script(fake, live[:1], arrive=False)
    assert key(consumer.poll(1.0)) == text_path(live[:1], full=False)[0]
    script(fake, live[1:], arrive=False)  # two at once: one batch
    assert [key(consumer.poll(0.5)) for _ in range(2)] == text_path(live[1:], full=False)[:2]
    with pytest.raises(TimeoutError):
        consumer.poll(0.05)


SIGINT_CHILD = """
import ctypes, signal, sys, types
from flux_journal import JournalConsumer, libflux
from flux_journal.core import CoreStream, ffi
libflux.bind(sys.argv[1])
fake = ctypes.CDLL(sys.argv[1])
fake.fake_future.restype = ctypes.c_void_p
fake.fake_push.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
fake.fake_push(b'{"id":-1,"events":[]}', 0, None)
fake.fake_arrive(1)
future = types.SimpleNamespace(pimpl=types.SimpleNamespace(
    handle=ffi.cast("void *", fake.fake_future()), ffi=ffi, flux_rpc_get=None))
handle = types.SimpleNamespace(rpc=lambda *args: future)
seen = []
# set here, whatever was inherited: a test run in the background
# (`pytest &`) passes SIGINT on ignored, which Python then leaves so
signal.signal(signal.SIGINT, {
    "default": signal.default_int_handler,
    "handled": lambda signum, frame: seen.append(signum),
    "ignored": signal.SIG_IGN,
}[sys.argv[2]])
consumer = JournalConsumer(handle, full=False).start()
print("ready", flush=True)
while not seen:
    try:
        consumer.poll(0.3)
    except TimeoutError:
        pass
print("handled", flush=True)
"""


@pytest.mark.parametrize("handler", ["default", "handled", "ignored"])
def test_ctrl_c_while_poll_waits_in_c(fake_libflux_build, handler):
    """Blocked in the C wait, poll() lets Ctrl-C end the process as
    flux-core's waits do, unless the program handles SIGINT itself (as
    flux-journal's commands do, to stop cleanly): its handler runs; or
    ignores it (as a program started in the background does): it goes on."""
    child = subprocess.Popen(
        [sys.executable, "-c", SIGINT_CHILD, str(fake_libflux_build), handler],
        stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ready\n"
        time.sleep(0.5)  # in a wait: the child spends its time there
        child.send_signal(signal.SIGINT)
        if handler == "ignored":
            with pytest.raises(subprocess.TimeoutExpired):
                child.wait(timeout=1)
            return
        out, _ = child.communicate(timeout=30)
        if handler == "default":
            assert child.returncode == -signal.SIGINT
        else:
            assert (child.returncode, out) == (0, "handled\n")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_stop_ends_the_stream_after_what_arrived(fake, handle, fixtures_dir):
    live = capture(fixtures_dir)[-2:]
    script(fake, [b'{"id":-1,"events":[]}'] + live)
    consumer = JournalConsumer(handle, full=False).start()
    consumer.stop()
    assert handle.requests[-1] == ("job-manager.events-journal-cancel", {"matchtag": 42})
    assert by_poll(consumer) == text_path(live, full=False)


def events_until_backlog_full(consumer):
    """(str of each event poll() delivered before BacklogFullError, the
    error's message); fails if none is raised."""
    got = []
    with pytest.raises(BacklogFullError) as info:
        while True:
            got.append(key(consumer.poll(1.0)))
    return got, str(info.value)


def test_max_backlog_through_a_flux_core_rpc_is_checked_as_on_the_text_path(
        fake, handle, fixtures_dir):
    """max_backlog bounds what is buffered whatever path responses take:
    with the whole history already arrived, the consumer of a flux-core
    RPC stops where the text path stops (flux-journal's C drain would
    take hundreds of responses between two checks)."""
    payloads = capture(fixtures_dir)
    script(fake, payloads + [(errno.ENODATA, None)])
    consumer = JournalConsumer(handle, max_backlog=100).start()
    ours = events_until_backlog_full(consumer)
    replayed = SimFlux.replay([p.decode() for p in payloads], end=errno.ENODATA)
    assert ours == events_until_backlog_full(JournalConsumer(replayed, max_backlog=100).start())
    # the history's first events, then the error naming the limit
    assert 100 <= len(ours[0]) < 200 and "max_backlog=100" in ours[1]
