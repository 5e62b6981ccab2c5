"""The fields of one archived job, as ``flux jobs`` names and computes them.

An archived job is the dict ``flux jobs --json`` prints for it (job-list's
record as flux-core's ``JobInfo.to_dict()`` filters it: unset values are
absent) plus the archive's ``instance``.  :class:`JobFields` answers
``flux jobs``' field names (``id.f58``, ``status_abbrev``, ``runtime``,
``contextual_info``, ``annotations.sched.reason_pending``, ...) with the
values ``flux jobs`` formats: an absent value is ``""`` (timestamps,
``duration`` and ``expiration``: ``0.0``), as flux-core's defaults make it.

Values that depend on the time of the query (``runtime`` of a running job,
``t_remaining``, a scheduler's ``eta``) are computed against the ``now``
given, so that one listing is consistent and tests can fix it.
"""

import json
import signal
import sys

from flux_journal.job import JobID

__all__ = [
    "HEADINGS",
    "JobFields",
    "EmptyValue",
    "fsd",
    "runtime_of",
    "t_remaining_of",
    "heading_of",
    "is_field",
]

#: ``flux jobs``' column heading of each field it knows (and ``instance``).
HEADINGS = {
    "id": "JOBID",
    "id.dec": "JOBID",
    "id.hex": "JOBID",
    "id.f58": "JOBID",
    "id.f58plain": "JOBID",
    "id.emoji": "JOBID",
    "id.kvs": "JOBID",
    "id.words": "JOBID",
    "id.dothex": "JOBID",
    "userid": "UID",
    "username": "USER",
    "urgency": "URG",
    "priority": "PRI",
    "state": "STATE",
    "state_single": "S",
    "name": "NAME",
    "cwd": "CWD",
    "queue": "QUEUE",
    "project": "PROJECT",
    "bank": "BANK",
    "ntasks": "NTASKS",
    "ncores": "NCORES",
    "duration": "DURATION",
    "nnodes": "NNODES",
    "expiration": "EXPIRATION",
    "t_remaining": "T_REMAINING",
    "ranks": "RANKS",
    "nodelist": "NODELIST",
    "success": "SUCCESS",
    "result": "RESULT",
    "result_abbrev": "RS",
    "t_submit": "T_SUBMIT",
    "t_depend": "T_DEPEND",
    "t_priority": "T_PRIORITY",
    "t_sched": "T_SCHED",
    "t_run": "T_RUN",
    "t_cleanup": "T_CLEANUP",
    "t_inactive": "T_INACTIVE",
    "runtime": "RUNTIME",
    "status": "STATUS",
    "status_abbrev": "ST",
    "state_emoji": "STATE",
    "result_emoji": "RESULT",
    "status_emoji": "STATUS",
    "waitstatus": "WSTATUS",
    "returncode": "RC",
    "exception.occurred": "EXCEPTION-OCCURRED",
    "exception.severity": "EXCEPTION-SEVERITY",
    "exception.type": "EXCEPTION-TYPE",
    "exception.note": "EXCEPTION-NOTE",
    "annotations": "ANNOTATIONS",
    "dependencies": "DEPENDENCIES",
    "contextual_info": "INFO",
    "contextual_time": "TIME",
    "inactive_reason": "INACTIVE-REASON",
    "annotations.sched.t_estimate": "T_ESTIMATE",
    "annotations.sched.reason_pending": "REASON",
    "annotations.sched.resource_summary": "RESOURCES",
    "sched": "SCHED",
    "sched.t_estimate": "T_ESTIMATE",
    "sched.reason_pending": "REASON",
    "sched.resource_summary": "RESOURCES",
    "user": "USER",
    "instance": "INSTANCE",
}

# Prefixes of fields that name keys inside the annotations object (which
# the scheduler and users choose), and where they point.
_ANNOTATION_PREFIXES = {"annotations.": (), "sched.": ("sched",), "user.": ("user",)}

# Absent values as flux-core's JobInfo defaults them.
_ZERO_FIELDS = frozenset(
    ("t_depend", "t_priority", "t_sched", "t_run", "t_cleanup", "t_inactive", "duration",
     "expiration")
)

_STATE_LETTER = {
    "NEW": "N",
    "DEPEND": "D",
    "PRIORITY": "P",
    "SCHED": "S",
    "RUN": "R",
    "CLEANUP": "C",
    "INACTIVE": "I",
}
_RESULT_ABBREV = {"COMPLETED": "CD", "FAILED": "F", "CANCELED": "CA", "TIMEOUT": "TO"}
_PENDING = frozenset(("PRIORITY", "DEPEND", "SCHED"))

