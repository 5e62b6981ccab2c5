"""Consumer behaviour through the public interface (flux.abc semantics).

Every test drives flux_journal's consumers against the simulated instance
(flux_journal.sim): replayed captures from tests/fixtures or generated
workloads.  Where flux-core's documented behaviour is checked against
flux-core's own code, see test_differential.py.
"""

import errno
import json
import threading

import pytest

from flux_journal import (
    JournalConsumer,
    JournalConsumerBase,
    JournalEvent,
    JournalEventBase,
    PayloadError,
    ResourceJournalConsumer,
    ResourceJournalEvent,
    SENTINEL_EVENT,
)
from flux_journal.sim import SimFlux, Workload

from journal_helpers import poll_all

JOBS = "job-manager.events-journal"
RESOURCE = "resource.journal"


def fixture_lines(fixtures_dir, name):
    return (fixtures_dir / name).read_text().splitlines()


def history_of(lines, since=0.0, sentinel=None):
    """Every event of the responses before the sentinel, as (timestamp,
    name, jobid) in stable time order: what a consumer must deliver."""
    out = []
    for line in lines:
        resp = json.loads(line)
        if sentinel(resp):
            break
        for entry in resp["events"]:
            if entry["timestamp"] > since:
                out.append((entry["timestamp"], entry["name"], resp.get("id")))
    out.sort(key=lambda t: t[0])
    return out


def is_job_sentinel(resp):
    return resp.get("id") == -1


# ---------------------------------------------------------------------------
# History, since, sentinel


def test_history_in_time_order_then_live(fixtures_dir):
    lines = fixture_lines(fixtures_dir, "jobs-full.jsonl")
    h = SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)
    events = poll_all(JournalConsumer(h).start())
    expected = history_of(lines, sentinel=is_job_sentinel)
    got = [(e.timestamp, e.name, e.jobid) for e in events[: len(expected)]]
    assert got == expected
    # live events follow in arrival order
    live = []
    after = lines[lines.index('{"id":-1,"events":[]}') + 1 :]
    for line in after:
        resp = json.loads(line)
        live += [(e["timestamp"], e["name"], resp["id"]) for e in resp["events"]]
    assert [(e.timestamp, e.name, e.jobid) for e in events[len(expected) :]] == live


def test_equal_timestamps_keep_arrival_order(fixtures_dir):
    lines = fixture_lines(fixtures_dir, "jobs-10k.jsonl")
    events = poll_all(JournalConsumer(SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)).start())
    expected = history_of(lines, sentinel=is_job_sentinel)
    assert [(e.timestamp, e.name, e.jobid) for e in events] == expected
    stamps = [e.timestamp for e in events]
    ties = sum(1 for a, b in zip(stamps, stamps[1:]) if a == b)
    assert ties >= 3  # the fixture's known equal-timestamp pairs


def test_since_filters_history_and_live(fixtures_dir):
    lines = fixture_lines(fixtures_dir, "jobs-full.jsonl")
    everything = poll_all(JournalConsumer(SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)).start())
    cut = everything[len(everything) // 2].timestamp
    h = SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)
    events = poll_all(JournalConsumer(h, since=cut).start())
    assert events == [e for e in everything if e.timestamp > cut]
    assert all(e.timestamp > cut for e in events)


@pytest.mark.parametrize("mode", ["poll", "callback"])
def test_sentinel_is_the_class_constant_between_history_and_live(fixtures_dir, mode):
    lines = fixture_lines(fixtures_dir, "jobs-full.jsonl")
    h = SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)
    consumer = JournalConsumer(h, include_sentinel=True)
    if mode == "poll":
        events = poll_all(consumer.start())
    else:
        events = []
        consumer.set_callback(events.append).start()
        h.reactor_run()
        assert events.pop() is None
    nhistory = len(history_of(lines, sentinel=is_job_sentinel))
    assert events[nhistory] is SENTINEL_EVENT
    assert events[nhistory] is JournalConsumer.SENTINEL_EVENT
    assert events[nhistory].is_empty()
    assert str(events[nhistory]) == "-1: End of historical data stream"
    assert sum(1 for e in events if e.is_empty()) == 1


def test_sentinel_suppressed_by_default(fixtures_dir):
    lines = fixture_lines(fixtures_dir, "jobs-full.jsonl")
    events = poll_all(JournalConsumer(SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)).start())
    assert not any(e.is_empty() for e in events)


