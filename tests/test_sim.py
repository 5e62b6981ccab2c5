"""Tests of the simulated Flux instance (flux_journal.sim).

The reference behaviour is flux-core's: journal.c and reslog.c for the
services, flux.rpc/flux.future/flux.core for the handle, and the
captures in tests/fixtures for the exact shape of responses.
"""

import errno
import hashlib
import json
import os
import threading
import time

import pytest

from flux_journal._flux import FLUX_NODEID_ANY, FLUX_RPC_NORESPONSE, FLUX_RPC_STREAMING
from flux_journal.sim import (
    FLUX_REACTOR_NOWAIT,
    JOB_KINDS,
    JOB_SENTINEL,
    RESOURCE_SENTINEL,
    ReplayService,
    ResourceJournalService,
    ResourceWorkload,
    SimError,
    SimFlux,
    Workload,
    dumps,
    generate_jobs,
    read_capture,
)
from flux_journal.sim.workload import FluidGenerator

from captures import capture_path

JOBS = "job-manager.events-journal"
RES = "resource.journal"
STREAM = FLUX_RPC_STREAMING


def fixture(name):
    return str(capture_path(name))


def raw_lines(path):
    with open(path, "rb") as stream:
        return stream.read().decode("utf-8").split("\n")[:-1]


def drain_history(fut, sentinel=JOB_SENTINEL):
    """Collect raw backlog payloads up to (not including) the sentinel."""
    out = []
    while True:
        text = fut.wait_for(5.0).get_str()
        fut.reset()
        if text == sentinel:
            return out
        out.append(text)


def drain_ready(fut):
    """Collect whatever responses are queued right now."""
    out = []
    while fut.is_ready():
        try:
            out.append(fut.get_str())
        except OSError as exc:
            out.append(exc)
            break
        fut.reset()
    return out


def cancel(h, fut, topic=JOBS):
    return h.rpc(f"{topic}-cancel", {"matchtag": fut.pimpl.get_matchtag()}, 0, FLUX_RPC_NORESPONSE)


@pytest.fixture(scope="module")
def small_workload():
    return Workload(njobs=400, seed=7, live_jobs=20)


# --------------------------------------------------------------------------
# Replay of captured streams
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,topic",
    [
        ("jobs-full.jsonl", JOBS),
        ("jobs-active.jsonl", JOBS),
        ("jobs-10k.jsonl", JOBS),
        ("resource.jsonl", RES),
        ("resource-many.jsonl", RES),
    ],
)
def test_replay_returns_each_line_byte_for_byte(name, topic):
    path = fixture(name)
    lines = raw_lines(path)
    h = SimFlux.replay(path, topic=topic)
    fut = h.rpc(topic, {"full": True}, 0, STREAM)
    for line in lines:
        assert fut.wait_for(1.0).get_str() == line
        fut.reset()
    # After the last line the stream stays open until cancelled.
    assert not fut.is_ready()
    with pytest.raises(TimeoutError):
        fut.wait_for(0.05)
    cancel(h, fut, topic)
    with pytest.raises(OSError) as info:
        fut.wait_for(1.0).get()
    assert info.value.errno == errno.ENODATA
    assert info.value.strerror == os.strerror(errno.ENODATA)


def test_fixture_lines_reencode_like_jansson():
    # The whole simulator relies on dumps() writing what the broker writes.
    for name in ("jobs-full.jsonl", "jobs-active.jsonl", "resource-many.jsonl"):
        for line in raw_lines(fixture(name)):
            assert dumps(json.loads(line)) == line


def test_read_capture_keeps_bad_utf8_as_bytes(tmp_path):
    path = tmp_path / "cap.jsonl"
    path.write_bytes(b'{"events":[]}\n\xff\xfe\n{"a":1}\n')
    assert read_capture(path) == ['{"events":[]}', b"\xff\xfe", '{"a":1}']


def test_replay_end_with_enodata_right_after_last_line():
    lines = raw_lines(fixture("resource.jsonl"))
    h = SimFlux.replay(lines, topic=RES, end=errno.ENODATA)
    fut = h.rpc(RES, None, 0, STREAM)
    got = drain_ready(fut)
    assert got[:-1] == lines
    assert got[-1].errno == errno.ENODATA


def test_replay_error_at_position_is_terminal():
    lines = raw_lines(fixture("jobs-full.jsonl"))
    h = SimFlux.replay(lines, errors={5: (errno.EPERM, "not allowed")})
    fut = h.rpc(JOBS, {"full": True}, 0, STREAM)
    for line in lines[:5]:
        assert fut.get_str() == line
        fut.reset()
    for _ in range(3):
        with pytest.raises(PermissionError, match="not allowed"):
            fut.wait_for(0.1).get()
        fut.reset()
    assert fut.error_string() == "not allowed"


