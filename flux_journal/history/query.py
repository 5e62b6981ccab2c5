"""Which archived jobs (and events) ``flux-journal history`` lists, as SQL.

:class:`JobQuery` holds the command's filters, already parsed and checked
(the ``parse_*`` functions below turn option values into them), and
renders them as SQL for any DB-API backend: values are always parameters,
in the placeholder style the driver wants (``?`` for sqlite3, ``%s`` for
psycopg), never text spliced into the statement.  The SQL is portable
between SQLite and PostgreSQL and filters on the typed columns of the
archive's ``jobs`` table, which the archive's indexes
(:data:`flux_journal.store.schema.INDEXES`) serve.

A listing with a count (``history``'s default: 1000) is two statements,
the active jobs and then the inactive ones, so that the second reads the
most recently ended jobs from an index in order and stops at the count,
instead of sorting a year of jobs to show the first thousand.  With
``--until`` the inactive ones are read from where a job submitted by then
can have ended at the latest (the archive's longest job, :attr:`JobQuery.span`),
not from the newest job back.

Semantics, where ``flux jobs`` has none to copy:

* ``--since T`` keeps jobs active at some time after T: still active, or
  inactive after T (``flux jobs --since``'s rule); ``--until T`` keeps jobs
  submitted at or before T.  Together they select the jobs alive during
  the window, as ``sacct -S/-E`` does.  With ``--events`` the window also
  bounds the events' timestamps.
* ``-f/--filter`` words select states or results, either matching
  (``flux jobs``' rule: ``-f run,failed`` is running or failed jobs);
  ``new`` is accepted too, and ``pending``/``active`` include it, since an
  archive can hold a job that was never validated.
* A user given by name is looked up in this machine's password database
  (so the ``userid`` index serves the query); a name it does not know is
  matched against the archived ``username``.
* With job ids the default user filter is dropped (any user's job can be
  asked for by id, as ``flux jobs ID`` allows); other filters still apply.

Order (``flux jobs``' and job-list's): pending jobs first, by priority
(highest first; a job not yet given one counts as lowest) then job id;
then running jobs (RUN, CLEANUP), most recently started first; then
inactive jobs, most recently ended first.  Ties across instances are
broken by instance name.
"""

import os
import pwd
import re
import time
from dataclasses import dataclass, field
from typing import Optional, Tuple

from flux_journal.store.schema import ACTIVE_CONDITION, id_chunks
from flux_journal.timestamps import parse_timestamp

__all__ = [
    "STATES",
    "RESULTS",
    "JobQuery",
    "QueryError",
    "parse_user",
    "parse_filter",
    "parse_when",
    "parse_duration",
    "parse_jobid",
    "parse_list",
    "default_user",
]

_PENDING = ("NEW", "DEPEND", "PRIORITY", "SCHED")
_RUNNING = ("RUN", "CLEANUP")

#: ``-f`` words that select states, and the states they select.
STATES = {
    "new": ("NEW",),
    "depend": ("DEPEND",),
    "priority": ("PRIORITY",),
    "sched": ("SCHED",),
    "run": ("RUN",),
    "cleanup": ("CLEANUP",),
    "inactive": ("INACTIVE",),
    "pending": _PENDING,
    "running": _RUNNING,
    "active": _PENDING + _RUNNING,
}
#: ``-f`` words that select results.
RESULTS = {
    "completed": "COMPLETED",
    "failed": "FAILED",
    "canceled": "CANCELED",
    "timeout": "TIMEOUT",
}

# A Flux Standard Duration (RFC 23): a number, then s, m, h, d or ms.
_FSD = re.compile(r"(?P<value>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)(?P<unit>ms|s|m|h|d)?")
_UNIT_SECONDS = {None: 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "h": 3600.0, "d": 86400.0}

