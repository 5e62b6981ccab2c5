"""InstanceTree (flux_journal/tree.py) on simulated hierarchies
(flux_journal/sim/nested.py): every event of every instance once, under
its path; --level; children that cannot be read reported once; one
child's end or loss leaving the others alone; no thread per child.

The truth each test compares with is each simulated instance's own
journal, read by a plain consumer to its sentinel after the fact
(every job's committed events; memo is committed, annotations are not
and are left out of both sides).
"""

import collections
import errno
import socket
import threading
import time

import pytest

from flux_journal import JournalConsumer
from flux_journal.sim import SimFlux, SimHost
from flux_journal.tree import (
    ROOT,
    InstanceTree,
    TreeEvent,
    Unreachable,
    child_path,
    reachable_uri,
)

# A ceiling on waits (not a timed assertion: a test fails only if
# nothing happens for this long).
_PATIENCE = 30.0


def journal_of(handle):
    """Counter of (jobid, name, timestamp) of *handle*'s whole journal."""
    consumer = JournalConsumer(handle, full=True, include_sentinel=True).start()
    seen = collections.Counter()
    while True:
        event = consumer.poll(_PATIENCE)
        if event is None or event.is_empty():
            break
        seen[(int(event.jobid), event.name, event.timestamp)] += 1
    consumer.stop()
    return seen


def by_instance(items):
    """{path: Counter of (jobid, name, timestamp)} of TreeEvents."""
    out = collections.defaultdict(collections.Counter)
    for item in items:
        if item.event.is_empty() or item.event.name == "annotations":
            continue
        out[item.instance][(int(item.event.jobid), item.event.name, item.event.timestamp)] += 1
    return out


def read_until(tree, done, sink):
    """Poll *tree* into *sink* until done() holds; fail after _PATIENCE."""
    deadline = time.monotonic() + _PATIENCE
    while not done():
        assert time.monotonic() < deadline, f"tree stuck; instances {tree.instances}"
        try:
            batch = tree.poll_batch(1000, 0.2)
        except TimeoutError:
            continue
        for item in batch:
            if item is None:
                return True
            sink.append(item)
    return False


def history_read(tree, sink):
    return read_until(tree, lambda: tree.history_complete, sink)


def two_levels():
    """A root with a plain job and a child; the child with a job and a
    grandchild; the grandchild with two jobs."""
    host = SimHost()
    host.root.inject_job("success")
    child = host.start_child(host.root)
    child.handle.inject_job("failed")
    grandchild = host.start_child(child.handle)
    grandchild.handle.inject_job("success")
    grandchild.handle.inject_job("timeout")
    return host, child, grandchild


def test_paths_and_uris():
    # 89 = 1 * 58 + 31: base58 digits "2" and "Y"; the prefix is the
    # broker's, whatever the locale
    assert child_path(ROOT, 89) == "/ƒ2Y"
    assert child_path("/ƒ2Y", 57) == "/ƒ2Y/ƒz"
    here = socket.gethostname()
    assert reachable_uri(f"ssh://{here}/tmp/flux-x/local-0") == "local:///tmp/flux-x/local-0"
    assert reachable_uri("ssh://elsewhere.invalid/tmp/s") == "ssh://elsewhere.invalid/tmp/s"
    assert reachable_uri("local:///run/flux/local") == "local:///run/flux/local"


def test_two_levels_history_and_live_each_event_once_under_its_path():
    host, child, grandchild = two_levels()
    reports = []
    tree = InstanceTree(host.root, connect=host.connect, on_unreachable=reports.append,
                        include_sentinel=True)
    got = []
    history_read(tree, got)
    cpath = child_path(ROOT, child.jobid)
    gpath = child_path(cpath, grandchild.jobid)
    assert set(tree.instances) == {ROOT, cpath, gpath}
    sentinels = [item.instance for item in got if item.event.is_empty()]
    assert sorted(sentinels) == sorted([ROOT, cpath, gpath])
    # Live: a new child of the root with a job, jobs everywhere, then
    # the grandchild finishes (its journal ends with ENODATA).
    second = host.start_child(host.root)
    second.handle.inject_job("success")
    host.root.inject_job("failed")
    child.handle.inject_job("success")
    grandchild.handle.inject_job("success")
    spath = child_path(ROOT, second.jobid)
    grandchild_truth = journal_of(grandchild.handle)
    host.finish_child(grandchild)
    truth = {
        ROOT: journal_of(host.root),
        cpath: journal_of(child.handle),
        spath: journal_of(second.handle),
        gpath: grandchild_truth,
    }
    read_until(tree, lambda: gpath not in tree.instances
               and all(by_instance(got)[path] == expected for path, expected in truth.items()),
               got)
    seen = by_instance(got)
    assert set(seen) == set(truth)
    assert max(max(counter.values()) for counter in seen.values()) == 1
    assert set(tree.instances) == {ROOT, cpath, spath}
    # A child ending normally is no report.
    assert reports == []
    tree.close()


