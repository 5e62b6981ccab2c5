"""The job record flux-core's job-list module keeps, built from the journal.

``flux jobs`` shows what job-list (flux-core's ``src/modules/job-list``)
makes of the job-manager journal.  This module makes the same record
from the same events, so that what flux-journal stores (``archive``)
and counts (``metrics``) agrees with what users see; it is the only
place in flux-journal that decides a job's state or result.

:class:`JobModel` holds one :class:`JobRecord` per job and applies each
job event, in delivery order, to its job's record;
:meth:`JobRecord.to_dict` returns the job as ``flux jobs -a -A --json``
prints it (flux-core's ``JobInfo.to_dict()`` of job-list's record).

The rules, as job-list applies them (RFC 21 states, as bits, in order:
NEW, DEPEND, PRIORITY, SCHED, RUN, CLEANUP, INACTIVE):

- ``submit`` creates the record in NEW (userid, urgency and the submit
  version from its context; jobspec from the event);
- ``validate`` enters DEPEND, where the jobspec is read (name, cwd,
  queue, project, bank, duration, ntasks, ncores, nnodes); ``depend``
  enters PRIORITY; ``priority`` sets the priority and moves a job in
  PRIORITY to SCHED; ``urgency``, ``jobspec-update`` and
  ``flux-restart`` move a job in SCHED back to PRIORITY (forgetting that
  it had been in SCHED, so its priority is not shown until the next
  ``priority`` event);
- ``alloc`` enters RUN, where R is read (nnodes, ncores, ranks,
  nodelist, expiration, and ntasks for per-node/per-core task counts);
- ``finish`` records the wait status and enters CLEANUP; a fatal
  (severity 0) ``exception`` enters CLEANUP too.  Each state other than
  PRIORITY and SCHED is entered at most once, so ``t_cleanup`` is the
  time of whichever came first: for a cancelled or timed-out job, the
  exception, not ``finish``;
- ``clean`` enters INACTIVE and decides the result;
- ``invalidate`` removes the job; events of unknown jobs are ignored;
- the exception shown is the first of the most severe ones;
- ``memo`` merges its context into ``annotations.user`` (nulls delete);
  ``annotations`` replaces the annotations; ``dependency-add`` /
  ``dependency-remove`` maintain the dependency list (a description
  once removed is never added again); ``jobspec-update`` and
  ``resource-update`` change the jobspec's dotted paths and R's
  expiration, and the fields read from them.

A job's result: COMPLETED if it finished with status 0 and no fatal
exception had been raised before; otherwise CANCELED or TIMEOUT if the
exception shown is of type ``cancel`` or ``timeout``; otherwise FAILED.
A job that traps SIGTERM and exits 0 after ``flux cancel`` is CANCELED.

Values that ``flux jobs`` computes at the time of the query (``runtime``
of a job still running, ``t_remaining``) are included only when
:meth:`JobRecord.to_dict` is given ``now``.

Events the model cannot use (an event of an unknown job, an unknown
name, a context missing the fields the event needs, an event dated
before its job's previous one) are counted in :attr:`JobModel.errors`
and otherwise ignored, where job-list would log them.  Where job-list
stops reading the journal altogether (a malformed submit, priority,
finish, urgency or exception context) the model ignores that one event.
"""

from __future__ import annotations

import copy
import os
import pwd
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Tuple

from flux_journal.events import DecodedOnAccess
from flux_journal.job import JobID, JournalEvent

if TYPE_CHECKING:
    from typing_extensions import TypeGuard
from flux_journal.metrics.resource import decode_idset
from flux_journal.idsets import decode_hostlist, encode_hostlist, encode_idset

__all__ = [
    "NEW",
    "DEPEND",
    "PRIORITY",
    "SCHED",
    "RUN",
    "CLEANUP",
    "INACTIVE",
    "STATE_NAMES",
    "RESULTS",
    "JobRecord",
    "JobModel",
    "username",
]

# States, in RFC 21's order, as flux-core's bits (a set of states is an int).
NEW = 1
DEPEND = 2
PRIORITY = 4
SCHED = 8
RUN = 16
CLEANUP = 32
INACTIVE = 64
_PENDING = DEPEND | PRIORITY | SCHED
_RUNNING = RUN | CLEANUP
# States that may be entered again; any other is entered at most once.
_REENTERABLE = PRIORITY | SCHED
# What a usable finish event's handler returns (truthy, but not True).
_FINISHED = 2

#: State bit -> the name ``flux jobs`` shows.
STATE_NAMES: Dict[int, str] = {
    NEW: "NEW",
    DEPEND: "DEPEND",
    PRIORITY: "PRIORITY",
    SCHED: "SCHED",
    RUN: "RUN",
    CLEANUP: "CLEANUP",
    INACTIVE: "INACTIVE",
}

#: The results of inactive jobs, as ``flux jobs`` names them.
RESULTS: Tuple[str, ...] = ("COMPLETED", "FAILED", "CANCELED", "TIMEOUT")

