"""Following a whole Flux hierarchy: an instance and its child instances.

A Flux job can be a Flux instance of its own (``flux batch``, ``flux
alloc``), with a job-manager journal of its own.  flux-core recognises
such a job by two things (``flux jobs -R``, ``flux pstree`` and ``flux
top`` decide so): the job is running (it has a ``start`` event and no
``finish`` yet), and the child broker posted a ``memo`` event whose
context carries its ``uri``.  :class:`InstanceTree` follows an instance
and, as each child instance appears, connects to it, reads its whole
history and follows it live until its journal ends (a child that shuts
down ends its stream with ENODATA: its normal end); the same for the
children's children, down to *level*.  It yields the events of the whole
tree in one stream, each with its instance path::

    import flux
    from flux_journal.tree import InstanceTree

    with InstanceTree(flux.Flux(), level=2) as tree:
        for instance, event in tree:
            print(instance, event)

The path is ``"/"`` for the instance followed, ``"/<f58 id>"`` for a
child, ``"/<f58>/<f58>"`` for a grandchild (ids in F58 with the ``ƒ``
prefix, as a broker writes them into event contexts, whatever the
locale, so that a path never changes between runs).

Nothing is lost silently: a child that cannot be read (its broker is
already gone, it cannot be reached, its journal refuses us: the journal
is owner-only, so another user's instance answers EPERM, or its stream
fails) is reported once, as an :class:`Unreachable` passed to
*on_unreachable* and kept in :attr:`InstanceTree.unreachable`, and never
retried.  A child's end or failure never disturbs the other instances.

Resources: one connection (``connect(uri)``, ``flux.Flux(uri)`` by
default) and one consumer per instance being followed, dropped when its
stream ends, and no thread at all: the tree is driven by the thread that
calls :meth:`InstanceTree.poll_batch`.  It waits on every instance's
handle at once with one ``select()`` over their ``pollfd()`` descriptors
(libflux's flux_pollfd(), readable when a message arrives), and reads
only the instances that have something; every :data:`SWEEP_SECONDS` it
also looks at each instance without waiting, so a wakeup missed by the
edge-triggered descriptor costs at most that delay.  A hundred children
cost a hundred connections and descriptors, and one thread.  Memory per
instance: its consumer (which holds that instance's history until its
sentinel, like any consumer) and a small record per active job that may
become a child instance.  Events of different instances are not ordered
among themselves: each instance's events come in its own journal order.
"""

from __future__ import annotations

import errno
import select
import socket
import time
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple
from urllib.parse import urlsplit

from flux_journal.errors import PayloadError
from flux_journal.jobid import f58_utf8

__all__ = [
    "DISCOVERY_EVENTS",
    "ROOT",
    "SWEEP_SECONDS",
    "InstanceTree",
    "TreeEvent",
    "Unreachable",
    "child_path",
    "discovery_events",
    "is_resumed",
    "reachable_uri",
    "request_filters",
]

#: The path of the instance a tree follows.
ROOT = "/"
#: Longest wait before every instance is looked at again, even without a
#: wakeup from its descriptor (seconds).
SWEEP_SECONDS = 0.5
#: Job events the tree reads to recognise child instances: the journal
#: request always asks for them, and they are delivered only if the
#: caller's own *allow*/*deny* let them through.
DISCOVERY_EVENTS = frozenset(("start", "memo", "finish", "clean"))
# Events asked of each instance's consumer at a time.
_BATCH = 1000
# How long a read waits when the handle has a message (see _read()).
_MESSAGE_WAIT = 0.01
# flux_pollevents() bit: a message can be received.
_FLUX_POLLIN = 1


class TreeEvent(NamedTuple):
    """An event of the tree: the *instance* path and the journal *event*
    (a :class:`~flux_journal.job.JournalEvent`; the sentinel of each
    instance's history when the tree delivers sentinels)."""

    instance: str
    event: Any


class Unreachable(NamedTuple):
    """A child instance whose journal could not be read (or not to its
    end).

    *instance*: its path; *uri*: the URI its memo gave; *kind*: ``ended``
    (it had ended before it could be read), ``unreachable`` (no
    connection), ``denied`` (EPERM: another user's instance) or ``lost``
    (its stream failed after it was read); *reason*: one line saying
    what happened."""

    instance: str
    uri: str
    kind: str
    reason: str


