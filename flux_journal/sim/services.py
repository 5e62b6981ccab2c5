"""Simulated journal services, following flux-core's C implementations.

:class:`JobJournalService` plays the job-manager's
``job-manager.events-journal`` (src/modules/job-manager/journal.c) and
:class:`ResourceJournalService` the resource module's
``resource.journal`` (src/modules/resource/reslog.c).  What they
reproduce, because consumers can observe it:

* requests without FLUX_RPC_STREAMING fail with EPROTO and the service's
  own message; a payload that does not unpack fails with EPROTO and no
  message; job journal ``allow``/``deny`` must be objects;
* the backlog goes out before the request joins the listeners, ending
  with a sentinel (``{"id":-1,"events":[]}`` / ``{"events":[]}``);
* job backlog: inactive jobs (only if ``full``) then active jobs, each in
  hash-table order, one response per job carrying its whole eventlog and
  its redacted jobspec/R; a job whose events are all filtered out still
  gets a response with an empty ``events`` array;
* live job events: one per response, ``jobspec`` only with ``submit``,
  ``R`` only with ``alloc``; filtered-out live events are not sent at
  all; ``annotations`` (and volatile ``memo``) events are journal-only,
  so they never appear in a later backlog;
* resource backlog: batches of at most 100 events, each
  ``resource-define`` alone in its response together with the current R;
  the in-memory journal is truncated to ``journal_max`` events behind a
  ``truncate`` event;
* ``<topic>-cancel`` with ``{"matchtag": N}`` ends that stream with
  ENODATA and is never answered itself.

Services keep their state under the owning handle's lock, so the control
methods (posting events, ending streams) may be called from any thread.
"""

import errno
import json
import threading
from collections import deque

from flux_journal.sim.encode import dumps, format_real, render_entry
from flux_journal.sim.errors import SimError

__all__ = [
    "SimService",
    "JobJournalService",
    "ResourceJournalService",
    "JOB_SENTINEL",
    "RESOURCE_SENTINEL",
    "hash_order",
]

_DECODER = json.JSONDecoder()

JOB_SENTINEL = '{"id":-1,"events":[]}'
RESOURCE_SENTINEL = '{"events":[]}'

# journal.c keeps these out of the committed eventlog (EVENT_NO_COMMIT):
# they reach journal listeners but never a later backlog.
_JOURNAL_ONLY = frozenset(("annotations", "invalidate"))


def _is_prime(num):
    if num < 2:
        return False
    if num % 2 == 0:
        return num == 2
    factor = 3
    while factor * factor <= num:
        if num % factor == 0:
            return False
        factor += 2
    return True


def _table_size(count):
    # zhashx grows its bucket array (a prime) once it is 75% full; any
    # prime above count/0.75 gives the same flavour of order.
    size = max(11, int(count / 0.75) + 1)
    while not _is_prime(size):
        size += 1
    return size


def hash_order(ids):
    """Order job ids the way flux's job hash (zhashx) iterates them.

    The job-manager hashes a job id to itself, so iteration walks the
    buckets ``id % size`` upwards; within a bucket the most recently
    inserted job comes first.  *ids* must be in insertion order.  This is
    an approximation (zhashx's growth steps are not replayed) that keeps
    the telling features: not time order, with runs of consecutive ids.
    """
    ids = list(ids)
    size = _table_size(len(ids))
    order = sorted(range(len(ids)), key=lambda k: (ids[k] % size, -k))
    return [ids[k] for k in order]


