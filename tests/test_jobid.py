"""Tests for flux_journal.jobid, the pure-Python stand-in for flux.job.JobID.

Test vectors come from three places:

* flux-core's own unit tests (src/common/libutil/test/fluid.c and
  test/basemoji.c) and RFC 19's examples;
* outputs of flux-core 0.88's C code (libjob/id.c + libutil/fluid.c,
  basemoji.c, compiled stand-alone) for inputs that exercise its corner
  cases, recorded here as literal expectations;
* the job ids in the captured journal streams under tests/fixtures.
"""

import copy
import errno
import json
import locale
import pickle
import sys
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flux_journal import jobid as jobid_mod
from flux_journal._flux import jobid_class
from flux_journal.jobid import JobID, f58_utf8, id_encode, id_parse

UINT64_MAX = 2**64 - 1

# (id, F58 digits) from flux-core's f58_tests, plus RFC 19's example.
F58_VECTORS = [
    (0, "1"),
    (1, "2"),
    (57, "z"),
    (1234, "NH"),
    (1888, "ZZ"),
    (3363, "zz"),
    (3364, "211"),
    (4369, "2JL"),
    (65535, "LUv"),
    (4294967295, "7YXq9G"),
    (633528662, "xyzzy"),
    (6731191091817518, "uZZybuNNy"),
    (18446744073709551614, "jpXCZedGfVP"),
    (18446744073709551615, "jpXCZedGfVQ"),
]

# (id, encoding) pairs that flux-core's fluid_parse() tests accept, and
# the decoding flux_job_id_parse() gives them.
PARSE_VECTORS = [
    (0, "f1"),
    (0, "f111"),
    (1, "f2"),
    (4294967295, "f7YXq9G"),
    (633528662, "fxyzzy"),
    (18446744073709551614, "fjpXCZedGfVP"),
    (18446744073709551615, "fjpXCZedGfVQ"),
    (1234, "1234"),
    (6731191091817518, "6731191091817518"),
    (18446744073709551614, "18446744073709551614"),
    (18446744073709551615, "18446744073709551615"),
    (0, "0x0"),
    (57, "0x39"),
    (3363, "0xd23"),
    (65535, "0xffff"),
    (633528662, "0x25c2e156"),
    (6731191091817518, "0x17e9fb8df16c2e"),
    (18446744073709551615, "0xffffffffffffffff"),
    (0, "0.0.0.0"),
    (1, "0000.0000.0000.0001"),
    (57, "0.0.0.0039"),
    (1234, "0000.0000.0000.04d2"),
    (65535, "0.0.0.ffff"),
    (4294967295, "0000.0000.ffff.ffff"),
    (18446744073709551615, "ffff.ffff.ffff.ffff"),
    (18446462598732840960, "ffff.0000.0000.0000"),
    (281470681743360, "0000.ffff.0000.0000"),
    (4294901760, "0000.0000.ffff.0000"),
    (2814797012533261, "a.b.c.d"),
    (281483566841860, "1.2.3.4"),
    (0, "😃"),
    (1, "😄"),
    (57, "🙊"),
    (1234, "😁👌"),
    (1888, "😆🐻"),
    (4369, "😊🌀"),
    (65535, "💁📚"),
    (4294967295, "😳🏪🍖🍸"),
    (18446744073709551615, "🚹💗💧👗😷📷📚"),
    (65535, " 0xffff   "),
    (6731191091817518, "0017.e9fb.8df1.6c2e"),  # RFC 19 examples
    (6731191091817518, "job.0017.e9fb.8df1.6c2e"),
    (6731191091817518, "ƒuZZybuNNy"),
]

# basemoji_tests from flux-core: exact encodings, both directions.
EMOJI_VECTORS = [
    (0, "😃"),
    (1, "😄"),
    (1234, "😁👌"),
    (65535, "💁📚"),
    (12342435, "😠🙇📍"),
    (2034152287593, "😪🏭🐭🍑👨"),
    (21900760568561664, "🎆🍧🎆🐾🕓😃"),
    (18446743892750589633, "🚹💗🔥😜💟🎱💃"),
    (18446744073709551615, "🚹💗💧👗😷📷📚"),
]

# Strings flux-core's tests expect fluid_parse() to reject with EINVAL.
INVALID = [
    "",
    "boo",
    "f",
    "-1",
    "0.0.0",
    "0.0.0.0.0",
    "0.0.0.g",
    "0.0.0.",
    ".0.0.0",
    "f0",
    "fO",
    "fI",
    "fl",
    "invalid-words-test",
    "🦄",
    "aaa",
    "flux",
    "f1230",
    "x1",
]

