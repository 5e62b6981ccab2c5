"""The C payload scanner: what it accepts, what it finds, how it refuses.

Checked through tests/payload_index.parse(), which wraps fj_payload_parse()
in a test-only module built from the same sources.
"""

import json
import math
import struct

import pytest

from flux_journal.errors import PayloadError

from payload_index import parse


def bits(x):
    return struct.pack("<d", x)


def span_text(payload, span):
    off, length = span
    return payload[off : off + length]


@pytest.mark.slow
def test_fixture_payloads_indexed_like_json(fixtures_dir):
    for path in sorted(fixtures_dir.glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            index = parse(line)
            resp = json.loads(line)
            assert set(index.members) == set(resp)
            for key, span in index.members.items():
                assert json.loads(span_text(line, span)) == resp[key]
            assert index.id == resp.get("id")
            assert len(index.entries) == len(resp["events"])
            for found, entry in zip(index.entries, resp["events"]):
                assert bits(found["timestamp"]) == bits(entry["timestamp"])
                assert found["name"] == entry["name"]
                assert json.loads(span_text(line, found["entry"])) == entry
                if "context" in entry:
                    ctx = json.loads(span_text(line, found["context"]))
                    assert ctx == entry["context"]
                else:
                    assert found["context"] is None


@pytest.mark.parametrize(
    "literal",
    [
        "1780507981.9051635",
        "0.1",
        "-0.0",
        "1e308",
        "1.7976931348623157e308",
        "5e-324",
        "2.2250738585072011e-308",
        "1e400",
        "-1e-400",
        "123456789012345678901234567890.5",
        "9007199254740993.0",
        "0.30000000000000004",
        "1E+2",
        "1e-2",
    ],
)
def test_timestamps_bit_identical_to_json(literal):
    payload = f'{{"events":[{{"timestamp":{literal},"name":"x"}}]}}'.encode()
    found = parse(payload).entries[0]["timestamp"]
    expected = json.loads(literal)
    assert bits(found) == bits(float(expected))
    if literal == "-0.0":
        assert math.copysign(1, found) == -1


# The services' timestamps (<digits>.<digits>) are read in one pass, eight
# digits at a time where possible; anything else takes the general path.
FAST_TIMESTAMPS = [
    "1795812829.7204976",
    "12345678.1",  # one whole block of eight
    "1234567812345678.125",  # two blocks before the point
    "1.2345678912345678",  # two after it
    "123456789012345678.9",  # 19 digits: the most the fast path takes
    "1234567890123456789.0",  # 20: general path
    "9007199254740993.0",  # halfway between two doubles: strtod decides
    "9007199254740995.0",
    "4503599627370497.5",
    "1.0",
    "99999999.99999999",
    "0.5",  # leading zero: general path
]


@pytest.mark.parametrize("literal", FAST_TIMESTAMPS)
def test_service_timestamps_read_in_one_pass_equal_float(literal):
    payload = f'{{"events":[{{"timestamp":{literal},"name":"x"}}]}}'.encode()
    assert bits(parse(payload).entries[0]["timestamp"]) == bits(float(literal))


def test_random_service_timestamps_equal_float():
    rng = __import__("random").Random(1907)
    for _ in range(3000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(2, 21)))
        digits = rng.choice("123456789") + digits[1:]
        point = rng.randint(1, len(digits) - 1)
        literal = f"{digits[:point]}.{digits[point:]}"
        payload = f'{{"events":[{{"timestamp":{literal},"name":"x"}}]}}'.encode()
        assert bits(parse(payload).entries[0]["timestamp"]) == bits(float(literal)), literal


@pytest.mark.parametrize("literal", ["1.", "1.e5", "01.5", "1..5", "1.5.5", "1.5e", "1.x", "1a.5"])
def test_malformed_timestamps_fail_as_in_the_general_path(literal):
    compact = f'{{"events":[{{"timestamp":{literal},"name":"x"}}]}}'.encode()
    spaced = f'{{"events":[{{ "timestamp":{literal},"name":"x"}}]}}'.encode()
    with pytest.raises(PayloadError) as fast:
        parse(compact)
    with pytest.raises(PayloadError) as general:
        parse(spaced)
    assert fast.value.offset == general.value.offset - 1  # the added space
    assert str(fast.value).split(": ")[1:] == str(general.value).split(": ")[1:]