def test_replay_serves_malformed_payloads_as_is():
    script = ["{not json", b"\xff\xfe", None, '{"id":-1,"events":[]}', SimError(errno.EIO)]
    h = SimFlux.replay(script)
    fut = h.rpc(JOBS, {}, 0, STREAM)
    assert fut.get_str() == "{not json"
    with pytest.raises(ValueError):
        fut.get()
    fut.reset()
    with pytest.raises(UnicodeDecodeError):
        fut.get_str()
    fut.reset()
    assert fut.get_str() is None and fut.get() is None
    fut.reset()
    assert fut.get() == {"id": -1, "events": []}
    fut.reset()
    with pytest.raises(OSError) as info:
        fut.get()
    assert info.value.errno == errno.EIO and info.value.strerror == os.strerror(errno.EIO)


def test_replay_hold_and_release_from_another_thread():
    service = ReplayService(["a", "b", "c", "d"], topic=RES, hold=1)
    h = SimFlux(services=[service], defaults=False)
    fut = h.rpc(RES, None, 0, STREAM)
    assert fut.get_str() == "a"
    fut.reset()
    threading.Timer(0.05, service.release, args=(2,)).start()
    assert fut.wait_for(5.0).get_str() == "b"
    fut.reset()
    assert fut.wait_for(1.0).get_str() == "c"
    fut.reset()
    assert not fut.is_ready()
    service.release()
    assert fut.get_str() == "d"


def test_replay_requires_streaming_and_each_request_gets_everything():
    h = SimFlux.replay(["x", "y"], topic=RES)
    with pytest.raises(OSError, match="journal requires streaming RPC flag"):
        h.rpc(RES).get()
    first = h.rpc(RES, None, 0, STREAM)
    second = h.rpc(RES, None, 0, STREAM)
    assert drain_ready(first) == ["x", "y"] == drain_ready(second)
    with pytest.raises(OSError) as info:
        h.rpc(JOBS, {}, 0, STREAM).get()
    assert info.value.errno == errno.ENOSYS


# --------------------------------------------------------------------------
# job-manager.events-journal (journal.c)
# --------------------------------------------------------------------------


def test_job_journal_requires_streaming_flag():
    h = SimFlux(jobs=Workload(njobs=5, seed=1))
    with pytest.raises(OSError) as info:
        h.rpc(JOBS, {"full": True}).get()
    assert info.value.errno == errno.EPROTO
    assert info.value.strerror == "job-manager.events requires streaming RPC flag"


@pytest.mark.parametrize("payload", [None, "not json", "[1, 2]", {"full": 1}, {"full": None}])
def test_job_journal_bad_payload_is_eproto_without_message(payload):
    h = SimFlux()
    with pytest.raises(OSError) as info:
        h.rpc(JOBS, payload, 0, STREAM).get()
    assert info.value.errno == errno.EPROTO
    assert info.value.strerror == os.strerror(errno.EPROTO)


@pytest.mark.parametrize("key", ["allow", "deny"])
def test_allow_deny_must_be_objects(key):
    h = SimFlux()
    with pytest.raises(OSError) as info:
        h.rpc(JOBS, {key: ["submit"]}, 0, STREAM).get()
    assert info.value.errno == errno.EPROTO
    assert info.value.strerror == f"job-manager.events {key} should be an object"


def test_sentinels_and_empty_instance():
    h = SimFlux(jobs=None, resources=ResourceWorkload())
    fut = h.rpc(JOBS, {"full": True}, 0, STREAM)
    assert fut.get_str() == JOB_SENTINEL == '{"id":-1,"events":[]}'
    rfut = h.rpc(RES, {}, 0, STREAM)
    texts = drain_ready(rfut)
    assert texts[-1] == RESOURCE_SENTINEL == '{"events":[]}'


def test_cancel_ends_stream_with_enodata(small_workload):
    h = SimFlux(jobs=small_workload, autolive=False)
    fut = h.rpc(JOBS, {"full": False}, 0, STREAM)
    other = h.rpc(JOBS, {"full": False}, 0, STREAM)
    drain_history(fut)
    # A cancel naming another matchtag does nothing.
    h.rpc(f"{JOBS}-cancel", {"matchtag": 999999}, 0, FLUX_RPC_NORESPONSE)
    assert h.jobs.listeners == 2
    cfut = cancel(h, fut)
    assert cfut.pimpl.get_matchtag() == 0
    assert cfut.get() is None  # one-way RPCs are fulfilled at once
    assert drain_ready(fut)[-1].errno == errno.ENODATA
    assert h.jobs.listeners == 1
    h.inject_job("success")
    rest = drain_ready(fut)  # the error stays current; nothing follows it
    assert len(rest) == 1 and rest[0].errno == errno.ENODATA
    assert drain_history(other)
    assert other.is_ready()


