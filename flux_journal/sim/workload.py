"""Deterministic, realistic job and resource workloads.

A :class:`Workload` is one simulated instance's timeline: jobs arrive as
a Poisson process and go through RFC 21 event sequences (successes,
failures, cancellations, held and released jobs, timeouts, injected
exceptions, unsatisfiable requests, dependencies, memos, multi-node
jobs: the kinds of :mod:`.jobkinds`).  The snapshot time ``now`` splits it: jobs whose eventlog ended
before ``now`` are inactive, the others active with their eventlog cut
at ``now``; everything after ``now`` (the rest of the active jobs plus
jobs submitted later) forms the live stream.  Job ids are FLUIDs minted
like flux-core's fluid.c, jobspec and R are shaped like those of streams
captured from a real instance (the test fixtures), and all JSON is
rendered the way the broker writes it, so generated streams look exactly
like captured ones.

Generation is fast enough for benchmark sizes (100,000 jobs, about a
million events, in a few seconds): event entries come from string
templates, jobspecs and R fragments are cached per shape, and inactive
jobs are kept only as their rendered backlog response.

A :class:`ResourceWorkload` does the same for the resource journal:
broker restarts, online/offline, drain/undrain, torpid/lively and
``resource-define`` with R.
"""

import bisect
import random

from flux_journal.jobid import f58_utf8
from flux_journal.sim.encode import dumps, encode_hostlist, encode_idset, format_real
from flux_journal.sim.jobkinds import AFTER_DESC, JOB_KINDS, KINDS, STATUS_SUCCESS, JobLife
from flux_journal.sim.services import (
    JOB_SENTINEL,
    RESOURCE_SENTINEL,
    JobJournalService,
    ResourceJournalService,
)

__all__ = [
    "DEFAULT_START",
    "JOB_KINDS",
    "DEFAULT_MIX",
    "FluidGenerator",
    "GeneratedJob",
    "ActiveJob",
    "JobFactory",
    "generate_jobs",
    "Workload",
    "ResourceWorkload",
]

# Instance start used by default: the fixtures' instance started at
# 1795812828.9 (November 2026), so generated timestamps look alike.
DEFAULT_START = 1795812828.9

# Relative frequency of each kind; mostly ordinary successful jobs,
# with every unusual path present even in a few hundred jobs.
DEFAULT_MIX = {
    "success": 60,
    "failed": 8,
    "long": 1,
    "held": 1,
    "released": 3,
    "expedited": 2,
    "cancel-pending": 3,
    "cancel-running": 3,
    "timeout": 3,
    "exception": 1,
    "unsatisfiable": 2,
    "afterok": 3,
    "afterany": 2,
    "afternotok": 1,
    "memo": 3,
    "multinode": 4,
}

_RLIMIT = {
    "cpu": -1,
    "fsize": -1,
    "data": -1,
    "stack": 8388608,
    "core": 0,
    "nofile": 20000,
    "as": -1,
    "rss": -1,
    "nproc": 96365,
}

class FluidGenerator:
    """Mint job ids like flux-core's fluid.c: ``[ts:40 | id:14 | seq:10]``.

    ``ts`` counts milliseconds since the instance started, ``id`` is the
    generator id (0 for the job-ingest module on rank 0) and ``seq``
    numbers ids minted within one millisecond; at most 1023 fit, after
    which the clock is moved on, as fluid_generate() waits for it.
    """

    def __init__(self, start=DEFAULT_START, generator_id=0):
        if not 0 <= generator_id < (1 << 14):
            raise ValueError("generator id must fit in 14 bits")
        self.start = start
        self.generator_id = generator_id
        self._ms = 0
        self._seq = 0

    def generate(self, when):
        """Return the id minted at epoch time *when* (never decreasing)."""
        ms = int((when - self.start) * 1000.0)
        if ms > self._ms:
            self._ms = ms
            self._seq = 0
        elif self._seq + 1 >= 1024:
            self._ms += 1
            self._seq = 0
        fluid = (self._ms << 24) | (self.generator_id << 10) | self._seq
        self._seq += 1
        return fluid

    @staticmethod
    def decode(fluid):
        """Split a FLUID into (milliseconds, generator id, sequence)."""
        return fluid >> 24, (fluid >> 10) & 0x3FFF, fluid & 0x3FF


