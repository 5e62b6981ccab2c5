"""Property tests: the C scanner and the batch decoding against Python's
json module, on generated valid and nearly valid payloads.

What flux-journal accepts must be exactly what ``json.loads`` accepts and
what flux-core's consumer could use (an object with an "events" array of
entries with a numeric timestamp and a string name), with three documented
exceptions: NaN/Infinity literals and a byte order mark (both outside RFC
8259) and nesting deeper than 2048 levels (jansson's limit) are refused.  What it delivers
must be what json gives: timestamps bit for bit, names, contexts, jobspec
and R.
"""

import errno
import json
import math
import struct

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from flux_journal import JournalConsumer, PayloadError
from flux_journal.sim import SimFlux

from payload_index import parse

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

finite_floats = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    finite_floats,
    st.text(max_size=12),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
names = st.text(min_size=1, max_size=12)
entries = st.fixed_dictionaries(
    {"timestamp": st.one_of(finite_floats, st.integers(min_value=0, max_value=2**60)), "name": names},
    optional={"context": st.dictionaries(st.text(max_size=8), json_values, max_size=5)},
)
responses = st.fixed_dictionaries(
    {"id": st.integers(min_value=0, max_value=2**63 - 1), "events": st.lists(entries, min_size=1, max_size=4)},
    optional={"jobspec": json_values, "R": json_values},
)


def same_bits(a, b):
    """Deep equality where floats must match bit for bit."""
    if isinstance(a, float) or isinstance(b, float):
        return type(a) is type(b) and struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, dict):
        return (
            type(b) is dict
            and list(a) == list(b)
            and all(same_bits(a[k], b[k]) for k in a)
        )
    if isinstance(a, list):
        return type(b) is list and len(a) == len(b) and all(map(same_bits, a, b))
    return type(a) is type(b) and a == b


def python_accepts(data):
    """Would json.loads plus flux-core's consumer use this payload?"""
    try:
        resp = json.loads(data)
    except ValueError:
        return False
    if not isinstance(resp, dict) or not isinstance(resp.get("events"), list):
        return False
    for entry in resp["events"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            return False
        ts = entry.get("timestamp")
        if isinstance(ts, bool) or not isinstance(ts, (int, float)):
            return False
    return True


def outside_rfc(data):
    return any(tok in data for tok in (b"NaN", b"Infinity")) or data.startswith(b"\xef\xbb\xbf")


@SETTINGS
@given(responses, st.sampled_from([None, 2, 0]))
def test_valid_payloads_decode_like_json(resp, indent):
    data = json.dumps(resp, indent=indent, ensure_ascii=indent is None).encode()
    index = parse(data)
    expected = json.loads(data)
    assert index.id == expected["id"]
    assert len(index.entries) == len(expected["events"])
    for found, entry in zip(index.entries, expected["events"]):
        assert struct.pack("<d", found["timestamp"]) == struct.pack("<d", float(entry["timestamp"]))
        assert found["name"] == entry["name"]


@SETTINGS
@given(responses, st.data())
def test_near_valid_payloads_same_acceptance(resp, data):
    text = bytearray(json.dumps(resp).encode())
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(text)))
        op = data.draw(st.sampled_from(["delete", "insert", "replace"]))
        byte = data.draw(st.sampled_from(list(b'{}[],:"\\ 0123456789.eE+-tfnulx') + [0x00, 0x1F, 0x80, 0xC3, 0xFF]))
        if op == "delete" and pos < len(text):
            del text[pos]
        elif op == "insert":
            text.insert(pos, byte)
        elif pos < len(text):
            text[pos] = byte
    payload = bytes(text)
    assume(not outside_rfc(payload))
    try:
        parse(payload)
        ours = True
    except PayloadError as exc:
        assert 0 <= exc.offset <= len(payload)
        ours = False
    assert ours == python_accepts(payload), payload


@settings(SETTINGS, derandomize=True)
@given(st.lists(responses, min_size=1, max_size=6))
@example(
    # integers that round to one double: equal timestamps, arrival order
    [{"id": 1, "events": [{"timestamp": 1152921504606846913, "name": "a"},
                          {"timestamp": 1152921504606846912, "name": "b"}]}]
)
def test_consumer_delivers_what_json_gives(resps):
    """Events come as json decodes them, in the documented order:
    timestamps compared as doubles, equal ones in arrival order."""
    lines = [json.dumps(r, ensure_ascii=False) for r in resps] + ['{"id":-1,"events":[]}']
    h = SimFlux.replay(lines, topic="job-manager.events-journal", end=errno.ENODATA)
    consumer = JournalConsumer(h).start()
    delivered = []
    while (event := consumer.poll(5)) is not None:
        delivered.append(event)
    expected = []
    for line in lines[:-1]:
        resp = json.loads(line)
        for entry in resp["events"]:
            entry.setdefault("context", {})
            if float(entry["timestamp"]) > 0.0:  # the default since
                expected.append((entry, resp))
    expected.sort(key=lambda pair: float(pair[0]["timestamp"]))  # stable
    assert len(delivered) == len(expected)
    for event, (entry, resp) in zip(delivered, expected):
        assert same_bits(dict(event), entry)
        assert event.jobid == resp["id"]
        assert same_bits(event.jobspec, resp.get("jobspec") if entry["name"] == "submit" else None)
        assert same_bits(event.R, resp.get("R") if entry["name"] == "alloc" else None)


@settings(max_examples=2000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(["repr", "%.17g", "%.7f", "%.3e"]))
def test_timestamp_literals_bit_identical(value, style):
    literal = repr(value) if style == "repr" else style % value
    if "e" not in literal and "." not in literal:
        literal += ".0"
    assume(math.isfinite(float(literal)))
    payload = ('{"events":[{"timestamp":%s,"name":"x"}]}' % literal).encode()
    found = parse(payload).entries[0]["timestamp"]
    assert struct.pack("<d", found) == struct.pack("<d", float(literal))


@pytest.mark.slow
@SETTINGS
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=6))
def test_decoder_matches_json_module(value):
    """orjson decodes batches; it must build what json.loads builds."""
    from flux_journal.core import decode_json

    text = json.dumps([value, value], ensure_ascii=False).encode()
    assert same_bits(decode_json(memoryview(text)), json.loads(text))


def test_decoder_falls_back_for_what_orjson_refuses():
    from flux_journal.core import decode_json

    for text in (
        b'["\\ud800"]',
        b"[1e400]",
        b'[{"a":"\\udfff x"}]',
        b"[-9223372036854775809]",
        b"[18446744073709551616]",
    ):
        assert same_bits(decode_json(memoryview(text)), json.loads(text))


def test_decoder_keeps_wide_integers_exact_in_bytes():
    """A jobspec or R is decoded from bytes, looked through for integers
    orjson would turn into floats: wherever one stands, it stays exact."""
    from flux_journal.core import decode_json

    for text in (
        b"18446744073709551616",
        b'{"a":[1,2,-99999999999999999999],"b":"x"}',
        b'{"count":123456789012345678901234567890}',
        b'{"n":9223372036854775807,"m":-9223372036854775808,"s":"12345678901234567890"}',
    ):
        assert same_bits(decode_json(text), json.loads(text))
        assert same_bits(decode_json(memoryview(text)), json.loads(text))
