"""The kinds of job a simulated instance runs, as a table.

Each kind (:data:`JOB_KINDS`) is a row of :data:`KINDS`: what the job
runs (a command, its run time and exit status, its resource request),
its urgency at submission, what happens to it in the queue (held,
canceled, urgency changed, found unsatisfiable) and how it ends once
started (exits, times out, canceled, killed by an exception).  The
:class:`~flux_journal.sim.workload.JobFactory` walks a row to write the
job's RFC 21 events into a :class:`JobLife`.
"""

import collections

from flux_journal.sim.encode import dumps, format_real

__all__ = ["JOB_KINDS"]

_UNICODE_ECHO = ("echo", "héllo ☃ ∑ 日本語")
_UNICODE_NOTE = 'héllo ☃ "quoted" \\ back'

# A finish event's "status" is a wait(2) status, as flux-core's job shell
# reports it and its tools decode it: WIFEXITED/WEXITSTATUS for an exit
# code (second byte), WIFSIGNALED/WTERMSIG for a terminating signal (low
# seven bits).  A task killed by a signal makes the shell exit with
# 128 + the signal number.

_SIGALRM = 14  # Linux signal numbers, as a broker's events carry them
_SIGTERM = 15


def _exited(code):
    """The wait status of a process that exited with *code*."""
    return code << 8


def _killed_by(signum):
    """The wait status of a process terminated by signal *signum*."""
    return signum


STATUS_SUCCESS = _exited(0)
# `false` and `sh -c "exit 3"`
_STATUS_EXIT_1 = _exited(1)
_STATUS_EXIT_3 = _exited(3)
# At the time limit job-exec sends the tasks SIGALRM: exit 142.
_STATUS_TIMED_OUT = _exited(128 + _SIGALRM)
# A running job's cancel exception makes job-exec send SIGTERM: exit 143.
_STATUS_CANCELED = _exited(128 + _SIGTERM)
# A fatal exception of another type: the job shell itself gets SIGTERM.
_STATUS_SHELL_TERMINATED = _killed_by(_SIGTERM)

# Urgencies (RFC 21 / flux job urgency): held jobs wait at 0, the
# default is 16 and expedited jobs get 31, which the priority plugin
# maps to the maximum priority.
_URGENCY_HOLD = 0
_URGENCY_DEFAULT = 16
_URGENCY_EXPEDITE = 31
_PRIORITY_MAX = 4294967295

# The dependency kinds are named after flux's dependency schemes; this
# is how a dependency-add event describes each.
AFTER_DESC = {"afterok": "after-success", "afterany": "after-finish", "afternotok": "after-failure"}


# What a job runs and asks for: its jobspec's inputs, how long it runs
# and the wait status it exits with.
_Program = collections.namedtuple(
    "_Program",
    ("runtime", "command", "status", "duration", "restype", "count", "exclusive", "note", "nodes"),
    defaults=(("true",), STATUS_SUCCESS, 0, "core", 1, False, None, 1),
)


class JobLife:
    """A job being generated: the
    :class:`~flux_journal.sim.workload.GeneratedJob` so far (``job``)
    and its clock ``t``."""

    __slots__ = ("rng", "job", "t")

    def __init__(self, rng, job):
        self.rng = rng
        self.job = job
        self.t = job.submit_time

    def post(self, ts, name, context=None, commit=True):
        """Add event *name* at *ts*; *context* is JSON text or None (no
        context member); *commit* is false for journal-only events."""
        if context is None:
            entry = '{"timestamp":%s,"name":"%s"}' % (format_real(ts), name)
        else:
            entry = '{"timestamp":%s,"name":"%s","context":%s}' % (format_real(ts), name, context)
        self.job.events.append((ts, name, entry, commit))

    def raise_exception(self, ts, exc_type, note, userid):
        """Post a fatal (severity 0) exception event."""
        context = {"type": exc_type, "severity": 0, "note": note, "userid": userid}
        self.post(ts, "exception", dumps(context))


# What each kind runs: (factory, rng, a drawn default run time) -> _Program.


def _runs_true(factory, rng, runtime):
    del factory, rng
    return _Program(runtime)


def _runs_ordinary(factory, rng, runtime):
    del factory
    draw = rng.random()
    if draw < 0.55:
        return _Program(runtime)
    if draw < 0.75:
        return _Program(rng.uniform(0.02, 0.08), ("hostname",))
    if draw < 0.9:
        return _Program(1.0 + rng.uniform(0.01, 0.03), ("sleep", "1"))
    if draw < 0.97:
        return _Program(10.0 + rng.uniform(0.01, 0.03), ("sleep", "10"))
    return _Program(rng.uniform(0.03, 0.09), _UNICODE_ECHO, note=_UNICODE_NOTE)


def _runs_failing(factory, rng, runtime):
    del factory
    if rng.random() < 0.6:
        return _Program(runtime, ("false",), _STATUS_EXIT_1)
    return _Program(runtime, ("sh", "-c", "exit 3"), _STATUS_EXIT_3)


def _runs_long(factory, rng, runtime):
    del factory, runtime
    return _Program(300.0 + rng.uniform(0.01, 0.03), ("sleep", "300"))


def _runs_until_stopped(factory, rng, runtime):
    del factory, rng, runtime
    return _Program(30.0, ("sleep", "30"))


def _runs_past_limit(factory, rng, runtime):
    del factory, runtime
    # Time limits shorter than the 30 s sleep, so they expire.
    return _Program(30.0, ("sleep", "30"), duration=rng.choice((0.3, 1.0, 5.0, 10.0)))


