"""The live step: on a flux-core RPC, poll() takes the next response from
libflux in one call into C and, when it brings one plain event (as a live
stream's responses do), builds and returns it in a few Python operations,
past the batch, the builder's generator and the delivery queue; in
callback mode the C continuation's Python does the same and hands the
event to the callback.

Why a path of its own: a live reader sleeps between responses, and while
it sleeps the broker and other processes run; whatever the interpreter
touches per event is cold in the caches when the next response wakes it.
A live event's cost is then set by how much code and data its delivery
touches, far more than by its operations' warm cost (bench/broker.py
measures it on a real broker, bench/live_offline.py without one).
Anything else this step meets (several events, a marker, an irregular
entry or a tie, a context only json decodes exactly, an error) goes to
the general path, in stream order.
"""

import os
import signal
import threading

import orjson

from flux_journal import core

try:  # the handler as installed: signal.getsignal() converts it, at a cost
    from _signal import getsignal as _installed_handler
except ImportError:  # pragma: no cover (not CPython)
    from signal import getsignal as _installed_handler

_CARRIER = core.WITH_JOBSPEC | core.WITH_R

#: What a live step returns when it built no event.
GENERAL = object()

# Looked up once: a live event's cost is set by what it touches.
_SIGINT = int(signal.SIGINT)
_DEFAULT_INT_HANDLER = signal.default_int_handler
_get_ident = threading.get_ident

# The main thread's id, renewed in a child after fork (the forking thread
# is then its main thread): threading.main_thread().ident costs two
# Python calls per wait, a few µs with the caches cold (bench/live_offline.py).
_main_ident = threading.main_thread().ident


def _renew_main_ident():
    global _main_ident  # pylint: disable=global-statement
    _main_ident = _get_ident()


os.register_at_fork(after_in_child=_renew_main_ident)


def sigint_default(reactor_running):
    """Whether a wait may leave SIGINT at its default action, as flux-core's
    own waits do: in the main thread, outside a reactor
    (*reactor_running()*), unless the program handles SIGINT itself
    (flux-journal's commands stop cleanly at it): its handler then runs
    when the wait returns."""
    return (
        _installed_handler(_SIGINT) is _DEFAULT_INT_HANDLER
        and _get_ident() == _main_ident
        and not reactor_running()
    )


def live_steps(consumer, intake, pointer, errnum, reactor_running):
    """The live steps of *consumer* on *intake* (a DrainIntake), whose
    event builder can build one event alone (``one()``) and which keeps no
    cursor window: (step, pop).

    step(timeout), for poll(): waits up to *timeout* seconds (-1.0: no
    limit) for what comes next; returns the event built, or GENERAL: what
    was taken (if anything) went to the general path, which goes on.
    Raises TimeoutError when nothing came within *timeout*, OSError when
    waiting failed.

    pop(), for the C continuation: the same without taking or waiting,
    from what the continuation drained.

    Args:
        pointer: the request's future, as C sees it
        errnum: a place for the wait's errno
        reactor_running: the handle's reactor_running()
    """
    # everything the steps read is bound here, as locals of their closures
    pipeline = intake.pipeline
    stream = pipeline.core
    names_known = stream.names
    ready = consumer._queue.ready  # pylint: disable=protected-access
    callbacks = consumer._callbacks  # pylint: disable=protected-access
    build_one = consumer._build_events.one  # pylint: disable=protected-access
    resume = pipeline.resume
    c_stream, b, (timestamps, ids, names, flags) = stream.c_parts()
    attach_off, attach_size = stream.attach_columns
    drained = stream.drain_result
    settle = intake.settle_not_popped
    c_next, c_pop = core.lib.fj_flux_next, core.lib.fj_stream_pop
    popped, size = core.lib.FJ_NEXT_POPPED, core.BATCH_SIZE
    unpack, loads, decode_error = core.ffi.unpack, orjson.loads, orjson.JSONDecodeError

    def built_or_queued():
        # what C popped into the batch buffer: its one plain event, built,
        # or (GENERAL) the Batch of it all queued; b.one spares reading
        # the count, flags, and more (each field read costs, cold)
        if b.one:
            stream.maybe_ready = False
            try:
                item = loads(unpack(b.text, b.text_len))[0]
            except decode_error:
                pass  # decode_json()'s fallbacks, on the general path
            else:
                flag = flags[0]
                try:
                    name = names_known[names[0]]
                except IndexError:  # a name C met since the last batch
                    stream.learn_names(b.names)
                    name = names_known[names[0]]
                carried = (
                    unpack(b.attach + attach_off[0], attach_size[0]) if flag & _CARRIER else b""
                )
                return build_one(timestamps[0], ids[0], name, flag, item, carried, resume)
        else:
            stream.maybe_ready = b.more
        pipeline.fill(batch=stream.pop(popped=b.count))
        return GENERAL

    def step(timeout):
        if pipeline.over or ready or callbacks.active:
            return GENERAL
        rc = c_next(
            c_stream, pointer, timeout, sigint_default(reactor_running), b, size, size,
            drained, errnum,
        )
        if rc != popped:
            settle(rc)
            return GENERAL
        return built_or_queued()

    def pop():
        count = core.check(c_pop(c_stream, b, size), "popping events")
        if count == 0 and not b.marker:
            stream.maybe_ready = b.more
            return GENERAL
        return built_or_queued()

    return step, pop
