"""Error responses of the simulated services.

:class:`SimError` is what a simulated service sends instead of a
payload; the handle (:mod:`.handle`) turns it into the OSError a
consumer sees.
"""

import errno
import os

__all__ = ["SimError"]


class SimError(Exception):
    """An error response: what a service sends instead of a payload.

    ``errnum`` is the errno value; ``errstr`` the optional error string.
    Without one, the message a consumer sees is ``os.strerror(errnum)``,
    as ``flux_future_error_string()`` falls back to ``strerror``.
    ``terminal`` is false only for the timeout a ``then(timeout=...)``
    produces, which a ``reset()`` clears; a service's error response ends
    the stream.  Services may also raise it from ``handle_request`` to
    answer the request with that error.
    """

    def __init__(self, errnum, errstr=None, terminal=True):
        super().__init__(errnum, errstr)
        self.errnum = int(errnum)
        self.errstr = errstr
        self.terminal = terminal

    @property
    def message(self):
        """The error string a consumer sees: errstr, else strerror(errnum)."""
        if self.errstr:
            return self.errstr
        return os.strerror(self.errnum)

    def exception(self):
        """Return the OSError (PermissionError for EPERM, ...) to raise."""
        return OSError(self.errnum, self.message)

    def __repr__(self):
        name = errno.errorcode.get(self.errnum, str(self.errnum))
        return f"SimError({name}, {self.errstr!r})"