_URGENCY_MIN, _URGENCY_MAX = 0, 31
# The prefixes a jobspec-update path may start with (jobspec V1's keys).
_JOBSPEC_KEYS = ("resources", "tasks", "attributes")

_usernames: Dict[int, str] = {}


def username(userid: int) -> str:
    """The login name of *userid*, or the userid as a string if the
    password database has none (as ``flux jobs`` shows it)."""
    name = _usernames.get(userid)
    if name is None:
        try:
            name = pwd.getpwuid(userid).pw_name
        except (KeyError, OverflowError, ValueError):
            name = str(userid)
        _usernames[userid] = name
    return name


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# -- jobspec and R -----------------------------------------------------


class _Shape(Exception):
    """A jobspec or R lacks what job-list needs to read a field."""


def _job_name(jobspec: Dict[str, Any], job_dict: Any) -> Optional[str]:
    """attributes.system.job.name, else the basename of the command."""
    if job_dict is not None:
        name = job_dict.get("name")
        if name is not None:
            if not isinstance(name, str):
                raise _Shape("job name is not a string")
            return name
    tasks = jobspec.get("tasks")
    if not isinstance(tasks, list) or not tasks or not isinstance(tasks[0], dict):
        raise _Shape("no tasks")
    command = tasks[0].get("command")
    if not isinstance(command, list) or not command or not isinstance(command[0], str):
        raise _Shape("no command")
    head, _, tail = command[0].rpartition("/")
    # a path ending in "/" (a directory given by mistake) is kept whole
    return tail if head or tail else command[0]


def _count_resources(level: Any, factor: int, counts: Dict[str, Any]) -> None:
    """Add one level of a jobspec's resources (and those below it) to
    *counts* (see _resource_counts); *factor*: the counts above it
    multiplied.  A function of its own, not a closure: a recursive closure
    is a reference cycle, left to the cyclic collector, per jobspec."""
    if not isinstance(level, list):
        raise _Shape("resources level is not an array")
    for vertex in level:
        if not isinstance(vertex, dict):
            raise _Shape("resource vertex is not an object")
        kind, count = vertex.get("type"), vertex.get("count")
        exclusive = vertex.get("exclusive", False)
        if not isinstance(kind, str) or not _is_int(count) or not isinstance(exclusive, bool):
            raise _Shape("bad resource vertex")
        if count <= 0:
            raise _Shape("bad resource count")
        factor_here = factor * count
        if kind == "node":
            counts["nnodes"] = factor_here
            if exclusive:
                counts["exclusive"] = True
        elif kind == "slot":
            counts["nslots"] = count
        elif kind == "core":
            counts["slot_size"] = count
        if "with" in vertex:
            _count_resources(vertex["with"], factor_here, counts)


def _resource_counts(jobspec: Dict[str, Any]) -> Dict[str, Any]:
    """nnodes, nslots, slot_size and exclusivity of a jobspec's resources
    (flux-core's jj counts)."""
    if not _is_int(jobspec.get("version")) or "resources" not in jobspec:
        raise _Shape("no version or resources")
    system = _system(jobspec)
    if not isinstance(system, dict) or not _is_number(system.get("duration")):
        raise _Shape("no duration")
    counts = {"nnodes": 0, "nslots": 0, "slot_size": 0, "exclusive": False}
    _count_resources(jobspec["resources"], 1, counts)
    if counts["nslots"] <= 0 or counts["slot_size"] <= 0:
        raise _Shape("no slot count or size")
    if counts["nnodes"]:
        counts["nslots"] *= counts["nnodes"]
    return counts


def _system(jobspec: Dict[str, Any]) -> Any:
    attributes = jobspec.get("attributes")
    return attributes.get("system") if isinstance(attributes, dict) else None


def _per_resource(system: Any) -> Tuple[Optional[str], int]:
    """The shell's per-resource option: (type, count), (None, 1) if unset."""
    spec = None
    if isinstance(system, dict):
        shell = system.get("shell")
        if isinstance(shell, dict):
            options = shell.get("options")
            if isinstance(options, dict):
                spec = options.get("per-resource")
    if spec is None:
        return None, 1
    kind = spec.get("type") if isinstance(spec, dict) else None
    count = spec.get("count", 1) if isinstance(spec, dict) else None
    if not isinstance(kind, str) or not _is_int(count) or count < 1:
        raise _Shape("bad per-resource option")
    return kind, count


def _read_allocation(entries: Any, nodelist: Any) -> Tuple[str, str, int, int]:
    """(ranks, nodelist, nnodes, ncores) as job-list shows them, of R's
    R_lite *entries* and *nodelist*."""
    if not isinstance(entries, list):
        raise _Shape("no R_lite")
    cores: Dict[int, int] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("rank"), str):
            raise _Shape("bad R_lite entry")
        children = entry.get("children")
        if not isinstance(children, dict):
            raise _Shape("bad R_lite children")
        try:
            entry_ranks = decode_idset(entry["rank"])
            ncores = len(decode_idset(children.get("core", "")))
        except (ValueError, AttributeError) as exc:
            raise _Shape("bad idset") from exc
        for rank in entry_ranks:
            cores[rank] = cores.get(rank, 0) + ncores
    ranks = sorted(cores)
    hosts: List[str] = []
    if nodelist is not None:
        if not isinstance(nodelist, list) or not all(isinstance(h, str) for h in nodelist):
            raise _Shape("bad nodelist")
        try:
            for part in nodelist:
                hosts.extend(decode_hostlist(part))
        except ValueError as exc:
            raise _Shape("bad nodelist") from exc
        if len(hosts) != len(ranks):
            raise _Shape("nodelist does not match ranks")
    return (encode_idset(ranks, brackets=True), encode_hostlist(hosts), len(ranks),
            sum(cores.values()))


