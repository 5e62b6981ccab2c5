"""Simulated child instances: jobs that are Flux instances of their own.

A real ``flux batch`` job starts a broker of its own; once up, that
broker posts a ``memo`` event with its ``uri`` (``ssh://HOST/PATH``,
the socket of its ``local-uri``) to its job's eventlog, and its
job-manager serves a journal of its own until the job finishes and the
broker shuts down (its streams end with ENODATA).  :class:`SimHost`
plays the host those brokers run on: it knows each simulated instance
by the socket path of its URI, opens a connection to one as
``flux.Flux(uri)`` does (:meth:`SimHost.connect`), and starts and
finishes child instances as jobs of a parent instance::

    host = SimHost()
    root = host.root                          # a SimFlux, "/"
    child = host.start_child(root)            # a running job, memo uri
    child.handle.inject_job("success")        # a job of the child
    grandchild = host.start_child(child.handle)
    host.finish_child(child)                  # shut down, job cleaned

:func:`host_name` is the host name child URIs carry; the tree
(:func:`flux_journal.tree.reachable_uri`) turns them into ``local://``
URIs, which :meth:`SimHost.connect` accepts.
"""

import errno
import itertools
import os
import socket
from urllib.parse import urlsplit

from flux_journal.sim.errors import SimError
from flux_journal.sim.handle import SimFlux
from flux_journal.sim.services import JobJournalService, SimService
from flux_journal.sim.workload import DEFAULT_START, JobFactory

__all__ = ["SimHost", "SimChild", "BrokerStateService", "host_name"]

_JOB_TOPIC = "job-manager.events-journal"


def host_name():
    """The host name in the URIs of simulated child instances: this
    host's, as a broker on it would write it."""
    return socket.gethostname()


class BrokerStateService(SimService):
    """A broker's ``state-machine.wait``, as flux-core's broker answers
    it: an empty response once the broker is in its RUN state, held
    until then, ENOENT ("broker has surpassed RUN state") after."""

    topics = ("state-machine.wait",)

    def __init__(self, running=True):
        super().__init__()
        self.state = "run" if running else "init"

    def handle_request(self, request):
        """Answer now if the broker has reached RUN, else when it does."""
        if self.state == "run":
            request.respond(None)
        elif self.state == "init":
            self._listeners.append((request, None))
        else:
            raise SimError(errno.ENOENT, "broker has surpassed RUN state")

    def run(self):
        """The broker reaches RUN: answer the requests held."""
        with self._cond:
            self.state = "run"
            listeners, self._listeners = self._listeners, []
            for request, _ in listeners:
                request.respond(None)

    def shut_down(self):
        """The broker leaves RUN (it is shutting down)."""
        with self._cond:
            self.state = "shutdown"
            self.end_streams(errno.ENOENT, "broker has surpassed RUN state")


class SimChild:
    """A child instance started by :meth:`SimHost.start_child`.

    Attributes:
        parent: the parent instance's handle
        jobid: the job (of the parent) that is this instance
        handle: the instance's own :class:`~flux_journal.sim.SimFlux`
        uri: the URI its memo carries (``ssh://HOST/PATH``)
        local_uri: ``local://PATH``, how this host reaches it
    """

    def __init__(self, parent, jobid, handle, uri, local_uri, state, jobs):
        self.parent = parent
        self.jobid = jobid
        self.handle = handle
        self.uri = uri
        self.local_uri = local_uri
        self.state = state  # its BrokerStateService
        self._jobs = jobs  # its job-manager journal, until loaded

    def bring_up(self):
        """The broker reaches RUN: its job-manager journal is loaded and
        ``state-machine.wait`` answered."""
        if self._jobs is not None:
            self.handle.add_service(self._jobs)
            self._jobs = None
        self.state.run()