class GeneratedJob:
    """One job's complete life: id, kind, jobspec and R text, events.

    ``events`` is a time-ordered list of ``(timestamp, name, entry,
    commit)`` where ``entry`` is the eventlog entry as JSON text and
    ``commit`` is false for journal-only events (``annotations``), which
    never enter the eventlog.
    """

    __slots__ = ("id", "kind", "userid", "submit_time", "jobspec", "R", "events")

    def __init__(self, jobid, kind, userid, submit_time, jobspec, R, events):
        self.id = jobid
        self.kind = kind
        self.userid = userid
        self.submit_time = submit_time
        self.jobspec = jobspec
        self.R = R
        self.events = events

    @property
    def end_time(self):
        """Timestamp of the last event."""
        return self.events[-1][0]

    @property
    def complete(self):
        """True if the job reached ``clean``."""
        return self.events[-1][1] == "clean"

    def history_payload(self):
        """The backlog response for this job once it is inactive."""
        text = '{"id":%d,"events":[%s],"jobspec":%s' % (
            self.id,
            ",".join(e[2] for e in self.events if e[3]),
            self.jobspec,
        )
        if self.R is not None:
            text += ',"R":' + self.R
        return text + "}"


class ActiveJob:
    """An active job at snapshot time: committed entries so far, jobspec, R."""

    __slots__ = ("id", "entries", "names", "jobspec", "R")

    def __init__(self, jobid, entries, names, jobspec, R):
        self.id = jobid
        self.entries = entries
        self.names = names
        self.jobspec = jobspec
        self.R = R