# The allocations of an instance's jobs repeat (one core of one node, a
# whole node): each distinct one is read once, keyed by the texts it is
# read from, (rank, core) of each R_lite entry and the nodelist.  Only
# allocations read without error are kept, so a key found holds strings
# only, compared exactly.  Bounded in entries and in the size of a key.
_ALLOCATIONS: Dict[Any, Tuple[str, str, int, int]] = {}
_ALLOCATIONS_MAX = 4096
_ALLOCATION_ENTRIES_MAX = 16


def _allocation_key(entries: Any, nodelist: Any) -> Any:
    """The cache key of an allocation, None if it is not kept."""
    if (
        not isinstance(entries, list)
        or len(entries) > _ALLOCATION_ENTRIES_MAX
        or not isinstance(nodelist, (list, type(None)))
        or (nodelist is not None and len(nodelist) > _ALLOCATION_ENTRIES_MAX)
    ):
        return None
    try:
        key = (
            tuple([(entry["rank"], entry["children"].get("core", "")) for entry in entries]),
            None if nodelist is None else tuple(nodelist),
        )
        hash(key)
    except (TypeError, KeyError, AttributeError):
        return None
    return key


def _read_R(R: Any) -> Tuple[float, str, str, int, int]:
    """(expiration, ranks, nodelist, nnodes, ncores) of an RFC 20 R, as
    job-list shows them."""
    execution = R.get("execution") if isinstance(R, dict) else None
    if R.get("version") != 1 or not isinstance(execution, dict):
        raise _Shape("not R version 1")
    entries, nodelist = execution.get("R_lite"), execution.get("nodelist")
    key = _allocation_key(entries, nodelist)
    allocation = None if key is None else _ALLOCATIONS.get(key)
    if allocation is None:
        allocation = _read_allocation(entries, nodelist)
        if key is not None:
            if len(_ALLOCATIONS) >= _ALLOCATIONS_MAX:
                _ALLOCATIONS.clear()
            _ALLOCATIONS[key] = allocation
    expiration = execution.get("expiration", 0.0)
    if not _is_number(expiration):
        raise _Shape("bad expiration")
    return (float(expiration),) + allocation


def _jpath_set(obj: Dict[str, Any], path: str, value: Any) -> bool:
    """Set the dotted *path* in *obj* to *value*, making objects on the
    way; False if the path is empty somewhere or runs into a non-object."""
    keys = path.split(".")
    if not all(keys):
        return False
    for key in keys[:-1]:
        inner = obj.get(key)
        if inner is None:
            inner = obj[key] = {}
        elif not isinstance(inner, dict):
            return False
        obj = inner
    obj[keys[-1]] = value
    return True


def _merge(target: Dict[str, Any], update: Dict[str, Any]) -> None:
    """Merge *update* into *target*, objects recursively."""
    for key, value in update.items():
        if isinstance(value, dict):
            inner = target.get(key)
            if not isinstance(inner, dict):
                inner = target[key] = {}
            _merge(inner, value)
        else:
            target[key] = value


def _clear_nulls(obj: Dict[str, Any]) -> None:
    """Drop nulls and (after that) empty objects, recursively."""
    for key in list(obj):
        value = obj[key]
        if isinstance(value, dict):
            _clear_nulls(value)
            if not value:
                del obj[key]
        elif value is None:
            del obj[key]