def request_filters(allow: Optional[Any], deny: Optional[Any]) -> Tuple[Any, Any]:
    """The (allow, deny) name sets to ask a journal for when the caller
    wants *allow*/*deny* (None or empty: no filter): the tree needs
    :data:`DISCOVERY_EVENTS` to find children, and leaves out those
    the caller did not want."""
    return (frozenset(allow) | DISCOVERY_EVENTS if allow else None,
            frozenset(deny) - DISCOVERY_EVENTS if deny else None)


def child_path(parent: str, jobid: int) -> str:
    """The path of the child instance that is job *jobid* of the
    instance at *parent*."""
    prefix = "" if parent == ROOT else parent
    return f"{prefix}/{f58_utf8(jobid)}"


def _this_host(host: str) -> bool:
    names = {socket.gethostname(), socket.getfqdn(), "localhost"}
    names |= {name.split(".", 1)[0] for name in names}
    return host in names or host.split(".", 1)[0] in names


def reachable_uri(uri: str) -> str:
    """A child instance's *uri* (from its memo) in a form this process
    can open: a broker advertises ``ssh://HOST/PATH``; on this host that
    is ``local:///PATH`` (the socket itself), elsewhere it stays an
    ``ssh://`` URI (libflux's ssh connector).  Other URIs are returned
    as they are."""
    parts = urlsplit(uri)
    if parts.scheme == "ssh" and _this_host(parts.hostname or ""):
        return f"local://{parts.path}"
    return uri


class _JobWatch:
    """What the tree knows of one job that may be a child instance."""

    __slots__ = ("running", "finished", "uri")

    def __init__(self) -> None:
        self.running = False
        self.finished = False
        self.uri: Optional[str] = None


class _Instance:
    """One instance of the tree: its consumer and its jobs."""

    __slots__ = ("path", "depth", "uri", "reader", "jobs", "opened", "history_done")

    def __init__(self, path: str, depth: int, uri: str, reader: Any) -> None:
        self.path = path
        self.depth = depth
        self.uri = uri
        self.reader = reader  # see _ConsumerReader
        self.jobs: Dict[int, _JobWatch] = {}
        self.opened: set = set()  # job ids followed (or reported) as children
        self.history_done = False


def _pollfd(handle: Any) -> Optional[int]:
    try:
        fd = handle.pollfd()
    except (AttributeError, OSError):
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None


def is_resumed(since: Any) -> bool:
    """Whether a stream from *since* (a timestamp or a cursor) starts
    after the journal's beginning, and so misses the ``start`` and
    ``memo`` of children already running (see :func:`discovery_events`)."""
    return isinstance(since, str) or bool(since)