# Corner cases, each checked against flux-core 0.88's C implementation
# (flux_job_id_parse) compiled stand-alone: input -> id, or None for
# EINVAL.  They pin down sscanf("%4x.%4x.%4x.%4x"), strtoull() and the
# 64-bit wrap-around of over-long F58 and emoji strings.
C_QUIRKS = [
    ("0x.0.0.0", 0),
    ("-1.0.0.0", 18446462598732840960),
    ("+1.0.0.0", 281474976710656),
    ("-0.0.0.0", 0),
    (" 1. 2.3.4", 281483566841860),
    ("1.2.3. 4", 281483566841860),
    ("0x12.0.0.0", 5066549580791808),
    ("0.0.0.0x", 0),
    ("0.0.0.0x1", 1),
    ("0x123.0.0.0", None),
    ("1.2.3.4 ", None),
    ("1.2.3.-ffff", None),
    ("1.2.3.12345", None),
    ("+.0.0.0", None),
    ("job.1.2.3.4", 281483566841860),
    ("job. 5", 5),
    ("job.   ", 0),
    ("job.", None),
    ("   ", None),
    ("  job.ƒ1", 0),
    (" ƒ1", 0),
    ("ƒ", None),
    ("f1 ", None),
    ("+5", 5),
    ("+12 ", 12),
    ("+", None),
    ("12\t", 12),
    ("0X10", None),
    ("0xFFFF", 65535),
    ("0x5 ", 5),
    ("0x", None),
    ("0x 5", None),
    ("ffff", 130074),
    ("fzzzzzzzzzzzz", 10379314260256165887),
    ("f222222222222", 6978262101897486839),
    ("😃 ", None),
    ("😃😃😃😃😃😃😃", 0),
    ("😃😃😃😃😃😃😃😃", None),
    ("🚹💗💧👗😷📷📛", 81),
    ("🈵🈵🈵🈵🈵🈵🈵", 2040218133202464304),
    ("-", None),
    ("a-b-c--d-e", None),
    ("job.-1", None),
    ("1.2.3.4\0junk", 281483566841860),
]

# Encodings by flux-core 0.88's C flux_job_id_encode() (UTF-8 locale) of
# ids in the captured fixtures and RFC 19's example id.
C_ENCODINGS = {
    10737418240: {
        "hex": "0x280000000",
        "kvs": "job.0000.0002.8000.0000",
        "dothex": "0000.0002.8000.0000",
        "words": "avalon-little-armada--active-academy-academy",
        "f58": "ƒHMq5Mh",
        "f58plain": "fHMq5Mh",
        "emoji": "🙉👴🌋💞",
    },
    13623099393: {
        "hex": "0x32c000001",
        "kvs": "job.0000.0003.2c00.0001",
        "dothex": "0000.0003.2c00.0001",
        "words": "agent-icon-flash--actor-academy-academy",
        "f58": "ƒMkpwq2",
        "f58plain": "fMkpwq2",
        "emoji": "💜🐣💨💃",
    },
    58183385088: {
        "hex": "0xd8c000000",
        "kvs": "job.0000.000d.8c00.0000",
        "dothex": "0000.000d.8c00.0000",
        "words": "story-sandra-explore--alarm-academy-academy",
        "f58": "ƒ2XeU4Js",
        "f58plain": "f2XeU4Js",
        "emoji": "🚗🏠🏯🌼",
    },
    218389020674: {
        "hex": "0x32d9000002",
        "kvs": "job.0000.0032.d900.0002",
        "dothex": "0000.0032.d900.0002",
        "words": "temple-alien-grace--athena-academy-academy",
        "f58": "ƒ6jjHpHf",
        "f58plain": "f6jjHpHf",
        "emoji": "😄🔹📃🍒🌱",
    },
    6731191091817518: {
        "hex": "0x17e9fb8df16c2e",
        "kvs": "job.0017.e9fb.8df1.6c2e",
        "dothex": "0017.e9fb.8df1.6c2e",
        "words": "reform-remote-galileo--heart-package-academy",
        "f58": "ƒuZZybuNNy",
        "f58plain": "fuZZybuNNy",
        "emoji": "👩💅📓😸👑🚓",
    },
}