class _Details:
    """What job-list reads from a job's jobspec and R (absent: None, or -1
    for counts and durations, as job-list keeps them)."""

    __slots__ = (
        "name", "cwd", "queue", "project", "bank", "duration", "ntasks", "ncores",
        "nnodes", "ranks", "nodelist", "expiration", "tasks_per_node", "tasks_per_core",
    )

    def __init__(self) -> None:
        self.name: Optional[str] = None
        self.cwd: Optional[str] = None
        self.queue: Optional[str] = None
        self.project: Optional[str] = None
        self.bank: Optional[str] = None
        self.ranks: Optional[str] = None
        self.nodelist: Optional[str] = None
        self.duration = self.expiration = -1.0
        self.ntasks = self.ncores = self.nnodes = -1
        self.tasks_per_node = self.tasks_per_core = 0

    def read_jobspec(self, jobspec: Any) -> None:
        """Set the jobspec's fields; stop at the first one that is
        malformed (job-list keeps what it read before)."""
        if not isinstance(jobspec, dict):
            return
        try:
            attributes = jobspec.get("attributes")
            if not isinstance(attributes, dict):
                raise _Shape("no attributes")
            system = attributes.get("system")
            job_dict = system.get("job") if isinstance(system, dict) else None
            if job_dict is not None and not isinstance(job_dict, dict):
                raise _Shape("attributes.system.job is not an object")
            self.name = _job_name(jobspec, job_dict)
            self.cwd = self.queue = None
            if system is not None:
                if not isinstance(system, dict):
                    raise _Shape("attributes.system is not an object")
                for key in ("cwd", "queue"):
                    value = system.get(key)
                    if value is not None and not isinstance(value, str):
                        raise _Shape(f"{key} is not a string")
                    setattr(self, key, value)
                duration = system.get("duration")
                if not _is_number(duration):
                    raise _Shape("no duration")
                self.duration = float(duration)
                for key in ("project", "bank"):
                    value = system.get(key)
                    if value is not None:
                        if not isinstance(value, str):
                            raise _Shape(f"{key} is not a string")
                        setattr(self, key, value)
            counts = _resource_counts(jobspec)
            nnodes, nslots = counts["nnodes"], counts["nslots"]
            self.nnodes = nnodes or -1
            self._read_ntasks(jobspec, system, counts)
            self.ncores = -1 if nnodes and counts["exclusive"] else nslots * counts["slot_size"]
        except _Shape:
            pass

    def _read_ntasks(self, jobspec: Dict[str, Any], system: Any, counts: Dict[str, Any]) -> None:
        kind, count = _per_resource(system)
        nnodes = counts["nnodes"]
        if kind == "node":
            if nnodes:
                self.ntasks = nnodes * count
            else:  # known once R says how many nodes
                self.tasks_per_node = count
                self.ntasks = -1
            return
        if kind == "core":
            if not nnodes:
                self.ntasks = counts["nslots"] * counts["slot_size"] * count
            else:  # known once R says how many cores
                self.tasks_per_core = count
                self.ntasks = -1
            return
        tasks = jobspec.get("tasks")
        total = None
        if isinstance(tasks, list) and tasks and isinstance(tasks[0], dict):
            task_count = tasks[0].get("count")
            if isinstance(task_count, dict):
                total = task_count.get("total")
        self.ntasks = total if _is_int(total) else counts["nslots"]

    def take(self, fields: Tuple[Tuple[str, Any], ...]) -> None:
        """Set the fields :func:`_jobspec_fields` read from a jobspec, as
        :meth:`read_jobspec` of that jobspec would."""
        for name, value in fields:
            setattr(self, name, value)

    def read_R(self, R: Any) -> None:
        """Set R's fields (nothing if R is malformed)."""
        try:
            expiration, ranks, nodelist, nnodes, ncores = _read_R(R)
        except (_Shape, AttributeError):
            return
        self.expiration = expiration
        self.nnodes = nnodes
        if self.tasks_per_node:
            self.ntasks = self.nnodes * self.tasks_per_node
        self.ranks = ranks
        self.nodelist = nodelist
        self.ncores = ncores
        if self.tasks_per_core:
            self.ntasks = ncores * self.tasks_per_core


def _jobspec_fields(jobspec: Any) -> Tuple[Tuple[str, Any], ...]:
    """The (field, value) pairs :meth:`_Details.read_jobspec` sets from
    *jobspec*: what it reads depends on the jobspec alone, so jobs
    submitted with the same jobspec text share it (see
    :meth:`JobModel._jobspec`)."""
    probe = _Details.__new__(_Details)  # no field set
    probe.read_jobspec(jobspec)
    return tuple(
        (name, getattr(probe, name)) for name in _Details.__slots__ if hasattr(probe, name)
    )


# -- the record --------------------------------------------------------