def discovery_events(handle: Any, timeout: float = 60.0) -> List[Any]:
    """The :data:`DISCOVERY_EVENTS` of the jobs active in the instance
    of *handle*, read to the sentinel of a journal request of their own
    (then cancelled): what a stream resumed after a cursor misses of the
    children already running (their ``start`` and ``memo`` lie before
    it).  Give them to :class:`InstanceTree` (*discovered*) before its
    root's stream is asked for: two journal streams waited on in turn on
    one handle were seen to starve one another on flux-core 0.88.

    Raises OSError (the request failed; TimeoutError after *timeout*
    seconds without its sentinel)."""
    consumer = _discovery_consumer(handle)
    events: List[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while not consumer.history_complete:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(errno.ETIMEDOUT, "no end of the active jobs' history")
            try:
                # Without full history the sentinel is not delivered: a
                # wait for more would last until the next live event.
                batch = consumer.poll_batch(_BATCH, min(left, _MESSAGE_WAIT))
            except TimeoutError:
                continue
            events.extend(e for e in batch if e is not None and not e.is_empty())
            if batch and batch[-1] is None:
                break
    finally:
        consumer.stop()
    return events


def _discovery_consumer(handle: Any) -> Any:
    """A started consumer of the active jobs' :data:`DISCOVERY_EVENTS`
    on *handle*, to its sentinel."""
    from flux_journal.job import JournalConsumer  # pylint: disable=import-outside-toplevel

    return JournalConsumer(handle, full=False, include_sentinel=True,
                           allow=sorted(DISCOVERY_EVENTS)).start()


def _add_stats(total: Dict[str, int], consumer: Any) -> None:
    if consumer is None:
        return
    for key, value in consumer.stats.items():
        # peaks do not add up; everything else counts
        total[key] = max(total.get(key, 0), value) if key.startswith("peak") else (
            total.get(key, 0) + value)


def _has_message(handle: Any) -> bool:
    """Whether *handle* has a message to handle (flux_pollevents();
    this also consumes its descriptor's edge, so that it fires again)."""
    try:
        return bool(handle.pollevents() & _FLUX_POLLIN)
    except (AttributeError, OSError, TypeError):
        return False


def _describe(exc: BaseException) -> str:
    code = getattr(exc, "errno", None)
    name = errno.errorcode.get(code, "") if isinstance(code, int) else ""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"{name}: {text}" if name and not text.startswith(name) else text


class InstanceTree:
    """Follow the instance of *handle* and its child instances.

    Args:
        handle: a ``flux.Flux`` handle (or a simulated one) of the
            instance to follow, the tree's root ``"/"``
        level: how many levels of children to follow (0: the root
            only, 1: its children, ...; None: all)
        connect: ``connect(uri)`` opens a handle to a child instance
            (default ``flux.Flux``); *uri* is already made reachable
            (:func:`reachable_uri`)
        on_unreachable: called once with an :class:`Unreachable` for
            each child that cannot be read (or not to its end)
        since, full: where the root's stream starts and whether its
            history includes inactive jobs (children are always read
            from their beginning, with their whole history, unless
            *resume* says otherwise)
        allow, deny: event names delivered (as the consumer's); the
            journal is asked for :data:`DISCOVERY_EVENTS` too, and those
            are left out here unless wanted
        include_sentinel: deliver each instance's sentinel (the end of
            its history) as a :class:`TreeEvent`
        cursor_window: given to every consumer (see
            ``JournalConsumer``), to resume from ``consumer.cursor``
        resume: ``resume(path)`` returns where a child's stream starts
            (a cursor or timestamp), e.g. from an archive; default 0.0
        root: a reader of the root's stream to use instead of a
            consumer on *handle*: an object with ``poll(timeout)``
            (a list of events, ``[]`` if none came in time, ending with
            None at the end of the stream), ``handle`` and ``consumer``
            (the current ones), ``progress()`` (responses taken so far)
            and ``stop()``; the command line passes one over its
            reconnecting follower
        discovered: the root's active jobs' :data:`DISCOVERY_EVENTS`
            (:func:`discovery_events`), when its stream misses those of
            jobs still running (*root* given, resuming after a cursor);
            with *handle* and a *since* other than 0 the tree reads them
            itself, before the root's stream is asked for.  Children
            resumed by *resume* are asked the same way, each before its
            own stream.

    A child is read once its broker is running: its memo comes while it
    is still starting, so the tree first asks its ``state-machine.wait``
    (answered at the broker's RUN state), then starts the journal
    request.

    Children get consumers of flux-journal's
    :class:`~flux_journal.job.JournalConsumer`.
    """

    def __init__(
        self,
        handle: Any,
        *,
        level: Optional[int] = None,
        connect: Optional[Callable[[str], Any]] = None,
        on_unreachable: Optional[Callable[[Unreachable], None]] = None,
        since: Any = 0.0,
        full: bool = True,
        allow: Optional[Any] = None,
        deny: Optional[Any] = None,
        include_sentinel: bool = False,
        cursor_window: Optional[float] = None,
        resume: Optional[Callable[[str], Any]] = None,
        root: Any = None,
        discovered: Optional[List[Any]] = None,
    ) -> None:
        if level is not None and level < 0:
            raise ValueError("level must be 0 or more (or None: every level)")
        self.level = level
        self._connect = connect
        self._on_unreachable = on_unreachable
        self._allow = frozenset(allow) if allow is not None else None
        self._deny = frozenset(deny) if deny is not None else None
        self._include_sentinel = include_sentinel
        self._cursor_window = cursor_window
        self._resume = resume
        #: Children that could not be read, in the order reported.
        self.unreachable: List[Unreachable] = []
        self._request_allow, self._request_deny = request_filters(self._allow, self._deny)
        if root is None and discovered is None and is_resumed(since):
            discovered = discovery_events(handle)
        if root is None:
            root = _ConsumerReader(
                self._consumer(handle, since=since, full=full, include=include_sentinel)
            )
        self._instances: Dict[str, _Instance] = {}
        self._root = _Instance(ROOT, 0, "", root)
        self._instances[ROOT] = self._root
        self._ready: set = set(self._instances)  # paths to read without waiting
        self._next_sweep = 0.0
        self._pending_error: Optional[BaseException] = None
        # of the instances forgotten, and the events the tree left out
        self._ended_stats: Dict[str, int] = {}
        self._cursors: Dict[str, Any] = {}  # see take_cursors()
        self._ended = False
        self._stopped = False
        if discovered:
            self._found(self._root, discovered)

    def add_discovered(self, events: List[Any]) -> None:
        """Take the root's discovery events (:func:`discovery_events`)
        read after the tree was made, when its root's first connection
        came late: the children they show running are opened."""
        self._found(self._root, events)

    # -- the stream ----------------------------------------------------------

    @property
    def instances(self) -> List[str]:
        """Paths of the instances being followed now."""
        return list(self._instances)

    @property
    def history_complete(self) -> bool:
        """True when every instance followed now has delivered its
        history (the root's included)."""
        return all(node.history_done for node in self._instances.values())

    @property
    def stats(self) -> Dict[str, int]:
        """The consumers' counters (see ``JournalConsumer.stats``) summed
        over every instance read so far, those that ended included
        (``filtered_name`` counts the events the tree read to find
        children and left out too)."""
        total = dict(self._ended_stats)
        for node in self._instances.values():
            _add_stats(total, node.reader.consumer)
        return total

    def take_cursors(self) -> Dict[str, Any]:
        """{path: cursor} of the instances that delivered events since
        the last call: each one's consumer's cursor once the events
        returned so far were taken (with *cursor_window* only), kept
        even for a stream that has ended since, so that a caller who
        stores every event returned can resume each instance exactly."""
        cursors, self._cursors = self._cursors, {}
        return cursors

    def consumer(self, path: str = ROOT) -> Any:
        """The consumer reading the instance at *path* now (KeyError if
        it is not followed)."""
        return self._instances[path].reader.consumer

    def poll_batch(self, max_events: int = 1000, timeout: float = -1.0) -> List[Optional[TreeEvent]]:
        """Up to about *max_events* :class:`TreeEvent` s, from whichever
        instances have some, waiting up to *timeout* seconds (negative:
        no limit) for the first.  The list ends with None once every
        stream has ended (the root's and every child's).

        Raises:
            TimeoutError: nothing came within *timeout*
            OSError, PayloadError: as the root's consumer raises them,
                after the events received before were returned
        """
        if self._pending_error is not None:
            error, self._pending_error = self._pending_error, None
            raise error
        if self._ended:
            return [None]
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        while True:
            out = self._read(max_events)
            if out:
                return out
            if self._pending_error is not None:
                error, self._pending_error = self._pending_error, None
                raise error
            if not self._instances:
                self._ended = True
                return [None]
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise TimeoutError(errno.ETIMEDOUT, "no event of the tree in time")
            wait = SWEEP_SECONDS if deadline is None else min(SWEEP_SECONDS, deadline - now)
            self._wait(wait)

    def __iter__(self) -> Iterator[TreeEvent]:
        """Every :class:`TreeEvent` until every stream has ended."""
        while True:
            for item in self.poll_batch():
                if item is None:
                    return
                yield item

    def stop(self) -> None:
        """Ask every stream to end; the tree ends once they have."""
        self._stopped = True
        for node in list(self._instances.values()):
            try:
                node.reader.stop()
            except RuntimeError:
                pass
            except OSError:
                # A child whose broker is gone (its end not read yet)
                # cannot be asked: its stream is over all the same.  The
                # root's connection is the caller's.
                if node is self._root:
                    raise
                self._forget(node)

    def close(self) -> None:
        """Stop every stream and read them to their end (briefly)."""
        self.stop()
        deadline = time.monotonic() + 2.0
        while self._instances and time.monotonic() < deadline:
            try:
                if self.poll_batch(_BATCH, max(0.0, deadline - time.monotonic()))[-1] is None:
                    break
            except Exception:  # pylint: disable=broad-except
                # what comes after a stop is not read: nor are its errors
                break

    def __enter__(self) -> "InstanceTree":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------

    def _read(self, max_events: int) -> List[Optional[TreeEvent]]:
        now = time.monotonic()
        if now >= self._next_sweep:
            self._ready = set(self._instances)
            self._next_sweep = now + SWEEP_SECONDS
        out: List[Optional[TreeEvent]] = []
        while self._ready and len(out) < max_events:
            path = self._ready.pop()
            node = self._instances.get(path)
            if node is None:
                continue
            reader = node.reader
            # libflux handles a message only while a reactor runs: a
            # wait of 0 takes only what is already fulfilled, so when
            # the handle has a message, wait a little (returning as soon
            # as it is handled).
            pending = _has_message(reader.handle)
            progress = reader.progress() if pending else 0
            try:
                items = reader.poll(_MESSAGE_WAIT if pending else 0)
            except Exception as exc:  # pylint: disable=broad-except
                self._failed(node, exc)
                if self._pending_error is not None:
                    break
                continue
            if items or (pending and reader.progress() > progress):
                # More may be waiting than one batch held (or, during
                # history, than one message brought).
                self._ready.add(path)
            self._take(node, items, out)
        return out

    def _take(self, node: _Instance, items: List[Any], out: List[Optional[TreeEvent]]) -> None:
        path = node.path
        candidates = []
        cleaned = []
        for event in items:
            if event is None:
                self._end(node)
                break
            if event.is_empty():
                node.history_done = True
                if self._include_sentinel:
                    out.append(TreeEvent(path, event))
                continue
            jobid = event.jobid
            if jobid is not None and event.name in DISCOVERY_EVENTS:
                if self._watch(node, int(jobid), event):
                    candidates.append(int(jobid))
                elif event.name == "clean":
                    cleaned.append(int(jobid))
            if self._wanted(event.name):
                out.append(TreeEvent(path, event))
            else:
                self._ended_stats["filtered_name"] = self._ended_stats.get("filtered_name", 0) + 1
        consumer = node.reader.consumer
        if consumer is not None:
            if consumer.history_complete:
                node.history_done = True
            if items and consumer.cursor_window is not None:
                self._cursors[path] = consumer.cursor
        # Decided once the batch is through: a child whose job finished
        # within it is already gone.
        for jobid in candidates:
            self._consider(node, jobid)
        # Forgotten only now, so that a child whose whole life is in the
        # batch is still reported; the record of active jobs stays small.
        for jobid in cleaned:
            node.jobs.pop(jobid, None)
            node.opened.discard(jobid)

    def _found(self, node: _Instance, items: List[Any]) -> bool:
        """Take the discovery events *items* of *node*'s active jobs;
        return whether their history is over."""
        candidates = []
        done = False
        for event in items:
            if event is None or event.is_empty():
                done = True
                break
            if self._watch(node, int(event.jobid), event):
                candidates.append(int(event.jobid))
        for jobid in candidates:
            self._consider(node, jobid)
        return done

    def _wanted(self, name: str) -> bool:
        if self._allow is not None and name not in self._allow:
            return False
        return self._deny is None or name not in self._deny

    def _watch(self, node: _Instance, jobid: int, event: Any) -> bool:
        """Note a discovery event; return whether the job may now be a
        child instance to open."""
        name = event.name
        job = node.jobs.get(jobid)
        if name == "clean":
            return False
        if job is None:
            job = node.jobs[jobid] = _JobWatch()
        if name == "start":
            job.running = True
        elif name == "finish":
            job.running = False
            job.finished = True
        elif name == "memo":
            uri = event.context.get("uri") if isinstance(event.context, dict) else None
            if isinstance(uri, str) and uri:
                job.uri = uri
        return job.running and job.uri is not None and jobid not in node.opened

    def _consider(self, node: _Instance, jobid: int) -> None:
        job = node.jobs.get(jobid)
        if job is None or job.uri is None or jobid in node.opened:
            return
        if self.level is not None and node.depth >= self.level:
            return
        node.opened.add(jobid)
        path = child_path(node.path, jobid)
        if job.finished or self._stopped:
            if job.finished:
                self._report(path, job.uri, "ended", "it had ended before it could be read")
            return
        self._open(node, path, job.uri)

    # -- children ----------------------------------------------------------------

    def _open(self, parent: _Instance, path: str, uri: str) -> None:
        target = reachable_uri(uri)
        try:
            handle = self._open_handle(target)
        except OSError as exc:
            kind = "denied" if isinstance(exc, PermissionError) else "unreachable"
            self._report(path, uri, kind, f"cannot connect to {target}: {_describe(exc)}")
            return
        since = self._resume(path) if self._resume is not None else 0.0

        def start(child: Any) -> Any:
            return self._consumer(child, since=since, full=True, include=True)

        def found(items: List[Any]) -> bool:
            return self._found(node, items)

        try:
            reader = _ChildReader(handle, start, found if is_resumed(since) else None)
        except OSError as exc:
            self._report(path, uri, "unreachable", f"cannot ask it: {_describe(exc)}")
            return
        node = self._instances[path] = _Instance(path, parent.depth + 1, uri, reader)
        self._ready.add(path)

    def _open_handle(self, uri: str) -> Any:
        if self._connect is not None:
            return self._connect(uri)
        import flux  # pylint: disable=import-outside-toplevel

        return flux.Flux(uri)

    def _consumer(self, handle: Any, *, since: Any, full: bool, include: bool) -> Any:
        # pylint: disable-next=import-outside-toplevel
        from flux_journal.job import JournalConsumer

        return JournalConsumer(
            handle,
            full=full,
            since=since,
            include_sentinel=include,
            allow=self._request_allow,
            deny=self._request_deny,
            cursor_window=self._cursor_window,
        ).start()

    def _forget(self, node: _Instance) -> None:
        """Stop following *node* (its children go on)."""
        if self._instances.pop(node.path, None) is not None:
            _add_stats(self._ended_stats, node.reader.consumer)
        self._ready.discard(node.path)

    def _end(self, node: _Instance) -> None:
        """*node*'s stream ended."""
        self._forget(node)
        if node is not self._root and not node.history_done and not self._stopped:
            # Ended (ENODATA) before its history was through: the rest of
            # it cannot be read any more.
            self._report(node.path, node.uri, "ended",
                         "its journal ended before its history was read")

    def _failed(self, node: _Instance, exc: BaseException) -> None:
        if isinstance(exc, _Ended):
            self._forget(node)
            self._report(node.path, node.uri, "ended",
                         f"it ended before it could be read: {_describe(exc.exc)}")
            return
        if node is self._root or isinstance(exc, PayloadError) or not isinstance(exc, OSError):
            # The caller's to handle, after the events received before:
            # the root's errors, and a malformed response of any instance
            # (dropped; its stream goes on).
            self._pending_error = exc
            if isinstance(exc, PayloadError):
                self._ready.add(node.path)
            return
        self._forget(node)
        if isinstance(exc, PermissionError):
            kind, reason = "denied", f"its journal refused us: {_describe(exc)}"
        elif not node.history_done and getattr(exc, "errno", None) in _GONE:
            kind, reason = "ended", f"it ended before it could be read: {_describe(exc)}"
        else:
            kind, reason = "lost", f"its journal failed: {_describe(exc)}"
        self._report(node.path, node.uri, kind, reason)

    def _report(self, path: str, uri: str, kind: str, reason: str) -> None:
        record = Unreachable(path, uri, kind, reason)
        self.unreachable.append(record)
        if self._on_unreachable is not None:
            self._on_unreachable(record)

    # -- waiting ---------------------------------------------------------------

    def _wait(self, seconds: float) -> None:
        """Wait up to *seconds* for a message on any instance's handle;
        mark those that have one as ready."""
        fds = {}
        for path, node in self._instances.items():
            # The root's handle changes when the command line reconnects.
            fd = _pollfd(node.reader.handle)
            if fd is None:
                # A handle without a descriptor can only be looked at: do
                # so again soon, without spinning.
                seconds = min(seconds, 0.05)
                self._ready.add(path)
            else:
                fds[fd] = path
        if not fds:
            time.sleep(max(0.0, seconds))
            return
        try:
            readable, _, _ = select.select(list(fds), [], [], max(0.0, seconds))
        except (OSError, ValueError):
            readable = list(fds)
        # _read() asks each of them for its events (flux_pollevents(),
        # which also lets the descriptor fire again).
        self._ready.update(fds[fd] for fd in readable)


# Errors with which a child's connection or stream fails when its broker
# has already gone away.
_GONE = frozenset(
    (errno.ECONNREFUSED, errno.ECONNRESET, errno.ENOENT, errno.EPIPE, errno.EPROTO, errno.ENOSYS)
)


class _ConsumerReader:
    """How the tree reads one instance: ``poll(timeout)`` returns a list
    of events ([] if none came in time, ending with None at the end of
    the stream); ``handle`` is the handle it reads from, ``consumer``
    its consumer (None until there is one), ``progress()`` grows with
    every response taken, ``stop()`` asks the stream to end.  This one
    reads a started consumer."""

    __slots__ = ("consumer",)

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer

    @property
    def handle(self) -> Any:
        """The handle the consumer reads from."""
        return self.consumer.handle

    def progress(self) -> int:
        """Responses taken so far."""
        return self.consumer.stats.get("responses", 0)

    def poll(self, timeout: float) -> List[Any]:
        """The events deliverable within *timeout* seconds."""
        try:
            return self.consumer.poll_batch(_BATCH, timeout)
        except TimeoutError:
            return []

    def stop(self) -> None:
        """Ask the stream to end."""
        self.consumer.stop()


class _ChildReader(_ConsumerReader):
    """A child instance's journal, asked for once its broker is running.

    A child broker posts its memo (its URI) while it is still starting:
    its job-manager may not be loaded yet (a journal request would fail
    with ENOSYS).  So the reader first asks the broker's
    ``state-machine.wait``, which answers once the broker reaches its
    RUN state (ENOENT once it is past it: shutting down), then starts
    the consumer with ``start(handle)``.  A child resumed after a cursor
    (*found* given) is first asked for its active jobs' discovery events
    (see :func:`discovery_events`), which go to ``found(items)`` (it says when
    their history is over), and only then for its journal: one request
    at a time on its handle (two streams waited on in turn on one handle
    were seen to starve one another on flux-core 0.88).
    """

    __slots__ = ("_handle", "_start", "_running", "_stopped", "_found", "_finder", "_steps")

    def __init__(self, handle: Any, start: Callable[[Any], Any],
                 found: Optional[Callable[[List[Any]], bool]] = None) -> None:
        super().__init__(None)
        self._handle = handle
        self._start = start
        self._found = found
        self._finder: Any = None  # the discovery request's consumer
        self._steps = 0  # answers taken before the journal's consumer
        self._stopped = False
        self._running = handle.rpc("state-machine.wait")

    @property
    def handle(self) -> Any:
        """The child's handle."""
        return self._handle

    def progress(self) -> int:
        """Answers and responses taken so far."""
        steps = self._steps
        if self._finder is not None:
            steps += self._finder.stats.get("responses", 0)
        return steps if self.consumer is None else steps + super().progress()

    def poll(self, timeout: float) -> List[Any]:
        """The child's events deliverable within *timeout* seconds."""
        if self.consumer is None:
            if self._stopped:
                return [None]
            if self._running is not None:
                if not self._broker_running(timeout):
                    return []
                timeout = 0
            if self._finder is not None and not self._discovered(timeout):
                return []
            self.consumer = self._start(self._handle)
            timeout = 0
        return super().poll(timeout)

    def _broker_running(self, timeout: float) -> bool:
        """Whether the broker answered state-machine.wait (then the
        discovery request is sent, if one is to be)."""
        try:
            self._running.wait_for(timeout)
        except TimeoutError:
            return False
        try:
            self._running.get()
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                raise _Ended(exc) from exc
            if exc.errno != errno.ENOSYS:  # no such service: just ask
                raise
        self._running = None
        self._steps += 1
        if self._found is not None:
            self._finder = _discovery_consumer(self._handle)
        return True

    def _discovered(self, timeout: float) -> bool:
        """Whether the discovery request's history is over."""
        finder = self._finder
        try:
            items = finder.poll_batch(_BATCH, timeout)
        except TimeoutError:
            items = []
        assert self._found is not None
        if not (self._found(items) or finder.history_complete):
            return False
        self._steps += 1 + finder.stats.get("responses", 0)
        finder.stop()
        self._finder = None
        return True

    def stop(self) -> None:
        """Ask the stream to end (or not to start)."""
        if self.consumer is not None:
            self.consumer.stop()
        if self._finder is not None:
            self._finder.stop()
            self._finder = None
        self._stopped = True


class _Ended(Exception):
    """A child broker past its RUN state: it ended before it was read."""

    def __init__(self, exc: OSError) -> None:
        super().__init__(exc)
        self.exc = exc

