"""Callback mode inside the reactor, as on a real Flux handle.

The simulated handle behaves like flux-core's here: a callback that raises
has its exception stored with ``set_exception()`` and stops the reactor
with an error; ``reactor_run()`` raises it at its end even if the callback
had called ``reactor_stop()`` first; and a response that arrives after the
reactor stopped (the end of a cancelled stream, say) is delivered during
whatever ``reactor_run()`` of the handle comes next.  These tests are the
patterns that broke flux-core's own journal tests under ``install()``:
the consumers must raise a callback's exception in the run during which it
happened, never in a later, unrelated one, and the classes ``install()``
puts in place must not call the callback with None.
"""

import errno
import threading

import pytest

from flux_journal import JournalConsumer, ResourceJournalConsumer
from flux_journal import dropin as installed
from flux_journal.sim import ResourceWorkload, SimFlux, Workload


class Boom(Exception):
    pass


def run_bounded(h, seconds=20.0):
    """reactor_run(), stopped by a timer if it has not ended by itself."""
    expired = []

    def expire(handle, watcher, revents, args):
        expired.append(True)
        handle.reactor_stop()

    timer = h.timer_watcher_create(seconds, expire)
    timer.unref()  # lets the reactor end by itself meanwhile
    timer.start()
    try:
        return h.reactor_run()
    finally:
        timer.stop()
        assert not expired, f"reactor_run() still running after {seconds} s"


def jobs_handle(njobs=8, seed=3):
    return SimFlux(jobs=Workload(njobs=njobs, seed=seed, live_jobs=0))


# ---------------------------------------------------------------------------
# The simulated handle itself


def test_sim_raises_a_then_callback_exception_after_reactor_stop():
    h = jobs_handle()
    calls = []

    def then_cb(future):
        calls.append(future.get_str())
        h.reactor_stop()
        raise Boom("after stop")

    future = h.rpc("job-manager.events-journal", {"full": True}, 0, 2)
    future.then(then_cb)
    with pytest.raises(Boom, match="after stop"):
        h.reactor_run()
    assert len(calls) == 1
    # flux stops a then-future whose callback raised: nothing more comes
    assert future.stopped
    assert h.reactor_run() == 0
    assert len(calls) == 1


def test_sim_keeps_one_pending_exception_per_thread_last_wins():
    assert SimFlux.set_exception(Boom(1)) is None
    first = SimFlux.set_exception(Boom(2))
    assert str(first) == "1"
    seen = []
    thread = threading.Thread(target=lambda: seen.append(SimFlux.set_exception(None)))
    thread.start()
    thread.join()
    assert seen == [None]  # another thread has its own
    with pytest.raises(Boom, match="2"):
        SimFlux.raise_if_exception()
    SimFlux.raise_if_exception()  # cleared


def test_sim_raises_a_timer_exception_from_the_run_it_happened_in():
    h = jobs_handle()

    def fire(handle, watcher, revents, args):
        handle.reactor_stop()
        raise Boom("timer")

    h.timer_watcher_create(0.0, fire).start()
    with pytest.raises(Boom, match="timer"):
        h.reactor_run()
    assert h.reactor_run() == 0


def test_sim_delivers_a_response_after_reactor_stop_in_the_next_run():
    h = jobs_handle()
    seen = []

    def then_cb(future):
        try:
            payload = future.get_str()
            seen.append(payload)
            if '"events":[]' in payload:
                h.reactor_stop()  # the sentinel
        except OSError as exc:
            seen.append(exc.errno)
        future.reset()

    future = h.rpc("job-manager.events-journal", {"full": False}, 0, 2)
    future.then(then_cb)
    h.reactor_run()
    assert '"events":[]' in seen[-1]
    before = len(seen)
    # cancel: its ENODATA is queued while no reactor runs
    h.rpc("job-manager.events-journal-cancel", {"matchtag": future.pimpl.get_matchtag()}, 0, 1)
    assert len(seen) == before
    h.reactor_run()
    assert seen[before:][-1] == errno.ENODATA  # in the run that came next


# ---------------------------------------------------------------------------
# Consumers: an exception ends the reactor_run() during which it happened


@pytest.mark.parametrize("cls", [JournalConsumer, installed.JournalConsumer])
def test_exception_after_reactor_stop_is_raised_by_that_run(cls):
    """A callback that stops the reactor and then raises: that run raises,
    the next run goes on with the next event; nothing lost or repeated."""
    h = jobs_handle()
    reference = cls(h).start()
    h.end_streams()  # ENODATA after every queued event
    expected = list(reference.events())
    assert len(expected) > 10
    h = jobs_handle()
    got = []
    raise_at = {1, 10, len(expected)}

    def cb(event):
        if event is None:
            return
        got.append(event)
        if len(got) in raise_at:
            h.reactor_stop()
            raise Boom(len(got))

    cls(h).set_callback(cb).start()
    h.end_streams()
    for position in sorted(raise_at):
        with pytest.raises(Boom) as info:
            h.reactor_run()
        assert info.value.args == (position,)
        assert len(got) == position
    assert h.reactor_run() == 0  # the end: nothing raises any more
    assert got == expected