class SimService:
    """Base class of simulated services.

    Subclasses list their request topics in ``topics`` and implement
    :meth:`handle_request`, which runs with the handle's lock held.
    Streaming requests that stay open are kept in ``self._listeners``
    as (request, extra) pairs; this class handles ``-cancel`` requests
    and :meth:`end_streams`.
    """

    topics = ()

    def __init__(self):
        # Until attached to a handle, a private lock keeps the
        # service usable on its own (e.g. to render a backlog).
        self._cond = threading.Condition(threading.RLock())
        self.handle = None
        self._listeners = []
        self._pending = deque()  # workload live events not posted yet

    def attach(self, handle):
        """Bind the service to *handle* and share its lock."""
        if self.handle is not None and self.handle is not handle:
            raise RuntimeError("a simulated service belongs to one handle")
        self.handle = handle
        self._cond = handle._cond

    def handle_request(self, request):
        """Answer *request* (a :class:`~flux_journal.sim.handle.SimRequest`)."""
        raise NotImplementedError

    @property
    def listeners(self):
        """Number of open streaming requests."""
        with self._cond:
            return len(self._listeners)

    def cancel(self, request):
        """Handle a ``-cancel`` request like ``flux_msglist_cancel()``.

        The matching stream gets ENODATA (no error string); the cancel
        request gets no response, and a bad payload is ignored.
        """
        try:
            matchtag = request.unpack().get("matchtag")
        except SimError:
            return
        if type(matchtag) is not int:
            return
        for index, (listener, _) in enumerate(self._listeners):
            if listener.matchtag == matchtag:
                del self._listeners[index]
                listener.respond_error(errno.ENODATA)
                return

    @property
    def pending_live(self):
        """Number of workload live events not posted yet."""
        return len(self._pending)

    def _take_pending(self, count):
        """Remove and return the next *count* (None: all) pending live
        events, oldest first."""
        pending = self._pending
        if count is None or count > len(pending):
            count = len(pending)
        return [pending.popleft() for _ in range(count)]

    def end_streams(self, errnum=errno.ENODATA, errstr=None):
        """End all open streams with an error (ENODATA = service unloaded)."""
        with self._cond:
            listeners, self._listeners = self._listeners, []
            for listener, _ in listeners:
                listener.respond_error(errnum, errstr)
            return len(listeners)


class _Job:
    """The job-manager's view of one job, as far as the journal needs it."""

    __slots__ = ("id", "entries", "names", "jobspec", "R", "payload", "active")

    def __init__(self, jobid, entries, names, jobspec, R, payload, active):
        self.id = jobid
        # Encoded eventlog entries and their names, or None while only
        # the rendered payload is kept (inactive workload jobs).
        self.entries = entries
        self.names = names
        self.jobspec = jobspec
        self.R = R
        # Unfiltered backlog response, cached until the eventlog changes.
        self.payload = payload
        self.active = active

    def render(self):
        payload = self.payload
        if payload is None:
            payload = _render_job(self.id, self.entries, self.jobspec, self.R)
            self.payload = payload
        return payload

    def parsed(self):
        """Make sure entries/names/jobspec/R are available (filters need them).

        The pieces are cut out of the rendered payload with the JSON
        scanner's end offsets, so they keep their exact original text.
        """
        if self.entries is not None:
            return
        text = self.payload
        decode = _DECODER.raw_decode
        pos = text.index('"events":[') + len('"events":[')
        entries, names = [], []
        while text[pos] != "]":
            if text[pos] == ",":
                pos += 1
            entry, end = decode(text, pos)
            entries.append(text[pos:end])
            names.append(entry.get("name"))
            pos = end
        pos += 1
        while text[pos] == ",":
            key, colon = decode(text, pos + 1)
            _, end = decode(text, colon + 1)
            if key == "jobspec":
                self.jobspec = text[colon + 1 : end]
            elif key == "R":
                self.R = text[colon + 1 : end]
            pos = end
        self.entries = entries
        self.names = names


def _render_job(jobid, entries, jobspec, R):
    # Key order of journal.c's send_job_events(): id, events, jobspec, R.
    text = '{"id":%d,"events":[%s]' % (jobid, ",".join(entries))
    if jobspec is not None:
        text += ',"jobspec":' + jobspec
    if R is not None:
        text += ',"R":' + R
    return text + "}"


class _Filter:
    """allow/deny sets of a journal request (journal.c allow_deny_check)."""

    __slots__ = ("allow", "deny")

    def __init__(self, allow, deny):
        self.allow = allow
        self.deny = deny

    def passes(self, name):
        # Membership of the key is what counts; its value is ignored.
        if self.allow is not None and name not in self.allow:
            return False
        if self.deny is not None and name in self.deny:
            return False
        return True