def test_matchtags_unique_and_flags_checked():
    h = SimFlux()
    tags = {h.rpc(JOBS, {}, 0, STREAM).pimpl.get_matchtag() for _ in range(5)}
    assert len(tags) == 5 and 0 not in tags
    with pytest.raises(OSError) as info:
        h.rpc(JOBS, {}, 0, 4)
    assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError, match="No service matching no.such is registered"):
        h.rpc("no.such", {}, FLUX_NODEID_ANY, 0).get()


def test_full_false_excludes_inactive_jobs(small_workload):
    wl = small_workload
    h = SimFlux(jobs=wl, autolive=False)
    full = [json.loads(t)["id"] for t in drain_history(h.rpc(JOBS, {"full": True}, 0, STREAM))]
    active = [json.loads(t)["id"] for t in drain_history(h.rpc(JOBS, {"full": False}, 0, STREAM))]
    assert wl.active and wl.inactive
    assert sorted(active) == sorted(wl.active_ids())
    assert sorted(full) == sorted(wl.active_ids() + wl.inactive_ids())
    # journal.c walks the inactive hash first, then the active one.
    assert set(full[: len(wl.inactive)]) == set(wl.inactive_ids())
    assert full[len(wl.inactive):] == active
    # Omitted "full" means false.
    assert sorted(json.loads(t)["id"] for t in drain_history(h.rpc(JOBS, {}, 0, STREAM))) == sorted(
        active
    )


def test_history_shapes_like_fixtures(small_workload):
    h = SimFlux(jobs=small_workload)
    history = [json.loads(t) for t in drain_history(h.rpc(JOBS, {"full": True}, 0, STREAM))]
    submits = []
    for resp in history:
        keys = list(resp)
        assert keys[:2] == ["id", "events"] and keys[2:] in ([], ["jobspec"], ["jobspec", "R"])
        assert ("R" in resp) == any(e["name"] == "alloc" for e in resp["events"])
        stamps = [e["timestamp"] for e in resp["events"]]
        assert stamps == sorted(stamps)  # each job's events in time order
        for event in resp["events"]:
            assert list(event)[:2] == ["timestamp", "name"]
            assert "context" not in event or event["context"]  # no empty/null context
            if event["name"] in ("validate", "depend", "start", "free", "clean"):
                assert list(event) == ["timestamp", "name"]
        assert resp["jobspec"]["version"] == 1
        if "R" in resp:
            assert list(resp["R"]["execution"]) == [
                "R_lite", "starttime", "expiration", "nslots", "nodelist",
            ]
        submits.append(stamps[0])
    # Hash order, not time order.
    assert submits != sorted(submits)


def test_live_jobspec_only_on_submit_and_R_only_on_alloc(small_workload):
    h = SimFlux(jobs=small_workload)
    fut = h.rpc(JOBS, {"full": True}, 0, STREAM)
    drain_history(fut)
    live = [json.loads(t) for t in drain_ready(fut)]
    assert len(live) == len(small_workload.live)
    names = set()
    for resp in live:
        assert len(resp["events"]) == 1
        name = resp["events"][0]["name"]
        names.add(name)
        assert ("jobspec" in resp) == (name == "submit")
        assert ("R" in resp) == (name == "alloc")
    assert {"submit", "alloc", "annotations", "clean"} <= names
    stamps = [r["events"][0]["timestamp"] for r in live]
    assert stamps == sorted(stamps) and stamps[0] > small_workload.now


def test_annotations_are_journal_only(small_workload):
    h = SimFlux(jobs=small_workload)
    fut = h.rpc(JOBS, {"full": True}, 0, STREAM)
    drain_history(fut)
    live = [json.loads(t) for t in drain_ready(fut)]
    annotated = {r["id"] for r in live if r["events"][0]["name"] == "annotations"}
    assert annotated
    # A later request sees the live events in the backlog, minus annotations.
    again = [json.loads(t) for t in drain_history(h.rpc(JOBS, {"full": True}, 0, STREAM))]
    for resp in again:
        if resp["id"] in annotated:
            names = [e["name"] for e in resp["events"]]
            assert "alloc" in names and "annotations" not in names


