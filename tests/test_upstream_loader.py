"""Tests for tests/upstream.py, the loader of flux-core's own consumers."""

import errno
import json
import sys
import time
import types
import zipfile

import pytest

import upstream as upstream_mod
from flux_journal.jobid import JobID


def _flux_modules():
    return sorted(
        n for n in sys.modules if n == "flux" or n.startswith("flux.")
    )


class FakeFuture:
    """Just enough of flux.rpc.RPC for the consumers' poll() loop."""

    def __init__(self, payloads):
        self._payloads = list(payloads)
        self.pimpl = types.SimpleNamespace(get_matchtag=lambda: 42)

    def wait_for(self, timeout=-1.0):
        return self

    def get(self):
        if not self._payloads:
            raise OSError(errno.ENODATA, "No data available")
        return self._payloads.pop(0)

    def reset(self):
        pass


class FakeHandle:
    """Records rpc() calls and answers the first with canned payloads."""

    def __init__(self, payloads):
        self.payloads = payloads
        self.calls = []

    def rpc(self, topic, payload, nodeid, flags):
        self.calls.append((topic, payload, nodeid, flags))
        return FakeFuture(self.payloads if len(self.calls) == 1 else [])


def _read_jsonl(path):
    with open(path, encoding="utf-8") as stream:
        return [json.loads(line) for line in stream]


def test_loaded_classes(upstream):
    assert upstream.JournalEvent.__module__ == "flux.job.journal"
    assert upstream.ResourceJournalEvent.__module__ == "flux.resource.journal"
    assert issubclass(upstream.JournalEvent, upstream.JournalEventBase)
    assert issubclass(upstream.ResourceJournalEvent, upstream.JournalEventBase)
    assert issubclass(upstream.JournalEventBase, upstream.EventLogEvent)
    assert issubclass(upstream.JournalConsumer, upstream.JournalConsumerBase)
    assert issubclass(
        upstream.ResourceJournalConsumer, upstream.JournalConsumerBase
    )
    assert upstream.JobID is JobID
    assert upstream.source_dir.is_dir()
    assert upstream.wheel.name.startswith("flux_python-")


def test_nothing_named_flux_is_left(upstream):
    assert "flux" not in sys.modules
    assert _flux_modules() == []


def test_load_upstream_is_cached(upstream):
    assert upstream_mod.load_upstream() is upstream


def test_sys_modules_restored_exactly(upstream, monkeypatch):
    """Pre-existing flux modules survive a load untouched and unused."""
    fake_flux = types.ModuleType("flux")
    fake_job = types.ModuleType("flux.job")
    fake_job.JobID = object  # would break JournalEvent if it leaked in
    monkeypatch.setitem(sys.modules, "flux", fake_flux)
    monkeypatch.setitem(sys.modules, "flux.job", fake_job)
    before = dict(sys.modules)

    fresh = upstream_mod._load(upstream.wheel, upstream.source_dir)

    assert sys.modules == before
    assert sys.modules["flux"] is fake_flux
    assert sys.modules["flux.job"] is fake_job
    assert fresh.JournalEvent is not upstream.JournalEvent
    event = fresh.JournalEvent(5, {"timestamp": 1.0, "name": "clean"})
    assert type(event.jobid) is JobID


def test_journal_event_from_dict(upstream):
    entry = {
        "timestamp": 1795812829.7204976,
        "name": "submit",
        "context": {"userid": 0, "urgency": 16},
    }
    jobspec = {"version": 1}
    event = upstream.JournalEvent(
        13623099393, entry, jobspec=jobspec, R={"x": 1}
    )
    assert isinstance(event, dict)
    assert event.jobid == 13623099393
    assert type(event.jobid) is JobID
    assert event.name == "submit"
    assert event.timestamp == entry["timestamp"]
    assert event.jobspec == jobspec
    assert event.R is None  # R is only kept for alloc events
    assert not event.is_empty()
    assert str(event) == (
        f"{JobID(13623099393).f58}: 1795812829.72050 submit "
        '{"urgency":16,"userid":0} '
        "jobspec={'version': 1}"
    )


def test_journal_event_without_context_or_timestamp(upstream):
    before = time.time()
    event = upstream.JournalEvent(1, {"name": "clean"})
    assert before <= event.timestamp <= time.time()
    assert event.context == {}
    assert event.context_string == ""
    assert str(event) == f"{JobID(1).f58}: {event.timestamp:<0.5f} clean"


def test_sentinel_event(upstream):
    sentinel = upstream.SENTINEL_EVENT
    assert sentinel.is_empty()
    assert sentinel.jobid == -1
    assert str(sentinel) == "-1: End of historical data stream"
    assert upstream.JournalConsumer.SENTINEL_EVENT is sentinel
    assert upstream.job_journal.SENTINEL_EVENT is sentinel


def test_resource_events(upstream):
    event = upstream.ResourceJournalEvent(
        {"timestamp": 2.0, "name": "drain", "context": {"idset": "1"}},
        R=None,
    )
    assert str(event) == '2.00000 drain {"idset":"1"}'
    empty = upstream.ResourceJournalConsumer.SENTINEL_EVENT
    assert empty.is_empty()
    assert str(empty).endswith(" End of historical data stream")


