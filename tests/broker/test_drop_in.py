"""Drop-in behaviour on a real Flux broker (skipped without one).

The same patterns as tests/test_callback_reactor.py, on flux-core's own
handle and reactor: a callback's exception is raised by the reactor_run()
during which it happened, and install()'s classes never call the callback
with None.  flux-core's own journal tests, run with install(), are
test_flux_core_journal_tests_pass_with_install().
"""

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flux_journal import JournalConsumer
from flux_journal import dropin

from broker_helpers import full_history

pytestmark = pytest.mark.broker


class Boom(Exception):
    pass


def history(handle):
    """Every history event, by poll()."""
    return full_history(JournalConsumer(handle, include_sentinel=True))


@pytest.mark.parametrize("cls", [JournalConsumer, dropin.JournalConsumer])
def test_exception_after_reactor_stop_is_raised_by_that_run(flux_handle, finished_jobs, cls):
    del finished_jobs
    expected = history(flux_handle)
    got = []

    def cb(event):
        if event is None:
            return
        if event.is_empty():
            consumer.stop()
            return
        got.append(event)
        if len(got) in (1, 5):
            flux_handle.reactor_stop()
            raise Boom(len(got))

    consumer = cls(flux_handle, include_sentinel=True).set_callback(cb).start()
    for position in (1, 5):
        with pytest.raises(Boom) as info:
            flux_handle.reactor_run()
        assert info.value.args == (position,)
        assert len(got) == position
    flux_handle.reactor_run()  # the rest, to the end of the stream
    assert [(e.jobid, e.name, e.timestamp) for e in got[: len(expected)]] == [
        (e.jobid, e.name, e.timestamp) for e in expected
    ]


def test_exception_never_leaks_into_a_later_unrelated_run(flux_handle, finished_jobs):
    """flux-core's t0030 test_async then test_nonfull, on the direct
    class: the documented None reaches a callback that stops the reactor
    on None and then dereferences it."""
    del finished_jobs
    import flux.job  # pylint: disable=import-outside-toplevel

    def careless(event):
        if event is None:
            flux_handle.reactor_stop()
        event.name  # pylint: disable=pointless-statement

    first = JournalConsumer(flux_handle, full=False).set_callback(careless).start()
    first.stop()
    with pytest.raises(AttributeError):
        flux_handle.reactor_run()

    events = []

    def cb(event):
        if event is None:
            flux_handle.reactor_stop()
            return
        events.append(event)
        if event.name == "clean":
            second.stop()

    second = JournalConsumer(flux_handle, full=False).set_callback(cb).start()
    jobid = flux.job.submit(flux_handle, flux.job.JobspecV1.from_command(["true"]))
    flux_handle.reactor_run()  # nothing of the first consumer's is raised here
    assert events and all(event.jobid == jobid for event in events)
    assert events[-1].name == "clean"


@pytest.mark.parametrize(
    "cls, sees_none", [(JournalConsumer, True), (dropin.JournalConsumer, False)]
)
def test_end_of_stream_none_only_for_the_direct_classes(flux_handle, finished_jobs, cls, sees_none):
    del finished_jobs
    calls = []

    def cb(event):
        calls.append(event)
        if event is not None and event.is_empty():
            consumer.stop()

    consumer = cls(flux_handle, include_sentinel=True).set_callback(cb).start()
    flux_handle.reactor_run()  # ends by itself once the stream is over
    assert calls.count(None) == (1 if sees_none else 0)
    assert consumer.poll(5.0) is None


def test_service_error_ends_the_stream_after_raising(flux_handle):
    consumer = JournalConsumer(flux_handle)
    consumer.topic = "flux-journal-no-such-service.events"
    consumer.start()
    with pytest.raises(OSError) as info:
        consumer.poll(10.0)
    assert info.value.errno == errno.ENOSYS
    assert consumer.poll(1.0) is None


def test_flux_core_journal_tests_pass_with_install():
    """flux-core's t0030 and t0032, unchanged, with install() applied."""
    src, prefix = os.environ.get("FLUX_CORE_SRC"), os.environ.get("FLUX_PREFIX")
    if not src or not prefix:
        pytest.skip("set FLUX_CORE_SRC (flux-core source tree) and FLUX_PREFIX (its install prefix)")
    script = Path(__file__).with_name("run_flux_core_tests.py")
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=900, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# 23/23 passed" in result.stdout
