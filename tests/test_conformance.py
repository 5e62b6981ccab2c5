"""RFC 8259 conformance of what users reach, on a corpus written for this
project (tests/conformance/, described in its README.md).

Each case is one file.  Unless its name starts with ``payload-`` it is
checked in two places, through JournalConsumer on a simulated handle:

- as a whole response payload: a JSON text is not refused as bad JSON
  (it may be refused as not a journal response, ``PayloadError.shape``);
  anything else is refused as bad JSON (``shape`` false);
- as the value of a member of an event's context: a JSON text is
  delivered as Python's json.loads() reads it (type and value, floats bit
  for bit); anything else is refused as bad JSON.

``payload-`` cases are whole responses, checked as they stand.
"""

import errno
import json
import pathlib

import pytest

from flux_journal import JournalConsumer, PayloadError
from flux_journal.sim import SimFlux

CORPUS = pathlib.Path(__file__).resolve().parent / "conformance"
SENTINEL = b'{"id":-1,"events":[]}'


def cases(*where):
    paths = sorted(CORPUS.joinpath(*where).glob("*.json"))
    assert paths, f"no cases in {CORPUS.joinpath(*where)}"
    return [pytest.param(path, id="/".join(where + (path.stem,))) for path in paths]


ACCEPTED = cases("accept") + cases("impl", "accept")
REJECTED = cases("reject") + cases("impl", "reject")


def consume(payload):
    """What a consumer makes of one response followed by the sentinel: the
    events and PayloadErrors, in order."""
    handle = SimFlux.replay([payload, SENTINEL], topic="job-manager.events-journal", end=errno.ENODATA)
    consumer = JournalConsumer(handle).start()
    results = []
    while True:
        try:
            event = consumer.poll(10.0)
        except PayloadError as exc:
            results.append(exc)
            continue
        if event is None:
            return results
        results.append(event)


def in_context(text):
    """A journal response carrying *text* as the value of context member
    "v" of its one event."""
    return b'{"id":1,"events":[{"timestamp":1.5,"name":"case","context":{"v":' + text + b"}}]}"


def syntax_errors(results):
    return [r for r in results if isinstance(r, PayloadError) and not r.shape]


def exact(value):
    """A form of a decoded JSON value that tells 1 from 1.0 and True,
    -0.0 from 0.0, and lone surrogates apart."""
    return repr(value)


@pytest.mark.parametrize("path", ACCEPTED)
def test_json_texts_are_accepted(path):
    text = path.read_bytes()
    assert syntax_errors(consume(text)) == []
    if path.stem.startswith("payload-"):
        return
    expected = json.loads(text)
    results = consume(in_context(text))
    assert [type(r).__name__ for r in results] == ["JournalEvent"], results
    assert exact(results[0].context["v"]) == exact(expected)


@pytest.mark.parametrize("path", REJECTED)
def test_other_texts_are_refused_as_bad_json(path):
    text = path.read_bytes()
    placements = [text] if path.stem.startswith("payload-") else [text, in_context(text)]
    for payload in placements:
        results = consume(payload)
        assert len(results) == 1 and syntax_errors(results) == results, (payload, results)


def test_the_corpus_covers_every_part_of_the_grammar():
    """Each part of RFC 8259's grammar has accepted and refused cases."""
    names = [path.stem for path in CORPUS.rglob("*.json")]
    for part in ("literal", "number", "string", "utf8", "structure", "whitespace", "payload"):
        accepted = [p for p in ACCEPTED if p.values[0].stem.startswith(part)]
        refused = [p for p in REJECTED if p.values[0].stem.startswith(part)]
        assert refused, part
        assert accepted or part == "utf8", part
    assert len(names) == len(set(names)), "case names must be unique"
