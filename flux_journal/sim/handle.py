"""A fake Flux handle: RPC futures, a reactor and timer watchers.

:class:`SimFlux` offers the part of ``flux.Flux`` (and of the
``flux.rpc.RPC`` futures it returns) that journal consumers use, with
the same call signatures and the same observable behaviour: streaming
futures queue their responses and hand out one at a time until
``reset()``, errors come back as ``OSError`` subclasses chosen by errno,
``then()`` callbacks run from ``reactor_run()`` and an exception raised
by a callback stops the reactor and propagates out of it.

Requests are answered by simulated services (see :mod:`.services` and
:mod:`.replay`) synchronously inside :meth:`SimFlux.rpc`; the backlog of
a journal is therefore already queued when ``rpc()`` returns, exactly as
if the broker had sent it before the consumer looked.  Live events are
pushed later, possibly from another thread, so every piece of shared
state sits behind one ``threading.Condition`` whose ``notify_all`` wakes
blocked ``wait_for()`` calls and the reactor.
"""

import errno
import heapq
import itertools
import json
import os
import threading
import time
import weakref
from collections import deque

from flux_journal._flux import (
    FLUX_NODEID_ANY,
    FLUX_RPC_NORESPONSE,
    FLUX_RPC_STREAMING,
)
from flux_journal.sim.encode import dumps
from flux_journal.sim.errors import SimError
from flux_journal.sim.replay import ReplayService
from flux_journal.sim.services import JobJournalService, ResourceJournalService
from flux_journal.sim.workload import JobFactory, ResourceWorkload

__all__ = [
    "SimFlux",
    "SimFuture",
    "SimRequest",
    "SimTimerWatcher",
    "FLUX_REACTOR_NOWAIT",
    "FLUX_REACTOR_ONCE",
]

# flux_reactor_run() flags (flux/core/reactor.h); _flux.py only carries
# the RPC constants, and only the simulator needs these.
FLUX_REACTOR_NOWAIT = 1
FLUX_REACTOR_ONCE = 2

# flux_rpc() rejects any other flag bits with EINVAL.
_VALID_RPC_FLAGS = FLUX_RPC_NORESPONSE | FLUX_RPC_STREAMING


def _wrapper_error(errnum):
    """The OSError flux's cffi wrapper raises for a failed C call.

    When a future has no error string of its own (a wait that timed out,
    say), flux-core's Python bindings format the message as
    ``"<ERRNAME>: <strerror>"``; reproduce that so messages match.
    """
    name = errno.errorcode.get(errnum, f"Errno{errnum}")
    return OSError(errnum, f"{name}: {os.strerror(errnum)}")


class _FuturePimpl:
    """Stand-in for the cffi wrapper behind ``future.pimpl``."""

    __slots__ = ("_matchtag",)

    def __init__(self, matchtag):
        self._matchtag = matchtag

    def get_matchtag(self):
        """Return the RPC's matchtag (0, FLUX_MATCHTAG_NONE, for NORESPONSE)."""
        return self._matchtag


# States of a then-callback relative to the future's current response.
_IDLE = 0  # nothing to deliver (no response, or waiting for reset())
_QUEUED = 1  # in the handle's ready queue, callback due
_CALLED = 2  # callback ran for the current response; a reset() re-arms