# The pictures flux jobs shows for states and results (its "cute" format),
# each with what it prints where the terminal cannot show them: the state's
# letter, a result's ASCII face.
_STATE_EMOJI = {
    "NEW": "\U0001f381",  # wrapped gift
    "DEPEND": "\U0001f6d1",  # stop sign
    "PRIORITY": "\U0001f6a6",  # vertical traffic light
    "SCHED": "\U0001f4c5",  # calendar
    "RUN": "\U0001f3c3",  # person running
    "CLEANUP": "\U0001f5d1",  # wastebasket
    "INACTIVE": "\U0001f480",  # skull
}
_RESULT_EMOJI = {
    "COMPLETED": ("\U0001f600", ":-)"),  # grinning face
    "FAILED": ("\U0001f4a9", ":'-("),  # pile of poo
    "CANCELED": ("\U0001f4a5", "%-|"),  # collision
    "TIMEOUT": ("\u231b", "(-_-)"),  # hourglass done
}
_NO_RESULT_EMOJI = ("\u3000", "")  # an ideographic space: no result yet


def _shown(picture, fallback):
    """*picture* if standard output can encode it, else *fallback*."""
    try:
        picture.encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return fallback
    return picture


def is_field(name):
    """Whether *name* is a field ``flux jobs`` (and history) can print."""
    return name in HEADINGS or any(name.startswith(p) for p in _ANNOTATION_PREFIXES)


def heading_of(name):
    """The column heading of field *name* (annotation keys as flux jobs
    heads them: ``annotations.x.y`` -> ``X.Y``, ``sched.x`` -> ``SCHED.X``)."""
    if name in HEADINGS:
        return HEADINGS[name]
    if name.startswith("annotations."):
        return name[len("annotations.") :].upper()
    return name.upper()


def fsd(seconds):
    """*seconds* in Flux Standard Duration, as ``flux jobs`` prints it
    (``0s`` under a millisecond, 4 significant digits in the largest unit
    that keeps the value under 60/24)."""
    if seconds == float("inf"):
        return "inf"
    if seconds < 1.0e-3:
        return "0s"
    if seconds < 10.0:
        return "%.03fs" % seconds
    for limit, unit, scale in ((60.0, "s", 1.0), (3600.0, "m", 60.0), (86400.0, "h", 3600.0)):
        if seconds < limit:
            return "%.4g%s" % (seconds / scale, unit)
    return "%.4gd" % (seconds / 86400.0)


def runtime_of(record, now):
    """A job's runtime as job-list's users compute it: from start to
    cleanup, or to *now* while it runs, 0.0 if it never ran."""
    t_run = record.get("t_run", 0.0)
    t_cleanup = record.get("t_cleanup", 0.0)
    if t_run > 0 and t_cleanup > 0:
        return t_cleanup - t_run
    if t_run > 0:
        return now - t_run
    return 0.0


def t_remaining_of(record, now):
    """Seconds left before a running job's expiration, else 0.0."""
    if record.get("state") != "RUN":
        return 0.0
    return max(record.get("expiration", 0.0) - now, 0.0)


class EmptyValue:
    """What an annotation that is not set formats as: nothing, whatever
    the format spec (its numeric type letter is ignored), and itself for
    any further key."""

    def __getitem__(self, key):
        return self

    def __str__(self):
        return ""

    def __format__(self, spec):
        return format("", spec.rstrip("bcdoxXeEfFgGn%"))


class Annotations(dict):
    """An annotations object: its compact JSON as text (nothing when
    empty), its keys reachable by name."""

    def __str__(self):
        return json.dumps(self) if self else ""

    def __format__(self, spec):
        return format(str(self), spec)


def _annotation(value):
    return Annotations(value) if isinstance(value, dict) else value


class _Listing(list):
    """A list field (``dependencies``) printed comma-separated."""

    def __str__(self):
        return ",".join(str(item) for item in self)

    def __format__(self, spec):
        return format(str(self), spec)