def test_allow_deny_filters():
    wl = Workload(njobs=60, seed=3, live_jobs=5)
    h = SimFlux(jobs=wl, autolive=False)
    allow = h.rpc(JOBS, {"full": True, "allow": {"submit": 1, "finish": 0}}, 0, STREAM)
    deny = h.rpc(JOBS, {"full": True, "deny": {"submit": True, "annotations": True}}, 0, STREAM)
    both = h.rpc(JOBS, {"full": True, "allow": {"submit": 1, "clean": 1}, "deny": {"clean": 1}}, 0, STREAM)
    none = h.rpc(JOBS, {"full": True, "allow": {}}, 0, STREAM)
    njobs = len(wl.inactive) + len(wl.active)
    hist = {}
    for key, fut in (("allow", allow), ("deny", deny), ("both", both), ("none", none)):
        hist[key] = [json.loads(t) for t in drain_history(fut)]
        # One response per job even when every event is filtered out.
        assert len(hist[key]) == njobs
    assert all({e["name"] for e in r["events"]} <= {"submit", "finish"} for r in hist["allow"])
    assert all("submit" not in {e["name"] for e in r["events"]} for r in hist["deny"])
    assert all([e["name"] for e in r["events"]] == ["submit"] for r in hist["both"])
    assert all(r["events"] == [] and "jobspec" in r for r in hist["none"])
    h.post_live()
    live_allow = [json.loads(t)["events"][0]["name"] for t in drain_ready(allow)]
    live_deny = [json.loads(t)["events"][0]["name"] for t in drain_ready(deny)]
    assert set(live_allow) <= {"submit", "finish"} and "submit" in live_allow
    assert "submit" not in live_deny and "annotations" not in live_deny and live_deny
    assert drain_ready(none) == []  # filtered live events are not sent at all


def test_injection_and_event_posting():
    h = SimFlux(jobs=Workload(njobs=10, seed=2), autolive=False)
    fut = h.rpc(JOBS, {"full": False}, 0, STREAM)
    drain_history(fut)
    jobid = h.inject_job("success", upto="start")
    live = [json.loads(t) for t in drain_ready(fut)]
    assert [r["events"][0]["name"] for r in live][-1] == "start"
    assert {r["id"] for r in live} == {jobid}
    assert jobid in h.jobs.job_ids(active=True)
    h.post_job_event(jobid, "memo", {"note": "hi"})
    h.post_job_event(jobid, "exception", {"type": "cancel", "severity": 0, "note": "", "userid": 0})
    for name, ctx in (("finish", {"status": 36608}), ("release", {"ranks": "all", "final": True})):
        h.post_job_event(jobid, name, ctx)
    h.post_job_event(jobid, "free")
    h.post_job_event(jobid, "clean")
    tail = [json.loads(t) for t in drain_ready(fut)]
    assert [r["events"][0]["name"] for r in tail] == [
        "memo", "exception", "finish", "release", "free", "clean",
    ]
    assert "context" not in tail[-1]["events"][0]
    assert jobid in h.jobs.job_ids(active=False)
    with pytest.raises(ValueError):
        h.post_job_event(jobid, "memo", {"late": True})
    # invalidate removes a job entirely.
    other = h.inject_job("success", upto="submit")
    h.post_job_event(other, "invalidate")
    assert other not in h.jobs.job_ids()
    stamps = [json.loads(t)["events"][0]["timestamp"] for t in drain_ready(fut)]
    assert stamps == sorted(stamps)


def test_end_streams_reaches_every_listener():
    h = SimFlux(jobs=Workload(njobs=5, seed=1))
    futs = [h.rpc(JOBS, {"full": True}, 0, STREAM), h.rpc(RES, {}, 0, STREAM)]
    assert h.end_streams() == 2
    for fut in futs:
        assert drain_ready(fut)[-1].errno == errno.ENODATA


# --------------------------------------------------------------------------
# resource.journal (reslog.c)
# --------------------------------------------------------------------------