class SimFuture:
    """The future of one RPC, behaving like ``flux.rpc.RPC``.

    It holds a queue of responses; the first one is the *current*
    response, which ``get_str()``/``get()`` return (or raise, if it is an
    error) until ``reset()`` moves on to the next.  A non-streaming RPC
    gets at most one response.  An error response ends the stream and
    stays current for good: later ``get()``/``wait_for()`` calls raise it
    again rather than blocking.
    """

    def __init__(self, handle, topic, matchtag, flags):
        self._handle = handle
        self.topic = topic
        self.flags = flags
        self.pimpl = _FuturePimpl(matchtag)
        self._q = deque()
        # False once no further response can arrive.
        self._open = True
        self.then_cb = None
        self.then_args = ()
        self.then_kwargs = {}
        self.stopped = False
        self._cb_state = _IDLE
        self._error_delivered = False
        self._then_timeout = -1.0
        self._then_deadline = None

    # -- service side (called with the handle's lock held) -------------

    def _push(self, item):
        if not self._open:
            return
        self._q.append(item)
        if isinstance(item, SimError) or not (self.flags & FLUX_RPC_STREAMING):
            self._open = False
        self._handle._arrived(self)

    def _push_many(self, items):
        if not self._open or not items:
            return
        if not (self.flags & FLUX_RPC_STREAMING):
            self._push(items[0])
            return
        # An error response ends the stream, so it can only come last
        # (callers cut what follows it): checking the last item keeps a
        # million-response backlog from being scanned.
        if type(items[-1]) is SimError:
            self._open = False
        self._q.extend(items)
        self._handle._arrived(self)

    # -- consumer side ---------------------------------------------------

    @property
    def is_streaming(self):
        """True if the request was sent with FLUX_RPC_STREAMING."""
        return bool(self.flags & FLUX_RPC_STREAMING)

    def get_flux(self):
        """Return the :class:`SimFlux` handle this future belongs to."""
        return self._handle

    def get_matchtag(self):
        """Shortcut for ``pimpl.get_matchtag()``."""
        return self.pimpl.get_matchtag()

    def is_ready(self):
        """True if a response (or error) is current."""
        return bool(self._q)

    def stop(self):
        """Stop calling the then-callback, like ``flux.Future.stop()``."""
        with self._handle._cond:
            self.stopped = True
            self._handle._cond.notify_all()

    def wait_for(self, timeout=-1.0):
        """Block until a response is current; return self.

        A negative *timeout* waits forever; otherwise TimeoutError
        (OSError ETIMEDOUT) is raised after *timeout* seconds.  Waiting on
        a future that can never be fulfilled (its stream is over and
        nothing is queued) raises OSError EDEADLK instead of hanging.
        """
        if self._q:
            return self
        self._wait(timeout)
        return self

    def get_str(self):
        """Return the current response payload as a str (None if empty).

        Blocks until a response arrives.  An error response raises
        OSError(errno, message), which Python turns into the matching
        subclass (PermissionError for EPERM, FileNotFoundError for
        ENOENT, ...).  A payload that is not valid UTF-8 raises
        UnicodeDecodeError, as in flux.
        """
        queue = self._q
        if not queue:
            self._wait(-1.0)
        item = queue[0]
        if type(item) is str:
            return item
        if item is None:
            return None
        if type(item) is SimError:
            raise item.exception()
        return item.decode("utf-8")

    def get(self):
        """Return the current response decoded from JSON (a new object each call)."""
        payload = self.get_str()
        if payload is None:
            return None
        return json.loads(payload)

    def error_string(self):
        """The current error's message, or None if the current response is not an error."""
        if self._q and type(self._q[0]) is SimError:
            return self._q[0].message
        return None

    def reset(self):
        """Move on to the next response of a streaming RPC.

        A terminal error is never dropped: it stays current, so the
        caller keeps seeing the end of the stream.
        """
        queue = self._q
        if self.then_cb is None:
            if queue:
                head = queue[0]
                if type(head) is not SimError or not head.terminal:
                    queue.popleft()
            return
        with self._handle._cond:
            self._advance()
            if self._cb_state == _CALLED:
                self._cb_state = _IDLE
            if self._then_timeout >= 0:
                self._then_deadline = time.monotonic() + self._then_timeout
            self._handle._rearm(self)

    def then(self, callback, *args, timeout=-1.0, **kwargs):
        """Register *callback* to run from the reactor for each response.

        Called as ``callback(future, *args, **kwargs)``; the callback is
        expected to ``reset()`` the future to receive the next response.
        A second registration raises OSError EEXIST, as flux does.  With
        *timeout* >= 0 the callback sees an ETIMEDOUT error if no
        response comes within that many seconds (cleared by reset()).
        Returns self.
        """
        if self.then_cb is not None:
            raise OSError(errno.EEXIST, "then callback already exists for this future")
        if callback is None:
            raise ValueError("Callback cannot be None")
        with self._handle._cond:
            self.then_cb = callback
            self.then_args = args
            self.then_kwargs = kwargs
            self._then_timeout = float(timeout)
            if timeout >= 0:
                self._then_deadline = time.monotonic() + float(timeout)
            self._handle._then_futures.add(self)
            self._handle._rearm(self)
        return self

    # -- internals -------------------------------------------------------

    def _advance(self):
        """Drop the current response unless it is a terminal error."""
        queue = self._q
        if queue:
            head = queue[0]
            if type(head) is SimError and head.terminal:
                if self._cb_state == _CALLED:
                    self._error_delivered = True
                return
            queue.popleft()

    def _wait(self, timeout):
        cond = self._handle._cond
        deadline = None if timeout < 0 else time.monotonic() + timeout
        with cond:
            while not self._q:
                if not self._open:
                    raise _wrapper_error(errno.EDEADLK)
                if deadline is None:
                    cond.wait()
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _wrapper_error(errno.ETIMEDOUT)
                cond.wait(remaining)

    def _active(self):
        """True while this then-future can still make the reactor do something."""
        if self.stopped or self.then_cb is None:
            return False
        if self._cb_state == _QUEUED:
            return True
        return self._open

    def __repr__(self):
        return (
            f"<SimFuture {self.topic} matchtag={self.pimpl.get_matchtag()}"
            f" queued={len(self._q)} open={self._open}>"
        )