def test_escapes_and_unicode_in_values():
    payload = (
        '{"id":1,"events":[{"timestamp":1.5,"name":"sub\\u006dit",'
        '"context":{"s":"tab\\t quote\\" slash\\/ \\ud83d\\ude00 é 日本"}}],'
        '"jobspec":{"k":"\\u00e9"}}'
    ).encode()
    index = parse(payload)
    entry = index.entries[0]
    assert entry["name"] == "submit"
    assert json.loads(span_text(payload, entry["context"])) == json.loads(payload)[
        "events"
    ][0]["context"]
    assert "jobspec" in index.members


def test_escaped_member_keys_are_recognised():
    payload = b'{"\\u0069d":7,"ev\\u0065nts":[{"time\\u0073tamp":2.0,"n\\u0061me":"a"}]}'
    index = parse(payload)
    assert index.id == 7
    assert index.entries[0]["timestamp"] == 2.0
    assert index.entries[0]["name"] == "a"


def test_deep_legal_nesting_accepted():
    depth = 2040  # the payload object, events array and entry add 3: 2043 <= 2048
    ctx = "[" * depth + "]" * depth
    payload = f'{{"events":[{{"timestamp":1.0,"name":"a","context":{ctx}}}]}}'
    index = parse(payload.encode())
    assert len(index.entries) == 1


def test_duplicate_members_last_wins():
    payload = b'{"id":1,"id":2,"events":[{"timestamp":1.0,"name":"a"}],"events":[]}'
    index = parse(payload)
    assert index.id == 2
    assert index.entries == []


def test_whitespace_everywhere():
    payload = b' \n{ "id" : 3 ,\t"events" :\r\n[ { "timestamp" : 1.25 , "name" : "x" } ] } \n'
    index = parse(payload)
    assert index.id == 3 and index.entries[0]["timestamp"] == 1.25


MALFORMED = [
    # (payload, offset, reason fragment)
    (b'{"events":[{"timestamp":1.0,"name":"a"}', 39, "unexpected end"),
    (b'{"events":[{"timestamp":1.0,"name":"a\\x"}]}', 37, "escape"),
    (b'{"events":[{"timestamp":1.0,"name":"a\\u12g4"}]}', 37, "escape"),
    (b'{"events":[{"timestamp":1.0,"name":"\xff"}]}', 36, "UTF-8"),
    (b'{"events":[{"timestamp":1.0,"name":"\xc0\xaf"}]}', 36, "UTF-8"),
    (b'{"events":[{"timestamp":1.0,"name":"\xed\xa0\x80"}]}', 36, "UTF-8"),
    (b'{"events":[{"timestamp":1.0,"name":"\xf4\x90\x80\x80"}]}', 36, "UTF-8"),
    (b'{"events":[{"timestamp":NaN,"name":"a"}]}', 24, "unexpected character"),
    (b'{"events":[{"timestamp":1.0,"name":"a","context":{"x":Infinity}}]}', 54, "unexpected character"),
    (b'{"events":[{"timestamp":01.0,"name":"a"}]}', 24, "number"),
    (b'{"events":[{"timestamp":1.,"name":"a"}]}', 26, "number"),
    (b'{"events":[{"timestamp":-,"name":"a"}]}', 25, "number"),
    (b'{"events":[]} x', 14, "trailing"),
    (b'{"events":[]}{}', 13, "trailing"),
    (b'{"events":[{"timestamp":1.0,"name":"a\tb"}]}', 37, "control character"),
    (b'{"events":[],}', 13, "unexpected character"),
    (b'{"events":[1,]}', 13, "unexpected character"),  # bad JSON beats bad shape
    (b"\xef\xbb\xbf{\"events\":[]}", 0, "unexpected character"),
    (b"", 0, "unexpected end"),
    (b'{"events":{}}', 10, '"events" is not an array'),
    (b'{"id":1}', 0, 'no "events"'),
    (b"[]", 0, "not a JSON object"),
    (b'{"events":["x"]}', 11, "event entry is not an object"),
    (b'{"events":[{"name":"a"}]}', 11, "timestamp"),
    (b'{"events":[{"timestamp":"1.0","name":"a"}]}', 24, "timestamp"),
    (b'{"events":[{"timestamp":1.0}]}', 11, "name"),
    (b'{"events":[{"timestamp":1.0,"name":5}]}', 35, "name"),
]


