"""Replay the hostile inputs of tests/fuzz/regressions/ through the Python API.

Run:  pytest tests/test_fuzz_regressions.py
      (and under the sanitizers: tests/sanitize/run.sh, tests/sanitize/valgrind.sh)

tests/fuzz/run.sh copies every crashing input the libFuzzer targets find into
tests/fuzz/regressions/; the rest of that directory was written by hand to
hit the scanner's edges: nesting at and past FJ_MAX_DEPTH and Python's
limits (FJ_PY_SAFE_DEPTH, FJ_PY_SAFE_DIGITS), truncated and
ill-formed UTF-8, huge and tiny numbers, NUL bytes, odd escapes, repeated
members, thousands of members or events.  Whatever the bytes, the Python
API must answer with a clean PayloadError or succeed; anything else (a
crash, another exception, an inconsistent count) is a bug.

Files named stream-* are fuzz_stream programs rather than payloads (run.sh
replays them through that target); here they are fed as payloads like the
rest, hostile bytes all the same.
"""

import json
import math
import pathlib

import pytest

from flux_journal import core
from flux_journal._core import ffi
from flux_journal.core import CoreStream, PayloadError

from payload_index import parse

REGRESSIONS = pathlib.Path(__file__).resolve().parent / "fuzz" / "regressions"
FILES = sorted(p for p in REGRESSIONS.iterdir() if p.is_file() and not p.name.startswith("."))

SENTINEL_JOB = b'{"id":-1,"events":[]}'
SENTINEL_RESOURCE = b'{"events":[]}'
HISTORY_JOB = b'{"id":5,"events":[{"timestamp":1.25,"name":"submit","context":{"userid":0}}],"jobspec":{}}'

KINDS = {
    "job-ordered": core.HISTORY | core.ORDERED | core.JOB,
    "resource-ordered": core.HISTORY | core.ORDERED | core.RESOURCE,
    "job-live": core.JOB,
    "plain": 0,
}


def ids(paths):
    return [p.name for p in paths]


def test_regressions_directory_is_populated():
    # run.sh and the sanitizer scripts rely on these being here
    assert len(FILES) >= 10
    assert all(p.stat().st_size <= 1 << 20 for p in FILES), "keep regression inputs small"


@pytest.mark.parametrize("path", FILES, ids=ids(FILES))
def test_parse_is_clean(path):
    data = path.read_bytes()
    try:
        index = parse(data)
    except PayloadError as e:
        assert 0 <= e.offset <= len(data)
        assert e.reason and isinstance(e.shape, bool)
        return
    # Success: the spans lie in the buffer and json agrees it is an object
    # with the members found (json may still refuse > 4300-digit integers).
    for off, length in index.members.values():
        assert 0 <= off and off + length <= len(data)
    for entry in index.entries:
        off, length = entry["entry"]
        assert off + length <= len(data)
        if entry["context"] is not None:
            coff, clen = entry["context"]
            assert off <= coff and coff + clen <= off + length
    try:
        resp = json.loads(data)
    except RecursionError:
        return   # deeper than json goes (the scanner allows 2048 levels)
    except ValueError as e:
        assert "int" in str(e) or "digits" in str(e), e
        return
    assert set(index.members) == set(resp)
    assert len(index.entries) == len(resp["events"])


def _feed(stream, data, use_address):
    """Feed data; returns True if taken, False if refused cleanly."""
    try:
        if use_address:
            # The broker's NUL-terminated string: the C side stops at the
            # first NUL byte, as flux_rpc_get() users would.
            buf = ffi.new("char[]", data)
            stream.feed_address(int(ffi.cast("uintptr_t", buf)))
        else:
            stream.feed(data)
    except PayloadError as e:
        assert 0 <= e.offset <= len(data)
        return False
    return True


def _drain(stream):
    """Pop everything: (events, markers, undecodable events).  An event
    Python's json cannot decode (too deep, too long an integer) comes alone
    and raises PayloadError; the stream goes on."""
    events, markers, lost = 0, [], 0
    for _ in range(100000):
        before = stream.stats()["delivered"]
        try:
            batch = stream.pop()
        except PayloadError as e:
            assert e.shape and stream.stats()["delivered"] == before + 1
            lost += 1
            continue
        if batch is None:
            return events, markers, lost
        if batch.marker:
            markers.append(batch.marker)
            continue
        n = len(batch.timestamps)
        assert n == len(batch.ids) == len(batch.names) == len(batch.flags) == len(batch.items) > 0
        carriers = sum(1 for f in batch.flags if f & (core.WITH_JOBSPEC | core.WITH_R))
        assert len(batch.attached) == carriers
        for text in batch.attached:   # each attachment is one JSON value
            json.loads(text)
        events += n
    raise AssertionError("stream never ran dry")