def test_eventlog_event(upstream):
    event = upstream.EventLogEvent('{"timestamp": 3.25, "name": "x"}')
    assert event.context == {}
    assert str(event) == "3.25000: x {}"


def test_job_consumer_runs_on_a_fixture(upstream, fixtures_dir):
    payloads = _read_jsonl(fixtures_dir / "jobs-active.jsonl")
    handle = FakeHandle(payloads)
    consumer = upstream.JournalConsumer(handle, include_sentinel=True).start()
    events = []
    while True:
        event = consumer.poll(timeout=1.0)
        if event is None:
            break
        events.append(event)
    consumer.stop()

    topic, payload, nodeid, flags = handle.calls[0]
    assert (topic, payload, nodeid) == (
        "job-manager.events-journal",
        {"full": True},
        0,
    )
    assert flags == 2  # FLUX_RPC_STREAMING, from the stand-in constants
    assert handle.calls[1] == (
        "job-manager.events-journal-cancel", {"matchtag": 42}, 0, 1
    )
    sentinel_at = events.index(upstream.SENTINEL_EVENT)
    history = events[:sentinel_at]
    assert history and all(not e.is_empty() for e in history)
    stamps = [e.timestamp for e in history]
    assert stamps == sorted(stamps)
    expected = sum(len(p["events"]) for p in payloads if p["id"] != -1)
    assert len(events) == expected + 1


def test_resource_consumer_runs_on_a_fixture(upstream, fixtures_dir):
    payloads = _read_jsonl(fixtures_dir / "resource.jsonl")
    consumer = upstream.ResourceJournalConsumer(
        FakeHandle(payloads), include_sentinel=True
    ).start()
    events = []
    while (event := consumer.poll()) is not None:
        events.append(event)
    assert any(e.is_empty() for e in events)
    defines = [
        e for e in events if not e.is_empty() and e.name == "resource-define"
    ]
    assert defines and defines[0].R is not None


# --- wheel discovery and extraction ------------------------------------


def test_env_wheel_must_exist(monkeypatch, tmp_path):
    monkeypatch.setenv(upstream_mod.WHEEL_ENV, str(tmp_path / "missing.whl"))
    with pytest.raises(upstream_mod.UpstreamUnavailable, match="missing.whl"):
        upstream_mod.find_wheel()


def test_env_wheel_is_used(monkeypatch, upstream):
    monkeypatch.setenv(upstream_mod.WHEEL_ENV, str(upstream.wheel))
    assert upstream_mod.find_wheel() == upstream.wheel.resolve()


def test_cached_wheel_is_reused(monkeypatch, tmp_path):
    monkeypatch.delenv(upstream_mod.WHEEL_ENV, raising=False)
    version = upstream_mod.UPSTREAM_VERSION
    wheel = tmp_path / f"flux_python-{version}-0-py3-none-any.whl"
    wheel.write_bytes(b"")

    def no_download(_cache_dir):
        raise AssertionError("should not download")

    monkeypatch.setattr(upstream_mod, "_download_wheel", no_download)
    assert upstream_mod.find_wheel(tmp_path) == wheel


def test_extract_rejects_non_wheels(tmp_path):
    bogus = tmp_path / "bogus.whl"
    bogus.write_bytes(b"not a zip")
    with pytest.raises(upstream_mod.UpstreamUnavailable, match="cannot read"):
        upstream_mod.extract_sources(bogus, tmp_path / "cache")

    empty = tmp_path / "empty.whl"
    with zipfile.ZipFile(empty, "w") as whl:
        whl.writestr("other/file.py", "")
    with pytest.raises(upstream_mod.UpstreamUnavailable, match="has no flux/"):
        upstream_mod.extract_sources(empty, tmp_path / "cache")


def test_extract_checks_record_hashes(tmp_path, upstream):
    # Same members as the real wheel, one altered after RECORD was written.
    tampered = tmp_path / "tampered.whl"
    with zipfile.ZipFile(upstream.wheel) as src, zipfile.ZipFile(
        tampered, "w"
    ) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "flux/job/journal.py":
                data += b"\n# changed\n"
            dst.writestr(info, data)
    with pytest.raises(upstream_mod.UpstreamUnavailable, match="RECORD"):
        upstream_mod.extract_sources(tampered, tmp_path / "cache")


def test_extract_reuses_existing_tree(tmp_path, upstream):
    cache = tmp_path / "cache"
    first = upstream_mod.extract_sources(upstream.wheel, cache)
    marker = first / "flux" / "eventlog.py"
    mtime = marker.stat().st_mtime_ns
    assert upstream_mod.extract_sources(upstream.wheel, cache) == first
    assert marker.stat().st_mtime_ns == mtime
    assert sorted(
        str(p.relative_to(first)) for p in first.rglob("*.py")
    ) == sorted(member for _, member in upstream_mod._SOURCES)


def test_fixtures_dir(fixtures_dir):
    """Every capture the repository carries is there under its plain
    name, the gzipped one whole."""
    names = ["jobs-full", "jobs-active", "jobs-10k", "resource", "resource-many"]
    for name in names:
        assert (fixtures_dir / f"{name}.jsonl").is_file(), name
    with open(fixtures_dir / "jobs-10k.jsonl", "rb") as capture:
        assert sum(1 for _ in capture) == 10001  # 10,000 jobs and the sentinel