@pytest.mark.parametrize("payload,offset,reason", MALFORMED)
def test_malformed_payloads_refused_with_offset(payload, offset, reason):
    with pytest.raises(PayloadError) as info:
        parse(payload)
    assert info.value.offset == offset
    assert reason in info.value.reason
    assert f"at byte {offset}" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_shape_errors_are_flagged_as_shape():
    with pytest.raises(PayloadError) as info:
        parse(b'{"events":{}}')
    assert info.value.shape
    with pytest.raises(PayloadError) as info:
        parse(b'{"events":[}')
    assert not info.value.shape


def test_nesting_limit():
    too_deep = "[" * 2100 + "]" * 2100
    payload = f'{{"events":[{{"timestamp":1.0,"name":"a","context":{too_deep}}}]}}'
    with pytest.raises(PayloadError, match="nesting"):
        parse(payload.encode())


def test_every_truncation_of_a_fixture_line_is_refused(fixtures_dir):
    line = (fixtures_dir / "jobs-full.jsonl").read_bytes().splitlines()[0]
    for cut in range(len(line)):
        with pytest.raises(PayloadError):
            parse(line[:cut])


def test_shape_error_only_for_valid_json():
    with pytest.raises(PayloadError) as info:
        parse(b'{"events":[1,')
    assert not info.value.shape and "unexpected end" in info.value.reason
    with pytest.raises(PayloadError) as info:
        parse(b'{"events":[1]}')
    assert info.value.shape and info.value.offset == 11


@pytest.mark.parametrize(
    "payload",
    [
        b'{"events":5,"events":[{"timestamp":1.0,"name":"a"}]}',
        b'{"events":[{"timestamp":"x","timestamp":1.0,"name":5,"name":"a"}]}',
        b'{"events":[{"name":"a"}],"events":[{"timestamp":1.0,"name":"a"}]}',
    ],
)
def test_repeated_members_last_one_counts_like_json(payload):
    index = parse(payload)
    expected = json.loads(payload)["events"]
    assert [(e["timestamp"], e["name"]) for e in index.entries] == [
        (e["timestamp"], e["name"]) for e in expected
    ]


def test_repeated_member_last_one_bad_is_refused():
    with pytest.raises(PayloadError, match="timestamp"):
        parse(b'{"events":[{"timestamp":1.0,"timestamp":"x","name":"a"}]}')


# Containers nobody looks inside (jobspec, R, contexts) are validated by a
# fast loop that hands anything unusual back to the recursive scanner.  It
# must never accept what the scanner refuses, and what it accepts must end
# where json says.  (inner text, offset of the fault in it, reason)
INNER_ERRORS = [
    (b"tru", 0, "unexpected character"),
    (b"nul", 0, "unexpected character"),
    (b"[1,]", 3, "unexpected character"),
    (b"[1 2]", 3, "unexpected character"),
    (b'{"a" 1}', 5, "unexpected character"),
    (b'{"a":1,}', 7, "unexpected character"),
    (b'{"a":1]', 6, "unexpected character"),
    (b"{1:2}", 1, "unexpected character"),
    (b'"a\\x"', 2, "escape"),
    (b'"\\u12g4"', 1, "escape"),
    (b'"\xff"', 1, "UTF-8"),
    (b'"\xe2\x98"', 1, "UTF-8"),
    (b'"a\tb"', 2, "control character"),
    (b"01", 0, "number"),
    (b"1.", 2, "number"),
    (b"1.e5", 2, "number"),
    (b"1e", 2, "number"),
    (b"1e+", 3, "number"),
    (b"-", 1, "number"),
    (b"-a", 1, "number"),
    (b"+1", 0, "unexpected character"),
    (b"[" * 70 + b"x" + b"]" * 70, 70, "unexpected character"),
]


def _in_context(inner):
    prefix = b'{"events":[{"timestamp":1.0,"name":"a","context":{"k":['
    return prefix, prefix + inner + b"]}}]}"


def _in_jobspec(inner):
    prefix = b'{"id":1,"jobspec":{"tasks":[{"x":'
    return prefix, prefix + inner + b'}]},"events":[]}'


@pytest.mark.parametrize("where", [_in_context, _in_jobspec])
@pytest.mark.parametrize("inner,offset,reason", INNER_ERRORS)
def test_faults_inside_skipped_containers_found_exactly(where, inner, offset, reason):
    prefix, payload = where(inner)
    with pytest.raises(PayloadError) as info:
        parse(payload)
    assert info.value.offset == len(prefix) + offset
    assert reason in info.value.reason