def test_level_limits_the_depth():
    host, child, grandchild = two_levels()
    cpath = child_path(ROOT, child.jobid)
    for level, expected in ((0, {ROOT}), (1, {ROOT, cpath})):
        reports = []
        tree = InstanceTree(host.root, connect=host.connect, level=level,
                            on_unreachable=reports.append)
        got = []
        history_read(tree, got)
        assert set(tree.instances) == expected
        assert {item.instance for item in got} == expected
        # Not followed on purpose: no report.
        assert reports == []
        tree.close()
    with pytest.raises(ValueError):
        InstanceTree(host.root, connect=host.connect, level=-1)


def test_child_ended_before_read_unreachable_and_denied_reported_once():
    host = SimHost()
    ended = host.start_child(host.root)
    host.finish_child(ended)  # start, memo, finish all in the history
    gone = host.start_child(host.root)
    host.stop_child(gone)  # still running for its parent, socket gone
    denied = host.start_child(host.root, denied=True)
    readable = host.start_child(host.root)
    readable.handle.inject_job("success")
    reports = []
    tree = InstanceTree(host.root, connect=host.connect, on_unreachable=reports.append)
    got = []
    history_read(tree, got)
    # Every report is made once; a memo posted again (a broker may post
    # more) is no reason to try again.
    host.post_memo(denied)
    host.post_memo(gone)
    readable.handle.inject_job("failed")
    rpath = child_path(ROOT, readable.jobid)
    read_until(tree, lambda: by_instance(got)[rpath] == journal_of(readable.handle), got)
    kinds = {report.instance: report.kind for report in reports}
    assert kinds == {
        child_path(ROOT, ended.jobid): "ended",
        child_path(ROOT, gone.jobid): "unreachable",
        child_path(ROOT, denied.jobid): "denied",
    }
    assert len(reports) == 3
    assert all(isinstance(report, Unreachable) and report.reason for report in reports)
    denied_report = next(r for r in reports if r.kind == "denied")
    assert "EPERM" in denied_report.reason and denied_report.uri == denied.uri
    assert tree.unreachable == reports
    assert set(tree.instances) == {ROOT, rpath}
    tree.close()


def test_losing_one_child_leaves_the_others_alone():
    host = SimHost()
    lost = host.start_child(host.root)
    kept = host.start_child(host.root)
    reports = []
    tree = InstanceTree(host.root, connect=host.connect, on_unreachable=reports.append)
    got = []
    history_read(tree, got)
    kpath, lpath = child_path(ROOT, kept.jobid), child_path(ROOT, lost.jobid)
    assert set(tree.instances) == {ROOT, kpath, lpath}
    # Its broker dies under the stream: the connection is reset.
    lost.handle.shutdown(errno.ECONNRESET)
    kept.handle.inject_job("success")
    host.root.inject_job("success")
    read_until(tree, lambda: lpath not in tree.instances
               and by_instance(got)[kpath] == journal_of(kept.handle)
               and by_instance(got)[ROOT] == journal_of(host.root), got)
    assert [(r.instance, r.kind) for r in reports] == [(lpath, "lost")]
    assert "ECONNRESET" in reports[0].reason
    assert set(tree.instances) == {ROOT, kpath}
    tree.close()


def test_stop_with_a_child_gone_before_its_end_is_read():
    """A child instance ends (its broker gone, so it can no longer be
    asked to stop) and the tree is stopped before it reads that end, as
    when Ctrl-C comes just after a child finished: the stop goes through
    (it used to raise the child's EPIPE, which the command took for a
    broken stdout and exited 141) and the tree ends."""
    host = SimHost()
    gone = host.start_child(host.root)
    tree = InstanceTree(host.root, connect=host.connect)
    got = []
    history_read(tree, got)
    host.finish_child(gone)
    tree.stop()
    assert read_until(tree, lambda: False, got) is True
    assert tree.instances == []