def test_resource_journal_batches_and_define():
    rw = ResourceWorkload(nnodes=8, seed=4, nevents=330, live_events=6)
    h = SimFlux(resources=rw)
    with pytest.raises(OSError) as info:
        h.rpc(RES, {}).get()
    assert info.value.errno == errno.EPROTO
    assert info.value.strerror == "journal requires streaming RPC flag"
    fut = h.rpc(RES, "garbage is fine: reslog ignores the payload", 0, STREAM)
    history = [json.loads(t) for t in drain_history(fut, RESOURCE_SENTINEL)]
    total = sum(len(r["events"]) for r in history)
    assert total == len(rw.events)
    for resp in history:
        assert 1 <= len(resp["events"]) <= 100
        if any(e["name"] == "resource-define" for e in resp["events"]):
            assert len(resp["events"]) == 1 and list(resp) == ["events", "R"]
        else:
            assert list(resp) == ["events"]
    assert [len(r["events"]) for r in history[2:5]] == [100, 100, 100]
    live = [json.loads(t) for t in drain_ready(fut)]
    assert len(live) == 6 and all(len(r["events"]) == 1 for r in live)
    h.post_resource_event("resource-define", {"method": "reload"})
    h.post_resource_event("drain", {"idset": "1", "nodelist": "vm", "reason": "x", "overwrite": 0})
    last = [json.loads(t) for t in drain_ready(fut)]
    assert list(last[0]) == ["events", "R"] and list(last[1]) == ["events"]
    cancel(h, fut, RES)
    assert drain_ready(fut)[-1].errno == errno.ENODATA


def test_resource_events_shaped_like_fixture():
    fixture_events = {}
    for line in raw_lines(fixture("resource-many.jsonl")):
        for event in json.loads(line)["events"]:
            fixture_events.setdefault(event["name"], list(event["context"]))
    generated = {}
    for line in ResourceWorkload(nnodes=8, nevents=200).stream():
        for event in json.loads(line)["events"]:
            generated.setdefault(event["name"], list(event.get("context", {})))
    for name, keys in fixture_events.items():
        assert generated[name] == keys, name


def test_resource_journal_truncation():
    rw = ResourceWorkload(nnodes=4, seed=1, nevents=40)
    service = ResourceJournalService(rw, journal_max=10)
    h = SimFlux(resources=service)
    history = [json.loads(t) for t in drain_history(h.rpc(RES, {}, 0, STREAM), RESOURCE_SENTINEL)]
    events = [e for r in history for e in r["events"]]
    assert len(events) == 10
    assert events[0]["name"] == "truncate" and "context" not in events[0]
    kept = [json.loads(e[2]) for e in rw.events[-9:]]
    assert events[1:] == kept
    assert events[0]["timestamp"] == json.loads(rw.events[-10][2])["timestamp"]


# --------------------------------------------------------------------------
# Workload generator
# --------------------------------------------------------------------------


def test_workload_is_deterministic_per_seed():
    one = Workload(njobs=300, seed=11, live_jobs=10, ties=0.05).stream()
    two = Workload(njobs=300, seed=11, live_jobs=10, ties=0.05).stream()
    other = Workload(njobs=300, seed=12, live_jobs=10, ties=0.05).stream()
    assert one == two
    assert one != other
    rw = ResourceWorkload(seed=3, nevents=50, live_events=5).stream()
    assert rw == ResourceWorkload(seed=3, nevents=50, live_events=5).stream()


def _stream_digest(lines):
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def test_workload_streams_are_pinned_per_seed():
    """A seed names one stream for good: captures, benchmarks and bug
    reports quote seeds, so a change to the generator must not change
    what an existing seed produces.  Every job kind, ties, several users
    and nodes, live jobs and resource restarts are covered."""
    many_users = ((0, "alice"), (1001, "bob"), (1002, "carol"))
    jobs = generate_jobs(3 * len(JOB_KINDS), seed=9, kinds=JOB_KINDS, nnodes=3)
    streams = {
        "default mix": Workload(njobs=3000, seed=0, ties=0.03, live_events=500).stream(),
        "cluster": Workload(
            njobs=2000, seed=5, ties=0.2, users=many_users, nnodes=16, ncores=4,
            hostname="node{}", live_jobs=50,
        ).stream(full=False),
        "each kind": [job.history_payload() for job in jobs]
        + [repr([event[:2] for event in job.events]) for job in jobs],
        "resource": ResourceWorkload(
            nnodes=8, seed=3, nevents=400, live_events=50, restarts=2
        ).stream(),
    }
    assert {name: _stream_digest(lines) for name, lines in streams.items()} == {
        "default mix": "212995a94ee4a3fdce732517bc14b1a9047ab1fc24aacc2a6e8fa28c7f1e6c73",
        "cluster": "ee862e53c078366d0f67135327861e52f95e752e8505b69d7f30efc3b1e05615",
        "each kind": "19715043edb040b74265e78673f7f1fb2d76809cf570fcf8c912d07f2b63d7ca",
        "resource": "3ef5f5c3aaee767417379d811fbaeecb6f4c699a25a2f1884cc55688eb3cefb3",
    }


def test_generated_payloads_are_broker_formatted(small_workload):
    for line in small_workload.stream():
        assert dumps(json.loads(line)) == line
    assert small_workload.history_bytes()[0] == small_workload.history()[0].encode()