@pytest.mark.parametrize("where", [_in_context, _in_jobspec])
def test_truncation_inside_skipped_containers(where):
    _, payload = where(b'{"a":[1,{"b":"c"},true]}')
    for cut in range(len(payload)):
        with pytest.raises(PayloadError) as info:
            parse(payload[:cut])
        assert info.value.offset <= cut


INNER_VALID = [
    b'"\xc6\x92\xe2\x98\x83 \xf0\x9f\x98\x80"',
    b'"a\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00"',
    b"1234567890123456789",
    b"-12345678901234567890123",
    b"[-0.5e-3, 0, -0, 1E+2, 2.5E-7]",
    b' [ 1 , { "a" : [ ] , "b" : { } } , true , false , null ] ',
    b"[" * 100 + b"]" * 100,
    b'{"a":' * 63 + b"1" + b"}" * 63,
    b'{"a":' * 64 + b"1" + b"}" * 64,
    b"[{},[],[{}],{\"\":\"\"}]",
]


@pytest.mark.parametrize("inner", INNER_VALID)
def test_skipped_containers_accept_what_json_accepts(inner):
    _, payload = _in_context(inner)
    entry = parse(payload).entries[0]
    context = span_text(payload, entry["context"])
    assert json.loads(context) == {"k": [json.loads(inner)]}
    _, payload = _in_jobspec(inner)
    index = parse(payload)
    jobspec = span_text(payload, index.members["jobspec"])
    assert json.loads(jobspec) == {"tasks": [{"x": json.loads(inner)}]}


# Entries in the layout the services write are read by a fast path; any
# other layout by the general one.  Spacing an entry out forces the general
# path: both must find the same timestamp, name, context and flags.
ENTRIES = [
    b'{"timestamp":1795812930.1291406,"name":"submit","context":{"userid":0,"urgency":16}}',
    b'{"timestamp":1.5,"name":"a"}',
    b'{"timestamp":-2.25e3,"name":"a","context":null}',
    b'{"timestamp":1.0e-7,"name":"a","context":"text"}',
    b'{"timestamp":0.1,"name":"a","context":[1,{"b":[]},true]}',
    b'{"timestamp":3,"name":"a"}',  # an integer: irregular
    b'{"timestamp":3e2,"name":"a"}',
    b'{"timestamp":1.25,"name":"caf\\u00e9"}',  # escaped name
    b'{"timestamp":1.25,"name":"\xc6\x92"}',  # non-ASCII name
    b'{"timestamp":1.25,"name":""}',
    b'{"timestamp":1.25,"name":"a","context":{"big":123456789012345678901}}',  # wide
    b'{"timestamp":1.25,"name":"a","context":' + b"[" * 70 + b"]" * 70 + b"}",
    b'{"timestamp":1.25,"name":"a","context":' + b"[" * 450 + b"]" * 450 + b"}",  # isolate
    b'{"timestamp":1.25,"name":"a","context":{},"extra":1}',  # irregular
    b'{"name":"a","timestamp":1.25}',  # irregular order
    b'{"timestamp":1.25,"context":{},"name":"a"}',
    b'{"timestamp":12345678901234567890.5,"name":"a"}',
    b'{"timestamp":1.25,"timestamp":2.5,"name":"a"}',
]


@pytest.mark.parametrize("entry", ENTRIES)
def test_entry_fast_path_agrees_with_the_general_scan(entry):
    compact = b'{"events":[' + entry + b"]}"
    spaced = b'{"events":[' + entry.replace(b"{", b"{ ", 1) + b"]}"
    fast, general = parse(compact).entries[0], parse(spaced).entries[0]
    assert bits(fast["timestamp"]) == bits(general["timestamp"])
    assert fast["name"] == general["name"]
    assert fast["flags"] == general["flags"]
    if fast["context"] is None:
        assert general["context"] is None
    else:
        assert span_text(compact, fast["context"]) == span_text(spaced, general["context"])
    decoded = json.loads(entry)
    assert bits(fast["timestamp"]) == bits(float(decoded["timestamp"]))
    assert fast["name"] == decoded["name"]
    assert span_text(compact, fast["entry"]) == entry