def _asks_too_much(factory, rng, runtime):
    del rng
    return _Program(runtime, restype="node", count=factory.nnodes * 16, exclusive=True)


def _runs_on_nodes(factory, rng, runtime):
    del runtime
    nodes = min(2, factory.nnodes)
    runtime = rng.uniform(0.02, 0.06)
    if nodes > 1:
        return _Program(runtime, ("hostname",), restype="node", count=nodes, nodes=nodes)
    return _Program(runtime, ("hostname",))


# What happens in the queue, after the first priority event: (factory,
# life, program) -> true if the job's life ends there (with clean, or
# held for good), false when it goes on to be scheduled.


def _stays_held(factory, life, program):
    del factory, life, program
    return True


def _canceled_pending(factory, life, program):
    del factory, program
    uniform = life.rng.uniform
    t = life.t + uniform(0.05, 2.0)
    life.raise_exception(t, "cancel", "", life.job.userid)
    life.post(t + uniform(0.00005, 0.0001), "clean")
    return True


def _urgency_set(urgency, priority):
    def queue(factory, life, program):
        del factory, program
        uniform = life.rng.uniform
        life.t += uniform(0.02, 5.0)
        life.post(life.t, "urgency", '{"userid":%d,"urgency":%d}' % (life.job.userid, urgency))
        life.t += uniform(0.0001, 0.0002)
        life.post(life.t, "priority", '{"priority":%d}' % priority)
        return False

    return queue


def _unsatisfiable(factory, life, program):
    uniform = life.rng.uniform
    t = life.t + uniform(0.001, 0.003)
    note = (
        f"unsatisfiable request: need {program.count} exclusive node(s), "
        f"only {factory.nnodes} eligible"
    )
    life.raise_exception(t, "alloc", note, factory.owner)
    life.post(t + uniform(0.00003, 0.0001), "clean")
    return True


# How a started job ends: (factory, life, program, expiration) -> the
# wait status of its finish event, with life.t moved to that event.


def _exits(factory, life, program, expiration):
    del expiration
    t = life.t + program.runtime
    if life.job.events[-1][0] > t:  # a memo posted late in a short job
        t = life.job.events[-1][0] + factory.rng.uniform(0.001, 0.005)
    life.t = t
    return program.status


def _posts_memo(factory, life, program, expiration):
    rng = factory.rng
    when = life.t + rng.uniform(0.001, 0.01)
    life.post(when, "memo", '{"progress":"checkpoint %d"}' % rng.randrange(1, 10))
    return _exits(factory, life, program, expiration)


def _times_out(factory, life, program, expiration):
    del program
    uniform = factory.rng.uniform
    t = max(life.t, expiration) + uniform(0.0015, 0.003)
    context = {"type": "timeout", "severity": 0, "userid": factory.owner,
               "note": "resource allocation expired"}
    life.post(t, "exception", dumps(context))
    life.t = t + uniform(0.003, 0.006)
    return _STATUS_TIMED_OUT


def _ended_by_exception(exc_type, note, after, wind_down, status):
    """An ending: the job's owner raises a fatal *exc_type* exception
    *after* (low, high) seconds of running; the finish event, with
    *status*, follows *wind_down* (low, high) seconds later."""

    def ending(factory, life, program, expiration):
        del program, expiration
        uniform = factory.rng.uniform
        t = life.t + uniform(*after)
        life.raise_exception(t, exc_type, note, life.job.userid)
        life.t = t + uniform(*wind_down)
        return status

    return ending


class _JobKind:
    """One kind of job: what it runs, its submit urgency, what happens in
    the queue (None: scheduled as soon as possible) and how it ends
    once started (None: it never starts)."""

    __slots__ = ("program", "urgency", "queue", "ending")

    def __init__(self, program, urgency=_URGENCY_DEFAULT, queue=None, ending=_exits):
        self.program = program
        self.urgency = urgency
        self.queue = queue
        self.ending = ending


KINDS = {
    "success": _JobKind(_runs_ordinary),
    "failed": _JobKind(_runs_failing),
    "long": _JobKind(_runs_long),
    "held": _JobKind(_runs_true, _URGENCY_HOLD, _stays_held, None),
    "released": _JobKind(
        _runs_ordinary, _URGENCY_HOLD, _urgency_set(_URGENCY_DEFAULT, _URGENCY_DEFAULT)
    ),
    "expedited": _JobKind(
        _runs_ordinary, _URGENCY_HOLD, _urgency_set(_URGENCY_EXPEDITE, _PRIORITY_MAX)
    ),
    "cancel-pending": _JobKind(_runs_true, _URGENCY_HOLD, _canceled_pending, None),
    "cancel-running": _JobKind(
        _runs_until_stopped,
        ending=_ended_by_exception("cancel", "", (0.05, 3.0), (0.003, 0.006), _STATUS_CANCELED),
    ),
    "timeout": _JobKind(_runs_past_limit, ending=_times_out),
    "exception": _JobKind(
        _runs_until_stopped,
        ending=_ended_by_exception(
            "test", "injected failure", (0.02, 1.0), (0.001, 0.003), _STATUS_SHELL_TERMINATED
        ),
    ),
    "unsatisfiable": _JobKind(_asks_too_much, queue=_unsatisfiable, ending=None),
    # Dependency kinds: their target is picked by the factory.
    "afterok": _JobKind(_runs_true),
    "afterany": _JobKind(_runs_true),
    "afternotok": _JobKind(_runs_true),
    "memo": _JobKind(_runs_ordinary, ending=_posts_memo),
    "multinode": _JobKind(_runs_on_nodes),
}

#: Every job kind a :class:`JobFactory` can make.
JOB_KINDS = tuple(KINDS)