def test_job_ids_are_fluids():
    wl = Workload(njobs=500, seed=5, rate=2000.0)  # dense: many per millisecond
    ids = wl.active_ids() + wl.inactive_ids()
    assert len(set(ids)) == len(ids)
    for jobid in ids:
        ms, gen, seq = FluidGenerator.decode(jobid)
        assert gen == 0 and seq < 1023 and ms < (1 << 40)
    gen = FluidGenerator(start=100.0)
    minted = [gen.generate(100.5) for _ in range(1030)]
    assert minted[0] == 500 << 24 and minted[1022] == (500 << 24) | 1022
    assert minted[1023] == 501 << 24  # sequence space exhausted: next ms


def test_every_job_kind_has_its_rfc21_sequence():
    jobs = generate_jobs(len(JOB_KINDS) * 3, seed=2, kinds=list(JOB_KINDS))
    by_kind = {}
    for job in jobs:
        by_kind.setdefault(job.kind, []).append(job)
        stamps = [e[0] for e in job.events]
        assert stamps == sorted(stamps)
    def names(kind):
        return [e[1] for e in by_kind[kind][-1].events if e[3]]
    def ctx(kind, name):
        return [json.loads(e[2]).get("context") for e in by_kind[kind][-1].events if e[1] == name]
    assert names("success") == [
        "submit", "validate", "depend", "priority", "alloc", "start",
        "finish", "release", "free", "clean",
    ]
    assert ctx("failed", "finish")[0]["status"] != 0
    assert names("held") == ["submit", "validate", "depend", "priority"]
    assert ctx("held", "submit")[0]["urgency"] == 0
    assert ctx("released", "urgency") == [{"userid": 0, "urgency": 16}]
    assert ctx("expedited", "priority")[-1] == {"priority": 4294967295}
    assert names("cancel-pending")[-2:] == ["exception", "clean"]
    assert ctx("cancel-running", "exception")[0]["type"] == "cancel"
    assert ctx("timeout", "exception")[0]["type"] == "timeout"
    assert ctx("exception", "finish")[0]["status"] == 15
    assert "alloc" not in names("unsatisfiable")
    assert "dependency-remove" in names("afterok")
    assert ctx("afternotok", "exception")[0]["type"] == "dependency"
    assert "memo" in names("memo")
    assert ctx("multinode", "alloc")[0]["annotations"]["sched"]["resource_summary"].startswith("rank[")
    # annotations exist, but never committed
    assert any(e[1] == "annotations" and not e[3] for e in by_kind["success"][-1].events)


def test_ties_between_jobs():
    def tied(wl):
        seen = {}
        for line in wl.history(full=True):
            resp = json.loads(line)
            for event in resp["events"]:
                seen.setdefault(event["timestamp"], set()).add(resp["id"])
        return sum(1 for ids in seen.values() if len(ids) > 1)

    assert tied(Workload(njobs=300, seed=1)) == 0
    assert tied(Workload(njobs=300, seed=1, ties=0.2)) > 20


def test_live_events_exact_count_queued_after_sentinel():
    wl = Workload(njobs=50, seed=1, live_events=3000)
    assert len(wl.live) == 3000
    h = SimFlux(jobs=wl)
    fut = h.rpc(JOBS, {"full": True}, 0, STREAM)
    assert len(drain_history(fut)) == len(wl.inactive) + len(wl.active)
    assert drain_ready(fut) == wl.live_payloads()


def test_large_workload_has_every_job_and_live_event():
    wl = Workload(njobs=20000, seed=1, live_events=20000)
    history = wl.history()
    assert len(history) == 20000 and len(wl.live) == 20000


# --------------------------------------------------------------------------
# Futures
# --------------------------------------------------------------------------


def test_wait_for_timeout_raises_timeouterror():
    h = SimFlux()
    fut = h.rpc(JOBS, {"full": True}, 0, STREAM)
    assert fut.get_str() == JOB_SENTINEL
    fut.reset()
    start = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        fut.wait_for(0.1)
    assert 0.09 <= time.monotonic() - start < 2.0
    assert info.value.errno == errno.ETIMEDOUT
    h.inject_job("held")
    assert fut.wait_for(0.0) is fut


@pytest.mark.parametrize(
    "errnum,exc_type",
    [
        (errno.EPERM, PermissionError),
        (errno.ENOENT, FileNotFoundError),
        (errno.ETIMEDOUT, TimeoutError),
        (errno.ECONNRESET, ConnectionResetError),
        (errno.EPROTO, OSError),
    ],
)
def test_errors_map_to_oserror_subclasses(errnum, exc_type):
    h = SimFlux.replay(['{"events":[]}'], topic=RES, end=errnum)
    fut = h.rpc(RES, None, 0, STREAM)
    fut.reset()
    with pytest.raises(exc_type) as info:
        fut.get()
    assert info.value.errno == errnum and info.value.strerror == os.strerror(errnum)


