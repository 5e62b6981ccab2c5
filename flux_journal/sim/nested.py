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

from flux_journal.sim.handle import SimFlux
from flux_journal.sim.services import JobJournalService
from flux_journal.sim.workload import DEFAULT_START, JobFactory

__all__ = ["SimHost", "SimChild", "host_name"]

_JOB_TOPIC = "job-manager.events-journal"


def host_name():
    """The host name in the URIs of simulated child instances: this
    host's, as a broker on it would write it."""
    return socket.gethostname()


class SimChild:
    """A child instance started by :meth:`SimHost.start_child`.

    Attributes:
        parent: the parent instance's handle
        jobid: the job (of the parent) that is this instance
        handle: the instance's own :class:`~flux_journal.sim.SimFlux`
        uri: the URI its memo carries (``ssh://HOST/PATH``)
        local_uri: ``local://PATH``, how this host reaches it
    """

    def __init__(self, parent, jobid, handle, uri, local_uri):
        self.parent = parent
        self.jobid = jobid
        self.handle = handle
        self.uri = uri
        self.local_uri = local_uri


class SimHost:
    """Simulated Flux instances on one host, reachable by URI.

    *root* is the instance at the top (default: an empty
    :class:`~flux_journal.sim.SimFlux`, whose jobs are injected).
    """

    def __init__(self, root=None):
        self.root = root if root is not None else SimFlux(jobs=None)
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

    def start_child(self, parent, *, jobs=None, denied=False, memo=True):
        """Run a job on *parent* (a handle of this host) that is an
        instance: its events up to ``start``, then (with *memo*) the
        ``memo`` with its URI.  Returns the :class:`SimChild`.

        *jobs* is the child's job-manager journal (a
        :class:`~flux_journal.sim.Workload` or None: empty, jobs
        injected later); with *denied* the child belongs to another
        user, so its journal refuses requests with EPERM.
        """
        number = next(self._ids)
        path = f"/tmp/flux-sim-{os.getpid()}-{number}/local-0"
        if denied:
            handle = SimFlux.replay([], topic=_JOB_TOPIC, errors={0: errno.EPERM})
        elif jobs is None:
            # Its own job ids: a timeline of its own, later than its parent's.
            factory = JobFactory(seed=number, start=DEFAULT_START + 1000.0 * number)
            handle = SimFlux(jobs=JobJournalService(None, factory=factory))
        else:
            handle = SimFlux(jobs=jobs)
        self._sockets[path] = handle
        jobid = parent.inject_job("success", upto="start")
        child = SimChild(parent, jobid, handle, f"ssh://{host_name()}{path}", f"local://{path}")
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
        child.handle.shutdown()
        self._sockets.pop(urlsplit(child.local_uri).path, None)