ENCODINGS = ["dec", "hex", "kvs", "dothex", "f58", "f58plain", "emoji"]


@pytest.fixture
def utf8_prefix(monkeypatch):
    """Make the F58 prefix "ƒ" regardless of the runner's environment."""
    monkeypatch.delenv("FLUX_F58_FORCE_ASCII", raising=False)
    saved = locale.setlocale(locale.LC_CTYPE)
    for name in ("C.UTF-8", "C.utf8", "en_US.UTF-8"):
        try:
            locale.setlocale(locale.LC_CTYPE, name)
            break
        except locale.Error:
            continue
    else:
        pytest.fail("no UTF-8 locale available to test the F58 prefix")
    yield
    locale.setlocale(locale.LC_CTYPE, saved)


def _fixture_ids(fixtures_dir):
    ids = set()
    for name in ("jobs-full.jsonl", "jobs-active.jsonl", "jobs-10k.jsonl"):
        with open(fixtures_dir / name, encoding="utf-8") as stream:
            for line in stream:
                ids.add(json.loads(line)["id"])
    ids.discard(-1)  # the sentinel
    return sorted(ids)


# --- encoding ---------------------------------------------------------


@pytest.mark.parametrize("value,digits", F58_VECTORS)
def test_f58_vectors(value, digits, utf8_prefix):
    assert id_encode(value, "f58") == "ƒ" + digits
    assert id_encode(value, "f58plain") == "f" + digits
    assert JobID(value).f58 == "ƒ" + digits
    assert str(JobID(value)) == "ƒ" + digits
    assert id_parse("ƒ" + digits) == value
    assert id_parse("f" + digits) == value


@pytest.mark.parametrize("value,emoji", EMOJI_VECTORS)
def test_emoji_vectors(value, emoji):
    assert id_encode(value, "emoji") == emoji
    assert JobID(value).emoji == emoji
    assert id_parse(emoji) == value


@pytest.mark.parametrize("value", sorted(C_ENCODINGS))
def test_encodings_match_flux_core(value, utf8_prefix):
    job = JobID(value)
    expected = C_ENCODINGS[value]
    for encoding in ENCODINGS:
        want = str(value) if encoding == "dec" else expected[encoding]
        assert id_encode(value, encoding) == want
        assert job.encode(encoding) == want
        assert getattr(job, encoding) == want
        assert id_parse(want) == value
    with pytest.raises(NotImplementedError):
        id_parse(expected["words"])


def test_f58_prefix_follows_force_ascii(monkeypatch, utf8_prefix):
    assert JobID(1234).f58 == "ƒNH"
    monkeypatch.setenv("FLUX_F58_FORCE_ASCII", "1")
    assert JobID(1234).f58 == "fNH"
    assert str(JobID(1234)) == "fNH"
    # C only asks getenv() whether it is set, so even empty counts.
    monkeypatch.setenv("FLUX_F58_FORCE_ASCII", "")
    assert id_encode(1234) == "fNH"
    monkeypatch.delenv("FLUX_F58_FORCE_ASCII")
    assert id_encode(1234) == "ƒNH"


def test_f58_prefix_follows_locale(utf8_prefix):
    locale.setlocale(locale.LC_CTYPE, "C")
    assert id_encode(1234, "f58") == "fNH"
    assert JobID(1234).f58 == "fNH"
    assert JobID(1234).f58plain == "fNH"


def test_f58_utf8_ignores_locale_and_force_ascii(monkeypatch):
    # What a broker writes into event contexts, whoever reads it.
    saved = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    monkeypatch.setenv("FLUX_F58_FORCE_ASCII", "1")
    try:
        assert f58_utf8(58183385088) == "ƒ2XeU4Js"  # a target in jobs-full.jsonl
        assert f58_utf8(JobID(1234)) == "ƒNH"
    finally:
        locale.setlocale(locale.LC_CTYPE, saved)
    with pytest.raises(OverflowError):
        f58_utf8(-1)
    with pytest.raises(OverflowError):
        f58_utf8(UINT64_MAX + 1)


def test_encode_names_are_case_insensitive():
    assert id_encode(65535, "HEX") == "0xffff"
    assert id_encode(65535, "DotHex") == "0000.0000.0000.ffff"
    assert id_encode(65535, b"kvs") == "job.0000.0000.0000.ffff"
    assert id_encode(65535, None) == "65535"
    assert id_encode(65535, "F58PLAIN") == "fLUv"