class JobRecord:
    """One job as job-list knows it, updated event by event.

    Attributes:
        id: the job id (int)
        state: current state (one of the state bits)
        result: COMPLETED/FAILED/CANCELED/TIMEOUT once INACTIVE, else None
        userid, urgency, priority: as the journal last gave them
        t_submit ... t_inactive: when each state was (first) entered,
            0.0 until then
        waitstatus: the ``finish`` status, or None
        events: events applied
        last: timestamp of the latest event applied
        t_start: timestamp of ``start``, while the job's run is open
        jobspec, R: as given (None without details); the records of
            jobs submitted with the same jobspec text share one jobspec
            object, so it is read-only (a ``jobspec-update`` changes a
            copy)
        jobspec_fields: what the details read from the jobspec, when
            another job's reading of the same text served (else None)
    """

    __slots__ = (
        "id", "state", "states_mask", "entered", "result", "userid", "urgency", "priority",
        "submit_version", "t_submit", "t_depend", "t_priority", "t_sched", "t_run",
        "t_cleanup", "t_inactive", "waitstatus", "success", "exc_severity", "exc_type",
        "exc_note", "annotations", "dependencies", "grudges", "jobspec", "jobspec_fields", "R",
        "details", "events", "last", "t_start",
    )

    def __init__(self, jobid: int, details: bool = True) -> None:
        self.id = jobid
        self.state = self.states_mask = self.entered = NEW
        self.result: Optional[str] = None
        self.userid = 0xFFFFFFFF  # FLUX_USERID_UNKNOWN until submit
        self.urgency = -1
        self.priority = 0
        self.submit_version = -1
        self.t_submit = self.t_depend = self.t_priority = self.t_sched = 0.0
        self.t_run = self.t_cleanup = self.t_inactive = 0.0
        self.waitstatus: Optional[int] = None
        self.success = False
        self.exc_severity: Optional[int] = None
        self.exc_type = self.exc_note = ""
        self.annotations: Optional[Dict[str, Any]] = None
        self.dependencies: Optional[List[str]] = None
        self.grudges: Optional[set] = None
        self.jobspec: Any = None
        # what the details read from the jobspec, if known before validate
        self.jobspec_fields: Optional[Tuple[Tuple[str, Any], ...]] = None
        self.R: Any = None
        # None: details not kept (the exporter needs states and results only)
        self.details: Optional[_Details] = _Details() if details else None
        self.events = 0
        self.last = 0.0
        self.t_start: Optional[float] = None

    # -- transitions ---------------------------------------------------

    # Each state but PRIORITY and SCHED is entered at most once ("entered"
    # keeps every state ever entered; "states_mask", what flux jobs
    # shows, forgets PRIORITY and SCHED on a revert).  One method per
    # transition, because this is the exporter's per-event path.

    def _to_priority(self, timestamp: float) -> None:
        self.entered |= PRIORITY
        if not self.t_priority:
            self.t_priority = timestamp
        self.state = PRIORITY
        self.states_mask |= PRIORITY

    def _to_cleanup(self, timestamp: float) -> None:
        if not self.entered & CLEANUP:
            self.entered |= CLEANUP
            self.t_cleanup = timestamp
            self.state = CLEANUP
            self.states_mask |= CLEANUP

    def _revert(self, timestamp: float) -> None:
        """SCHED -> PRIORITY (RFC 21), forgetting both were entered."""
        if self.state == SCHED:
            self.states_mask &= ~(SCHED | PRIORITY)
            self._to_priority(timestamp)

    def _decide_result(self) -> str:
        if self.success:
            return "COMPLETED"
        if self.exc_severity is not None:
            if self.exc_type == "cancel":
                return "CANCELED"
            if self.exc_type == "timeout":
                return "TIMEOUT"
        return "FAILED"

    # -- events (each returns True, or False if the context is unusable,
    # or _FINISHED for a usable finish) ---------------------------------

    def _submit(self, timestamp: float, context: Dict[str, Any]) -> bool:
        userid, urgency = context.get("userid"), context.get("urgency")
        version = context.get("version", -1)
        if not _is_int(userid) or not _is_int(urgency) or not _is_int(version):
            return False
        self.userid, self.urgency, self.submit_version = userid, urgency, version
        self.t_submit = timestamp
        return True

    def _validate(self, timestamp: float, context: Dict[str, Any]) -> bool:
        if not self.entered & DEPEND:
            self.entered |= DEPEND
            if self.details is not None and self.jobspec is not None:
                if self.jobspec_fields is None:
                    self.details.read_jobspec(self.jobspec)
                else:
                    self.details.take(self.jobspec_fields)
            self.t_depend = timestamp
            self.state = DEPEND
            self.states_mask |= DEPEND
        return True

    def _depend(self, timestamp: float, context: Dict[str, Any]) -> bool:
        self._to_priority(timestamp)
        return True

    def _priority(self, timestamp: float, context: Dict[str, Any]) -> bool:
        priority = context.get("priority")
        if not _is_int(priority):
            return False
        self.priority = priority
        if self.state == PRIORITY:
            self.entered |= SCHED
            if not self.t_sched:
                self.t_sched = timestamp
            self.state = SCHED
            self.states_mask |= SCHED
        return True

    def _alloc(self, timestamp: float, context: Dict[str, Any]) -> bool:
        if not self.entered & RUN:
            self.entered |= RUN
            if self.details is not None and self.R is not None:
                self.details.read_R(self.R)
            self.t_run = timestamp
            self.state = RUN
            self.states_mask |= RUN
        return True

    def _start(self, timestamp: float, context: Dict[str, Any]) -> bool:
        self.t_start = timestamp
        return True

    def _finish(self, timestamp: float, context: Dict[str, Any]) -> int:
        status = context.get("status")
        if not _is_int(status):
            return False
        self.waitstatus = status
        if status == 0 and self.exc_severity != 0:
            self.success = True
        self._to_cleanup(timestamp)
        return _FINISHED

    def _clean(self, timestamp: float, context: Dict[str, Any]) -> bool:
        if not self.entered & INACTIVE:
            self.entered |= INACTIVE
            self.result = self._decide_result()
            self.t_inactive = timestamp
            self.state = INACTIVE
            self.states_mask |= INACTIVE
        return True

    def _urgency(self, timestamp: float, context: Dict[str, Any]) -> bool:
        urgency = context.get("urgency")
        if not _is_int(urgency) or not _URGENCY_MIN <= urgency <= _URGENCY_MAX:
            return False
        self.urgency = urgency
        self._revert(timestamp)
        return True

    def _exception(self, timestamp: float, context: Dict[str, Any]) -> bool:
        kind, severity, note = context.get("type"), context.get("severity"), context.get("note")
        if not isinstance(kind, str) or not _is_int(severity) or not isinstance(note, str):
            return False
        if self.exc_severity is None or severity < self.exc_severity:
            self.exc_severity, self.exc_type, self.exc_note = severity, kind, note
        if severity == 0:
            self._to_cleanup(timestamp)
        return True

    def _annotations(self, timestamp: float, context: Dict[str, Any]) -> bool:
        if "annotations" not in context:
            return False
        if self.details is None:
            return True
        annotations = context["annotations"]
        self.annotations = copy.deepcopy(annotations) if annotations is not None else None
        return True

    def _memo(self, timestamp: float, context: Dict[str, Any]) -> bool:
        if not isinstance(context, dict):
            return False
        if self.details is None:
            return True
        annotations = self.annotations
        if annotations is None:
            annotations = {}
        user = annotations.get("user")
        if isinstance(user, dict):
            _merge(user, context)
        else:
            annotations["user"] = copy.deepcopy(context)
        _clear_nulls(annotations)
        self.annotations = annotations or None
        return True

    def _dependency_add(self, timestamp: float, context: Dict[str, Any]) -> bool:
        description = context.get("description")
        if not isinstance(description, str):
            return False
        if self.details is None:
            return True
        if self.dependencies is None:
            self.dependencies, self.grudges = [], set()
        if description not in self.grudges:  # type: ignore[operator]
            self.grudges.add(description)  # type: ignore[union-attr]
            self.dependencies.append(description)
        return True

    def _dependency_remove(self, timestamp: float, context: Dict[str, Any]) -> bool:
        description = context.get("description")
        if not isinstance(description, str):
            return False
        if self.dependencies is not None and description in self.dependencies:
            self.dependencies.remove(description)
        return True

    def _jobspec_update(self, timestamp: float, context: Dict[str, Any]) -> bool:
        details = self.details
        if details is not None and isinstance(self.jobspec, dict):
            # the jobspec is the submit event's: changed on a copy
            jobspec = self.jobspec = copy.deepcopy(self.jobspec)
            self.jobspec_fields = None
            for path, value in context.items():
                if path.split(".", 1)[0] in _JOBSPEC_KEYS:
                    _jpath_set(jobspec, path, copy.deepcopy(value))
            details.read_jobspec(jobspec)
        self._revert(timestamp)
        return True

    def _resource_update(self, timestamp: float, context: Dict[str, Any]) -> bool:
        details = self.details
        if details is not None and isinstance(self.R, dict):
            R = self.R = copy.deepcopy(self.R)
            if "expiration" in context:
                _jpath_set(R, "execution.expiration", context["expiration"])
            details.read_R(R)
        return True

    def _flux_restart(self, timestamp: float, context: Dict[str, Any]) -> bool:
        self._revert(timestamp)
        return True

    # -- reading ---------------------------------------------------------

    def _shown_waitstatus(self) -> Optional[int]:
        status = self.waitstatus
        return status if status is not None and status >= 0 else None

    def returncode(self) -> Any:
        """``flux jobs``' returncode: the exit code, minus the signal, -128
        for a job cancelled before it ran, 1 for one that failed before
        it ran; "" while unknown."""
        status = self._shown_waitstatus()
        if status is None:
            if self.result == "CANCELED":
                return -128
            if self.result == "FAILED":
                return 1
            return ""
        if os.WIFSIGNALED(status):
            return -os.WTERMSIG(status)
        if os.WIFEXITED(status):
            return os.WEXITSTATUS(status)
        return ""

    def to_dict(self, now: Optional[float] = None) -> Dict[str, Any]:
        """The job as ``flux jobs -a -A --json`` prints it.

        Unset values are left out, as flux jobs leaves them out.  *now*
        (seconds since the epoch) is the time of the query, for the
        ``runtime`` of a job that is still running and ``t_remaining``;
        without it those two are left out for such a job.
        """
        mask = self.states_mask
        state = self.state
        record: Dict[str, Any] = {
            "id": int(self.id),
            # from the int: JobID(JobID) re-parses the id's text
            "jobid": JobID(int(self.id)).f58,
            "userid": self.userid,
            "username": username(self.userid),
            "urgency": self.urgency,
            "state": STATE_NAMES[state],
            "t_submit": self.t_submit,
        }
        if mask & SCHED:
            record["priority"] = self.priority
        if self.submit_version < 1:
            record["t_depend"] = self.t_submit  # no validate event before 0.41
        elif mask & DEPEND:
            record["t_depend"] = self.t_depend
        for key, value, known in (
            ("t_priority", self.t_priority, True),
            ("t_sched", self.t_sched, True),
            ("t_run", self.t_run, mask & RUN),
            ("t_cleanup", self.t_cleanup, mask & CLEANUP),
            ("t_inactive", self.t_inactive, mask & INACTIVE),
        ):
            if known and value:
                record[key] = value
        t_run = self.t_run if mask & RUN else 0.0
        t_cleanup = self.t_cleanup if mask & CLEANUP else 0.0
        if t_run and t_cleanup:
            record["runtime"] = t_cleanup - t_run
        elif t_run and now is not None:
            record["runtime"] = now - t_run
        if state & _PENDING or state & _RUNNING:
            record["status"] = STATE_NAMES[state]
        inactive = mask & INACTIVE
        if inactive:
            record["result"] = record["status"] = self.result
            record["success"] = self.success
        waitstatus = self._shown_waitstatus()
        if waitstatus is not None:
            record["waitstatus"] = waitstatus
        returncode = self.returncode()
        if returncode != "":
            record["returncode"] = returncode
        if inactive and self.exc_severity is not None:
            record["exception"] = {
                "occurred": True,
                "severity": self.exc_severity,
                "type": self.exc_type,
                "note": self.exc_note,
            }
        else:
            record["exception"] = {"occurred": False}
        self._add_details(record, now)
        record["dependencies"] = _show_dependencies(self.dependencies or ())
        annotations = copy.deepcopy(self.annotations) if self.annotations else {}
        user = annotations.get("user")
        if isinstance(user, dict) and "uri" in user:
            # flux jobs shows a job's own instance's URI on its own
            record["uri"] = str(user.pop("uri"))
            if not user:
                del annotations["user"]
        record["annotations"] = annotations
        return record

    def _add_details(self, record: Dict[str, Any], now: Optional[float]) -> None:
        details = self.details
        # flux jobs shows a duration whatever job-list says (0.0 unknown)
        record["duration"] = 0.0
        if details is None:
            return
        if details.duration >= 0:
            record["duration"] = details.duration
        for key in ("name", "cwd", "queue", "project", "bank"):
            value = getattr(details, key)
            if value:
                record[key] = value
        for key in ("ntasks", "ncores", "nnodes"):
            value = getattr(details, key)
            if value >= 0:
                record[key] = value
        if self.states_mask & RUN:
            if details.ranks:
                record["ranks"] = details.ranks
            if details.nodelist:
                record["nodelist"] = details.nodelist
            if details.expiration > 0:
                record["expiration"] = details.expiration
                if now is not None and self.state == RUN and details.expiration > now:
                    record["t_remaining"] = details.expiration - now


