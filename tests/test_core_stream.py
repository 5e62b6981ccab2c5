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
