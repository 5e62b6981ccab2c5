"""The public surface: every public method and constructor of the three
consumer classes has flux-core's signature (parameter names, kinds and
defaults, in order), and flux-journal's additions are keyword-only or
methods flux-core does not have.  flux-core's classes come from its
flux-python wheel (tests/upstream.py)."""

import inspect

import pytest

import flux_journal
from flux_journal import JournalConsumer, JournalConsumerBase, ResourceJournalConsumer

# flux-journal's documented additions (README, "Extensions").
EXTRA_METHODS = {"poll_batch", "set_batch_callback", "events"}
EXTRA_PROPERTIES = {"stats", "cursor", "history_complete"}
EXTRA_KEYWORDS = {"allow", "deny", "ordered", "max_backlog", "cursor_window"}

PAIRS = ["JournalConsumerBase", "JournalConsumer", "ResourceJournalConsumer"]


def public_names(cls):
    return {
        name
        for name, _ in inspect.getmembers(cls)
        if not name.startswith("_") or name == "__init__"
    }


def check_compatible(ours, theirs, where):
    """Our signature accepts every call theirs does, meaning the same."""
    ours_params = list(inspect.signature(ours).parameters.values())
    theirs_params = list(inspect.signature(theirs).parameters.values())
    for mine, upstream in zip(ours_params, theirs_params):
        assert (mine.name, mine.kind, mine.default) == (upstream.name, upstream.kind, upstream.default), where
    for extra in ours_params[len(theirs_params):]:
        assert extra.kind in (extra.KEYWORD_ONLY, extra.VAR_KEYWORD), (where, extra)
        if extra.kind == extra.KEYWORD_ONLY:
            assert extra.default is not extra.empty, (where, extra)
    return {p.name for p in ours_params[len(theirs_params):] if p.kind == p.KEYWORD_ONLY}


@pytest.mark.parametrize("name", PAIRS)
def test_every_upstream_method_has_the_same_signature(upstream, name):
    theirs = getattr(upstream, name)
    ours = getattr(flux_journal, name)
    missing = public_names(theirs) - public_names(ours)
    assert not missing
    for attr in public_names(theirs):
        upstream_attr = inspect.getattr_static(theirs, attr)
        our_attr = inspect.getattr_static(ours, attr)
        if isinstance(upstream_attr, property):
            assert isinstance(our_attr, property), attr
            continue
        if callable(upstream_attr):
            check_compatible(getattr(ours, attr), getattr(theirs, attr), f"{name}.{attr}")
        else:
            assert getattr(ours, attr) == getattr(theirs, attr) or attr == "SENTINEL_EVENT", attr


def test_base_constructor_extensions_are_the_documented_keywords(upstream):
    extras = check_compatible(
        JournalConsumerBase.__init__, upstream.JournalConsumerBase.__init__, "__init__"
    )
    assert extras == EXTRA_KEYWORDS


@pytest.mark.parametrize("cls", [JournalConsumer, ResourceJournalConsumer])
def test_subclass_constructors_pass_the_extensions_on(cls):
    params = inspect.signature(cls.__init__).parameters
    assert list(params)[-1] == "extras"  # **extras, to JournalConsumerBase
    from flux_journal.sim import SimFlux  # pylint: disable=import-outside-toplevel

    consumer = cls(SimFlux(), allow={"x"}, ordered=False, max_backlog=10, cursor_window=1.0)
    assert consumer.allow == frozenset({"x"}) and consumer.max_backlog == 10
    with pytest.raises(TypeError):
        cls(SimFlux(), no_such_option=1)


@pytest.mark.parametrize("name", PAIRS)
def test_additions_are_only_the_documented_ones(upstream, name):
    theirs = getattr(upstream, name)
    ours = getattr(flux_journal, name)
    added = public_names(ours) - public_names(theirs)
    assert added == EXTRA_METHODS | EXTRA_PROPERTIES


def test_package_exports():
    assert sorted(flux_journal.__all__) == sorted([
        "BacklogFullError", "JournalConsumer", "JournalConsumerBase", "JournalEvent",
        "JournalEventBase", "PayloadError", "ResourceJournalConsumer",
        "ResourceJournalEvent", "SENTINEL_EVENT", "install",
    ])
    for name in flux_journal.__all__:
        obj = getattr(flux_journal, name)
        assert obj.__doc__, name
    assert list(inspect.signature(flux_journal.install).parameters) == ["end_of_stream_callback"]