def test_encode_default_is_f58(utf8_prefix):
    assert id_encode(65535) == "ƒLUv"
    assert JobID(65535).encode() == "65535"  # JobID.encode defaults to dec


def test_encode_unknown_encoding_is_eproto():
    with pytest.raises(OSError) as info:
        id_encode(1, "base64")
    assert info.value.errno == errno.EPROTO
    with pytest.raises(OSError):
        JobID(1).encode("ƒ58")


def test_encode_out_of_range_overflows():
    for value in (-1, 2**64):
        with pytest.raises(OverflowError):
            id_encode(value, "dec")
        with pytest.raises(OverflowError):
            str(JobID(value))
        with pytest.raises(OverflowError):
            JobID(value).f58
    with pytest.raises(OverflowError):
        repr(JobID(-1))


def test_words_not_implemented():
    with pytest.raises(NotImplementedError, match="words"):
        JobID(1).words
    with pytest.raises(NotImplementedError):
        id_encode(1, "WORDS")


def test_f58_cache_stays_bounded(monkeypatch):
    monkeypatch.setattr(jobid_mod, "_F58_CACHE_MAX", 8)
    monkeypatch.setattr(jobid_mod, "_f58_digit_cache", {})
    for value in range(100, 200):
        assert id_parse(id_encode(value, "f58")) == value
        assert len(jobid_mod._f58_digit_cache) <= 8


# --- parsing ----------------------------------------------------------


@pytest.mark.parametrize("value,text", PARSE_VECTORS)
def test_parse_vectors(value, text):
    assert id_parse(text) == value
    assert id_parse(text.encode("utf-8")) == value
    job = JobID(text)
    assert job == value
    assert job.orig == text


@pytest.mark.parametrize("text", INVALID)
def test_parse_invalid_is_einval(text):
    with pytest.raises(OSError) as info:
        id_parse(text)
    assert info.value.errno == errno.EINVAL
    with pytest.raises(ValueError, match=r" is not a valid Flux jobid$"):
        JobID(text)


def test_parse_overflow_is_erange():
    with pytest.raises(OSError) as info:
        id_parse("18446744073709551616")
    assert info.value.errno == errno.ERANGE
    with pytest.raises(OSError) as info:
        id_parse("0x10000000000000000 junk")
    assert info.value.errno == errno.ERANGE
    with pytest.raises(ValueError):
        JobID("18446744073709551616")


@pytest.mark.parametrize("text,value", C_QUIRKS)
def test_parse_matches_flux_core_corner_cases(text, value):
    if value is None:
        with pytest.raises(OSError) as info:
            id_parse(text)
        assert info.value.errno == errno.EINVAL
    else:
        assert id_parse(text) == value


def test_parse_none_and_wrong_types():
    with pytest.raises(OSError):
        id_parse(None)
    with pytest.raises(ValueError, match="^None is not a valid Flux jobid$"):
        JobID(None)
    with pytest.raises(ValueError):
        id_parse(1.5)
    with pytest.raises(ValueError):
        JobID(1.5)


def test_parse_words_shapes():
    # Six runs of letters could be a valid words encoding: unsupported.
    with pytest.raises(NotImplementedError):
        JobID("reform-remote-galileo--heart-package-academy")
    # Anything else containing "-" can never decode, in C or here.
    for text in ("-1", "--", "a-b", "invalid-words-test", "1-2-3-4-5-6"):
        with pytest.raises(ValueError):
            JobID(text)


# --- JobID behaviour --------------------------------------------------


def test_jobid_is_an_int(utf8_prefix):
    job = JobID("ƒuZZybuNNy")
    assert isinstance(job, int)
    assert job == 6731191091817518
    assert hash(job) == hash(6731191091817518)
    assert {job: 1}[6731191091817518] == 1
    assert job + 1 == 6731191091817519
    assert str(job) == "ƒuZZybuNNy"
    assert f"{job}" == "ƒuZZybuNNy"
    assert repr(job) == "JobID(6731191091817518)"
    assert job.dec == "6731191091817518"
    assert job.orig == "ƒuZZybuNNy"
    assert job.orig_str == "ƒuZZybuNNy"


def test_jobid_from_int_keeps_any_value():
    assert JobID(42).orig == "42"
    sentinel = JobID(-1)
    assert sentinel == -1
    assert sentinel.orig == "-1"
    assert JobID(True) == 1