def test_full_false_requests_no_inactive_history():
    workload = Workload(njobs=200, seed=3)
    h = SimFlux(jobs=workload, autolive=False)
    consumer = JournalConsumer(h, full=False, include_sentinel=True).start()
    assert consumer.request_payload == {"full": False}
    seen = set()
    while True:
        try:
            event = consumer.poll(0.2)
        except TimeoutError:
            break
        seen.add(int(event.jobid))
    assert seen <= set(workload.active_ids())
    assert not seen & set(workload.inactive_ids())


# ---------------------------------------------------------------------------
# Event objects


def test_jobspec_only_on_submit_and_R_only_on_alloc(fixtures_dir):
    lines = fixture_lines(fixtures_dir, "jobs-full.jsonl")
    by_id = {}
    for line in lines:
        resp = json.loads(line)
        by_id.setdefault(resp.get("id"), {}).update(
            {k: resp[k] for k in ("jobspec", "R") if k in resp}
        )
    events = poll_all(JournalConsumer(SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)).start())
    assert any(e.name == "submit" for e in events)
    for e in events:
        assert isinstance(e, JournalEvent) and isinstance(e, dict)
        if e.name == "submit":
            assert e.jobspec == by_id[e.jobid].get("jobspec")
        else:
            assert e.jobspec is None
        if e.name == "alloc":
            assert e.R == by_id[e.jobid].get("R")
        else:
            assert e.R is None


def test_events_of_a_job_share_its_jobid_until_its_clean_event():
    # One JobID object serves all events of a job, live ones too; after
    # the job's last event ("clean", RFC 21) the consumer no longer holds
    # it, so ids of finished jobs are not kept alive.
    h = SimFlux(jobs=Workload(njobs=300, seed=4), autolive=False)
    consumer = JournalConsumer(h, include_sentinel=True).start()
    history = []
    while (event := consumer.poll(10.0)) is not SENTINEL_EVENT:
        history.append(event)
    by_job = {}
    for event in history:
        by_job.setdefault(int(event.jobid), []).append(event)
    finished = {job for job, events in by_job.items() if events[-1].name == "clean"}
    assert finished and len(finished) < len(by_job)  # some jobs still active
    for events in by_job.values():
        assert all(e.jobid is events[0].jobid for e in events)
    assert not finished & set(consumer._build_events.jobids)
    assert set(by_job) - finished <= set(consumer._build_events.jobids)
    active = min(set(by_job) - finished)
    h.post_job_event(active, "memo", {"note": 1})
    event = consumer.poll(10.0)
    assert (event.name, event.jobid) == ("memo", active)
    assert event.jobid is by_job[active][0].jobid