class SimRequest:
    """A request as a simulated service sees it.

    Services answer through :meth:`respond`, :meth:`respond_many` and
    :meth:`respond_error`; a request sent with FLUX_RPC_NORESPONSE gets
    nothing back, whatever the service does, as with a real broker.
    """

    __slots__ = ("handle", "topic", "payload", "flags", "nodeid", "matchtag", "_future")

    def __init__(self, handle, future, topic, payload, flags, nodeid):
        self.handle = handle
        self._future = future
        self.topic = topic
        self.payload = payload
        self.flags = flags
        self.nodeid = nodeid
        self.matchtag = future.pimpl.get_matchtag()

    @property
    def streaming(self):
        """True if the sender set FLUX_RPC_STREAMING."""
        return bool(self.flags & FLUX_RPC_STREAMING)

    @property
    def noresponse(self):
        """True if the sender set FLUX_RPC_NORESPONSE."""
        return bool(self.flags & FLUX_RPC_NORESPONSE)

    @property
    def is_open(self):
        """False once the stream has ended (error sent) or the single response went out."""
        return self._future._open

    def unpack(self):
        """Decode the payload as a JSON object, like ``flux_request_unpack``.

        Raises :class:`SimError` EPROTO (no message) if there is no
        payload or it is not a JSON object.
        """
        if self.payload is None:
            raise SimError(errno.EPROTO)
        try:
            obj = json.loads(self.payload)
        except ValueError:
            raise SimError(errno.EPROTO) from None
        if not isinstance(obj, dict):
            raise SimError(errno.EPROTO)
        return obj

    def respond(self, payload):
        """Send one response: a str (sent as is), bytes, None, or a JSON-able object."""
        if self.noresponse:
            return
        self._future._push(_as_payload(payload))

    def respond_many(self, payloads):
        """Send several responses at once: raw payloads (str/bytes/None), of
        which only the last may be a SimError (it ends the stream)."""
        if self.noresponse:
            return
        self._future._push_many(payloads if isinstance(payloads, list) else list(payloads))

    def respond_error(self, errnum, errstr=None):
        """Send an error response, which ends the stream."""
        if self.noresponse:
            return
        self._future._push(SimError(errnum, errstr))


def _close_pipe(fds):
    for fd in fds:
        os.close(fd)


def _as_payload(payload):
    if payload is None or isinstance(payload, (str, bytes, SimError)):
        return payload
    if isinstance(payload, bytearray):
        return bytes(payload)
    return dumps(payload)


def _encode_topic(topic):
    # Mirrors flux.util.encode_topic's checks and exception types.
    if topic is None:
        raise OSError(errno.EINVAL, "Topic must not be None/NULL")
    if isinstance(topic, bytes):
        return topic.decode("utf-8")
    if not isinstance(topic, str):
        raise TypeError(errno.EINVAL, f"Topic must be a string, not {type(topic)}")
    return topic


def _encode_payload(payload):
    # Mirrors flux.util.encode_payload: str and bytes go as they are,
    # anything else through json.dumps(ensure_ascii=False).
    if payload is None:
        return None
    if isinstance(payload, str):
        return payload
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload).decode("utf-8", errors="surrogateescape")
    return json.dumps(payload, ensure_ascii=False)