class JobJournalService(SimService):
    """``job-manager.events-journal`` over a simulated set of jobs.

    *workload* (a :class:`~flux_journal.sim.workload.Workload` or None
    for an empty instance) provides the jobs present at start and the
    pending live events.  With *autolive*, those live events are posted
    right after the first request's sentinel, so a consumer finds them
    queued behind the backlog; otherwise call :meth:`post_live`.
    """

    topics = ("job-manager.events-journal", "job-manager.events-journal-cancel")

    def __init__(self, workload=None, *, autolive=True, factory=None):
        super().__init__()
        self.workload = workload
        self.autolive = autolive
        self._jobs = {}
        # Insertion order of each hash, which decides bucket chains.
        self._inactive_ids = []
        self._active_ids = {}
        self._order_cache = {}
        self.event_count = 0
        self.clock = 0.0
        # Makes injected jobs: the workload's (it continues its
        # timeline), else *factory*.
        self._factory = factory
        self._injecting = False
        if workload is not None:
            self._load(workload)

    def _load(self, workload):
        for jobid, payload in workload.inactive:
            self._jobs[jobid] = _Job(jobid, None, None, None, None, payload, False)
            self._inactive_ids.append(jobid)
        for job in workload.active:
            self._jobs[job.id] = _Job(
                job.id, list(job.entries), list(job.names), job.jobspec, job.R, None, True
            )
            self._active_ids[job.id] = None
        self._pending.extend(workload.live)
        self.clock = workload.now
        self._factory = workload.factory

    # -- requests ----------------------------------------------------------

    def handle_request(self, request):
        """Serve a journal request or its cancel (see the module docstring)."""
        if request.topic.endswith("-cancel"):
            self.cancel(request)
            return
        # flux_request_unpack "{s?o s?o s?b}" comes first, so a payload
        # problem is a message-less EPROTO even without the streaming flag.
        payload = request.unpack()
        full = payload.get("full", False)
        if "full" in payload and type(full) is not bool:
            raise SimError(errno.EPROTO)
        if not request.streaming:
            raise SimError(errno.EPROTO, "job-manager.events requires streaming RPC flag")
        allow = payload.get("allow")
        deny = payload.get("deny")
        if "allow" in payload and not isinstance(allow, dict):
            raise SimError(errno.EPROTO, "job-manager.events allow should be an object")
        if "deny" in payload and not isinstance(deny, dict):
            raise SimError(errno.EPROTO, "job-manager.events deny should be an object")
        filt = None
        if "allow" in payload or "deny" in payload:
            filt = _Filter(
                frozenset(allow) if allow is not None else None,
                frozenset(deny) if deny is not None else None,
            )
        with self._cond:
            request.respond_many(self.backlog(full, filt) + [JOB_SENTINEL])
            self._listeners.append((request, filt))
            if self.autolive and self._pending:
                self.post_live()

    def backlog(self, full=True, filt=None):
        """The backlog responses (without sentinel) a request would get now.

        *filt* is None or an object with ``passes(name)``.
        """
        with self._cond:
            out = []
            groups = []
            if full:
                groups.append(("inactive", self._inactive_ids))
            groups.append(("active", list(self._active_ids)))
            for key, ids in groups:
                for jobid in self._ordered(key, ids):
                    job = self._jobs[jobid]
                    if filt is None:
                        out.append(job.render())
                    else:
                        job.parsed()
                        kept = [e for e, n in zip(job.entries, job.names) if filt.passes(n)]
                        out.append(_render_job(jobid, kept, job.jobspec, job.R))
            return out

    def _ordered(self, key, ids):
        cached = self._order_cache.get(key)
        if cached is None or cached[0] != len(ids):
            cached = (len(ids), hash_order(ids))
            self._order_cache[key] = cached
        return cached[1]

    # -- posting events ----------------------------------------------------

    def post_live(self, count=None):
        """Post the next *count* (default: all) pending live events; return how many."""
        with self._cond:
            batches = [[] for _ in self._listeners]
            apply = self._apply
            taken = self._take_pending(count)
            for ts, _seq, jobid, name, entry, extra, commit in taken:
                apply(jobid, name, entry, extra, commit, ts, batches)
            self._flush(batches)
            return len(taken)

    def post_event(
        self, jobid, name, context=None, *, timestamp=None, jobspec=None, R=None, commit=None
    ):
        """Post one event for *jobid* to the eventlog and all listeners.

        *context* is a dict (or None for no context member).  A
        ``submit`` creates the job and needs *jobspec* (dict or JSON
        text; a default single-core jobspec if omitted); an ``alloc``
        records *R* (default: one core on rank 0).  ``clean`` makes the
        job inactive, ``invalidate`` removes it.  *commit* defaults to
        false for journal-only events (annotations, invalidate).  The
        timestamp defaults to just after the newest event seen.
        Returns the timestamp used.
        """
        with self._cond:
            if timestamp is None:
                timestamp = self._next_time()
            entry = render_entry(timestamp, name, context)
            extra = None
            if name == "submit":
                if jobspec is None:
                    jobspec = self._factory_for_injection().default_jobspec()
                extra = jobspec if isinstance(jobspec, str) else dumps(jobspec)
            elif name == "alloc":
                if R is None:
                    R = self._factory_for_injection().default_R(float(timestamp))
                extra = R if isinstance(R, str) else dumps(R)
            if commit is None:
                commit = name not in _JOURNAL_ONLY
            batches = [[] for _ in self._listeners]
            self._apply(int(jobid), name, entry, extra, commit, float(timestamp), batches)
            self._flush(batches)
            return timestamp

    def inject_job(self, kind="success", *, upto=None, timestamp=None):
        """Generate a job of *kind* starting now (sim time) and post its events.

        *kind* is one of :data:`~flux_journal.sim.workload.JOB_KINDS`.
        With *upto*, posting stops after the first event of that name
        and the job stays active.  Returns the new job id.
        """
        with self._cond:
            factory = self._factory_for_injection()
            start = timestamp if timestamp is not None else self._next_time()
            job = factory.make(start, kind)
            batches = [[] for _ in self._listeners]
            for ts, name, entry, commit in job.events:
                extra = job.jobspec if name == "submit" else job.R if name == "alloc" else None
                self._apply(job.id, name, entry, extra, commit, ts, batches)
                if upto is not None and name == upto:
                    break
            self._flush(batches)
            return job.id

    def _factory_for_injection(self):
        if self._factory is None:
            raise RuntimeError("injecting jobs needs a workload or factory=")
        if not self._injecting:
            self._injecting = True
            if self.workload is None:
                self.clock = max(self.clock, self._factory.start + 1.0)
        return self._factory

    def _next_time(self):
        # Sim time, not wall-clock time: injected events must sort after
        # the workload's, which are dated in the instance's timeline.
        self.clock = self.clock + 0.001 if self.clock else self._factory_for_injection().start + 1.0
        return self.clock

    def _apply(self, jobid, name, entry, extra, commit, ts, batches):
        """Record one event and queue its response for each listener (lock held)."""
        jobs = self._jobs
        if name == "submit":
            if jobid in jobs:
                raise ValueError(f"job {jobid} already exists")
            job = _Job(jobid, [], [], extra, None, None, True)
            jobs[jobid] = job
            self._active_ids[jobid] = None
        else:
            job = jobs.get(jobid)
            if job is None:
                raise LookupError(f"unknown job id {jobid}")
            if not job.active:
                raise ValueError(f"job {jobid} is inactive")
        if commit:
            job.parsed()
            job.entries.append(entry)
            job.names.append(name)
            job.payload = None
        if ts > self.clock:
            self.clock = ts
        self.event_count += 1
        response = '{"id":%d,"events":[%s]' % (jobid, entry)
        if name == "submit":
            response += ',"jobspec":' + job.jobspec + "}"
        elif name == "alloc":
            if extra is not None:
                job.R = extra
            if job.R is None:
                # journal.c logs an error and sends nothing without R.
                response = None
            else:
                response += ',"R":' + job.R + "}"
        else:
            response += "}"
        if response is not None:
            for index, (_, filt) in enumerate(self._listeners):
                if filt is None or filt.passes(name):
                    batches[index].append(response)
        if name == "clean":
            job.active = False
            del self._active_ids[jobid]
            self._inactive_ids.append(jobid)
        elif name == "invalidate":
            del jobs[jobid]
            del self._active_ids[jobid]

    def _flush(self, batches):
        for (listener, _), batch in zip(list(self._listeners), batches):
            if batch:
                listener.respond_many(batch)

    def stats(self):
        """Like journal_get_stats(): {"listeners": n, "events": posted}."""
        with self._cond:
            return {"listeners": len(self._listeners), "events": self.event_count}

    def job_ids(self, active=None):
        """Ids of known jobs (only active or inactive ones if *active* is given)."""
        with self._cond:
            return [j.id for j in self._jobs.values() if active is None or j.active == active]