# Where each kind of job sits in the order, as SQL over the state column.
_CATEGORY = (
    "CASE WHEN state IN ('NEW', 'DEPEND', 'PRIORITY', 'SCHED') THEN 0 "
    "WHEN state IN ('RUN', 'CLEANUP') THEN 1 ELSE 2 END"
)
_ORDER = (
    f" ORDER BY {_CATEGORY},"
    " CASE WHEN state IN ('NEW', 'DEPEND', 'PRIORITY', 'SCHED')"
    " THEN -COALESCE(priority, -1) END,"
    " CASE WHEN state IN ('NEW', 'DEPEND', 'PRIORITY', 'SCHED') THEN jobid END,"
    " CASE WHEN state IN ('RUN', 'CLEANUP') THEN t_run END DESC,"
    " CASE WHEN state = 'INACTIVE' THEN t_inactive END DESC,"
    " CASE WHEN state = 'INACTIVE' THEN jobid END DESC,"
    " instance"
)
# The inactive jobs' part of _ORDER, which the t_inactive indexes serve.
_INACTIVE_ORDER = " ORDER BY t_inactive DESC, jobid DESC, instance"

# Indexed columns as expressions of the same value that no index serves
# (portable: SQLite's unary + is not defined on PostgreSQL's text).
_UNINDEXED = {
    "instance": "instance || ''", "userid": "userid + 0", "result": "result || ''",
    "name": "name || ''", "queue": "queue || ''",
}


class QueryError(ValueError):
    """An option value that selects nothing meaningful (the message says
    which and why)."""


def parse_user(text):
    """``-u`` USER: ``all`` (None), a user id, or a user name.

    Returns:
        (userid, username): one of them set, or both None for ``all``
    """
    text = text.strip()
    if text.lower() == "all":
        return None, None
    if text.isdigit():
        return int(text), None
    if not text:
        raise QueryError("empty user name")
    try:
        return pwd.getpwnam(text).pw_uid, None
    except KeyError:
        return None, text


def parse_list(text, what):
    """A comma-separated list of non-empty words (``--queue a,b``)."""
    words = tuple(word.strip() for word in text.split(","))
    if not all(words):
        raise QueryError(f"empty {what} in {text!r}")
    return words


def parse_filter(text):
    """``-f`` WORD[,WORD]: states and results, flux jobs' words in any case.

    Returns:
        (states, results): frozensets of state and result names
    """
    states, results = set(), set()
    for word in parse_list(text, "filter"):
        word = word.lower()
        if word in STATES:
            states.update(STATES[word])
        elif word in RESULTS:
            results.add(RESULTS[word])
        else:
            choices = ", ".join(list(STATES) + list(RESULTS))
            raise QueryError(f"invalid filter {word!r}: choose from {choices}")
    return frozenset(states), frozenset(results)


def parse_duration(text):
    """Seconds in a Flux Standard Duration such as ``90``, ``1.5d``,
    ``30m`` or ``250ms``."""
    match = _FSD.fullmatch(text.strip())
    if not match:
        raise QueryError(f"not a duration (such as 30s, 6h, 1.5d): {text!r}")
    return float(match["value"]) * _UNIT_SECONDS[match["unit"]]


def parse_when(text, now=None):
    """``--since``/``--until`` TIME: ``now``, ``-DURATION`` (that long
    before now, e.g. ``-6h``; ``+DURATION`` after), seconds since the epoch, or an ISO 8601
    date/time (local time without a zone); returns seconds since the epoch."""
    now = time.time() if now is None else now
    text = text.strip()
    if text == "now":
        return now
    if text[:1] in ("-", "+"):
        # Flux's relative times: a duration before (or after) now
        offset = parse_duration(text[1:])
        return now - offset if text[0] == "-" else now + offset
    try:
        return parse_timestamp(text)
    except ValueError:
        raise QueryError(
            f"not a time (seconds since the epoch, ISO 8601, or a duration ago "
            f"such as -6h): {text!r}"
        ) from None


def parse_jobid(text):
    """A job id in any RFC 19 encoding (F58, decimal, hex, dothex, words,
    kvs), as an int."""
    # Imported here: the JobID class may come from flux-core's bindings.
    from flux_journal.job import JobID  # pylint: disable=import-outside-toplevel

    try:
        value = JobID(text)
    except NotImplementedError:
        raise QueryError(
            f"{text!r}: job ids in words need flux-core's Python bindings"
        ) from None
    except (ValueError, OSError):
        raise QueryError(f"not a valid Flux job id: {text!r}") from None
    if not 0 <= value < 1 << 63:
        # the archive's jobid column is a signed 64-bit integer
        raise QueryError(f"not a valid Flux job id: {text!r}")
    return int(value)