def test_exception_never_leaks_into_a_later_unrelated_run():
    """flux-core's t0030 test_async then test_nonfull: a callback written
    against the documentation's None stops the reactor at the end and
    then dereferences it.  Its AttributeError belongs to its own run."""
    h = jobs_handle()

    def careless(event):
        if event is None:
            h.reactor_stop()
        event.name  # pylint: disable=pointless-statement

    first = JournalConsumer(h, full=False).set_callback(careless).start()
    first.stop()
    with pytest.raises(AttributeError):
        h.reactor_run()

    # the next test case's consumer, on the same handle
    events = []

    def cb(event):
        if event is None:
            h.reactor_stop()
            return
        events.append(event)
        if event.name == "clean":
            second.stop()

    second = JournalConsumer(h, full=False).set_callback(cb).start()
    jobid = h.inject_job("success")
    run_bounded(h)  # raises nothing of the first consumer's
    assert events and all(event.jobid == jobid for event in events)
    assert events[-1].name == "clean"


@pytest.mark.parametrize("cls", [JournalConsumer, ResourceJournalConsumer])
def test_service_error_in_callback_mode_is_raised_by_its_run(cls):
    h = SimFlux(jobs=Workload(njobs=4, seed=1), resources=ResourceWorkload(nnodes=4))
    got = []
    cls(h).set_callback(got.append).start()
    h.end_streams(1, "going away")  # EPERM, on every open stream
    with pytest.raises(PermissionError, match="going away"):
        h.reactor_run()
    assert h.reactor_run() == 0  # the None, then nothing more
    assert got[-1] is None and got.count(None) == 1


# ---------------------------------------------------------------------------
# install()'s classes: no None for the callback


def test_installed_classes_never_call_the_callback_with_none():
    """flux-core's t0030 test_async: the second callback stops the
    reactor on None, then reads event.name.  Under install() the stream's
    end reaches no callback and the reactor ends by itself."""
    h = jobs_handle()
    count = [0]

    def first_cb(event):
        if event.name == "clean":
            count[0] += 1
            if count[0] == 8:
                h.reactor_stop()

    consumer = installed.JournalConsumer(h).start()
    consumer.set_callback(first_cb)
    h.reactor_run()
    assert count[0] == 8

    new_events = []

    def new_cb(event):
        if event is None:
            h.reactor_stop()
        new_events.append(event)
        if event.name == "clean":
            consumer.stop()

    consumer.set_callback(new_cb)
    jobid = h.inject_job("success")
    run_bounded(h)
    assert None not in new_events
    assert new_events[-1].name == "clean"
    assert all(event.jobid == jobid for event in new_events)
    assert consumer.poll(1.0) is None  # poll() still ends with None


def test_installed_classes_late_end_of_stream_reaches_no_one():
    """flux-core's t0032 test_poll_cb_set_before_start: the callback stops
    the stream at the sentinel; the stream's end (ENODATA) comes during a
    later run of the handle, for another consumer's callback."""
    h = SimFlux(resources=ResourceWorkload(nnodes=4))
    calls = []

    def cb(event):
        calls.append(event)
        if event.is_empty():
            consumer.stop()
            h.reactor_stop()

    consumer = installed.ResourceJournalConsumer(h, include_sentinel=True)
    consumer.set_callback(cb).start()
    h.reactor_run()
    assert calls[-1].is_empty()
    seen = len(calls)

    other = []

    def other_cb(event):
        other.append(event)
        if event.is_empty():
            second.stop()

    second = installed.ResourceJournalConsumer(h, include_sentinel=True)
    second.set_callback(other_cb).start()
    run_bounded(h)  # the first stream's ENODATA arrives here: no None
    assert len(calls) == seen
    assert other[-1].is_empty() and None not in other


def test_direct_classes_keep_the_documented_none():
    h = SimFlux(resources=ResourceWorkload(nnodes=4))
    calls = []

    def cb(event):
        calls.append(event)
        if event is not None and event.is_empty():
            consumer.stop()

    consumer = ResourceJournalConsumer(h, include_sentinel=True).set_callback(cb).start()
    h.reactor_run()
    assert calls[-1] is None and calls.count(None) == 1


def test_installed_batch_callback_still_ends_with_none():
    """set_batch_callback() is flux-journal's: its lists end with None
    whichever class it is called on."""
    h = jobs_handle(njobs=3)
    batches = []
    consumer = installed.JournalConsumer(h, full=False)
    consumer.set_batch_callback(batches.append).start()
    consumer.stop()
    h.reactor_run()
    assert batches[-1][-1] is None


@pytest.mark.parametrize(
    "installed_cls, direct_cls",
    [
        (installed.JournalConsumerBase, JournalConsumer.__mro__[1]),
        (installed.JournalConsumer, JournalConsumer),
        (installed.ResourceJournalConsumer, ResourceJournalConsumer),
    ],
)
def test_installed_classes_are_the_direct_ones_by_name_and_type(installed_cls, direct_cls):
    assert installed_cls.__name__ == direct_cls.__name__
    assert issubclass(installed_cls, direct_cls)
    assert issubclass(installed_cls, installed.JournalConsumerBase)


def test_sim_unreferenced_timer_lets_the_reactor_end():
    h = jobs_handle()
    fired = []
    timer = h.timer_watcher_create(30.0, lambda *args: fired.append(True))
    timer.unref().start()
    assert h.reactor_run() == 0  # nothing referenced: returns at once
    assert not fired
    timer.ref()
    timer.reset(after=0.0)
    h.reactor_run()
    assert fired == [True]