def test_jobid_copies_by_reparsing_original():
    first = JobID("0x2a")
    second = JobID(first)
    assert type(second) is JobID
    assert second == 42
    assert second.orig == "0x2a"
    # As in flux-core, a copy re-parses the original text, so -1 cannot be
    # copied ("-1" reads as an invalid words encoding).
    with pytest.raises(ValueError):
        JobID(JobID(-1))


def test_jobid_subclass_copy_keeps_class():
    class MyJobID(JobID):
        pass

    job = MyJobID(JobID("f2"))
    assert type(job) is MyJobID and job == 1


def test_jobid_pickle_and_copy():
    job = JobID("job.0000.0002.8000.0000")
    for clone in (
        pickle.loads(pickle.dumps(job)),
        copy.copy(job),
        copy.deepcopy(job),
    ):
        assert type(clone) is JobID
        assert clone == 10737418240
        assert clone.orig == "job.0000.0002.8000.0000"


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=UINT64_MAX))
def test_every_encoding_round_trips(value):
    for encoding in ENCODINGS:
        text = id_encode(value, encoding)
        assert id_parse(text) == value
        assert JobID(text) == value


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=UINT64_MAX))
def test_f58_matches_plain_base58(value):
    # An independent, obviously-correct base58 to check the fast encoder.
    digits = ""
    rest = value
    while True:
        rest, low = divmod(rest, 58)
        digits = jobid_mod._B58[low] + digits
        if not rest:
            break
    assert id_encode(value, "f58plain") == "f" + digits


# --- fixtures ---------------------------------------------------------


def test_fixture_ids_round_trip(fixtures_dir):
    ids = _fixture_ids(fixtures_dir)
    assert len(ids) > 10000
    for value in ids:
        job = JobID(value)
        for encoding in ENCODINGS:
            assert JobID(job.encode(encoding)) == value
        assert job.kvs == "job." + job.dothex


def test_fixture_dependencies_name_real_jobs(fixtures_dir):
    """F58 ids in dependency events decode to jobs seen in the capture."""
    ids = set(_fixture_ids(fixtures_dir))
    found = {}
    with open(fixtures_dir / "jobs-full.jsonl", encoding="utf-8") as stream:
        for line in stream:
            response = json.loads(line)
            for event in response["events"]:
                description = event.get("context", {}).get("description", "")
                if event["name"] == "dependency-add" and "=" in description:
                    found[description.split("=", 1)[1]] = response["id"]
    assert set(found) == {"ƒ2XeU4Js", "ƒ2cXdh8j"}
    for text, dependent in found.items():
        target = JobID(text)
        assert target in ids
        # Flux job ids grow with submit time: the dependency came first.
        assert target < dependent
        assert JobID(int(target)).f58plain == "f" + text[1:]


# --- _flux.jobid_class ------------------------------------------------


def test_jobid_class_falls_back_without_flux(monkeypatch):
    # A None entry makes "import flux" fail, whatever is installed.
    monkeypatch.setitem(sys.modules, "flux", None)
    assert jobid_class() is JobID


def test_jobid_class_prefers_flux_core(monkeypatch):
    class FluxJobID(int):
        pass

    flux = types.ModuleType("flux")
    flux.__path__ = []
    flux_job = types.ModuleType("flux.job")
    flux_job.JobID = FluxJobID
    monkeypatch.setitem(sys.modules, "flux", flux)
    monkeypatch.setitem(sys.modules, "flux.job", flux_job)
    assert jobid_class() is FluxJobID


@pytest.mark.parametrize("value", [0, 1, -1, 542692605952, 2**63 - 1, 2**64 - 1, 2**64])
def test_journal_consumers_quick_jobid_is_jobid_of_the_int(value):
    # The job consumer makes its JobIDs from ints without the Python-level
    # constructor when the class is flux-journal's own: same object in
    # every way that shows.
    from flux_journal import job

    quick, made = job._jobid_of_int(value), job.JobID(value)
    assert type(quick) is type(made)
    assert quick == made == value
    assert vars(quick) == vars(made)
    assert quick.orig_str == made.orig_str
    assert pickle.loads(pickle.dumps(quick)) == made
    if 0 <= value < 2**64:
        assert (repr(quick), str(quick), quick.f58, quick.dothex) == (
            repr(made),
            str(made),
            made.f58,
            made.dothex,
        )
    else:  # ids outside 64 bits fail only when encoded, both the same way
        with pytest.raises(OverflowError):
            repr(quick)
        with pytest.raises(OverflowError):
            repr(made)