class SimHost:
    """Simulated Flux instances on one host, reachable by URI.

    *root* is the instance at the top (default: an empty
    :class:`~flux_journal.sim.SimFlux`, whose jobs are injected).
    """

    def __init__(self, root=None):
        self.root = root if root is not None else SimFlux(jobs=None)
        #: Every :class:`SimChild` started, in order.
        self.children = []
        self._sockets = {}  # socket path -> SimFlux
        self._ids = itertools.count(1)

    def connect(self, uri):
        """Open *uri* (``local://PATH``, or ``ssh://`` this host) as
        ``flux.Flux(uri)`` would: the instance's handle.

        Raises FileNotFoundError for a socket that does not exist (no
        such instance, or one that has finished), ConnectionRefusedError
        for an instance that is shut down.
        """
        parts = urlsplit(uri)
        if parts.scheme not in ("local", "ssh") or (
            parts.scheme == "ssh" and parts.hostname != host_name()
        ):
            raise ConnectionRefusedError(
                errno.ECONNREFUSED, f"Unable to connect to Flux: cannot reach {uri}"
            )
        handle = self._sockets.get(parts.path)
        if handle is None:
            raise FileNotFoundError(
                errno.ENOENT, f"Unable to connect to Flux: broker socket {parts.path} was not found"
            )
        return handle.connect()

    def start_child(self, parent, *, jobs=None, denied=False, memo=True, up=True):
        """Run a job on *parent* (a handle of this host) that is an
        instance: its events up to ``start``, then (with *memo*) the
        ``memo`` with its URI.  Returns the :class:`SimChild`.

        *jobs* is the child's job-manager journal (a
        :class:`~flux_journal.sim.Workload` or None: empty, jobs
        injected later); with *denied* the child belongs to another
        user, so its journal refuses requests with EPERM.  Without *up*
        the broker is still starting, as when a real one posts its
        memo: no job-manager yet (ENOSYS) and ``state-machine.wait``
        held until :meth:`SimChild.bring_up`.
        """
        number = next(self._ids)
        path = f"/tmp/flux-sim-{os.getpid()}-{number}/local-0"
        state = BrokerStateService(running=False)
        if denied:
            journal = _DeniedJournal()
        elif jobs is None:
            # Its own job ids: a timeline of its own, later than its parent's.
            factory = JobFactory(seed=number, start=DEFAULT_START + 1000.0 * number)
            journal = JobJournalService(None, factory=factory)
        else:
            journal = JobJournalService(jobs)
        handle = SimFlux(services=[state], defaults=False)
        self._sockets[path] = handle
        jobid = parent.inject_job("success", upto="start")
        child = SimChild(parent, jobid, handle, f"ssh://{host_name()}{path}", f"local://{path}",
                         state, journal)
        self.children.append(child)
        if up:
            child.bring_up()
        if memo:
            self.post_memo(child)
        return child

    def post_memo(self, child):
        """Post *child*'s memo event (its URI) to its parent."""
        child.parent.post_job_event(child.jobid, "memo", {"uri": child.uri}, commit=True)

    def finish_child(self, child, *, status=0):
        """The child's job finishes: its broker shuts down (its journal
        streams end with ENODATA, its socket is gone), then the parent
        posts ``finish``, ``release``, ``free`` and ``clean``."""
        self.stop_child(child)
        parent = child.parent
        parent.post_job_event(child.jobid, "finish", {"status": status})
        parent.post_job_event(child.jobid, "release", {"ranks": "all", "final": True})
        parent.post_job_event(child.jobid, "free")
        parent.post_job_event(child.jobid, "clean")

    def stop_child(self, child):
        """Shut the child's broker down (ENODATA to its streams) and
        remove its socket, without events on the parent."""
        child.state.shut_down()
        child.handle.shutdown()
        self._sockets.pop(urlsplit(child.local_uri).path, None)


class _DeniedJournal(SimService):
    """The job-manager journal of another user's instance: the journal
    is owner-only, so every request gets EPERM."""

    topics = (_JOB_TOPIC, _JOB_TOPIC + "-cancel")

    def handle_request(self, request):
        """Refuse."""
        if not request.topic.endswith("-cancel"):
            raise SimError(errno.EPERM, "Operation not permitted")
