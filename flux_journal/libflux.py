"""libflux's future functions, reached from flux-journal's C core.

flux-core's Python bindings wrap every call to libflux in several layers
(call objects, error checks, a SIGINT handler swap around each wait) that
cost far more than libflux itself.  The C core (csrc/fj_flux.c) instead
looks libflux's functions up at run time in the library flux's bindings
loaded: nothing links against libflux, so flux-journal builds and runs
without Flux, and a process with Flux uses the very libflux its handle
does.
"""

import errno
import os
import threading

from flux_journal import core
from flux_journal._core import ffi, lib

_bind_lock = threading.Lock()
_flux_bindings_missing = []  # once non-empty: flux's bindings did not bind


def bind(path):
    """Look libflux's functions up in the shared object at *path* (flux's
    own compiled bindings, or any library that provides them or loads a
    library that does).  Raises OSError with the loader's message."""
    errbuf = ffi.new("char[]", 512)
    with _bind_lock:
        if lib.fj_flux_bind(os.fsencode(path), errbuf, len(errbuf)) == -lib.FJ_ELIBFLUX:
            raise OSError(
                errno.ENOENT, f"flux-journal: cannot use libflux from {path}: "
                f"{ffi.string(errbuf).decode(errors='replace')}"
            )


def bind_flux_bindings():
    """Bind to the libflux that flux-core's Python bindings use, if they
    are loaded or loadable.  Returns True when bound."""
    if lib.fj_flux_bound():
        return True
    if _flux_bindings_missing:
        return False  # a failed import is not retried on every start()
    try:
        # pylint: disable=import-outside-toplevel
        from _flux import _core as flux_core

        bind(flux_core.__file__)
    except Exception as exc:  # pylint: disable=broad-except
        # no Flux, or a broken one: the Python path serves
        _flux_bindings_missing.append(exc)
        return False
    return True


def future_pointer(future):
    """The flux_future_t * of a flux-core Future (flux.future.Future), as
    a pointer for the C core, or None if *future* is not one."""
    handle = getattr(getattr(future, "pimpl", None), "handle", None)
    ffi_of_flux = getattr(getattr(future, "pimpl", None), "ffi", None)
    if handle is None or ffi_of_flux is None:
        return None
    return ffi.cast("void *", int(ffi_of_flux.cast("uintptr_t", handle)))


def new_errnum():
    """A place for wait() to put its errno, for a caller that waits often."""
    return ffi.new("int *")


def wait(pointer, timeout, sigint_default, errnum=None):
    """flux_future_wait_for(): block until a response is ready, or raise
    TimeoutError after *timeout* seconds (-1.0: no limit).  The GIL is
    released meanwhile.  With *sigint_default*, Ctrl-C ends the process
    during the wait, as it does in flux-core's own waits (main thread,
    outside a reactor only).  Other failures raise the errno's OSError.
    *errnum*: from new_errnum(), else one is made for this call."""
    if errnum is None:
        errnum = ffi.new("int *")
    rc = lib.fj_flux_wait(pointer, timeout, 1 if sigint_default else 0, errnum)
    if rc == -lib.FJ_ELIBFLUX:
        code = errnum[0]
        raise OSError(code, os.strerror(code))
    core.check(rc, "waiting for a response")


def reset(pointer):
    """flux_future_reset(): drop the current response, making the next
    arrived one current."""
    lib.fj_flux_reset(pointer)