class SimTimerWatcher:
    """A timer like ``flux.core.watchers.TimerWatcher``.

    Fires *after* seconds (real time) after :meth:`start`, then every
    *repeat* seconds if repeat > 0; calls
    ``callback(handle, watcher, revents, args)`` from ``reactor_run()``.
    A started timer keeps the reactor running, unless :meth:`unref` was
    called (as flux-core does for its SIGINT watcher).
    """

    def __init__(self, handle, after, callback, repeat=0.0, args=None):
        self.flux_handle = handle
        self.after = float(after)
        self.repeat = float(repeat)
        self.callback = callback
        self.args = args
        self._active = False
        self._referenced = True
        self._due = None
        # Bumped on every (re)start/stop so stale heap entries are ignored.
        self._generation = 0

    def start(self):
        """Arm the timer (no-op if already armed); returns self."""
        handle = self.flux_handle
        with handle._cond:
            if not self._active:
                self._arm(time.monotonic() + self.after)
        return self

    def stop(self):
        """Disarm the timer; returns self."""
        handle = self.flux_handle
        with handle._cond:
            if self._active:
                self._active = False
                self._generation += 1
                handle._timers_active -= self._referenced
                handle._cond.notify_all()
        return self

    def reset(self, after=None, repeat=None):
        """Change after/repeat and re-arm from now, like TimerWatcher.reset()."""
        if after is not None:
            self.after = float(after)
        if repeat is not None:
            self.repeat = float(repeat)
        self.stop()
        return self.start()

    def ref(self):
        """Let this timer keep the reactor running again (the default)."""
        self._set_referenced(True)
        return self

    def unref(self):
        """Let the reactor end while only this timer (and other unref'd
        watchers) is left."""
        self._set_referenced(False)
        return self

    def _set_referenced(self, referenced):
        handle = self.flux_handle
        with handle._cond:
            if self._active and referenced != self._referenced:
                handle._timers_active += 1 if referenced else -1
                handle._cond.notify_all()
            self._referenced = referenced

    def destroy(self):
        """Stop the timer for good."""
        self.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def _arm(self, due):
        handle = self.flux_handle
        self._generation += 1
        if not self._active:
            handle._timers_active += self._referenced
        self._active = True
        self._due = due
        heapq.heappush(handle._timer_heap, (due, next(handle._timer_seq), self, self._generation))
        handle._cond.notify_all()