def test_event_dict_contents_and_str(fixtures_dir):
    lines = fixture_lines(fixtures_dir, "jobs-full.jsonl")
    events = poll_all(JournalConsumer(SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)).start())
    entries = {}
    for line in lines:
        resp = json.loads(line)
        for entry in resp["events"]:
            entries[(resp["id"], entry["timestamp"], entry["name"])] = entry
    for e in events:
        entry = dict(entries[(e.jobid, e.timestamp, e.name)])
        entry.setdefault("context", {})
        assert dict(e) == entry
        assert list(e) == list(entry)  # same key order as flux-core's dict
        assert e.context == entry["context"]
        ctx = json.dumps(entry["context"], ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        assert e.context_string == ("" if not entry["context"] else ctx)
        text = str(e)
        assert text.startswith(f"{e.jobid.f58}: {e.timestamp:<0.5f} {e.name}")


def test_resource_R_on_events_of_its_response(fixtures_dir):
    lines = fixture_lines(fixtures_dir, "resource.jsonl")
    h = SimFlux.replay(lines, topic=RESOURCE, end=errno.ENODATA)
    events = poll_all(ResourceJournalConsumer(h).start())
    carried = {}
    for line in lines:
        resp = json.loads(line)
        for entry in resp["events"]:
            carried[(entry["timestamp"], entry["name"])] = resp.get("R")
    assert any(e.R is not None for e in events)
    for e in events:
        assert isinstance(e, ResourceJournalEvent)
        assert e.R == carried[(e.timestamp, e.name)]
        assert str(e) == " ".join([f"{e.timestamp:<0.5f}", e.name, e.context_string])


def test_resource_sentinel(fixtures_dir):
    lines = fixture_lines(fixtures_dir, "resource-many.jsonl")
    h = SimFlux.replay(lines, topic=RESOURCE, end=errno.ENODATA)
    events = poll_all(ResourceJournalConsumer(h, include_sentinel=True).start())
    sentinels = [e for e in events if e.is_empty()]
    assert sentinels == [ResourceJournalConsumer.SENTINEL_EVENT]
    assert sentinels[0] is ResourceJournalConsumer.SENTINEL_EVENT
    assert str(sentinels[0]).endswith(" End of historical data stream")
    idx = events.index(sentinels[0])
    history = [e.timestamp for e in events[:idx]]
    assert history == sorted(history) and len(history) > 100


# ---------------------------------------------------------------------------
# poll(), start(), stop()


def test_poll_before_start_raises_runtime_error():
    with pytest.raises(RuntimeError, match=r"poll\(\) called before start\(\)"):
        JournalConsumer(SimFlux()).poll()


def test_stop_before_start_raises_runtime_error():
    with pytest.raises(RuntimeError, match=r"stop\(\) called before start\(\)"):
        JournalConsumer(SimFlux()).stop()


def test_start_returns_self():
    consumer = JournalConsumer(SimFlux())
    assert consumer.start() is consumer


def test_poll_timeout_raises_timeout_error(fixtures_dir):
    lines = fixture_lines(fixtures_dir, "jobs-full.jsonl")
    consumer = JournalConsumer(SimFlux.replay(lines, topic=JOBS)).start()
    events = []
    with pytest.raises(TimeoutError):
        while True:
            events.append(consumer.poll(0.05))
    assert len(events) == sum(len(json.loads(line)["events"]) for line in lines)


def test_poll_timeout_bounds_the_whole_call():
    """History trickling in slower than the timeout, one response at a
    time, must not let poll() wait past its timeout overall."""
    lines = ['{"id":%d,"events":[{"timestamp":%d.5,"name":"submit"}]}' % (i, i) for i in range(1, 40)]
    h = SimFlux.replay(lines + ['{"id":-1,"events":[]}'], topic=JOBS, hold=1)
    service = h.service(JOBS)
    stop = threading.Event()

    def trickle():
        while not stop.wait(0.02):
            service.release(1)

    feeder = threading.Thread(target=trickle)
    feeder.start()
    try:
        import time

        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            JournalConsumer(h).start().poll(0.2)
        assert time.monotonic() - t0 < 2.0
    finally:
        stop.set()
        feeder.join()


def test_enodata_ends_stream_and_poll_keeps_returning_none(fixtures_dir):
    lines = fixture_lines(fixtures_dir, "jobs-active.jsonl")
    consumer = JournalConsumer(SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)).start()
    poll_all(consumer)
    assert consumer.poll() is None
    assert consumer.poll(0) is None


def test_stop_mid_history_delivers_history_so_far_in_order():
    lines = [
        '{"id":2,"events":[{"timestamp":5.0,"name":"submit"},{"timestamp":7.0,"name":"validate"}]}',
        '{"id":1,"events":[{"timestamp":4.0,"name":"submit"},{"timestamp":6.0,"name":"validate"}]}',
        '{"id":3,"events":[{"timestamp":1.0,"name":"submit"}]}',
    ]
    h = SimFlux.replay(lines, topic=JOBS, hold=2)
    consumer = JournalConsumer(h).start()
    with pytest.raises(TimeoutError):
        consumer.poll(0.05)  # history is incomplete: nothing yet
    consumer.stop()
    events = poll_all(consumer)
    assert [(e.timestamp, int(e.jobid)) for e in events] == [(4.0, 1), (5.0, 2), (6.0, 1), (7.0, 2)]


def test_stop_sends_cancel_with_matchtag_and_ends_with_none():
    h = SimFlux(jobs=Workload(njobs=50, seed=1), autolive=False)
    consumer = JournalConsumer(h, include_sentinel=True).start()
    while not consumer.poll().is_empty():
        pass
    consumer.stop()
    assert consumer.poll() is None


# ---------------------------------------------------------------------------
# Callbacks


def test_callback_with_args_and_kwargs_and_final_none(fixtures_dir):
    lines = fixture_lines(fixtures_dir, "jobs-full.jsonl")
    h = SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)
    calls = []

    def cb(event, tag, *, sink):
        sink.append((event, tag))

    JournalConsumer(h).set_callback(cb, "t", sink=calls).start()
    h.reactor_run()
    assert calls[-1] == (None, "t")
    assert sum(1 for e, _ in calls if e is None) == 1
    polled = poll_all(JournalConsumer(SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)).start())
    assert [e for e, _ in calls[:-1]] == polled