class JobFields:
    """The ``flux jobs`` fields of one archived job.

    Args:
        record (dict): the job as ``flux jobs --json`` prints it, with
            ``instance``
        now (float): the time the query is answered at (seconds since the
            epoch), for runtimes of running jobs and time remaining
    """

    def __init__(self, record, now):
        self.record = record
        self.now = now
        self._jobid = None

    @property
    def jobid(self):
        """The job id (a JobID)."""
        if self._jobid is None:
            self._jobid = JobID(int(self.record["id"]))
        return self._jobid

    def get(self, name):
        """The value of field *name* (``KeyError`` if flux jobs has no
        such field)."""
        for prefix, base in _ANNOTATION_PREFIXES.items():
            if name.startswith(prefix):
                return self._annotation(base + tuple(name[len(prefix) :].split(".")))
        if name.startswith("id"):
            return self._id(name)
        method = getattr(self, "_" + name.replace(".", "_"), None)
        if method is not None and name in HEADINGS:
            return method()
        if name in HEADINGS:
            return self._plain(name)
        raise KeyError(name)

    def _plain(self, name):
        return self.record.get(name, 0.0 if name in _ZERO_FIELDS else "")

    def _id(self, name):
        if name not in HEADINGS:
            raise KeyError(name)
        if name == "id":
            return self.jobid
        encoding = name[len("id.") :]
        try:
            return getattr(self.jobid, encoding)
        except NotImplementedError as exc:
            raise ValueError(
                f"{{{name}}} needs flux-core's Python bindings (the mnemonic word list)"
            ) from exc

    def _annotation(self, path):
        value = self.record.get("annotations") or {}
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return EmptyValue()
            value = value[key]
        return _annotation(value)

    def _annotations(self):
        return Annotations(self.record.get("annotations") or {})

    def _sched(self):
        return self._annotation(("sched",))

    def _user(self):
        return self._annotation(("user",))

    def _username(self):
        name = self.record.get("username")
        if name:
            return name
        # Not archived: the name this machine gives the uid, as flux jobs.
        import pwd  # pylint: disable=import-outside-toplevel

        try:
            return pwd.getpwuid(self.record["userid"]).pw_name
        except KeyError:
            return str(self.record["userid"])

    def _dependencies(self):
        return _Listing(self.record.get("dependencies") or [])

    def _exception(self, key):
        # job-list reports exceptions of inactive jobs only (the flux jobs
        # --json record says "occurred": false for active ones too)
        if self.record.get("state") != "INACTIVE":
            return ""
        return (self.record.get("exception") or {}).get(key, "")

    def _exception_occurred(self):
        return self._exception("occurred")

    def _exception_severity(self):
        return self._exception("severity")

    def _exception_type(self):
        return self._exception("type")

    def _exception_note(self):
        return self._exception("note")

    def _state_single(self):
        return _STATE_LETTER.get(self.record.get("state"), "")

    def _result_abbrev(self):
        return _RESULT_ABBREV.get(self.record.get("result"), "")

    def _state_emoji(self):
        state = self.record.get("state")
        return _shown(_STATE_EMOJI.get(state, ""), _STATE_LETTER.get(state, ""))

    def _result_emoji(self):
        return _shown(*_RESULT_EMOJI.get(self.record.get("result"), _NO_RESULT_EMOJI))

    def _status_emoji(self):
        if self.record.get("state") == "INACTIVE":
            return self._result_emoji()
        return self._state_emoji()

    def _status(self):
        state = self.record.get("state")
        return self.record.get("result", "") if state == "INACTIVE" else state

    def _status_abbrev(self):
        if self.record.get("state") == "INACTIVE":
            return self._result_abbrev()
        return self._state_single()

    def _runtime(self):
        return runtime_of(self.record, self.now)

    def _t_remaining(self):
        return t_remaining_of(self.record, self.now)

    def _instance(self):
        return self.record.get("instance", "")

    def _contextual_info(self):
        state = self.record.get("state")
        if state == "PRIORITY":
            return "priority-wait"
        if state == "DEPEND":
            return f"depends:{self._dependencies()}"
        if state != "SCHED":
            return self._plain("nodelist")
        estimate = self._annotation(("sched", "t_estimate"))
        if isinstance(estimate, (int, float)) and not isinstance(estimate, bool):
            eta = estimate - self.now
            return "eta:now" if eta < 0 else f"eta:{fsd(eta)}"
        if self.record.get("urgency") == 0:
            return "held"
        if self.record.get("priority") == 0:
            return "priority-hold"
        return ""

    def _contextual_time(self):
        if self.record.get("state") in _PENDING:
            return self._plain("duration")
        return self._runtime()

    def _inactive_reason(self):
        if self.record.get("state") != "INACTIVE":
            return ""
        result = self.record.get("result", "")
        occurred = self._exception_occurred()
        kind = self._exception_type()
        note = self._exception_note()
        returncode = self.record.get("returncode", "")
        if result == "CANCELED":
            if occurred and kind == "cancel" and note:
                return f"Canceled: {note}"
            return "Canceled"
        if result == "TIMEOUT":
            return "Timeout"
        if result != "FAILED":
            return f"Exit {returncode}"
        # an exec exception is reported through the return code
        if occurred and kind != "exec" and self._exception_severity() == 0:
            return f"Exception: type={kind}" + (f" note={note}" if note else "")
        return _exit_reason(returncode)


def _exit_reason(returncode):
    """Why a failed job ended, from its return code, as flux jobs says it."""
    if isinstance(returncode, int) and returncode > 128:
        signum = returncode - 128
        try:
            description = signal.strsignal(signum)
        except ValueError:
            description = None
        return description or f"Signaled {signum}"
    special = {
        126: "Command invoked cannot execute",
        127: "command not found",
        128: "Invalid argument to exit",
    }
    if returncode in special:
        return special[returncode]
    return f"Exit {returncode}"