class SimFlux:
    """An in-process Flux instance for journal consumers.

    ``SimFlux(jobs=Workload(...))`` serves ``job-manager.events-journal``
    from a generated workload, ``SimFlux(resources=ResourceWorkload(...))``
    serves ``resource.journal``; both services exist by default (an
    empty job-manager, a 4-broker resource module).  Extra or replacement
    services go in *services*; with ``defaults=False`` only those exist
    and any other topic fails with ENOSYS.  With *autolive* true, the
    workloads' live events are posted right after the first journal
    request has been sent its backlog and sentinel.
    """

    # flux.Flux keeps an exception raised by a callback in thread-local
    # state of the class, not of one handle (see set_exception()).
    _pending = threading.local()

    def __init__(self, jobs=None, resources=None, *, services=(), autolive=True, defaults=True):
        self._cond = threading.Condition(threading.RLock())
        self._services = {}
        self._matchtags = itertools.count(1)
        self._then_futures = set()
        self._ready = deque()
        self._timer_heap = []
        self._timer_seq = itertools.count()
        self._timers_active = 0  # armed timers that keep the reactor running
        self._stop = None
        self._reactor_depth = 0
        self._down = False  # shut down: requests fail as on a lost connection
        self._wakeup = None  # the pipe behind pollfd(), made on first use
        self._signalled = False  # a byte waits in that pipe
        for service in services:
            self.add_service(service)
        if defaults:
            if "job-manager.events-journal" not in self._services:
                if isinstance(jobs, JobJournalService):
                    self.add_service(jobs)
                else:
                    # an empty job-manager injects jobs of its own
                    factory = JobFactory(seed=0) if jobs is None else None
                    self.add_service(JobJournalService(jobs, autolive=autolive, factory=factory))
            if "resource.journal" not in self._services:
                if isinstance(resources, ResourceJournalService):
                    self.add_service(resources)
                else:
                    if resources is None:
                        resources = ResourceWorkload()
                    self.add_service(ResourceJournalService(resources, autolive=autolive))

    @classmethod
    def replay(cls, source, topic="job-manager.events-journal", **kwargs):
        """A handle whose only service replays *source* on *topic*.

        *source* is a path to a capture (one raw payload per line) or a
        list of payloads; keyword arguments go to
        :class:`~flux_journal.sim.replay.ReplayService` (``end``,
        ``errors``, ``hold``, ...).
        """
        return cls(services=[ReplayService(source, topic=topic, **kwargs)], defaults=False)

    # -- services --------------------------------------------------------

    def add_service(self, service):
        """Register a simulated service for all of its topics (replacing others)."""
        with self._cond:
            service.attach(self)
            for topic in service.topics:
                self._services[topic] = service
        return service

    def service(self, topic):
        """Return the service registered for *topic*, or None."""
        return self._services.get(topic)

    @property
    def jobs(self):
        """The job-manager journal service (None if there is none)."""
        return self._services.get("job-manager.events-journal")

    @property
    def resources(self):
        """The resource journal service (None if there is none)."""
        return self._services.get("resource.journal")

    # -- flux.Flux API ---------------------------------------------------

    def rpc(self, topic, payload=None, nodeid=FLUX_NODEID_ANY, flags=0):
        """Send a request; return its :class:`SimFuture`.

        *payload* may be a dict (or anything json.dumps accepts), a JSON
        str, bytes or None.  Unknown topics fail with ENOSYS; flag bits
        other than FLUX_RPC_STREAMING/FLUX_RPC_NORESPONSE raise EINVAL.
        The service handles the request before this returns.
        """
        topic = _encode_topic(topic)
        if flags & ~_VALID_RPC_FLAGS:
            raise _wrapper_error(errno.EINVAL)
        if self._down:
            # flux_rpc() on a handle whose broker has gone
            raise _wrapper_error(errno.EPIPE)
        body = _encode_payload(payload)
        with self._cond:
            if flags & FLUX_RPC_NORESPONSE:
                matchtag = 0
            else:
                matchtag = next(self._matchtags)
            future = SimFuture(self, topic, matchtag, flags)
            request = SimRequest(self, future, topic, body, flags, nodeid)
            if flags & FLUX_RPC_NORESPONSE:
                # flux fulfills a one-way RPC's future as soon as it is sent.
                future._push(None)
            service = self._services.get(topic)
            if service is None:
                request.respond_error(errno.ENOSYS, f"No service matching {topic} is registered")
            else:
                try:
                    service.handle_request(request)
                except SimError as err:
                    request.respond_error(err.errnum, err.errstr)
        return future

    def get_reactor(self):
        """Return the handle's (single) reactor; just a token here."""
        return self

    def reactor_running(self):
        """True while some thread is inside reactor_run()."""
        return self._reactor_depth > 0

    def timer_watcher_create(self, after, callback, repeat=0.0, args=None):
        """Create a (stopped) :class:`SimTimerWatcher`; call start() on it."""
        return SimTimerWatcher(self, after, callback, repeat=repeat, args=args)

    def reactor_stop(self, reactor=None):
        """Make reactor_run() return after the current callback."""
        with self._cond:
            self._stop = "stop"
            self._cond.notify_all()

    def reactor_stop_error(self, reactor=None):
        """Make reactor_run() return -1 (after the current callback)."""
        with self._cond:
            self._stop = "error"
            self._cond.notify_all()

    def reactor_run(self, reactor=None, flags=0):
        """Run then-callbacks and timers until stopped or nothing is left.

        Blocks (real time) while a then-future's stream is still open or
        a timer is armed.  Returns when reactor_stop() is called, when
        nothing can happen any more, or (with FLUX_REACTOR_NOWAIT) when
        nothing is ready.  As with flux: if a callback raises, its future
        is advanced and stopped, the exception is stored with
        :meth:`set_exception`, the reactor stops with an error, and the
        exception is raised here, at the end of this run, even if the
        callback had called reactor_stop() first.  Returns -1 after
        reactor_stop_error(), otherwise the number of things still
        active.
        """
        cond = self._cond
        with cond:
            self._stop = None
            self._reactor_depth += 1
        try:
            self._loop(flags)
        finally:
            with cond:
                self._reactor_depth -= 1
                stop = self._stop
                self._stop = None
        type(self).raise_if_exception()
        if stop == "error":
            return -1
        with cond:
            return self._count_active()

    @classmethod
    def set_exception(cls, exception):
        """Store *exception* for the end of this thread's reactor_run().

        As ``flux.Flux.set_exception()``: one pending exception per
        thread, shared by all handles; a later one replaces it.  Returns
        the exception it replaced (or None).
        """
        previous = getattr(cls._pending, "exception", None)
        cls._pending.exception = exception
        return previous

    @classmethod
    def raise_if_exception(cls):
        """Raise (and clear) this thread's pending exception, if any."""
        if getattr(cls._pending, "exception", None) is not None:
            raise cls.set_exception(None) from None

    # -- reactor internals -------------------------------------------------

    def _loop(self, flags):
        cond = self._cond
        nowait = flags & FLUX_REACTOR_NOWAIT
        once = flags & FLUX_REACTOR_ONCE
        while True:
            with cond:
                if self._stop is not None:
                    return
                timer = self._pop_due_timer()
                future = None if timer is not None else self._pop_ready()
                if timer is None and future is None:
                    if self._expire_then_timeouts():
                        continue
                    if nowait or not self._count_active():
                        return
                    cond.wait(self._wait_time())
                    continue
            if timer is not None:
                self._run_timer(timer)
            else:
                self._run_then(future)
            if once:
                return

    def _run_timer(self, watcher):
        try:
            watcher.callback(self, watcher, 0, watcher.args)
        except Exception as exc:  # pylint: disable=broad-except
            self._fail(exc)

    def _run_then(self, future):
        try:
            future.then_cb(future, *future.then_args, **future.then_kwargs)
        except Exception as exc:  # pylint: disable=broad-except
            # Same recovery as flux's continuation_callback: skip the
            # response that failed and stop the future so the callback is
            # not called again if the reactor is restarted.
            with self._cond:
                future._advance()
                future.stopped = True
                future._cb_state = _IDLE
                self._fail(exc)

    def _fail(self, exc):
        """A callback raised: what flux's callback wrappers do."""
        type(self).set_exception(exc)
        self.reactor_stop_error()

    def _arrived(self, future):
        """A service queued response(s) on *future* (lock held)."""
        if future.then_cb is not None:
            self._rearm(future)
        if self._wakeup is not None and not self._signalled:
            self._signalled = True
            os.write(self._wakeup[1], b"!")
        self._cond.notify_all()

    # -- descriptor (flux_pollfd) ------------------------------------------

    def pollfd(self):
        """A file descriptor that becomes readable when a response
        arrives, like flux_pollfd(): it stays readable until
        :meth:`pollevents` is called."""
        with self._cond:
            if self._wakeup is None:
                self._wakeup = os.pipe()
                for fd in self._wakeup:
                    os.set_blocking(fd, False)
                # The pipe lives as long as the handle.
                weakref.finalize(self, _close_pipe, self._wakeup)
                # Readable at first, as an epoll descriptor is when it
                # watches one that has data: responses may have come
                # before it existed.
                self._signalled = True
                os.write(self._wakeup[1], b"!")
            return self._wakeup[0]

    def pollevents(self):
        """Clear :meth:`pollfd`'s readiness, like flux_pollevents(), and
        return 0: no message ever waits for a reactor to be handled here
        (responses reach their futures as they are sent), so there is
        never a FLUX_POLLIN to report."""
        with self._cond:
            if self._wakeup is not None and self._signalled:
                try:
                    os.read(self._wakeup[0], 64)
                except BlockingIOError:
                    pass
                self._signalled = False
            return 0

    def _rearm(self, future):
        """Queue *future*'s callback if it has an undelivered current response."""
        if future.then_cb is None or future.stopped or future._cb_state != _IDLE:
            return
        queue = future._q
        if not queue:
            return
        head = queue[0]
        if type(head) is SimError and head.terminal and future._error_delivered:
            return
        future._cb_state = _QUEUED
        self._ready.append(future)
        self._cond.notify_all()

    def _pop_ready(self):
        ready = self._ready
        while ready:
            future = ready.popleft()
            if future._cb_state != _QUEUED:
                continue
            queue = future._q
            if future.stopped or not queue:
                future._cb_state = _IDLE
                continue
            future._cb_state = _CALLED
            head = queue[0]
            if type(head) is SimError and head.terminal:
                future._error_delivered = True
            return future
        return None

    def _pop_due_timer(self):
        heap = self._timer_heap
        if not heap:
            return None
        now = time.monotonic()
        while heap:
            due, _, watcher, generation = heap[0]
            if generation != watcher._generation or not watcher._active:
                heapq.heappop(heap)
                continue
            if due > now:
                return None
            heapq.heappop(heap)
            if watcher.repeat > 0:
                # Re-arm from the scheduled time so the period does not
                # drift, but never schedule into the past.
                watcher._arm(max(due + watcher.repeat, now))
            else:
                watcher._active = False
                watcher._generation += 1
                self._timers_active -= watcher._referenced
            return watcher
        return None

    def _expire_then_timeouts(self):
        """Deliver ETIMEDOUT to then-futures whose timeout passed; True if any."""
        now = time.monotonic()
        fired = False
        for future in list(self._then_futures):
            deadline = future._then_deadline
            if (
                deadline is not None
                and deadline <= now
                and not future._q
                and future._open
                and not future.stopped
            ):
                future._then_deadline = None
                future._q.append(SimError(errno.ETIMEDOUT, None, terminal=False))
                self._rearm(future)
                fired = True
        return fired

    def _wait_time(self):
        """Seconds until the next timer or then-timeout, or None."""
        deadlines = []
        heap = self._timer_heap
        while heap and (heap[0][3] != heap[0][2]._generation or not heap[0][2]._active):
            heapq.heappop(heap)
        if heap:
            deadlines.append(heap[0][0])
        for future in self._then_futures:
            if future._then_deadline is not None and not future._q:
                deadlines.append(future._then_deadline)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _count_active(self):
        """Number of armed timers plus then-futures that may still fire."""
        finished = [f for f in self._then_futures if not f._active()]
        for future in finished:
            if not future._open:
                self._then_futures.discard(future)
        active = sum(1 for f in self._then_futures if f._active())
        return active + self._timers_active

    # -- simulated-instance controls ---------------------------------------

    def post_live(self, count=None, *, topic="job-manager.events-journal"):
        """Post up to *count* (default all) pending live events of a workload.

        Returns the number posted.  Safe to call from any thread.
        """
        service = self._require(topic)
        return service.post_live(count)

    def inject_job(self, kind="success", *, upto=None, **kwargs):
        """Submit a new job of *kind* and post its events; return its id.

        With *upto* (an event name) only events up to and including the
        first such event are posted, leaving the job active.  See
        :meth:`JobJournalService.inject_job`.
        """
        return self._require("job-manager.events-journal").inject_job(kind, upto=upto, **kwargs)

    def post_job_event(self, jobid, name, context=None, **kwargs):
        """Post one job event (see :meth:`JobJournalService.post_event`)."""
        return self._require("job-manager.events-journal").post_event(
            jobid, name, context, **kwargs
        )

    def post_resource_event(self, name, context=None, **kwargs):
        """Post one resource event (see :meth:`ResourceJournalService.post_event`)."""
        return self._require("resource.journal").post_event(name, context, **kwargs)

    def end_streams(self, errnum=errno.ENODATA, errstr=None, *, topic=None):
        """End every open journal stream (of *topic*, or all) with an error.

        ENODATA is what a real service sends when it is unloaded.
        Returns the number of streams ended.
        """
        with self._cond:
            if topic is not None:
                services = [self._require(topic)]
            else:
                services = list({id(s): s for s in self._services.values()}.values())
            return sum(s.end_streams(errnum, errstr) for s in services)

    @property
    def is_up(self):
        """False between :meth:`shutdown` and :meth:`restart`."""
        return not self._down

    def shutdown(self, errnum=errno.ENODATA, errstr=None):
        """Shut the instance down, keeping its history for :meth:`restart`.

        Open journal streams end as a real broker ends them: with the
        default ENODATA, as ``flux shutdown`` unloads the modules; with
        EPROTO or ECONNRESET, as a broker that died under a waiting
        stream.  Until :meth:`restart`, requests fail with EPIPE and
        :meth:`connect` with ECONNREFUSED, as with a broker gone.
        Returns the number of streams ended.
        """
        with self._cond:
            ended = self.end_streams(errnum, errstr)
            self._down = True
            self._cond.notify_all()
            return ended

    def restart(self):
        """Bring the instance back after :meth:`shutdown`: the same
        services, with the history they had (and any events posted
        meanwhile)."""
        with self._cond:
            self._down = False

    def connect(self):
        """A connection to this instance, as ``flux.Flux(uri)`` opens
        one: this handle, or ConnectionRefusedError while it is shut
        down."""
        if self._down:
            raise ConnectionRefusedError(errno.ECONNREFUSED, os.strerror(errno.ECONNREFUSED))
        return self

    def _require(self, topic):
        service = self._services.get(topic)
        if service is None:
            raise LookupError(f"no simulated service for {topic}")
        return service