def test_allow_delivers_only_the_wanted_names_yet_finds_children():
    host, child, grandchild = two_levels()
    tree = InstanceTree(host.root, connect=host.connect, allow={"submit", "clean"})
    got = []
    history_read(tree, got)
    gpath = child_path(child_path(ROOT, child.jobid), grandchild.jobid)
    assert gpath in tree.instances
    assert {item.event.name for item in got} == {"submit", "clean"}
    assert sum(1 for item in got if item.instance == gpath and item.event.name == "submit") == 2
    tree.close()


def test_the_tree_ends_when_every_stream_has_ended():
    host, child, grandchild = two_levels()
    tree = InstanceTree(host.root, connect=host.connect)
    got = []
    history_read(tree, got)
    tree.stop()
    assert read_until(tree, lambda: False, got) is True
    assert tree.instances == []
    assert tree.poll_batch(10, 0) == [None]


def test_iteration_and_the_root_ending():
    host, child, _ = two_levels()
    host.finish_child(child)  # its grandchild was never reachable after

    def shut_down_later():
        time.sleep(0.2)
        host.root.shutdown()

    tree = InstanceTree(host.root, connect=host.connect)
    threading.Thread(target=shut_down_later).start()
    items = list(tree)
    assert all(isinstance(item, TreeEvent) for item in items)
    host.root.restart()  # to read its journal as it was
    assert by_instance(items)[ROOT] == journal_of(host.root)


def test_a_hundred_children_need_no_thread_of_their_own():
    host = SimHost()
    children = [host.start_child(host.root) for _ in range(100)]
    for child in children:
        child.handle.inject_job("success")
    threads = threading.active_count()
    tree = InstanceTree(host.root, connect=host.connect)
    got = []
    history_read(tree, got)
    assert len(tree.instances) == 101
    assert threading.active_count() == threads
    for child in children[::10]:
        child.handle.inject_job("failed")
    paths = [child_path(ROOT, c.jobid) for c in children[::10]]
    read_until(tree, lambda: all(by_instance(got)[p] == journal_of(c.handle)
                                 for p, c in zip(paths, children[::10])), got)
    assert threading.active_count() == threads
    tree.close()


def test_sim_pollfd_is_readable_once_a_response_arrives():
    import select

    handle = SimFlux(jobs=None)
    consumer = JournalConsumer(handle).start()
    # Readable at first: responses came before the descriptor existed.
    fd = handle.pollfd()
    assert select.select([fd], [], [], 0)[0] == [fd]
    handle.pollevents()
    assert select.select([fd], [], [], 0)[0] == []
    handle.inject_job("success")
    assert select.select([fd], [], [], 0)[0] == [fd]
    consumer.stop()


def test_a_child_still_starting_is_read_once_its_broker_runs():
    host = SimHost()
    starting = host.start_child(host.root, up=False)  # memo before its job-manager
    never = host.start_child(host.root, up=False)
    reports = []
    tree = InstanceTree(host.root, connect=host.connect, on_unreachable=reports.append)
    got = []
    read_until(tree, lambda: tree.consumer(ROOT).history_complete, got)
    spath, npath = child_path(ROOT, starting.jobid), child_path(ROOT, never.jobid)
    assert set(tree.instances) == {ROOT, spath, npath}
    assert tree.consumer(spath) is None  # not asked yet: no ENOSYS
    starting.bring_up()
    starting.handle.inject_job("success")
    host.finish_child(never)  # shut down before it ever ran
    read_until(tree, lambda: npath not in tree.instances
               and by_instance(got)[spath] == journal_of(starting.handle), got)
    assert [(r.instance, r.kind) for r in reports] == [(npath, "ended")]
    assert "surpassed RUN" in reports[0].reason
    tree.close()


def test_a_resumed_root_still_finds_the_children_running():
    host, child, grandchild = two_levels()
    # where a first reader of the root stopped: after the whole history
    last = None
    for event in JournalConsumer(host.root, full=True).events(until_sentinel=True):
        last = event
    host.root.inject_job("success")
    got = []
    tree = InstanceTree(host.root, connect=host.connect, since=last.cursor)
    history_read(tree, got)
    cpath = child_path(ROOT, child.jobid)
    assert set(tree.instances) == {ROOT, cpath, child_path(cpath, grandchild.jobid)}
    # the root's own events: only those after the cursor
    assert by_instance(got)[ROOT] == journal_of(host.root) - journal_of_until(host.root, last)
    tree.close()


def journal_of_until(handle, last):
    """Counter of *handle*'s journal events up to *last* (included)."""
    seen = collections.Counter()
    for event in JournalConsumer(handle, full=True).events(until_sentinel=True):
        seen[(int(event.jobid), event.name, event.timestamp)] += 1
        if event.cursor == last.cursor:
            break
    return seen
