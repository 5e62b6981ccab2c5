"""The job-manager journal consumer, interface-compatible with
``flux.job.JournalConsumer`` (``flux.job.journal``)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Union

from flux_journal import core, cursor
from flux_journal._flux import jobid_class
from flux_journal.abc import JournalConsumerBase
from flux_journal.consumer.fast import slow_path_event
from flux_journal.events import DecodedOnAccess, JournalEventBase
from flux_journal.jobid import JobID as _OwnJobID

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from flux_journal.abc import ConsumerOptions

#: flux.job.JobID when flux-core's bindings import, else flux-journal's own
if TYPE_CHECKING:
    # flux-core's class has the same interface (and no annotations)
    JobID = _OwnJobID
else:
    JobID = jobid_class()

# JobID(value) for an int value by the quickest route: flux-journal's own
# class keeps ints as they are, so int.__new__ makes one without running
# its Python __new__ (flux-core's class is always called).
_jobid_of_int = (
    functools.partial(int.__new__, JobID) if JobID is _OwnJobID else JobID
)

_new_dict = dict.__new__

# Job ids made for recent events, shared by the events of one job.  Bounded
# so a long-running consumer does not keep one per job forever.
_JOBID_CACHE_SIZE = 65536


class JournalEvent(JournalEventBase):
    """A container for an event from the job manager journal

    Attributes:
        jobid (JobID): the job the event belongs to
        name (str): event name (see RFC 21)
        timestamp (float): event time in seconds since the epoch
        context (dict): context dictionary (see RFC 21)
        context_string (str): context as compact key=value JSON text
        jobspec (dict): for ``submit`` events, the job's redacted jobspec
        R (dict): for ``alloc`` events, the job's assigned R
    """

    # jobid is set on every event, and a slot is much cheaper to fill than
    # an instance dict entry (it is not listed by vars(event) for that).
    __slots__ = ("jobid",)

    jobid: JobID
    jobspec: Optional[Dict[str, Any]]
    R: Optional[Dict[str, Any]]
    # JSON text of jobspec and R until first read (see DecodedOnAccess)
    _jobspec_json: bytes
    _R_json: bytes

    def __init__(
        self,
        jobid: Union[int, str],
        event: Dict[str, Any],
        jobspec: Optional[Dict[str, Any]] = None,
        R: Optional[Dict[str, Any]] = None,
    ) -> None:
        super().__init__(event)
        self.jobid = JobID(jobid)
        self.jobspec = None
        self.R = None
        if self.is_empty():
            return
        if self.name == "submit":
            self.jobspec = jobspec
        elif self.name == "alloc":
            self.R = R

    def is_empty(self) -> bool:
        """Return True if this event is an empty journal event"""
        return self.jobid == -1

    def _cursor_ident(self) -> str:
        return cursor.identity(self.jobid, self["name"])

    def __str__(self) -> str:
        if self.is_empty():
            return "-1: End of historical data stream"
        return " ".join(
            filter(
                None,
                [
                    f"{self.jobid.f58}:",
                    f"{self.timestamp:<0.5f}",
                    self.name,
                    self.context_string,
                    self.jobspec and f"jobspec={self.jobspec}",  # type: ignore[list-item]
                    self.R and f"R={self.R}",  # type: ignore[list-item]
                ],
            )
        )


# jobspec and R are decoded on first access (flux-core sets them in
# __init__; an attribute set there still wins over these).
JournalEvent.jobspec = DecodedOnAccess("jobspec")  # type: ignore[assignment]
JournalEvent.R = DecodedOnAccess("R")  # type: ignore[assignment]

# Flags that need more than the common path of the builder's __call__().
_SLOW = core.IRREGULAR | core.TIE

#: The empty event delivered at the sentinel when include_sentinel is True.
SENTINEL_EVENT = JournalEvent(-1, {})


class JobEventBuilder:
    """Makes the JournalEvents of the C pipeline's batches, each when it
    is taken (one per consumer: it keeps the JobIDs of running jobs).

    The common path builds the dict and sets the slot directly; it has a
    twin in resource.py, kept apart because sharing one loop would cost a
    call per event.  Irregular entries, ties and events checked against a
    resume cursor take the slow path.
    """

    def __init__(self) -> None:
        #: JobIDs of recent events, shared by the events of one job
        self.jobids: Dict[int, JobID] = {}

    def __call__(self, batch: Any, names: Any, resume: Any) -> Iterator[JournalEvent]:
        jobids = self.jobids
        if len(jobids) >= _JOBID_CACHE_SIZE:
            jobids.clear()  # bounded to a batch more than this
        jobid_of_int = _jobid_of_int
        attached = iter(batch.attached)
        new_event = _new_dict
        cls = JournalEvent
        event = resume.last_event
        for ts, ident, name, flags, item in zip(
            batch.timestamps, batch.ids, batch.names, batch.flags, batch.items
        ):
            jobid = jobids.get(ident)
            if jobid is None:
                jobid = jobids[ident] = jobid_of_int(ident)
            if flags & _SLOW:
                complete = functools.partial(_complete, jobid=jobid, flags=flags, attached=attached)
                unusual = slow_path_event(cls, ts, names, name, flags, item, complete, resume, event)
                if unusual is not None:  # else delivered before the cursor resumed from
                    yield (event := unusual)
                continue
            # The common case, kept to the fewest Python operations.
            event = new_event(cls)
            event["timestamp"] = ts
            event["name"] = names[name]
            event["context"] = item
            event.jobid = jobid
            if flags:
                if flags & core.FINAL:
                    # The job's last event: forget its JobID, so that
                    # the cache holds only jobs still running.  Kept,
                    # ids of finished jobs would outlive the collector's
                    # young generations and set off full collections.
                    jobids.pop(ident, None)
                elif flags & core.WITH_JOBSPEC:
                    event._jobspec_json = next(attached)
                else:
                    event._R_json = next(attached)
            yield event
        resume.last_event = event

    def one(
        self, ts: float, ident: int, name: str, flags: int, item: Any, carried: bytes,
        resume: Any,
    ) -> JournalEvent:
        """The event of the live step (flux_journal.consumer.live): one
        plain event, with the jobspec or R text it *carried* (empty when
        its flags say it carries none), built as
        __call__()'s common path builds each: its twin for one event
        without a batch."""
        jobids = self.jobids
        jobid = jobids.get(ident)
        if jobid is None:
            if len(jobids) >= _JOBID_CACHE_SIZE:
                jobids.clear()
            jobid = jobids[ident] = _jobid_of_int(ident)
        event = _new_dict(JournalEvent)
        event["timestamp"] = ts
        event["name"] = name
        event["context"] = item
        event.jobid = jobid
        if flags:  # as in __call__()
            if flags & core.FINAL:
                jobids.pop(ident, None)
            elif flags & core.WITH_JOBSPEC:
                event._jobspec_json = carried
            else:
                event._R_json = carried
        resume.last_event = event
        return event


def _complete(event: JournalEvent, jobid: JobID, flags: int, attached: Iterator[bytes]) -> None:
    """Give a slow-path event its jobid, and its jobspec or R.  Which
    event carries which is the C core's rule (FJ_EV_JOBSPEC on submit,
    FJ_EV_R on alloc, as flux-core attaches them); any other event has
    both None."""
    event.jobid = jobid
    event.jobspec = event.R = None
    if flags & core.WITH_JOBSPEC:
        event._jobspec_json = next(attached)
        del event.jobspec  # decoded on first access
    elif flags & core.WITH_R:
        event._R_json = next(attached)
        del event.R


class JournalConsumer(JournalConsumerBase):
    """Consumer of the job manager journal (``job-manager.events-journal``)

    Delivers every job's events (RFC 21) as :class:`JournalEvent` objects,
    through :meth:`poll` or a callback (see :class:`JournalConsumerBase`).
    History of inactive jobs is included when *full* is True; history of
    active jobs always is.  The sentinel is recognised by its id of -1.

    Args:
        flux_handle: a Flux handle
        full (bool): include the history of inactive jobs
        since (float or str): deliver only events with timestamp > since,
            or only the events after a cursor (``event.cursor``)
        include_sentinel (bool): deliver :data:`SENTINEL_EVENT` between
            history and live events

    Keyword-only flux-journal extensions (*allow*, *deny*, *ordered*,
    *max_backlog*) are described in :class:`JournalConsumerBase`; *allow*
    and *deny* are sent to the job manager, so filtered events never
    leave the broker.
    """

    SENTINEL_EVENT = SENTINEL_EVENT
    _CORE_KIND = core.JOB
    _EVENT_BUILDER = JobEventBuilder

    if TYPE_CHECKING:
        # What type checkers see: every event of this consumer, its
        # sentinel included, is a JournalEvent.
        def poll(self, timeout: float = -1.0) -> Optional[JournalEvent]: ...

        def poll_batch(  # type: ignore[override]  # a list of JournalEvents
            self, max_events: int = 1000, timeout: float = -1.0
        ) -> List[Optional[JournalEvent]]: ...

        def events(
            self, timeout: Optional[float] = None, until_sentinel: bool = False
        ) -> Iterator[JournalEvent]: ...

        def __iter__(self) -> Iterator[JournalEvent]: ...

    def __init__(
        self,
        flux_handle: Any,
        full: bool = True,
        since: Union[float, str] = 0.0,
        include_sentinel: bool = False,
        **extras: Unpack[ConsumerOptions],
    ) -> None:
        super().__init__(
            flux_handle,
            "job-manager.events-journal",
            full=full,
            since=since,
            include_sentinel=include_sentinel,
            **extras,
        )

    @property
    def request_payload(self) -> Dict[str, Any]:
        """The request: {"full": full}, plus the job manager's "allow" and
        "deny" name filters when given."""
        payload: Dict[str, Any] = {"full": self.full}
        if self.allow is not None:
            payload["allow"] = {name: 1 for name in sorted(self.allow)}
        if self.deny is not None:
            payload["deny"] = {name: 1 for name in sorted(self.deny)}
        return payload

    def process_response(self, resp: Dict[str, Any]) -> Dict[str, Any]:
        """Return the response's jobid, jobspec and R as create_event()
        keyword arguments."""
        return {
            "jobid": resp.get("id"),
            "jobspec": resp.get("jobspec"),
            "R": resp.get("R"),
        }

    def create_event(  # type: ignore[override]  # flux-core's keywords
        self,
        entry: Dict[str, Any],
        jobid: Union[int, str] = -1,
        jobspec: Optional[Dict[str, Any]] = None,
        R: Optional[Dict[str, Any]] = None,
    ) -> JournalEvent:
        """Create a single JournalEvent from one event entry"""
        return JournalEvent(jobid, entry, jobspec=jobspec, R=R)

    def is_empty_response(self, resp: Dict[str, Any]) -> bool:
        """Return True for the sentinel response (id -1)"""
        return resp.get("id") == -1