def test_callback_set_before_or_after_start_and_replaced(fixtures_dir):
    lines = fixture_lines(fixtures_dir, "jobs-active.jsonl")
    first, second = [], []
    h = SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)
    consumer = JournalConsumer(h)
    consumer.set_callback(first.append)
    consumer.start()
    consumer.set_callback(second.append)  # replaces, no error
    h.reactor_run()
    assert first == [] and second[-1] is None and len(second) > 10

    after = []
    h = SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)
    consumer = JournalConsumer(h).start()
    assert consumer.set_callback(after.append) is consumer
    h.reactor_run()
    assert after[:-1] == second[:-1]


def test_callback_none_once_when_stopped_from_callback():
    h = SimFlux(jobs=Workload(njobs=30, seed=2), autolive=False)
    seen = []

    def cb(event):
        seen.append(event)
        if event is not None and event.is_empty():
            consumer.stop()

    consumer = JournalConsumer(h, include_sentinel=True).set_callback(cb).start()
    h.reactor_run()
    assert seen[-1] is None and seen.count(None) == 1
    assert seen[-2] is SENTINEL_EVENT


def test_callback_that_raises_loses_and_repeats_nothing(fixtures_dir):
    lines = fixture_lines(fixtures_dir, "jobs-full.jsonl")
    expected = poll_all(JournalConsumer(SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)).start())
    h = SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)
    got = []

    class Boom(Exception):
        pass

    def cb(event):
        got.append(event)
        if len(got) in (1, 5, 300, len(expected)):
            raise Boom(len(got))

    JournalConsumer(h).set_callback(cb).start()
    raised = 0
    while True:
        try:
            h.reactor_run()
            break
        except Boom:
            raised += 1
    assert raised == 4
    assert got[:-1] == expected and got[-1] is None


# ---------------------------------------------------------------------------
# Errors


def test_service_error_at_start_is_the_oserror_subclass():
    h = SimFlux.replay([], topic=JOBS, errors={0: (errno.EPERM, "Operation not permitted")})
    consumer = JournalConsumer(h).start()
    with pytest.raises(PermissionError):
        consumer.poll()
    assert consumer.poll() is None


def test_service_error_mid_live_comes_after_received_events(fixtures_dir):
    lines = fixture_lines(fixtures_dir, "jobs-full.jsonl")
    h = SimFlux.replay(lines, topic=JOBS, errors={100: errno.ENOSYS})
    consumer = JournalConsumer(h).start()
    events = []
    with pytest.raises(OSError) as info:
        while True:
            events.append(consumer.poll(5))
    assert info.value.errno == errno.ENOSYS
    assert len(events) == sum(len(json.loads(line)["events"]) for line in lines[:100])
    assert consumer.poll() is None


def test_service_error_during_history_delivers_history_first():
    lines = [
        '{"id":2,"events":[{"timestamp":5.0,"name":"submit"}]}',
        '{"id":1,"events":[{"timestamp":4.0,"name":"submit"}]}',
    ]
    h = SimFlux.replay(lines, topic=JOBS, end=errno.EPROTO)
    consumer = JournalConsumer(h).start()
    assert [e.timestamp for e in (consumer.poll(), consumer.poll())] == [4.0, 5.0]
    with pytest.raises(OSError) as info:
        consumer.poll()
    assert info.value.errno == errno.EPROTO
    assert consumer.poll() is None


def test_service_error_in_callback_mode_reaches_reactor_run_then_none():
    lines = ['{"id":1,"events":[{"timestamp":4.0,"name":"submit"}]}', '{"id":-1,"events":[]}']
    h = SimFlux.replay(lines, topic=JOBS, end=errno.EPERM)
    seen = []
    JournalConsumer(h).set_callback(seen.append).start()
    with pytest.raises(PermissionError):
        h.reactor_run()
    assert [e.timestamp for e in seen] == [4.0]
    h.reactor_run()
    assert seen[-1] is None and len(seen) == 2


def test_malformed_payload_raises_at_its_place_and_stream_goes_on():
    lines = [
        '{"id":-1,"events":[]}',
        '{"id":1,"events":[{"timestamp":1.0,"name":"submit"}]}',
        '{"id":2,"events":[{"timestamp":2.0,"name":"sub\\x"}]}',
        '{"id":3,"events":[{"timestamp":3.0,"name":"submit"}]}',
    ]
    consumer = JournalConsumer(SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)).start()
    assert consumer.poll().jobid == 1
    with pytest.raises(PayloadError) as info:
        consumer.poll()
    assert isinstance(info.value, ValueError)
    assert info.value.offset == lines[2].index("\\x")
    assert "byte" in str(info.value)
    assert consumer.poll().jobid == 3
    assert consumer.poll() is None


