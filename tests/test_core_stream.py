"""The Python side of the C stream (flux_journal.core.CoreStream).

feed_many() is what a burst of arrived responses goes through: one call
into C for many payloads.  It must leave the stream exactly as feeding
them one by one would, errors reported at their places.
"""

import errno

import pytest

from flux_journal import JournalConsumer, core
from flux_journal.core import CoreStream
from flux_journal.sim import SimFlux

from journal_helpers import BAD, HISTORY, LIVE, SENTINEL, drained, one_by_one





def together(payloads, kind):
    stream = CoreStream(kind, 0.0)
    errors = []

    def refused(exc):
        errors.append(exc)
        stream.mark(core.FIRST_USER_MARK + len(errors) - 1)

    stream.feed_many(b"".join(payloads), [len(p) for p in payloads], refused)
    return stream, errors




@pytest.mark.parametrize("kind", [core.JOB | core.HISTORY | core.ORDERED, core.JOB])
@pytest.mark.parametrize(
    "payloads",
    [
        HISTORY + [SENTINEL] + LIVE,
        [BAD[0]] + HISTORY + [SENTINEL] + LIVE,
        HISTORY[:2] + [BAD[1]] + HISTORY[2:] + [SENTINEL, BAD[2]] + LIVE + [BAD[3]],
        [SENTINEL, BAD[0], BAD[1], SENTINEL] + LIVE,
        BAD,
        [],
    ],
    ids=["clean", "bad-first", "bad-middle-and-last", "sentinel-twice", "all-bad", "none"],
)
def test_feed_many_equals_feeding_one_by_one(payloads, kind):
    single, single_errors = one_by_one(payloads, kind)
    many, many_errors = together(payloads, kind)
    assert [(str(e), e.offset) for e in many_errors] == [(str(e), e.offset) for e in single_errors]
    assert len(many_errors) == sum(p in BAD for p in payloads)
    assert many.stats() == single.stats()
    assert drained(many) == drained(single)


@pytest.mark.parametrize("option", ["allow", "deny"])
def test_name_filter_past_its_limit_is_refused_by_name(option):
    """A name filter holds FJ_MAX_NAMES distinct names: one more is a
    ValueError naming the limit (not an out-of-memory error), and a filter
    at the limit works."""
    limit = core.lib.FJ_MAX_NAMES
    names = [f"event{i}" for i in range(limit)]
    lines = ['{"id":1,"events":[{"timestamp":1.5,"name":"event7"}]}', '{"id":-1,"events":[]}']

    def consumer(filter_names):
        handle = SimFlux.replay(lines, topic="job-manager.events-journal", end=errno.ENODATA)
        return JournalConsumer(handle, **{option: filter_names})

    with pytest.raises(ValueError, match=f"{option} list: more than {limit} distinct names"):
        consumer(names + ["one-more"]).start()
    at_limit = consumer(names).start()
    delivered = [event.name for event in iter(lambda: at_limit.poll(5.0), None)]
    assert delivered == (["event7"] if option == "allow" else [])


def _past_the_sentinel():
    """A live job stream with the sentinel fed and popped."""
    stream = CoreStream(core.JOB, 0.0)
    stream.feed(SENTINEL)
    while stream.pop() is not None:
        pass
    return stream


def _popped_alone(payloads, max_events=core.BATCH_SIZE):
    """Feed a live stream *payloads* (after the sentinel); pop once in C:
    (count, b.one)."""
    stream = _past_the_sentinel()
    for payload in payloads:
        stream.feed(payload)
    c_stream, b, _ = stream.c_parts()
    count = core.lib.fj_stream_pop(c_stream, b, max_events)
    return count, b.one


_ONE = b'{"id":5,"events":[{"timestamp":1.5,"name":"clean","context":{}}]}'
_TWO = b'{"id":5,"events":[{"timestamp":1.5,"name":"a"},{"timestamp":1.6,"name":"b"}]}'


@pytest.mark.parametrize(
    "payload, max_events, expected",
    [
        (_ONE, core.BATCH_SIZE, (1, 1)),
        # two events in one batch
        (_TWO, core.BATCH_SIZE, (2, 0)),
        # one popped, another deliverable right after it
        (_TWO, 1, (1, 0)),
        # an irregular entry (its members out of order), decoded whole by Python
        (b'{"id":5,"events":[{"name":"a","timestamp":1.5,"context":{}}]}', core.BATCH_SIZE,
         (1, 0)),
        # an integer too wide for a C double's exactness, for Python's json
        (b'{"id":5,"events":[{"timestamp":1.5,"name":"a","context":{"n":' + b"9" * 40 + b"}}]}",
         core.BATCH_SIZE, (1, 0)),
    ],
    ids=["one-plain", "two", "one-of-two", "irregular", "wide-int"],
)
def test_batch_one_marks_a_lone_plain_event(payload, max_events, expected):
    """fj_batch_t.one, what the live step reads instead of the count, the
    flags and more: set only for exactly one plain event with nothing
    more deliverable."""
    assert _popped_alone([payload], max_events) == expected


def test_batch_one_is_not_set_for_a_tie():
    """An event with the timestamp of the one before it is a tie
    (FJ_EV_TIE): Python's slow path orders it, so it is not "one"."""
    stream = _past_the_sentinel()
    stream.feed(b'{"id":5,"events":[{"timestamp":1.5,"name":"a"}]}')
    c_stream, b, _ = stream.c_parts()
    assert core.lib.fj_stream_pop(c_stream, b, 1) == 1 and b.one == 1
    stream.feed(b'{"id":6,"events":[{"timestamp":1.5,"name":"a"}]}')
    assert core.lib.fj_stream_pop(c_stream, b, 1) == 1 and b.one == 0
    assert b.flags[0] & core.TIE