#: Seconds added to ``until + span``: float sums round, and the bound must
#: hold every job it could select.
_SPAN_SLACK = 1.0


@dataclass(frozen=True)
class JobQuery:
    """The filters of one ``history`` listing (all optional; unset means
    any).  Each set field narrows the selection; a tuple matches any of its
    values.

    Attributes:
        userid: the submitting user's id
        username: the submitting user's archived name (a user this machine
            does not know)
        states: state names (``RUN``, ``INACTIVE``, ...)
        results: result names (``COMPLETED``, ``FAILED``, ...); with
            states, a job matching either is selected
        since: jobs still active after this time (seconds since the epoch)
        until: jobs submitted at or before this time
        names: job names
        queues: queue names
        instances: instance names
        jobids: job ids
        count: at most this many jobs (None: all)
        nested: with instances, the instances nested under them too
            (``archive --recursive`` names a child ``NAME/ƒ<id>``)
        span: at least the longest any archived job took from submit to
            inactive, in seconds, if known: with *until*, inactive jobs
            are then looked for only up to ``until + span`` (the
            archive's index of it is a reader's to ask,
            :meth:`~flux_journal.history.reader.ArchiveReader.jobs`);
            it changes which rows are read, never which are selected
    """

    userid: Optional[int] = None
    username: Optional[str] = None
    states: frozenset = field(default_factory=frozenset)
    results: frozenset = field(default_factory=frozenset)
    since: Optional[float] = None
    until: Optional[float] = None
    names: Tuple[str, ...] = ()
    queues: Tuple[str, ...] = ()
    instances: Tuple[str, ...] = ()
    jobids: Tuple[int, ...] = ()
    count: Optional[int] = None
    nested: bool = False
    span: Optional[float] = None

    def where(self, placeholder="?", part=None):
        """The WHERE clause (``""`` when nothing is filtered) and its
        parameters, with *placeholder* (``?`` or ``%s``) for each;
        *part* ``"active"`` or ``"inactive"`` keeps only those jobs (None
        when the filters select none of them)."""
        clauses, params = [], []
        # The active jobs are few, and the state index finds them: in
        # their part, the other filters' columns are written as
        # expressions no index serves, or SQLite would take the index of
        # an equality (userid = ?) and read all of that user's jobs.
        unindexed = _UNINDEXED if part == "active" else {}

        def column(name):
            return unindexed.get(name, name)

        def add(sql, *values):
            clauses.append(sql.replace("{}", placeholder))
            params.extend(values)

        def one_of(name, values):
            marks = ", ".join([placeholder] * len(values))
            clauses.append(f"{column(name)} IN ({marks})")
            params.extend(values)

        if self.instances and self.nested:
            # a prefix compared by substr(), not LIKE: SQLite's LIKE
            # ignores ASCII case, and names may hold % and _
            marks = ", ".join([placeholder] * len(self.instances))
            under = " OR ".join([f"substr(instance, 1, {placeholder}) = {placeholder}"]
                                * len(self.instances))
            clauses.append(f"(instance IN ({marks}) OR {under})")
            params.extend(self.instances)
            for name in self.instances:
                params.extend((len(name) + 1, name + "/"))
        elif self.instances:
            one_of("instance", list(self.instances))
        if self.jobids:
            one_of("jobid", list(self.jobids))
        if self.userid is not None:
            add(f"{column('userid')} = {{}}", self.userid)
        if self.username is not None:
            add("username = {}", self.username)
        states, results = sorted(self.states), sorted(self.results)
        if (states or results) and part == "active":
            # an active job has no result yet
            states, results = [state for state in states if state != "INACTIVE"], []
            if not states:
                return None
        elif (states or results) and part == "inactive":
            if "INACTIVE" in states:
                states, results = [], []  # every inactive job
            elif results:
                states = []  # active states select none of them
            else:
                return None
        if states and results:
            marks_s = ", ".join([placeholder] * len(states))
            marks_r = ", ".join([placeholder] * len(results))
            clauses.append(f"(state IN ({marks_s}) OR {column('result')} IN ({marks_r}))")
            params.extend(states + results)
        elif states:
            one_of("state", states)
        elif results:
            one_of("result", results)
        if part == "active":
            # the condition of the archive's index of the active jobs, as
            # it is written there (so the planner sees the index holds
            # them); an active job has no t_inactive: --since keeps it
            clauses.append(ACTIVE_CONDITION)
        elif part == "inactive":
            # NOT IN, which no index serves: the planner takes a t_inactive one
            clauses.append(f"NOT {ACTIVE_CONDITION}")
            if self.since is not None:
                add("t_inactive > {}", self.since)
            if self.until is not None and self.span is not None:
                # a second of slack for the rounding of both sums
                add("t_inactive <= {}", self.until + self.span + _SPAN_SLACK)
        elif self.since is not None:
            add("(t_inactive IS NULL OR t_inactive > {})", self.since)
        if self.until is not None:
            add("t_submit <= {}", self.until)
        if self.names:
            one_of("name", list(self.names))
        if self.queues:
            one_of("queue", list(self.queues))
        if not clauses:
            return "", []
        return " WHERE " + " AND ".join(clauses), params

    def jobs_statements(self, placeholder="?", columns="instance, record"):
        """The SELECTs of *columns* of the selected jobs: their rows, one
        statement after the other, are the listing in order.  With a
        count, each asks for one row more than it, so that the caller,
        reading at most that many, can tell the listing was cut short."""
        if self.count is None:
            where, params = self.where(placeholder)
            return [(f"SELECT {columns} FROM jobs{where}{_ORDER}", params)]
        statements = []
        for part, order in (("active", _ORDER), ("inactive", _INACTIVE_ORDER)):
            selected = self.where(placeholder, part)
            if selected is None:
                continue
            where, params = selected
            statements.append((f"SELECT {columns} FROM jobs{where}{order} LIMIT {placeholder}",
                               params + [self.count + 1]))
        return statements

    def _event_window(self, placeholder):
        sql, params = "", []
        if self.since is not None:
            sql += f" AND timestamp > {placeholder}"
            params.append(self.since)
        if self.until is not None:
            sql += f" AND timestamp <= {placeholder}"
            params.append(self.until)
        return sql, params

    def events_sql(self, placeholder="?"):
        """SELECT (instance, jobid, timestamp, name, context) of the events
        of every selected job (the query's count is not applied: see
        :meth:`events_statements`), within the --since/--until window, in
        time order."""
        where, params = self.where(placeholder)
        window, more = self._event_window(placeholder)
        sql = (
            "SELECT instance, jobid, timestamp, name, context FROM events"
            f" WHERE (instance, jobid) IN (SELECT instance, jobid FROM jobs{where}){window}"
        )
        return sql + " ORDER BY timestamp, instance, jobid, seq", params + more

    def events_statements(self, jobs, placeholder="?"):
        """The SELECTs of (instance, jobid, timestamp, name, context, seq)
        of the events of *jobs* ((instance, jobid) pairs: the listing's
        first jobs) within the --since/--until window, unordered."""
        by_instance = {}
        for instance, jobid in jobs:
            by_instance.setdefault(instance, []).append(jobid)
        window, more = self._event_window(placeholder)
        statements = []
        for instance, jobids in by_instance.items():
            for chunk in id_chunks(jobids):
                marks = ", ".join([placeholder] * len(chunk))
                statements.append((
                    "SELECT instance, jobid, timestamp, name, context, seq FROM events"
                    f" WHERE instance = {placeholder} AND jobid IN ({marks}){window}",
                    [instance, *chunk, *more],
                ))
        return statements


def default_user():
    """The invoking user's id (``flux jobs`` lists only your jobs unless
    told otherwise)."""
    return os.getuid()