class JobFactory:
    """Builds :class:`GeneratedJob` lifecycles; shared by workloads and injection.

    Keeps the state that must persist between jobs: the FLUID
    generator, a round-robin core allocator, recently finished jobs
    (dependency targets) and caches of rendered jobspecs and R parts.
    """

    def __init__(
        self,
        seed=0,
        *,
        start=DEFAULT_START,
        nnodes=4,
        ncores=2,
        hostname="vm",
        users=((0, "alice"),),
        owner=0,
        mix=None,
        rng=None,
    ):
        if nnodes < 1 or ncores < 1:
            raise ValueError("need at least one node and one core")
        self.rng = rng if rng is not None else random.Random(seed)
        self.start = start
        self.nnodes = nnodes
        self.ncores = ncores
        self.hosts = [hostname.format(rank) if "{" in hostname else hostname for rank in range(nnodes)]
        self.users = list(users)
        self.owner = owner
        mix = dict(DEFAULT_MIX if mix is None else mix)
        unknown = set(mix) - set(JOB_KINDS)
        if unknown:
            raise ValueError(f"unknown job kinds: {sorted(unknown)}")
        self._kinds = [k for k in JOB_KINDS if mix.get(k, 0) > 0]
        weights = [mix[k] for k in self._kinds]
        total = float(sum(weights))
        self._cum = []
        acc = 0.0
        for weight in weights:
            acc += weight / total
            self._cum.append(acc)
        self.fluid = FluidGenerator(start)
        self._slot = 0
        self._jobspecs = {}
        self._rlite = {}
        # (id, clean time, succeeded) of recently finished jobs.
        self._finished = []

    # -- public helpers ----------------------------------------------------

    def pick_kind(self):
        """Draw a job kind according to the mix."""
        index = bisect.bisect_left(self._cum, self.rng.random())
        return self._kinds[min(index, len(self._kinds) - 1)]

    def default_jobspec(self):
        """Rendered jobspec of a one-core ``true`` job."""
        return self._jobspec(("true",), 0, "core", 1, False, 0, None, None)

    def default_R(self, starttime, rank=0, core=0):
        """Rendered R of a one-core allocation starting at *starttime*."""
        return self._R(str(rank), str(core), 1, [rank], starttime, 0.0)

    # -- rendering -----------------------------------------------------------

    def _jobspec(self, command, duration, restype, count, exclusive, user, note, deps):
        key = (command, duration, restype, count, exclusive, user, note, deps)
        cached = self._jobspecs.get(key)
        if cached is not None:
            return cached
        slot = {"type": "slot", "count": 1, "with": [{"type": "core", "count": 1}], "label": "task"}
        if restype == "node":
            node = {"type": "node", "count": count}
            if exclusive:
                node["exclusive"] = True
            node["with"] = [slot]
            resources = [node]
        else:
            slot["with"][0]["count"] = count
            resources = [slot]
        system = {
            "duration": duration,
            "cwd": f"/home/{self.users[user][1]}/work",
            "shell": {"options": {"rlimit": _RLIMIT}},
        }
        if deps is not None:
            system["dependencies"] = [{"scheme": deps[0], "value": deps[1]}]
        attributes = {"system": system}
        if note is not None:
            attributes["user"] = {"note": note}
        jobspec = {
            "resources": resources,
            "tasks": [{"command": list(command), "slot": "task", "count": {"per_slot": 1}}],
            "attributes": attributes,
            "version": 1,
        }
        text = dumps(jobspec)
        if deps is None:
            # Dependency jobspecs name another job; not worth caching.
            self._jobspecs[key] = text
        return text

    def _R(self, ranks, cores, nslots, rank_list, starttime, expiration):
        key = (ranks, cores, tuple(rank_list))
        parts = self._rlite.get(key)
        if parts is None:
            rlite = '[{"rank":"%s","children":{"core":"%s"}}]' % (ranks, cores)
            nodelist = dumps([encode_hostlist(self.hosts[r] for r in rank_list)])
            parts = ('{"version":1,"execution":{"R_lite":%s,"starttime":' % rlite, nodelist)
            self._rlite[key] = parts
        return '%s%s,"expiration":%s,"nslots":%d,"nodelist":%s}}' % (
            parts[0],
            format_real(starttime),
            format_real(expiration),
            nslots,
            parts[1],
        )

    def _allocate(self, nnodes=1):
        """Pick ranks/core round robin; returns (ranks idset, core, rank list, summary)."""
        slot = self._slot
        self._slot += 1
        if nnodes <= 1:
            rank = (slot // self.ncores) % self.nnodes
            core = slot % self.ncores
            return str(rank), str(core), [rank], f"rank{rank}/core{core}"
        nnodes = min(nnodes, self.nnodes)
        first = (slot // self.ncores) % (self.nnodes - nnodes + 1)
        ranks = list(range(first, first + nnodes))
        idset = encode_idset(ranks)
        return idset, "0", ranks, f"rank[{idset}]/core0"

    # -- lifecycles ----------------------------------------------------------

    def make(self, submit_time, kind=None, tie=None):
        """Generate one job submitted at *submit_time*.

        *kind* defaults to a draw from the mix.  *tie*, a (submit,
        second event) timestamp pair of another job, forces this job's
        first two events onto exactly those timestamps.
        """
        rng = self.rng
        if kind is None:
            kind = self.pick_kind()
        elif kind not in JOB_KINDS:
            raise ValueError(f"unknown job kind {kind!r}")
        dep = None
        if kind in AFTER_DESC:
            dep = self._pick_dependency(kind)
            if dep is None:
                kind = "success"
        if tie is not None:
            submit_time = tie[0]
        # Ids are minted by job-ingest a moment before the submit event.
        jobid = self.fluid.generate(submit_time - 0.0005)
        user = rng.randrange(len(self.users)) if len(self.users) > 1 else 0
        flags = 4 if rng.random() < 0.3 else 0
        job_kind = KINDS[kind]
        program = job_kind.program(self, rng, rng.uniform(0.02, 0.12))
        deps = None if dep is None else (kind, f58_utf8(dep[0]))
        jobspec = self._jobspec(
            program.command, program.duration, program.restype, program.count,
            program.exclusive, user, program.note, deps,
        )
        userid = self.users[user][0]
        life = JobLife(rng, GeneratedJob(jobid, kind, userid, submit_time, jobspec, None, []))
        life.post(submit_time, "submit", '{"userid":%d,"urgency":%d,"flags":%d,"version":1}'
                  % (userid, job_kind.urgency, flags))
        second = tie[1] if tie is not None else None
        if deps is not None:
            if not self._depend(life, deps, dep[1], second):
                return self._finish(life.job, False)
        else:
            life.t = second if second is not None else life.t + rng.uniform(0.0105, 0.0250)
            life.post(life.t, "validate")
            life.t += rng.uniform(0.0110, 0.0125)
            life.post(life.t, "depend")
        life.t += rng.uniform(0.00001, 0.0003)
        life.post(life.t, "priority", '{"priority":%d}' % job_kind.urgency)
        if job_kind.queue is not None and job_kind.queue(self, life, program):
            job = life.job
            # A held job is still pending: not a dependency target.
            return self._finish(job, False) if job.complete else job
        return self._run(life, job_kind, program)

    def _depend(self, life, deps, done, second):
        """Post a dependency on a job that finished at *done*; return
        false if it can never be satisfied (the job then ends)."""
        uniform = self.rng.uniform
        scheme, target = deps
        desc = dumps({"description": f"{AFTER_DESC[scheme]}={target}"})
        t = second if second is not None else life.t + uniform(0.0120, 0.0130)
        life.post(t, "dependency-add", desc)
        if scheme == "afternotok":
            # The target succeeded (see _pick_dependency).
            t += uniform(0.00002, 0.00005)
            life.post(t, "validate")
            t = max(t, done) + uniform(0.0002, 0.0008)
            note = f"dependency after-failure={target} can never be satisfied"
            life.raise_exception(t, "dependency", note, self.owner)
            life.post(t + uniform(0.00005, 0.0001), "clean")
            return False
        if done <= t:
            # Target already finished: the dependency goes as it comes.
            t += uniform(0.00002, 0.00005)
            life.post(t, "dependency-remove", desc)
            t += uniform(0.00002, 0.00005)
            life.post(t, "validate")
            t += uniform(0.0110, 0.0125)
        else:
            t += uniform(0.00002, 0.00005)
            life.post(t, "validate")
            t = max(t, done) + uniform(0.0002, 0.0008)
            life.post(t, "dependency-remove", desc)
            t += uniform(0.00001, 0.00003)
        life.post(t, "depend")
        life.t = t
        return True

    def _run(self, life, job_kind, program):
        """Schedule, start and end a job that left the queue."""
        uniform = self.rng.uniform
        # Scheduling: the scheduler annotates, then allocates.
        queued = life.t
        t = queued + uniform(0.003, 0.2)
        ranks, cores, rank_list, summary = self._allocate(program.nodes)
        annotation = '{"annotations":{"sched":{"resource_summary":"%s"}}}' % summary
        life.post(t - uniform(0.00001, 0.00007), "annotations", annotation, False)
        # R's starttime is set when the scheduler decides, between the
        # job entering the queue and the alloc event.
        starttime = t - uniform(0.0005, min(0.03, (t - queued) * 0.9))
        expiration = starttime + program.duration if program.duration else 0.0
        nslots = len(rank_list) if program.nodes > 1 else 1
        R = self._R(ranks, cores, nslots, rank_list, starttime, expiration)
        life.post(t, "alloc", annotation)
        life.t = t + uniform(0.004, 0.03)
        life.post(life.t, "start")
        status = job_kind.ending(self, life, program, expiration)
        t = life.t
        life.post(t, "finish", '{"status":%d}' % status)
        t += uniform(0.002, 0.006)
        life.post(t, "release", '{"ranks":"all","final":true}')
        t += uniform(0.00002, 0.00006)
        life.post(t, "free")
        t += uniform(0.000008, 0.00002)
        life.post(t, "clean")
        life.job.R = R
        return self._finish(life.job, status == STATUS_SUCCESS)

    def _finish(self, job, succeeded):
        finished = self._finished
        finished.append((job.id, job.end_time, succeeded))
        if len(finished) > 64:
            del finished[:32]
        return job

    def _pick_dependency(self, kind):
        want_success = kind in ("afterok", "afternotok")
        for jobid, done, succeeded in reversed(self._finished):
            if succeeded or not want_success:
                return jobid, done
        return None


def generate_jobs(njobs, seed=0, *, rate=20.0, start=DEFAULT_START, kinds=None, **factory_args):
    """Generate *njobs* complete job lifecycles (a list of :class:`GeneratedJob`).

    Jobs are submitted as a Poisson process of *rate* jobs per second
    starting just after *start*.  *kinds*, if given, is a sequence of
    kinds to use in turn instead of drawing from the mix; other keyword
    arguments go to :class:`JobFactory`.
    """
    factory = JobFactory(seed, start=start, **factory_args)
    rng = factory.rng
    t = start + 0.8
    jobs = []
    for index in range(njobs):
        t += rng.expovariate(rate)
        kind = kinds[index % len(kinds)] if kinds else None
        jobs.append(factory.make(t, kind))
    return jobs


class Workload:
    """A job-manager snapshot plus its future, for ``job-manager.events-journal``.

    Arguments:
        njobs: jobs submitted before the snapshot time ``now``.
        seed: everything is a deterministic function of the arguments.
        rate: mean submissions per second.
        live_jobs: jobs submitted after ``now`` (the live stream also
            holds the rest of the jobs active at ``now``).
        live_events: if given, the live stream is exactly this many
            events (enough later jobs are generated); overrides live_jobs.
        ties: probability that a job's first two event timestamps are
            exactly those of the previously submitted job, to create the
            equal timestamps real streams have.
        mix: {kind: weight} overriding :data:`DEFAULT_MIX`.
        nnodes, ncores, hostname: the simulated cluster ("vm" like the
            fixtures, or a pattern such as "node{}").
        users: ((userid, username), ...); owner: the instance owner uid.
        start: epoch time the instance started.

    Attributes: ``now``; ``inactive``, a list of (jobid, backlog response)
    in the order the jobs became inactive; ``active``, a list of
    :class:`ActiveJob`; ``live``, the time-ordered live events as
    ``(timestamp, seq, jobid, name, entry, extra, commit)`` where
    ``extra`` is the jobspec (submit) or R (alloc) text; ``factory``, the
    :class:`JobFactory` that continues the timeline for injected jobs.
    """

    def __init__(
        self,
        njobs=1000,
        seed=0,
        *,
        rate=20.0,
        live_jobs=0,
        live_events=None,
        ties=0.0,
        mix=None,
        nnodes=4,
        ncores=2,
        hostname="vm",
        users=((0, "alice"),),
        owner=0,
        start=DEFAULT_START,
    ):
        self.njobs = njobs
        self.seed = seed
        self.start = start
        self.rate = rate
        self.ties = ties
        factory = JobFactory(
            seed,
            start=start,
            nnodes=nnodes,
            ncores=ncores,
            hostname=hostname,
            users=users,
            owner=owner,
            mix=mix,
        )
        self.factory = factory
        # A separate stream for arrivals keeps submit times independent
        # of how many draws each job's lifecycle makes.
        arrivals = random.Random(f"{seed}-arrivals")
        submits = []
        t = start + 0.8
        for _ in range(njobs):
            t += arrivals.expovariate(rate)
            submits.append(t)
        # The snapshot is taken a moment after the last submission.
        self.now = t + 0.05
        live, seq, prev = self._snapshot(submits)
        # Later jobs arrive after the snapshot.
        self._submit_clock = self.now
        self._arrivals = arrivals
        self._seq = seq
        self._prev = prev
        if live_events is not None:
            live = self._extend_live(live, live_events)
        else:
            for _ in range(live_jobs):
                seq = self._add_live_job(live)
            live.sort()
        self.live = live

    def _snapshot(self, submits):
        """Make the jobs submitted at *submits*; sort them into
        ``inactive`` and ``active`` at ``now``.  Returns the live events
        after ``now`` (unsorted), the next event sequence number and the
        last job made."""
        now = self.now
        factory = self.factory
        rng = factory.rng
        ties = self.ties
        self.active = []
        live = []
        seq = 0
        finished = []  # (clean time, jobid, payload)
        prev = None
        for submit in submits:
            tie = None
            if prev is not None and ties and rng.random() < ties:
                tie = (prev.events[0][0], prev.events[1][0])
            job = factory.make(submit, None, tie)
            prev = job
            events = job.events
            if events[-1][0] <= now and job.complete:
                finished.append((events[-1][0], job.id, job.history_payload()))
                continue
            entries, names = [], []
            R = None
            for ts, name, entry, commit in events:
                if ts <= now:
                    if commit:
                        entries.append(entry)
                        names.append(name)
                    if name == "alloc":
                        R = job.R
                else:
                    extra = job.jobspec if name == "submit" else job.R if name == "alloc" else None
                    live.append((ts, seq, job.id, name, entry, extra, commit))
                seq += 1
            self.active.append(ActiveJob(job.id, entries, names, job.jobspec, R))
        finished.sort(key=lambda item: item[0])
        self.inactive = [(jobid, payload) for _, jobid, payload in finished]
        return live, seq, prev

    def _add_live_job(self, live):
        self._submit_clock += self._arrivals.expovariate(self.rate)
        tie = None
        prev = self._prev
        if prev is not None and self.ties and self.factory.rng.random() < self.ties:
            tie = (prev.events[0][0], prev.events[1][0])
        job = self.factory.make(self._submit_clock, None, tie)
        self._prev = job
        seq = self._seq
        for ts, name, entry, commit in job.events:
            extra = job.jobspec if name == "submit" else job.R if name == "alloc" else None
            live.append((ts, seq, job.id, name, entry, extra, commit))
            seq += 1
        self._seq = seq
        return seq

    def _extend_live(self, live, count):
        # Keep adding jobs until the first *count* live events are final:
        # no job submitted later could slip an event in before them.
        live.sort()
        while True:
            if len(live) >= count:
                cutoff = live[count - 1][0] if count else self.now
                if cutoff < self._submit_clock:
                    return live[:count]
            needed = max(8, (count - len(live)) // 8 + 8)
            for _ in range(needed):
                self._add_live_job(live)
            live.sort()

    # -- views -------------------------------------------------------------

    def history(self, full=True):
        """Backlog responses (raw payload strings) a request would get first.

        Inactive jobs (if *full*) then active ones, each group in the
        job-manager's hash order; the sentinel is not included.
        """
        return JobJournalService(self, autolive=False).backlog(full)

    def history_bytes(self, full=True):
        """Like :meth:`history` but UTF-8 encoded."""
        return [payload.encode("utf-8") for payload in self.history(full)]

    def live_payloads(self):
        """The live responses, one event each, with jobspec on submit and R on alloc."""
        out = []
        for _ts, _seq, jobid, name, entry, extra, _commit in self.live:
            if name == "submit":
                out.append('{"id":%d,"events":[%s],"jobspec":%s}' % (jobid, entry, extra))
            elif name == "alloc":
                out.append('{"id":%d,"events":[%s],"R":%s}' % (jobid, entry, extra))
            else:
                out.append('{"id":%d,"events":[%s]}' % (jobid, entry))
        return out

    def stream(self, full=True):
        """History, sentinel and live responses: a whole capture's worth of lines."""
        return self.history(full) + [JOB_SENTINEL] + self.live_payloads()

    def write_jsonl(self, path, full=True):
        """Write :meth:`stream` to *path*, one payload per line, like the fixtures."""
        with open(path, "w", encoding="utf-8") as out:
            for line in self.stream(full):
                out.write(line)
                out.write("\n")

    def active_ids(self):
        """Ids of the jobs active at ``now``."""
        return [job.id for job in self.active]

    def inactive_ids(self):
        """Ids of the jobs inactive at ``now``."""
        return [jobid for jobid, _ in self.inactive]


class ResourceWorkload:
    """A resource module's journal: boot, then broker and drain activity.

    Arguments:
        nnodes, ncores, hostname: the instance (4 brokers with 2 cores
            named "vm", like the fixtures, by default).
        seed: determinism.
        nevents: random events after boot (drain/undrain, offline/online,
            torpid/lively) in the history.
        live_events: random events after the snapshot, for the live stream.
        restarts: number of earlier runs of the instance; their
            committed events (drain/undrain) precede the current run's
            ``restart``, as the resource module reloads them from the KVS.
        method: how R was found on first boot (``resource-define``
            context); a restarted instance reloads it from the "kvs".
        start: epoch time of the (first) boot.

    Attributes: ``events`` (the journal as (timestamp, name, entry)),
    ``live`` (same shape), ``R`` (rendered), ``now``.
    """

    _REASONS = ("maintenance ☃", "test", "bad DIMM", "nodediag failed", "cycle {} ✓")

    def __init__(
        self,
        nnodes=4,
        seed=0,
        *,
        ncores=2,
        nevents=0,
        live_events=0,
        restarts=0,
        hostname="vm",
        method="dynamic-discovery",
        start=DEFAULT_START,
    ):
        self.nnodes = nnodes
        self.rng = random.Random(f"resource-{seed}")
        self.hosts = [hostname.format(rank) if "{" in hostname else hostname for rank in range(nnodes)]
        cores = "0" if ncores == 1 else f"0-{ncores - 1}"
        self.R = dumps({
            "version": 1,
            "execution": {
                "R_lite": [{"rank": encode_idset(range(nnodes)), "children": {"core": cores}}],
                "starttime": 0.0,
                "expiration": 0.0,
                "nodelist": [encode_hostlist(self.hosts)],
            },
        })
        self._drained = set()
        self._offline = set()
        self._torpid = set()
        self._cycle = 0
        self.events = []
        t = start - 3600.0 * restarts
        for _ in range(restarts):
            # An earlier run: only what the KVS kept (drain/undrain)
            # survives into the current journal.
            run = []
            t = self._boot(run, t, method)
            t = self._random_events(run, t, max(4, nevents // 2 + 2))
            self.events.extend(e for e in run if e[1] in ("drain", "undrain"))
            self._offline = set()
            self._torpid = set()
            t += 3600.0
        t = start + 0.002
        t = self._boot(self.events, t, "kvs" if restarts else method)
        t = self._random_events(self.events, t, nevents)
        self.now = t + 0.1
        self.live = []
        self._random_events(self.live, self.now, live_events)

    def _entry(self, ts, name, context):
        return (ts, name, '{"timestamp":%s,"name":"%s","context":%s}' % (format_real(ts), name, dumps(context)))

    def _boot(self, out, t, method):
        rng = self.rng
        everyone = list(range(self.nnodes))
        out.append(self._entry(t, "restart", {
            "ranks": encode_idset(everyone),
            "online": "",
            "nodelist": encode_hostlist(self.hosts),
        }))
        t += rng.uniform(0.2, 0.3)
        out.append(self._entry(t, "online", {"idset": "0"}))
        t += rng.uniform(0.1, 0.15)
        out.append(self._entry(t, "resource-define", {"method": method}))
        rest = everyone[1:]
        while rest:
            # Brokers join in a few waves.
            take = rng.randint(1, len(rest))
            wave = sorted(rng.sample(rest, take))
            rest = [r for r in rest if r not in wave]
            t += rng.uniform(0.1, 0.2)
            out.append(self._entry(t, "online", {"idset": encode_idset(wave)}))
        return t

    def _random_events(self, out, t, count):
        rng = self.rng
        n = self.nnodes
        for _ in range(count):
            t += rng.uniform(0.1, 0.2)
            choices = []
            undrained = [r for r in range(n) if r not in self._drained]
            if undrained:
                choices += ["drain"] * 3
            if self._drained:
                choices += ["undrain"] * 3
            online = [r for r in range(1, n) if r not in self._offline]
            if online:
                choices += ["offline", "torpid"]
            if self._offline:
                choices += ["online"]
            if self._torpid:
                choices += ["lively"]
            action = rng.choice(choices)
            if action == "drain":
                self._cycle += 1
                first = rng.choice(undrained)
                ranks = [first]
                if first + 1 in undrained and rng.random() < 0.25:
                    ranks.append(first + 1)
                self._drained.update(ranks)
                reason = rng.choice(self._REASONS).format(self._cycle)
                out.append(self._entry(t, "drain", {
                    "idset": encode_idset(ranks),
                    "nodelist": encode_hostlist(self.hosts[r] for r in ranks),
                    "reason": reason,
                    "overwrite": 0,
                }))
            elif action == "undrain":
                rank = rng.choice(sorted(self._drained))
                self._drained.discard(rank)
                out.append(self._entry(t, "undrain", {
                    "idset": str(rank),
                    "nodelist": self.hosts[rank],
                    "overwrite": 0,
                }))
            elif action == "offline":
                rank = rng.choice(online)
                self._offline.add(rank)
                self._torpid.discard(rank)
                out.append(self._entry(t, "offline", {"idset": str(rank)}))
            elif action == "online":
                rank = rng.choice(sorted(self._offline))
                self._offline.discard(rank)
                out.append(self._entry(t, "online", {"idset": str(rank)}))
            elif action == "torpid":
                candidates = [r for r in online if r not in self._torpid]
                if not candidates:
                    continue
                rank = rng.choice(candidates)
                self._torpid.add(rank)
                out.append(self._entry(t, "torpid", {"idset": str(rank)}))
            else:
                rank = rng.choice(sorted(self._torpid))
                self._torpid.discard(rank)
                out.append(self._entry(t, "lively", {"idset": str(rank)}))
        return t

    def history(self, journal_max=100000):
        """Backlog responses (raw payloads, without the sentinel)."""
        return ResourceJournalService(self, journal_max=journal_max, autolive=False).backlog()

    def live_payloads(self):
        """Live responses, one event each (resource-define with R)."""
        out = []
        for _ts, name, entry in self.live:
            if name == "resource-define":
                out.append('{"events":[%s],"R":%s}' % (entry, self.R))
            else:
                out.append('{"events":[%s]}' % entry)
        return out

    def stream(self):
        """History, sentinel and live responses."""
        return self.history() + [RESOURCE_SENTINEL] + self.live_payloads()