def test_get_returns_fresh_objects_and_then_twice_fails():
    h = SimFlux.replay(['{"id":1,"events":[]}'])
    fut = h.rpc(JOBS, {}, 0, STREAM)
    first = fut.get()
    first["id"] = 99
    assert fut.get() == {"id": 1, "events": []}
    assert fut.then(lambda f: None) is fut
    with pytest.raises(OSError) as info:
        fut.then(lambda f: None)
    assert info.value.errno == errno.EEXIST


def test_non_streaming_future_gets_one_response_then_deadlock_not_hang():
    h = SimFlux.replay(["a", "b"], require_streaming=False)
    fut = h.rpc(JOBS, {})
    assert fut.get_str() == "a"
    fut.reset()
    with pytest.raises(OSError) as info:
        fut.wait_for(-1)
    assert info.value.errno == errno.EDEADLK


# --------------------------------------------------------------------------
# Reactor and watchers
# --------------------------------------------------------------------------


def test_reactor_runs_then_callbacks_in_order_until_stream_ends():
    lines = ['{"events":[%d]}' % i for i in range(50)]
    h = SimFlux.replay(lines, topic=RES, end=errno.ENODATA)
    fut = h.rpc(RES, None, 0, STREAM)
    got = []

    def callback(future, tag, extra=None):
        try:
            got.append((tag, extra, future.get()["events"][0]))
        except OSError as exc:
            got.append(exc.errno)
        future.reset()

    fut.then(callback, "T", extra="x")
    assert h.reactor_run() == 0
    assert got[:-1] == [("T", "x", i) for i in range(50)]
    assert got[-1] == errno.ENODATA  # the error is delivered once


def test_callback_without_reset_is_not_called_again():
    h = SimFlux.replay(["1", "2", "3"], topic=RES, end=errno.ENODATA)
    calls = []
    h.rpc(RES, None, 0, STREAM).then(lambda f: calls.append(f.get()))
    assert h.reactor_run() == 0
    assert calls == [1]


def test_raising_callback_propagates_and_is_not_redelivered():
    h = SimFlux.replay(["1", "2", "3"], topic=RES)
    seen = []

    def callback(future):
        value = future.get()
        seen.append(value)
        if value == 2:
            raise RuntimeError("boom")
        future.reset()

    fut = h.rpc(RES, None, 0, STREAM).then(callback)
    with pytest.raises(RuntimeError, match="boom"):
        h.reactor_run()
    assert seen == [1, 2]
    # Like flux's continuation: the failed response is skipped and the
    # future stopped, so running again does not call back.
    assert fut.get() == 3
    assert h.reactor_run() == 0
    assert seen == [1, 2]


def test_timer_watchers_and_reactor_stop():
    h = SimFlux()
    ticks = []

    def tick(handle, watcher, revents, args):
        ticks.append(args)
        if len(ticks) == 3:
            watcher.stop()

    h.timer_watcher_create(0.01, tick, repeat=0.01, args="a").start()
    once = []
    h.timer_watcher_create(0.02, lambda *a: once.append(a[3]), args="b").start()
    start = time.monotonic()
    assert h.reactor_run() == 0
    assert ticks == ["a"] * 3 and once == ["b"]
    assert time.monotonic() - start < 2.0
    # A timer that stops the reactor while a stream is still open.
    fut = h.rpc(JOBS, {"full": True}, 0, STREAM).then(lambda f: f.reset())
    h.timer_watcher_create(0.05, lambda hh, *a: hh.reactor_stop()).start()
    assert h.reactor_run() >= 1
    assert fut.pimpl.get_matchtag() > 0


def test_timer_exception_propagates_and_stop_error():
    h = SimFlux()

    def bad(*args):
        raise KeyError("timer")

    h.timer_watcher_create(0.0, bad).start()
    with pytest.raises(KeyError):
        h.reactor_run()
    h.timer_watcher_create(0.0, lambda hh, *a: hh.reactor_stop_error()).start()
    assert h.reactor_run() == -1