@pytest.mark.parametrize("kind", list(KINDS), ids=list(KINDS))
@pytest.mark.parametrize("path", FILES, ids=ids(FILES))
def test_stream_cycle_is_clean(path, kind):
    data = path.read_bytes()
    flags = KINDS[kind]
    try:
        parsed = parse(data)
    except PayloadError:
        parsed = None
    stream = CoreStream(flags, float("-inf"))
    sentinel = SENTINEL_RESOURCE if flags & core.RESOURCE else SENTINEL_JOB
    stream.feed(HISTORY_JOB)
    taken = _feed(stream, data, use_address=False)
    # The scanner decides alone, except that job streams want an int id.
    if parsed is not None and not (flags & core.JOB and parsed.id is None):
        assert taken
    if parsed is None:
        assert not taken
    _feed(stream, data, use_address=True)
    stream.mark(core.FIRST_USER_MARK)
    stream.feed(sentinel)
    _feed(stream, data, use_address=False)   # live, after the sentinel
    stream.end()
    events, markers, lost = _drain(stream)
    stats = stream.stats()
    assert stats["delivered"] == events + lost
    assert stats["backlog"] == 0
    assert stats["delivered"] + stats["filtered_since"] + stats["filtered_name"] <= stats["events"]
    assert markers and markers[-1] == core.END
    assert core.FIRST_USER_MARK in markers


def _same(a, b):
    """Equality type for type (json gives int where orjson might give
    float), NaN equal to NaN; iterative, for 500-deep values."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if type(x) is not type(y):
            return False
        if isinstance(x, float):
            if not (x == y or (math.isnan(x) and math.isnan(y))):
                return False
        elif isinstance(x, list):
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y))
        elif isinstance(x, dict):
            if x.keys() != y.keys():
                return False
            stack.extend((x[k], y[k]) for k in x)
        elif x != y:
            return False
    return True


PARSED_FILES = [p for p in FILES if not p.name.startswith("stream-")]


@pytest.mark.parametrize("path", PARSED_FILES, ids=ids(PARSED_FILES))
def test_items_decode_like_json(path):
    """What a consumer receives equals what json.loads() of the payload
    holds, as flux-core's own consumers would see it."""
    data = path.read_bytes()
    try:
        index = parse(data)
    except PayloadError:
        return
    stream = CoreStream(0, float("-inf"))
    stream.feed(data)
    want = []
    for entry in index.entries:
        off, length = entry["entry"]
        if entry["timestamp"] > float("-inf"):   # `since` drops -inf itself
            try:
                want.append(json.loads(data[off : off + length]))
            except (RecursionError, ValueError):
                want.append(None)
    got = []
    for _ in range(100000):
        try:
            batch = stream.pop()
        except PayloadError:
            # Isolated and undecodable: json fails on the same entry.
            got.append(None)
            continue
        if batch is None:
            break
        items = iter(batch.items)
        for name, flags in zip(batch.names, batch.flags):
            value = next(items)
            if flags & core.IRREGULAR:
                got.append(value)
            else:
                got.append({"name": stream.names[name], "context": value})
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if w is None:
            # json itself cannot decode this entry (too deep, too long an
            # integer): flux-journal may raise PayloadError for it alone
            # (g is None) or, where orjson copes, deliver it.
            continue
        assert g is not None
        if "timestamp" in g:   # irregular: the whole entry
            assert _same(g, w), (g, w)
        else:
            assert g["name"] == w["name"]
            assert _same(g["context"], w.get("context", {})), (g, w)


# Escaped names against filters (fj_names_contains() once compared UTF-16
# code units with UTF-8 bytes).  Python's rule: the decoded name equals the
# filter string.
FILTER_CASES = [
    (b"caf\\u00e9", "caf\u00e9"),
    (b"caf\xc3\xa9", "caf\u00e9"),
    (b"\\ud83d\\ude00", "\U0001F600"),
    (b"\\ud800", "\ud800"),
    (b"alloc\\u0000", "alloc\x00"),
    (b"st\\u0061rt", "start"),
    (b"a\\\"b", 'a"b'),
    (b"x\\/y", "x/y"),
    (b"\\u00e9" * 200, "\u00e9" * 200),
]


@pytest.mark.parametrize("deny", [False, True], ids=["allow", "deny"])
@pytest.mark.parametrize("raw,name", FILTER_CASES, ids=[c[1].encode("unicode_escape", "backslashreplace").decode()[:20] for c in FILTER_CASES])
def test_filters_compare_decoded_names(raw, name, deny):
    assert json.loads(b'"' + raw + b'"') == name
    payload = b'{"id":1,"events":[{"timestamp":1.5,"name":"' + raw + b'"},{"timestamp":2.5,"name":"other"}]}'
    stream = CoreStream(core.JOB, float("-inf"))
    stream.filter(name, deny=deny)
    stream.feed(payload)
    batch = stream.pop()
    delivered = [stream.names[i] for i in batch.names]
    if deny:
        assert delivered == ["other"]
    else:
        assert delivered == [name]