def _show_dependencies(dependencies: Any) -> List[str]:
    """Dependencies as flux jobs lists them: ``begin-time=T`` as
    ``begin@HH:MM`` (today) or ``begin@MonDD-HH:MM``, local time, with
    ``:SS`` when the seconds are not zero."""
    shown = []
    for dependency in dependencies:
        if dependency.startswith("begin-time="):
            try:
                when = datetime.fromtimestamp(float(dependency.partition("=")[2])).astimezone()
            except (ValueError, OverflowError, OSError):
                shown.append(dependency)
                continue
            if when.date() == datetime.today().date():
                dependency = f"begin@{when:%H:%M}"
            else:
                dependency = f"begin@{when:%b%d-%H:%M}"
            if when.second > 0:
                dependency += f":{when:%S}"
        shown.append(dependency)
    return shown


# Event name -> what it does to a record (names not here are counted as
# unknown unless they have one of _INERT_PREFIXES).
_SUBMIT = JobRecord._submit
_HANDLERS: Dict[str, Callable[[JobRecord, float, Dict[str, Any]], Any]] = {
    "submit": _SUBMIT,
    "validate": JobRecord._validate,
    "depend": JobRecord._depend,
    "priority": JobRecord._priority,
    "alloc": JobRecord._alloc,
    "start": JobRecord._start,
    "finish": JobRecord._finish,
    "clean": JobRecord._clean,
    "urgency": JobRecord._urgency,
    "exception": JobRecord._exception,
    "annotations": JobRecord._annotations,
    "memo": JobRecord._memo,
    "dependency-add": JobRecord._dependency_add,
    "dependency-remove": JobRecord._dependency_remove,
    "jobspec-update": JobRecord._jobspec_update,
    "resource-update": JobRecord._resource_update,
    "flux-restart": JobRecord._flux_restart,
}
# Distinct jobspec texts whose reading a model keeps (the most recent).
_JOBSPEC_MEMO_SIZE = 256
# Job events' jobspec attribute: its undecoded text keys those readings.
_JOBSPEC_ATTRIBUTE: DecodedOnAccess = vars(JournalEvent)["jobspec"]

