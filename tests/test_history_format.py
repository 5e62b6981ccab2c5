"""flux-journal history's fields and format language against flux jobs'
own output (tests/fixtures/history, captured on a real broker), and each
field, conversion and sentinel on records made for the purpose."""

import io
import sys
import time

import pytest

from history_helpers import captured_outputs, load_jobs, stored_record
from flux_journal.history.fields import JobFields, fsd
from flux_journal.history.format import FORMATS, JobFormat, format_jobs, resolve_format
from flux_journal.job import JobID


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    """Local time is UTC, as when the fixtures were captured."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("fmt,expected", captured_outputs(), ids=lambda x: str(x)[:30])
def test_same_output_as_flux_jobs(fmt, expected):
    # runtime/t_remaining are not archived: history computes them, and
    # every captured job has ended or never ran, so `now` cannot matter
    records = [stored_record(record) for record in load_jobs()]
    assert format_jobs(records, resolve_format(fmt), now=4e9) == expected


RUNNING = {
    "id": 1234567890,
    "userid": 1000,
    "username": "alice",
    "urgency": 16,
    "priority": 16,
    "state": "RUN",
    "status": "RUN",
    "name": "sim",
    "queue": "batch",
    "ntasks": 4,
    "ncores": 4,
    "nnodes": 2,
    "ranks": "[0-1]",
    "nodelist": "node[0-1]",
    "t_submit": 1000.0,
    "t_depend": 1000.1,
    "t_priority": 1000.2,
    "t_sched": 1000.3,
    "t_run": 1001.0,
    "duration": 3600.0,
    "expiration": 4601.0,
    "dependencies": [],
    "annotations": {"sched": {"resource_summary": "rank[0-1]/core[0-1]"}},
    "exception": {"occurred": False},
    "instance": "cluster-a",
}


def field(record, name, now=2000.0):
    return JobFields(record, now).get(name)


def line(record, fmt, now=2000.0):
    return format_jobs([record], fmt, now=now, header=False)[0]


def test_running_job_times_are_computed_at_now():
    assert field(RUNNING, "runtime", now=1061.0) == 60.0
    assert field(RUNNING, "t_remaining", now=1061.0) == 3540.0
    assert field(RUNNING, "contextual_time", now=1061.0) == 60.0
    assert line(RUNNING, "{runtime!F} {t_remaining!H} {contextual_time!H}", now=1061.0) == (
        "1m 0:59:00 0:01:00"
    )
    # past its expiration: nothing left, never negative
    assert field(RUNNING, "t_remaining", now=5000.0) == 0.0


def test_running_job_fields():
    assert line(RUNNING, FORMATS["default"], now=1061.0).split() == [
        JobID(1234567890).f58, "batch", "alice", "sim", "R", "4", "2", "1m", "node[0-1]",
    ]
    assert line(RUNNING, "{state_single}{status_abbrev} {result}|{result_abbrev}|{success}|") == (
        "RR |||"
    )
    assert line(RUNNING, "{exception.occurred}|{returncode}|{inactive_reason}|") == "|||"
    assert line(RUNNING, "{instance} {sched.resource_summary} {user.x:>3h}") == (
        "cluster-a rank[0-1]/core[0-1]   -"
    )
    assert line(RUNNING, "{annotations}") == '{"sched": {"resource_summary": "rank[0-1]/core[0-1]"}}'


def test_pending_contextual_info():
    pending = dict(RUNNING, state="SCHED", status="SCHED", t_run=0.0)
    del pending["nodelist"]
    assert field(pending, "contextual_info") == ""
    assert field(dict(pending, urgency=0, priority=0), "contextual_info") == "held"
    assert field(dict(pending, priority=0), "contextual_info") == "priority-hold"
    estimated = dict(pending, annotations={"sched": {"t_estimate": 2090.0}})
    assert field(estimated, "contextual_info", now=2000.0) == "eta:1.5m"
    assert field(estimated, "contextual_info", now=3000.0) == "eta:now"
    assert field(dict(pending, state="PRIORITY"), "contextual_info") == "priority-wait"
    depend = dict(pending, state="DEPEND", dependencies=["after:f1", "begin@10:00"])
    assert field(depend, "contextual_info") == "depends:after:f1,begin@10:00"
    # pending: the requested duration, not a runtime
    assert field(pending, "contextual_time") == 3600.0
    assert field(pending, "runtime") == 0.0


@pytest.mark.parametrize(
    "result,exception,returncode,reason",
    [
        ("COMPLETED", {"occurred": False}, 0, "Exit 0"),
        ("FAILED", {"occurred": False}, 3, "Exit 3"),
        ("FAILED", {"occurred": False}, 137, "Killed"),
        ("FAILED", {"occurred": False}, 127, "command not found"),
        ("FAILED", {"occurred": False}, 126, "Command invoked cannot execute"),
        ("FAILED", {"occurred": True, "severity": 0, "type": "exec", "note": "x"}, 127,
         "command not found"),
        ("FAILED", {"occurred": True, "severity": 0, "type": "node-failure"}, 1,
         "Exception: type=node-failure"),
        ("FAILED", {"occurred": True, "severity": 0, "type": "oops", "note": "bad"}, 1,
         "Exception: type=oops note=bad"),
        ("CANCELED", {"occurred": True, "severity": 0, "type": "cancel", "note": "bye"}, -128,
         "Canceled: bye"),
        ("CANCELED", {"occurred": True, "severity": 0, "type": "cancel"}, -128, "Canceled"),
        ("TIMEOUT", {"occurred": True, "severity": 0, "type": "timeout"}, 142, "Timeout"),
    ],
)
def test_inactive_reason(result, exception, returncode, reason):
    record = dict(RUNNING, state="INACTIVE", result=result, status=result,
                  exception=exception, returncode=returncode, t_cleanup=1011.0,
                  t_inactive=1012.0)
    assert field(record, "inactive_reason") == reason
    assert field(record, "runtime") == 10.0


def test_conversions():
    record = dict(RUNNING, t_inactive=0.0, duration=0.5)
    assert line(record, "{t_submit!D}") == "1970-01-01T00:16:40"
    assert line(record, "{t_inactive!D}|{t_inactive!D:h}|{t_inactive!d}|{t_inactive!d:%H::>3h}") == (
        "|-||  -"
    )
    assert line(record, "{t_submit!d:%H:%M::>8}") == "   00:16"
    assert line(record, "{duration!F} {duration!H} {t_priority!H}") == "0.500s 0:00:01 0:16:40"
    assert line(dict(record, duration=0.0), "{duration!F:h} {duration!H:h}") == "- -"
    assert line(dict(record, ncores=0.256), "{ncores!P} {ncores!P:>6}") == "25.6%  25.6%"
    assert line(dict(record, ncores=0.005), "{ncores!P}") == "0.50%"
    assert line(record, "{name!r}") == "'sim'"
    with pytest.raises(ValueError):
        line(record, "{name!D}")


def test_fsd():
    assert [fsd(s) for s in (0.0, 0.0009, 1.5, 59.0, 90.0, 7200.0, 172800.0, float("inf"))] == [
        "0s", "0s", "1.500s", "59s", "1.5m", "2h", "2d", "inf",
    ]


def test_truncation_marker_and_hyphen():
    record = dict(RUNNING, name="abcdefghij", nodelist="")
    assert line(record, "{name:5.5+}|{name:5.5}|{name:10.10+}") == "abcd+|abcde|abcdefghij"
    assert line(record, "{nodelist:>4h}|{nodelist:h+}") == "   -|-"


def test_sentinels_and_header():
    a = dict(RUNNING, name="a", project="")
    b = dict(RUNNING, name="a-much-longer-name", project="")
    fmt = "{id.f58:>12} ?:{project} +:{name:<4} ?+:{queue:>2} ?:{bank}"
    lines = format_jobs([a, b], fmt, now=2000.0)
    f58 = JobID(1234567890).f58
    assert lines == [
        "       JOBID NAME               QUEUE",
        f"{f58:>12} a                  batch",
        f"{f58:>12} a-much-longer-name batch",
    ]
    # without a header the widest value alone sets the width
    assert format_jobs([a], "+:{name} {queue}", now=0, header=False) == ["a batch"]
    assert format_jobs([a], "+:{name} {queue}", now=0) == ["NAME QUEUE", "a    batch"]
    # a line with nothing to show is not printed
    assert format_jobs([a], "{project}", now=0) == ["PROJECT"]


def test_unknown_field_and_sort_key():
    with pytest.raises(ValueError, match="Unknown format field: nope"):
        JobFormat("{id} {nope}")
    with pytest.raises(ValueError, match="Invalid sort key: nope"):
        JobFormat("sort:t_submit,nope {id}")
    assert JobFormat("{annotations.x.y} {sched.reason_pending}").header() == "X.Y REASON"


def test_sort_prefix_and_override():
    jobs = [dict(RUNNING, id=i, name=name, ntasks=ntasks)
            for i, (name, ntasks) in enumerate(
                [("b", 3), ("a", ""), ("10", 2), ("9", 2), ("", 1), ("c", "")])]
    def order(fmt, sort=None):
        return format_jobs(jobs, fmt, now=0, header=False, sort=sort)

    # empty first, then numbers (numeric names compare as numbers), then text
    # (the job without a name sorts first, but its blank line is not printed)
    assert order("sort:name {name}") == ["9", "10", "a", "b", "c"]
    assert order("sort:name {name}|") == ["|", "9|", "10|", "a|", "b|", "c|"]
    assert order("sort:-name {name}") == ["c", "b", "a", "10", "9"]
    # ties keep their order (the query's); a later key breaks earlier ties
    assert order("sort:ntasks,-name {ntasks}:{name}") == [
        ":c", ":a", "1:", "2:10", "2:9", "3:b"]
    assert order("sort:ntasks {ntasks}:{name}", sort="-ntasks,name") == [
        "3:b", "2:9", "2:10", "1:", ":a", ":c"]
    with pytest.raises(ValueError, match="Invalid sort key"):
        order("{name}", sort="bogus")


def test_id_encodings():
    jobid = JobID(1234567890)
    assert line(RUNNING, "{id.dec} {id.hex} {id.dothex} {id.f58plain} {id.kvs}") == " ".join(
        (jobid.dec, jobid.hex, jobid.dothex, jobid.f58plain, jobid.kvs)
    )
    assert line(RUNNING, "{id}") == jobid.f58
    try:
        words = jobid.words
    except NotImplementedError:
        with pytest.raises(ValueError, match="flux-core"):
            line(RUNNING, "{id.words}")
    else:
        assert line(RUNNING, "{id.words}") == words


def test_emoji_fall_back_where_the_terminal_cannot_show_them(monkeypatch):
    # flux jobs prints the state's letter and an ASCII face instead
    ascii_out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    monkeypatch.setattr(sys, "stdout", ascii_out)
    done = dict(RUNNING, state="INACTIVE", result="TIMEOUT")
    assert line(RUNNING, "{state_emoji}|{result_emoji}|{status_emoji}") == "R||R"
    assert line(done, "{state_emoji}|{result_emoji}|{status_emoji}") == "I|(-_-)|(-_-)"
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BytesIO(), encoding="utf-8"))
    assert line(done, "{status_emoji}") == "\u231b"