@pytest.mark.parametrize("mode", ["poll", "callback"])
def test_burst_of_mixed_responses_keeps_stream_order(mode):
    # Arrived responses are fed to C in groups; non-ASCII ones, errors
    # and bad payloads go one by one.  Order must not change.
    lines = [
        '{"id":1,"events":[{"timestamp":1.0,"name":"submit","context":{"n":"café"}}]}',
        '{"id":2,"events":[{"timestamp":2.0,"name":"submit"}]}',
        '{"id":3,"events":[{"timestamp":3.0,"name":"sub\\x"}]}',
        '{"id":-1,"events":[]}',
        '{"id":4,"events":[{"timestamp":4.0,"name":"start"}]}',
        '{"id":5,"events":[{"timestamp":5.0,"name":"start","context":{"n":"日本"}}]}',
        '{"id":6,"events":[{"timestamp":6.0,"name":"start"}]}',
        '{"id":7}',
        '{"id":8,"events":[{"timestamp":8.0,"name":"start"}]}',
    ]
    handle = SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)
    consumer = JournalConsumer(handle, include_sentinel=True)
    seen = []
    if mode == "poll":
        consumer.start()
        while True:
            try:
                event = consumer.poll(10.0)
            except PayloadError as exc:
                seen.append(("error", exc.offset))
                continue
            seen.append(event if event is None else int(event.jobid))
            if event is None:
                break
    else:
        consumer.set_callback(lambda e: seen.append(e if e is None else int(e.jobid))).start()
        while True:
            try:
                handle.reactor_run()
                break
            except PayloadError as exc:
                seen.append(("error", exc.offset))
    assert seen == [1, 2, ("error", lines[2].index("\\x")), -1, 4, 5, 6, ("error", 0), 8, None]


@pytest.mark.parametrize(
    "payload",
    [
        '{"id":5}',
        '{"id":5,"events":{}}',
        '{"id":5,"events":[{"name":"submit"}]}',
        '{"id":5,"events":[{"timestamp":"x","name":"submit"}]}',
        '{"events":[{"timestamp":1.0,"name":"submit"}]}',
        '[1,2]',
        '{"id":5,"events":[{"timestamp":1.0,"name":"submit"}]',
    ],
)
def test_wrong_shape_is_a_payload_error_never_key_or_type_error(payload):
    lines = ['{"id":-1,"events":[]}', payload, '{"id":7,"events":[{"timestamp":9.0,"name":"clean"}]}']
    consumer = JournalConsumer(SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)).start()
    with pytest.raises(PayloadError):
        consumer.poll()
    assert consumer.poll().name == "clean"
    assert consumer.poll() is None


def test_malformed_history_payload_raised_after_history():
    lines = [
        '{"id":2,"events":[{"timestamp":5.0,"name":"submit"}]}',
        "not json",
        '{"id":1,"events":[{"timestamp":4.0,"name":"submit"}]}',
        '{"id":-1,"events":[]}',
        '{"id":3,"events":[{"timestamp":6.0,"name":"submit"}]}',
    ]
    consumer = JournalConsumer(SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)).start()
    assert [consumer.poll().timestamp for _ in range(2)] == [4.0, 5.0]
    with pytest.raises(PayloadError):
        consumer.poll()
    assert consumer.poll().timestamp == 6.0
    assert consumer.poll() is None


# ---------------------------------------------------------------------------
# Subclasses and handles


def test_subclass_overriding_create_event_takes_generic_path(fixtures_dir):
    lines = fixture_lines(fixtures_dir, "jobs-full.jsonl")

    class Tagged(JournalConsumer):
        def create_event(self, entry, **kwargs):
            event = super().create_event(entry, **kwargs)
            event.tagged = True
            return event

    plain = poll_all(JournalConsumer(SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA), include_sentinel=True).start())
    tagged = poll_all(Tagged(SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA), include_sentinel=True).start())
    assert tagged == plain
    assert [str(e) for e in tagged] == [str(e) for e in plain]
    assert all(getattr(e, "tagged", False) for e in tagged if not e.is_empty())