# Names of job events that change nothing job-list shows (RFC 21 and
# flux-core's job manager), and prefixes of families of such names.
_INERT = frozenset(("release", "free", "set-flags"))
_INERT_PREFIXES = ("prolog-", "epilog-", "debug", "dependency-")


class JobModel:
    """Job records kept from the job-manager journal's events.

    Args:
        details: keep each job's jobspec and R, what job-list reads from
            them (name, nodelist, ...), its annotations and dependencies;
            without, records hold states, times, results and exceptions
            only (what the exporter counts; cheaper)
        drop_inactive: forget a job's record as soon as it becomes
            INACTIVE (once counted); otherwise :meth:`forget` does

    Attributes:
        states: state bit -> jobs in that state (INACTIVE: every job that
            became inactive, forgotten or not)
        results: result -> jobs that became inactive with it
        errors: kind -> events that could not be used (``unknown_job``,
            ``unknown_event``, ``bad_context``, ``out_of_order``)
    """

    def __init__(self, details: bool = True, drop_inactive: bool = False) -> None:
        self.details = details
        self.drop_inactive = drop_inactive
        self.states: Dict[int, int] = dict.fromkeys(STATE_NAMES, 0)
        self.results: Dict[str, int] = dict.fromkeys(RESULTS, 0)
        self.errors: Dict[str, int] = {}
        self._jobs: Dict[int, JobRecord] = {}
        # jobspec text -> (jobspec, its fields): see _jobspec()
        self._jobspecs: Dict[bytes, Tuple[Any, Tuple[Tuple[str, Any], ...]]] = {}

    @property
    def active(self) -> int:
        """Records held (with drop_inactive, the jobs not yet inactive)."""
        return len(self._jobs)

    def get(self, jobid: int) -> Optional[JobRecord]:
        """The record of *jobid*, or None if not held."""
        return self._jobs.get(jobid)

    def records(self) -> List[JobRecord]:
        """The records held."""
        return list(self._jobs.values())

    def count_error(self, kind: str, count: int = 1) -> None:
        """Add *count* to the error counter *kind*."""
        self.errors[kind] = self.errors.get(kind, 0) + count

    def adopt(self, record: JobRecord) -> None:
        """Hold *record* (rebuilt elsewhere, e.g. from an archive) and
        count it in its state."""
        self._jobs[record.id] = record
        self.states[record.state] += 1

    def forget(self, jobid: int) -> None:
        """Drop the record of *jobid* (its counts stay)."""
        record = self._jobs.pop(jobid, None)
        if record is not None and record.state != INACTIVE:
            self.states[record.state] -= 1

    def apply_events(self, events: Iterable[Any]) -> None:
        """Apply journal events (JournalEvents of one stream, in delivery
        order: dicts with name, timestamp and context, and a jobid)."""
        # One loop for every event of every user of the model: this is
        # the exporter's per-event cost, so it stays in one frame.
        jobs = self._jobs
        handlers = _HANDLERS
        details = self.details
        for event in events:
            jobid = event.jobid
            name = event["name"]
            timestamp = event["timestamp"]
            handler = handlers.get(name)
            record = jobs.get(jobid)
            if record is None:
                if handler is not _SUBMIT:
                    self.count_error("unknown_job")
                    continue
                record = self._create(jobid)
                if details:
                    record.jobspec, record.jobspec_fields = self._jobspec(event)
            elif details and name == "alloc" and record.R is None:
                record.R = event.R
            record.events += 1
            if timestamp < record.last:
                self.count_error("out_of_order")
            else:
                record.last = timestamp
            if handler is None:
                if name in _INERT:
                    continue
                if name == "invalidate":
                    self.forget(jobid)
                elif not name.startswith(_INERT_PREFIXES):
                    self.count_error("unknown_event")
                continue
            old = record.state
            try:
                outcome = handler(record, timestamp, event["context"])
            except AttributeError:  # a context that is no object
                outcome = False
            if outcome is not True:
                if outcome:
                    self._finished(record, timestamp)
                else:
                    self.count_error("bad_context")
            state = record.state
            if state != old:
                states = self.states
                states[old] -= 1
                states[state] += 1
                if state == RUN:
                    self._ran(record)
                elif state == INACTIVE:
                    self.results[record.result] += 1  # type: ignore[index]
                    if self.drop_inactive:
                        del jobs[jobid]

    def _jobspec(self, event: Any) -> Tuple[Any, Optional[Tuple[Tuple[str, Any], ...]]]:
        """The jobspec of a ``submit`` *event* and what the details read
        from it.  Jobs are often submitted with the same jobspec: one
        decoded object and one reading serve every job whose jobspec text
        is the same, while the event still holds that text undecoded."""
        text = _JOBSPEC_ATTRIBUTE.undecoded(event)
        if text is None:  # decoded already (or not a JournalEvent)
            return event.jobspec, None
        memo = self._jobspecs
        known = memo.get(text)
        if known is None:
            jobspec = event.jobspec
            known = (jobspec, _jobspec_fields(jobspec))
            if len(memo) >= _JOBSPEC_MEMO_SIZE:
                del memo[next(iter(memo))]  # the oldest
            memo[text] = known
        return known

    def _create(self, jobid: int) -> JobRecord:
        record = JobRecord(jobid, self.details)
        self._jobs[jobid] = record
        self.states[NEW] += 1
        return record

    def _ran(self, record: JobRecord) -> None:
        """Called when *record* enters RUN (subclasses observe it)."""

    def _finished(self, record: JobRecord, timestamp: float) -> None:
        """Called on each usable ``finish`` event of *record*, which is in
        CLEANUP by then (subclasses observe it)."""
