"""Exit statuses, messages and errors of the ``flux-journal`` command."""

import errno
import signal
import sys

#: The command's name, as it prefixes every message.
PROG = "flux-journal"

#: Exit status of a run that read everything it was asked to.
EXIT_OK = 0
#: Exit status after an error (or skipped malformed responses).
EXIT_ERROR = 1
#: Exit status for a command line argparse rejects.
EXIT_USAGE = 2
#: Exit status when a followed stream ended without being asked to: the
#: instance shut down, the service went away or the connection was lost
#: (after everything received was written, committed, checkpointed).
EXIT_STREAM_LOST = 3
#: Exit status when the output's reader went away, as if killed by SIGPIPE.
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE

_SERVICES = {"jobs": "job-manager journal", "resource": "resource journal"}
_MODULES = {"jobs": "job-manager", "resource": "resource"}


def say(message, *, prog=PROG):
    """Print one line, ``<prog>: <message>``, on stderr."""
    print(f"{prog}: {message}", file=sys.stderr, flush=True)


class CliError(Exception):
    """An error reported as one line on stderr, exiting with *code*."""

    def __init__(self, message, code=EXIT_ERROR):
        super().__init__(message)
        self.code = code


class BrokenPipe(Exception):
    """The output's reader went away."""


class ServiceError(Exception):
    """The journal service failed the stream (wraps its OSError)."""

    def __init__(self, exc):
        super().__init__(str(exc))
        self.exc = exc


def service_name(journal):
    """What messages call the service of *journal* (``jobs`` or ``resource``)."""
    return _SERVICES[journal]


def service_error(exc, journal):
    """One clear line for an error (OSError) the journal service returned."""
    service = _SERVICES[journal]
    code = getattr(exc, "errno", None)
    detail = exc.strerror or str(exc)
    if code == errno.EPERM or code == errno.EACCES:
        return (
            f"permission denied reading the {service}: only the instance owner "
            f"may read it ({detail})"
        )
    if code == errno.ENOSYS:
        return (
            f"the {service} is not available: is the {_MODULES[journal]} module "
            f"loaded? ({detail})"
        )
    if code == errno.EPROTO:
        return f"the {service} rejected the request: {detail}"
    name = errno.errorcode.get(code, "error")
    return f"reading the {service} failed: {detail} ({name})"
