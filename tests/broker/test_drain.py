"""Responses drained in C straight from libflux, on a real Flux broker
(skipped without one).

With flux-core's handle, flux-journal's consumers take their responses
through csrc/fj_flux.c rather than flux-core's Python layers; these tests
pin that what users see does not change: the events, the end of the
stream, service errors, an exception raised elsewhere in the reactor,
Ctrl-C during poll(), timeout=, a consumer in another thread, a restart in
callback mode, and the generic path of subclasses that override a hook.
"""

import errno
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from flux_journal import JournalConsumer
from flux_journal.consumer.intake import DrainIntake

from broker_helpers import full_history

pytestmark = pytest.mark.broker


class Boom(Exception):
    pass


def key(event):
    return (event.jobid, event.name, event.timestamp)


@pytest.fixture(scope="module")
def flux_core_history(flux_handle, finished_jobs):
    """The history as flux-core's own consumer delivers it."""
    del finished_jobs
    import flux.job  # pylint: disable=import-outside-toplevel

    return [key(e) for e in full_history(flux.job.JournalConsumer(flux_handle, include_sentinel=True))]


def test_a_flux_core_rpc_is_drained_in_c_with_flux_cores_events(flux_handle, flux_core_history):
    consumer = JournalConsumer(flux_handle, include_sentinel=True)
    events = full_history(consumer)
    assert isinstance(consumer._intake, DrainIntake)
    assert [key(e) for e in events] == flux_core_history


def test_callback_mode_through_the_c_continuation(flux_handle, flux_core_history):
    got, ends = [], []

    def cb(event):
        if event is None:
            ends.append(None)
        elif event.is_empty():
            consumer.stop()
        else:
            got.append(key(event))

    consumer = JournalConsumer(flux_handle, include_sentinel=True).set_callback(cb).start()
    assert isinstance(consumer._intake, DrainIntake)
    flux_handle.reactor_run()
    assert got == flux_core_history
    assert ends == [None]


def test_an_exception_raised_elsewhere_in_the_reactor_loses_nothing(flux_handle, flux_core_history):
    """A timer's callback raises while the consumer's continuation is
    active: that reactor_run() raises it, the next one goes on."""
    got = []

    def cb(event):
        if event is not None and event.is_empty():
            consumer.stop()
        elif event is not None:
            got.append(key(event))

    def boom(handle, watcher, revents, args):
        del handle, revents, args
        watcher.stop()
        raise Boom()

    consumer = JournalConsumer(flux_handle, include_sentinel=True).set_callback(cb).start()
    timer = flux_handle.timer_watcher_create(0.0, boom)
    timer.start()
    with pytest.raises(Boom):
        flux_handle.reactor_run()
    flux_handle.reactor_run()
    timer.destroy()
    assert got == flux_core_history


def test_restart_in_callback_mode_delivers_the_new_requests_history(flux_handle, flux_core_history):
    got = []

    def cb(event):
        if event is None:
            return
        if event.is_empty():
            consumer.stop()
            return
        got.append(key(event))

    consumer = JournalConsumer(flux_handle, include_sentinel=True).set_callback(cb)
    consumer.start()
    consumer.start()  # the first request is cancelled; its continuation retires
    flux_handle.reactor_run()
    # what the first request had delivered comes first, then all of the second's
    assert got[len(got) - len(flux_core_history):] == flux_core_history


def test_service_error_is_flux_cores_oserror(flux_handle):
    import flux.job  # pylint: disable=import-outside-toplevel

    raised = []
    for cls in (flux.job.JournalConsumer, JournalConsumer):
        consumer = cls(flux_handle)
        consumer.topic = "job-manager.flux-journal-no-such-method"
        consumer.start()
        with pytest.raises(OSError) as info:
            consumer.poll(10.0)
        raised.append((type(info.value), info.value.errno, str(info.value)))
    assert raised[0] == raised[1]
    assert raised[1][1] == errno.ENOSYS


def test_poll_timeout_bounds_the_call(flux_handle):
    consumer = JournalConsumer(flux_handle, full=False).start()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        consumer.poll(0.5)
    assert time.monotonic() - started >= 0.5
    consumer.stop()
    assert consumer.poll(10.0) is None


def test_a_consumer_in_another_thread(flux_core_history):
    import flux  # pylint: disable=import-outside-toplevel

    result = []

    def read():
        consumer = JournalConsumer(flux.Flux(), include_sentinel=True)
        result.append([key(e) for e in full_history(consumer)])

    thread = threading.Thread(target=read)
    thread.start()
    thread.join(60)
    assert result == [flux_core_history]


def test_a_subclass_overriding_a_hook_takes_the_generic_path(flux_handle, flux_core_history):
    class Tagged(JournalConsumer):
        def create_event(self, entry, **kwargs):
            event = super().create_event(entry, **kwargs)
            event.tagged = True
            return event

    consumer = Tagged(flux_handle, include_sentinel=True)
    events = full_history(consumer)
    assert not isinstance(consumer._intake, DrainIntake)
    assert [key(e) for e in events] == flux_core_history
    assert all(e.tagged for e in events)


WAIT_FOREVER = textwrap.dedent(
    """
    import sys, flux, flux.job, flux_journal
    cls = flux.job.JournalConsumer if sys.argv[1] == "flux-core" else flux_journal.JournalConsumer
    consumer = cls(flux.Flux(), full=False).start()
    print("waiting", flush=True)
    consumer.poll()
    """
)


@pytest.mark.parametrize("reader", ["flux-core", "flux-journal"])
def test_ctrl_c_ends_a_poll_without_timeout(flux_handle, reader):
    """As with flux-core's own poll(): Ctrl-C ends the process."""
    del flux_handle
    proc = subprocess.Popen(
        [sys.executable, "-c", WAIT_FOREVER, reader], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline() == "waiting\n"
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(20)
    finally:
        proc.kill()
        proc.wait()
    assert rc == -signal.SIGINT