def test_user_subclass_of_base(fixtures_dir):
    lines = fixture_lines(fixtures_dir, "resource.jsonl")

    class Names(JournalConsumerBase):
        def process_response(self, resp):
            return {"has_r": "R" in resp}

        def create_event(self, entry, has_r=False):
            event = JournalEventBase(entry)
            event.has_r = has_r
            return event

    h = SimFlux.replay(lines, topic=RESOURCE, end=errno.ENODATA)
    events = poll_all(Names(h, RESOURCE, include_sentinel=True).start())
    reference = poll_all(
        ResourceJournalConsumer(SimFlux.replay(lines, topic=RESOURCE, end=errno.ENODATA), include_sentinel=True).start()
    )
    assert [dict(e) for e in events if not e.is_empty()] == [dict(e) for e in reference if not e.is_empty()]
    assert [e.has_r for e in events if not e.is_empty()] == [e.R is not None for e in reference if not e.is_empty()]
    assert sum(1 for e in events if e is Names.SENTINEL_EVENT) == 1


class _DictOnlyFuture:
    """A future offering get() but not get_str()."""

    def __init__(self, inner):
        self._inner = inner
        self.pimpl = inner.pimpl

    def wait_for(self, timeout=-1.0):
        self._inner.wait_for(timeout)
        return self

    def get(self):
        return self._inner.get()

    def reset(self):
        self._inner.reset()

    def then(self, cb, *args, **kwargs):
        self._inner.then(lambda f: cb(self, *args, **kwargs))
        return self


class _DictOnlyHandle:
    def __init__(self, inner):
        self._inner = inner

    def rpc(self, *args, **kwargs):
        return _DictOnlyFuture(self._inner.rpc(*args, **kwargs))


def test_handle_without_get_str_falls_back_to_get(fixtures_dir):
    lines = fixture_lines(fixtures_dir, "jobs-full.jsonl")
    expected = poll_all(JournalConsumer(SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)).start())
    h = _DictOnlyHandle(SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA))
    assert poll_all(JournalConsumer(h).start()) == expected


def test_flux_raw_payload_pointer_path(fixtures_dir):
    """With a flux-core future, the payload is read through
    flux_rpc_get()'s char pointer, as flux.rpc.RPC's pimpl offers."""
    from cffi import FFI

    lines = fixture_lines(fixtures_dir, "jobs-full.jsonl")
    expected = poll_all(JournalConsumer(SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)).start())
    ffi = FFI()

    class Pimpl:
        def __init__(self, inner):
            self.ffi = ffi
            self._inner = inner
            self.keep = None

        def get_matchtag(self):
            return self._inner.pimpl.get_matchtag()

        def flux_rpc_get(self, holder):
            text = self._inner.get_str()  # raises OSError like flux's wrapper
            self.keep = ffi.new("char[]", text.encode())
            holder[0] = self.keep

    class RawFuture(_DictOnlyFuture):
        def __init__(self, inner):
            super().__init__(inner)
            self.pimpl = Pimpl(inner)

        def get(self):
            raise AssertionError("the raw path must not decode JSON in Python")

    class RawHandle(_DictOnlyHandle):
        def rpc(self, *args, **kwargs):
            return RawFuture(self._inner.rpc(*args, **kwargs))

    h = RawHandle(SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA))
    assert poll_all(JournalConsumer(h).start()) == expected


def test_restart_keeps_received_events_and_replays_history():
    lines = ['{"id":1,"events":[{"timestamp":1.0,"name":"submit"}]}', '{"id":-1,"events":[]}']
    h = SimFlux.replay(lines, topic=JOBS)
    consumer = JournalConsumer(h).start()
    assert consumer.poll().timestamp == 1.0
    consumer.start()
    assert consumer.poll().timestamp == 1.0  # history again from the new request
    with pytest.raises(TimeoutError):
        consumer.poll(0.05)


def test_history_response_out_of_time_order_is_still_sorted():
    """Runs within a response are verified, not assumed: an eventlog out of
    order is split into ordered runs and merged; ties keep arrival order."""
    lines = [
        '{"id":1,"events":[{"timestamp":5.0,"name":"a"},{"timestamp":2.0,"name":"b"},'
        '{"timestamp":7.0,"name":"c"},{"timestamp":2.0,"name":"d"},{"timestamp":2.0,"name":"e"}]}',
        '{"id":2,"events":[{"timestamp":2.0,"name":"f"},{"timestamp":6.0,"name":"g"},{"timestamp":1.0,"name":"h"}]}',
        '{"id":-1,"events":[]}',
    ]
    events = poll_all(JournalConsumer(SimFlux.replay(lines, topic=JOBS, end=errno.ENODATA)).start())
    assert [e.name for e in events] == ["h", "b", "d", "e", "f", "a", "g", "c"]