class ResourceJournalService(SimService):
    """``resource.journal`` over a simulated resource eventlog.

    *workload* is a :class:`~flux_journal.sim.workload.ResourceWorkload`
    (None: a fresh 4-broker instance).  *journal_max* is the resource
    module's ``journal-max`` setting (default 100000).
    """

    topics = ("resource.journal", "resource.journal-cancel")

    def __init__(self, workload, *, journal_max=100000, autolive=True):
        super().__init__()
        self.workload = workload
        self.autolive = autolive
        self.journal_max = journal_max
        self.R = workload.R
        self._log = []
        self._pending = deque(workload.live)
        self.clock = workload.now
        for ts, name, entry in workload.events:
            self._log.append((name, entry, ts))
            self._truncate()

    def handle_request(self, request):
        """Serve a resource journal request or its cancel."""
        if request.topic.endswith("-cancel"):
            self.cancel(request)
            return
        # flux_request_decode() does not look at the payload at all.
        if not request.streaming:
            raise SimError(errno.EPROTO, "journal requires streaming RPC flag")
        with self._cond:
            request.respond_many(self.backlog() + [RESOURCE_SENTINEL])
            self._listeners.append((request, None))
            if self.autolive and self._pending:
                self.post_live()

    def backlog(self):
        """The backlog responses (without sentinel) a request would get now."""
        with self._cond:
            out = []
            batch = []
            for name, entry, _ in self._log:
                if name == "resource-define":
                    if batch:
                        out.append('{"events":[%s]}' % ",".join(batch))
                        batch = []
                    out.append('{"events":[%s],"R":%s}' % (entry, self.R))
                    continue
                batch.append(entry)
                if len(batch) >= 100:
                    out.append('{"events":[%s]}' % ",".join(batch))
                    batch = []
            if batch:
                out.append('{"events":[%s]}' % ",".join(batch))
            return out

    def post_live(self, count=None):
        """Post the next *count* (default: all) pending live events; return how many."""
        with self._cond:
            responses = [self._apply(name, entry, ts) for ts, name, entry in self._take_pending(count)]
            for listener, _ in list(self._listeners):
                listener.respond_many(responses)
            return len(responses)

    def post_event(self, name, context=None, *, timestamp=None, R=None):
        """Post one resource event to the journal and all listeners.

        *context* is a dict or None (no context member); a
        ``resource-define`` may bring a new *R* (dict or JSON text).
        Returns the timestamp used.
        """
        with self._cond:
            if timestamp is None:
                self.clock += 0.001
                timestamp = self.clock
            entry = render_entry(timestamp, name, context)
            if R is not None:
                self.R = R if isinstance(R, str) else dumps(R)
            response = self._apply(name, entry, float(timestamp))
            for listener, _ in list(self._listeners):
                listener.respond(response)
            return timestamp

    def _apply(self, name, entry, ts):
        self._log.append((name, entry, ts))
        self._truncate()
        if ts > self.clock:
            self.clock = ts
        if name == "resource-define":
            return '{"events":[%s],"R":%s}' % (entry, self.R)
        return '{"events":[%s]}' % entry

    def _truncate(self):
        # reslog_truncate(): once over journal_max, drop the oldest events
        # until max-1 remain and put a context-less "truncate" event, dated
        # like the newest dropped one, in front.
        log = self._log
        if len(log) <= self.journal_max:
            return
        drop = len(log) - (self.journal_max - 1)
        stamp = log[drop - 1][2]
        del log[:drop]
        log.insert(
            0,
            ("truncate", '{"timestamp":%s,"name":"truncate"}' % format_real(stamp), stamp),
        )

    def events(self):
        """The current in-memory journal as (timestamp, name, entry text) tuples."""
        with self._cond:
            return [(ts, name, entry) for name, entry, ts in self._log]
