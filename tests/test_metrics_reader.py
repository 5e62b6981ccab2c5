"""JournalReader: one journal's consumer feeding its tracker."""

import errno
import threading
import time

from flux_journal.job import JournalConsumer
from flux_journal.metrics.reader import JournalReader
from flux_journal.metrics.state import JobTracker
from flux_journal.sim import SimFlux, Workload

TOPIC = "job-manager.events-journal"


def test_service_error_ends_reading_after_the_events_before_it():
    lines = Workload(njobs=50, seed=1).stream(full=True)
    handle = SimFlux.replay(lines, topic=TOPIC, errors={len(lines) - 1: errno.EPERM})
    reader = JournalReader("jobs", JournalConsumer(handle, full=True), JobTracker())
    reader.run()
    assert isinstance(reader.failure, PermissionError)
    assert reader.ended and reader.history_complete
    assert reader.tracker.events["submit"] == 50


class Broken(JobTracker):
    def consume(self, events):
        raise RuntimeError("a bug")


def test_unexpected_exception_of_the_thread_is_kept():
    handle = SimFlux.replay(Workload(njobs=5).stream(), topic=TOPIC, end=errno.ENODATA)
    reader = JournalReader("jobs", JournalConsumer(handle, full=True), Broken())
    reader.start(threading.Event()).join(10.0)
    assert isinstance(reader.failure, RuntimeError) and reader.ended


def test_stop_cancels_a_live_stream():
    workload = Workload(njobs=20, seed=2)
    handle = SimFlux(jobs=workload, autolive=False)
    stop = threading.Event()
    reader = JournalReader("jobs", JournalConsumer(handle, full=True), JobTracker())
    reader.start(stop)
    handle.inject_job("success")
    deadline = time.monotonic() + 30
    while not reader.history_complete and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reader.history_complete
    stop.set()
    reader.join(10.0)
    assert reader.failure is None
    assert reader.consumer.poll_batch(10, 1.0)[-1] is None  # the stream was cancelled