def test_then_timeout_and_nowait():
    h = SimFlux()
    fut = h.rpc(JOBS, {"full": True}, 0, STREAM)
    seen = []

    def callback(future):
        try:
            seen.append(future.get()["id"])
        except TimeoutError:
            seen.append("timeout")
            future.get_flux().reactor_stop()
        future.reset()

    fut.then(callback, timeout=0.05)
    assert h.reactor_run(flags=FLUX_REACTOR_NOWAIT) >= 1
    assert seen == [-1]
    h.reactor_run()
    assert seen == [-1, "timeout"]


# --------------------------------------------------------------------------
# Threads
# --------------------------------------------------------------------------


def test_injection_from_another_thread_wakes_wait_for():
    h = SimFlux(jobs=Workload(njobs=20, seed=1), autolive=False)
    fut = h.rpc(JOBS, {"full": False}, 0, STREAM)
    drain_history(fut)
    assert not fut.is_ready()
    ids = []
    threading.Timer(0.1, lambda: ids.append(h.inject_job("success", upto="submit"))).start()
    start = time.monotonic()
    resp = fut.wait_for(5.0).get()
    assert time.monotonic() - start < 4.0
    assert resp["id"] == ids[0] and resp["events"][0]["name"] == "submit" and "jobspec" in resp


def test_reactor_woken_and_stopped_from_another_thread():
    h = SimFlux(jobs=Workload(njobs=20, seed=1))
    got = []

    def callback(future):
        got.append(future.get()["id"])
        future.reset()

    h.rpc(JOBS, {"full": False}, 0, STREAM).then(callback)

    def worker():
        time.sleep(0.05)
        h.inject_job("success")
        time.sleep(0.05)
        h.reactor_stop()

    thread = threading.Thread(target=worker)
    thread.start()
    h.reactor_run()
    thread.join()
    assert -1 in got and got[-1] != -1


# --------------------------------------------------------------------------
# A consumer written like flux-core's JournalConsumerBase, against the sim
# --------------------------------------------------------------------------


class MiniConsumer:
    """The consumption rules of flux.abc.JournalConsumerBase in brief:
    gather the backlog up to the empty (sentinel) response, sort it by
    timestamp, then hand out live events; ENODATA ends with None."""

    def __init__(self, handle, topic, payload, full=True):
        self.handle, self.topic, self.payload = handle, topic, payload
        self.backlog, self.in_history, self.fut = [], full, None

    def start(self):
        self.fut = self.handle.rpc(self.topic, self.payload, 0, FLUX_RPC_STREAMING)
        return self

    def stop(self):
        self.handle.rpc(
            f"{self.topic}-cancel", {"matchtag": self.fut.pimpl.get_matchtag()}, 0, FLUX_RPC_NORESPONSE
        )

    def _take(self, resp):
        for event in resp["events"]:
            self.backlog.append((event["timestamp"], resp.get("id"), event["name"]))

    def poll(self, timeout=5.0):
        while self.in_history:
            resp = self.fut.wait_for(timeout).get()
            self.fut.reset()
            if not resp["events"]:
                self.in_history = False
                self.backlog.sort(key=lambda item: item[0])
            else:
                self._take(resp)
        while not self.backlog:
            try:
                resp = self.fut.wait_for(timeout).get()
            except OSError as exc:
                if exc.errno != errno.ENODATA:
                    raise
                return None
            self._take(resp)
            self.fut.reset()
        return self.backlog.pop(0)


def test_flux_style_consumer_poll_mode():
    wl = Workload(njobs=300, seed=21, live_jobs=15)
    h = SimFlux(jobs=wl)
    consumer = MiniConsumer(h, JOBS, {"full": True}).start()
    events = []
    nhistory = sum(t.count('"timestamp"') for t in wl.history())
    for _ in range(nhistory):
        events.append(consumer.poll())
    assert [e[0] for e in events] == sorted(e[0] for e in events)
    consumer.stop()
    while True:
        event = consumer.poll()
        if event is None:
            break
        events.append(event)
    assert len(events) == nhistory + len(wl.live)


def test_flux_style_consumer_callback_mode_on_resources():
    rw = ResourceWorkload(nnodes=8, nevents=150, live_events=4)
    h = SimFlux(resources=rw)
    consumer = MiniConsumer(h, RES, {}).start()
    got = []

    def callback(future):
        try:
            resp = future.get()
        except OSError as exc:
            got.append(exc.errno)
        else:
            if not resp["events"]:
                got.append("sentinel")
            got.extend(e["name"] for e in resp["events"])
            if len([g for g in got if g != "sentinel"]) == len(rw.events) + len(rw.live):
                consumer.stop()
        finally:
            future.reset()

    consumer.fut.then(callback)
    h.reactor_run()
    assert got[-1] == errno.ENODATA and "sentinel" in got
    assert got.count("resource-define") == 1
