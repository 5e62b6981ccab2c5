"""Python side of the C core: feed raw responses in, take event batches out.

This is the one place Python crosses into ``flux_journal._core`` (see
csrc/fj_stream.h for the protocol and delivery order).  A :class:`CoreStream`
owns one C stream; consumers feed it each response payload as bytes (or as
the address of the broker's NUL-terminated payload) and pop :class:`Batch`
objects, each carrying up to a few hundred events in plain lists, built
with one call into C and one JSON decode.
"""

import json
import os
import sys
import threading

from flux_journal._core import ffi, lib
from flux_journal.errors import PayloadError

import orjson


# orjson turns integers beyond 64 bits into floats, where json keeps them
# exact; any run of FJ_WIDE_INT_DIGITS digits may be one.  Looked for by
# mapping every digit to "0" and every other byte to " " (one C pass;
# a regular expression takes several times as long on a jobspec).
_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_WIDE_RUN = b"0" * lib.FJ_WIDE_INT_DIGITS


def _has_wide_int(text):
    """Whether JSON *text* (bytes or memoryview) may hold an integer
    orjson cannot keep exact."""
    if not isinstance(text, bytes):
        text = bytes(text)
    return _WIDE_RUN in text.translate(_DIGITS_AS_ZEROS)


def decode_json(text, wide_int=None):
    """Decode JSON text (bytes or memoryview) to Python objects, exactly as
    json.loads would.

    orjson builds the same objects about three times faster
    (tests/test_properties.py pins that, floats bit for bit), except for
    integers beyond 64 bits (*wide_int*: whether the text may hold one;
    None to look), and it refuses two things json accepts: escaped lone
    surrogates, and numbers too large for a double (json gives inf).
    Those go through json.
    """
    if wide_int is None:
        wide_int = _has_wide_int(text)
    if not wide_int:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(bytes(text))


# Events per batch: large enough that per-batch costs vanish, small enough
# that a consumer reading a few events does not build many more.
BATCH_SIZE = 256

# Most events one pop can return (poll_batch() asks for more than
# BATCH_SIZE in one crossing).
MAX_BATCH = 4096

# Stream kinds (csrc/fj_stream.h)
HISTORY = lib.FJ_STREAM_HISTORY
ORDERED = lib.FJ_STREAM_ORDERED
JOB = lib.FJ_STREAM_JOB
RESOURCE = lib.FJ_STREAM_RESOURCE

# Markers a batch can carry instead of events
SENTINEL = lib.FJ_MARK_SENTINEL
END = lib.FJ_MARK_END
FIRST_USER_MARK = lib.FJ_MARK_USER

# Per-event flags
IRREGULAR = lib.FJ_EV_IRREGULAR
WITH_JOBSPEC = lib.FJ_EV_JOBSPEC
WITH_R = lib.FJ_EV_R
TIE = lib.FJ_EV_TIE
FINAL = lib.FJ_EV_FINAL


def core_error(code, context):
    """The exception for fj_errnum *code* (positive) raised by the C core
    while doing *context*: MemoryError when out of memory, RuntimeError
    when libflux is not bound (a call out of order), ValueError for a
    limit reached (a full name table names FJ_MAX_NAMES)."""
    reason = ffi.string(lib.fj_strerror(code)).decode()
    if code == lib.FJ_ENOMEM:
        return MemoryError(f"flux-journal: {reason} {context}")
    if code == lib.FJ_EUNBOUND:
        return RuntimeError(f"flux-journal: {context}: {reason}")
    return ValueError(f"flux-journal: {context}: {reason}")


def check(rc, context):
    """Return a C result *rc*, or raise core_error() for a negative one
    (the C core's convention: a negated fj_errnum)."""
    if rc < 0:
        raise core_error(-rc, context)
    return rc


def payload_error(err):
    """The PayloadError for a C fj_error_t (MemoryError when out of
    memory)."""
    code = err.code
    if code == lib.FJ_ENOMEM:
        return core_error(code, "parsing a response")
    reason = ffi.string(lib.fj_strerror(code)).decode()
    return PayloadError(reason, err.offset, shape=code >= lib.FJ_FIRST_SHAPE_ERROR)


class Batch:
    """Events popped from a stream, as parallel lists.

    Attributes:
        timestamps (list of float)
        ids (list of int): each event's response "id" (the job id)
        names (list of int): index in the stream's name list, -1 if the
            event is irregular
        flags (list of int): FJ_EV_* bits per event
        items (list): decoded JSON values: per event its context, or its
            whole entry if irregular
        attached (list): per event carrying jobspec or R (flagged
            WITH_JOBSPEC / WITH_R), in order, that JSON text as bytes
        marker (int): 0, or the marker popped instead of events
    """

    __slots__ = ("timestamps", "ids", "names", "flags", "items", "attached", "marker")


class CoreStream:
    """One journal stream in the C core.

    Args:
        kind (int): HISTORY, ORDERED, JOB, RESOURCE bits
        since (float): drop events with timestamp <= since
    """

    def __init__(self, kind, since):
        stream = lib.fj_stream_create(kind, float(since))
        batch = lib.fj_batch_create(MAX_BATCH)
        if stream == ffi.NULL or batch == ffi.NULL:
            lib.fj_stream_destroy(stream)
            lib.fj_batch_destroy(batch)
            raise MemoryError("flux-journal: cannot allocate a stream")
        self._stream = ffi.gc(stream, lib.fj_stream_destroy)
        self._batch = ffi.gc(batch, lib.fj_batch_destroy)
        self._err = ffi.new("fj_error_t *")
        self._consumed = ffi.new("size_t *")  # fj_stream_feed_many()'s count
        self._drain = None  # fj_flux_drain()'s result, made at first use
        # The batch's fixed arrays, looked up once: every cffi attribute
        # access costs about as much as a small C call.
        self._columns = (batch.timestamp, batch.id, batch.name, batch.flags)
        self.attach_columns = (batch.attach_off, batch.attach_size)
        #: decoded event names, by name table index
        self.names = []
        #: False once a pop found nothing deliverable, until the stream
        #: changes again: saves a call into C per poll() on a live stream
        self.maybe_ready = True
        #: True while ordered history is being gathered: until the
        #: sentinel (or the end), nothing can be popped
        self.gathering = bool(kind & ORDERED) and bool(kind & HISTORY)

    def filter(self, name, deny=False):
        """Before the first feed: deliver only allowed names (once any name
        is allowed), never denied ones."""
        raw = name.encode("utf-8", "surrogatepass")
        check(
            lib.fj_stream_filter(self._stream, raw, len(raw), 1 if deny else 0),
            "adding a name to the deny list" if deny else "adding a name to the allow list",
        )

    def check_range(self, lo, hi):
        """Flag events with timestamps in [lo, hi] for the slow path, where
        a consumer resuming from a cursor checks them."""
        lib.fj_stream_check_range(self._stream, lo, hi)

    def feed(self, payload):
        """Feed one response payload (bytes).  Raises PayloadError if it
        cannot be used."""
        self._account(lib.fj_stream_feed(self._stream, payload, len(payload), self._err))

    def feed_many(self, payloads, lengths, refused):
        """Feed payloads laid end to end in *payloads* (bytes), lengths[i]
        bytes each, in one call into C where possible: as feed() of each
        would, except that a payload C refuses is passed to
        refused(PayloadError), at its place in the stream, and the rest
        are fed after it."""
        count = len(lengths)
        lens = ffi.new("size_t[]", lengths)
        buf = ffi.from_buffer(payloads)
        consumed = self._consumed
        first = offset = 0
        while True:
            # C stops after the sentinel or a payload it refuses
            rc = lib.fj_stream_feed_many(
                self._stream, buf + offset, lens + first, count - first, self._err, consumed
            )
            try:
                self._account(rc)
            except PayloadError as exc:
                refused(exc)
            done = consumed[0]
            if first + done >= count:
                return
            offset += sum(lengths[first : first + done])
            first += done

    def _account(self, rc):
        """Account for the result of a feed: raise PayloadError for a
        payload that could not be used; note the sentinel."""
        if rc:
            if rc < 0:
                raise payload_error(self._err)
            if rc == lib.FJ_FED_SENTINEL:
                self.gathering = False
        if not self.gathering:
            self.maybe_ready = True

    def drain_future(self, future, limit, refused):
        """Take up to *limit* responses that have already arrived at a
        flux-core RPC future, in C, straight from libflux (see
        flux_journal.libflux, which must be bound first): read, feed and
        reset each, as feed_address() and flux's reset() one by one would.

        *future* is the flux_future_t * as an int or a cdata pointer.  A
        payload C refuses, or a response without one, is passed to
        refused(PayloadError) at its place, and the rest follow it.  Stops
        early after the sentinel, or at an error response, which is left
        unreset (its message lives in the future): the caller resets it.

        Returns:
            (taken, error): responses consumed, and None or the error
            response as the OSError flux-core would raise for it
        """
        d = self.drain_result
        if isinstance(future, int):
            future = ffi.cast("void *", future)
        taken = 0
        while taken < limit:
            rc = lib.fj_flux_drain(self._stream, future, limit - taken, d)
            taken += d.taken
            more, error = self.drained(rc, d, refused)
            if not more:
                return taken, error
        return taken, None

    def drained(self, rc, d, refused):
        """Account for one fj_flux_drain() result *rc* with its fj_drain_t
        *d*: (whether draining may go on, the error response's OSError or
        None)."""
        if d.taken and not self.gathering:
            self.maybe_ready = True
        if rc == lib.FJ_DRAIN_SENTINEL:
            self.gathering = False
            self.maybe_ready = True
            return False, None
        if rc == lib.FJ_DRAIN_REFUSED:
            refused(payload_error(d.err))
            return True, None
        if rc == lib.FJ_DRAIN_NO_PAYLOAD:
            refused(PayloadError("response has no payload", 0, shape=True))
            return True, None
        if rc == lib.FJ_DRAIN_ERROR:
            errnum = d.errnum
            text = os.strerror(errnum) if d.errstr == ffi.NULL else ffi.string(d.errstr)
            if isinstance(text, bytes):
                text = text.decode("utf-8")
            return False, OSError(errnum, text)
        check(rc, "draining a response")
        return False, None  # FJ_DRAIN_IDLE, FJ_DRAIN_LIMIT

    def then_future(self, future, deliver):
        """Set a C continuation on a flux-core RPC future (see
        drain_future()): each time responses arrive, C drains them into
        this stream and calls deliver(rc) (rc: fj_flux_drain()'s result;
        pass it to drained() with the returned cell's ``d``) only when
        Python has something to do; an ordered history still gathering has
        nothing.  *deliver* must not raise.  Keep the returned cell (it
        keeps *deliver* alive) as long as the future may run it."""
        if isinstance(future, int):
            future = ffi.cast("void *", future)
        keep = ffi.new_handle(deliver)
        cell = ffi.new("fj_flux_then_t *")
        cell.s = self._stream
        cell.deliver = lib.fj_py_deliver
        cell.arg = keep
        errnum = ffi.new("int *")
        rc = lib.fj_flux_then(future, cell, errnum)
        if rc == -lib.FJ_ELIBFLUX:
            raise OSError(errnum[0], os.strerror(errnum[0]))
        check(rc, "setting a continuation")
        return _ThenCell(cell, keep, self)

    def feed_address(self, address):
        """Feed the NUL-terminated payload at a C address (an int), such as
        the pointer flux_rpc_get() returns: no Python copy is made."""
        self._account(
            lib.fj_stream_feed_cstr(
                self._stream, ffi.cast("const char *", address), self._err
            )
        )

    def mark(self, tag):
        """Queue marker `tag` (>= FIRST_USER_MARK) at this point."""
        self.maybe_ready = True
        check(lib.fj_stream_mark(self._stream, tag), "queueing a marker")

    def end(self):
        """The service ended the stream: release history, then END."""
        self.maybe_ready = True
        self.gathering = False
        check(lib.fj_stream_end(self._stream), "ending the stream")

    @property
    def backlog(self):
        """Events held in C, not yet popped."""
        return lib.fj_stream_stats(self._stream).backlog

    def stats(self):
        """Counters kept by the C core, as a dict."""
        st = lib.fj_stream_stats(self._stream)
        return {
            "responses": st.responses,
            "bytes": st.bytes,
            "events": st.events,
            "filtered_since": st.filtered_since,
            "filtered_name": st.filtered_name,
            "delivered": st.delivered,
            "backlog": st.backlog,
            "peak_backlog": st.peak_backlog,
            "history": st.history,
        }

    def learn_names(self, count):
        """Decode the names the C table gained since the last batch."""
        names = self.names
        size = ffi.new("size_t *")
        for i in range(len(names), count):
            raw = ffi.buffer(lib.fj_stream_name(self._stream, i, size), size[0])
            names.append(sys.intern(json.loads(b'"' + raw[:] + b'"')))

    def _attached(self, b):
        """The batch's jobspec/R texts, one bytes object per carrier."""
        count = b.nattach
        text = ffi.buffer(b.attach, b.attach_len)
        offsets, sizes = self.attach_columns
        return [
            text[off : off + size]
            for off, size in zip(ffi.unpack(offsets, count), ffi.unpack(sizes, count))
        ]

    def pop(self, max_events=BATCH_SIZE, popped=None):
        """Pop up to max_events (at most MAX_BATCH) deliverable events as a
        Batch, or None if nothing is deliverable now.  *popped*: C has
        already popped that many events (or a marker, with 0) into the
        batch buffer; make the Batch of those (one function for both,
        without a call more per batch on either path)."""
        b = self._batch
        if popped is None:
            if not self.maybe_ready:
                return None
            n = check(lib.fj_stream_pop(self._stream, b, max_events), "popping events")
            self.maybe_ready = b.more
        else:
            n = popped
        if n == 0:
            marker = b.marker
            if not marker:
                return None
            batch = Batch()
            batch.marker = marker
            return batch
        batch = Batch()
        batch.marker = 0
        if b.names != len(self.names):
            self.learn_names(b.names)
        timestamps, ids, names, flags = self._columns
        unpack = ffi.unpack
        batch.timestamps = unpack(timestamps, n)
        batch.ids = unpack(ids, n)
        batch.names = unpack(names, n)
        batch.flags = unpack(flags, n)
        try:
            batch.items = decode_json(
                memoryview(ffi.buffer(b.text, b.text_len)), wide_int=b.text_wide_int
            )
        except (RecursionError, ValueError) as exc:
            # Only an event popped alone (nested too deep, or an integer
            # too long, for Python) can fail here: it alone is lost.
            raise PayloadError(
                f"event {self.names[batch.names[0]] if batch.names[0] >= 0 else ''} "
                f"at {batch.timestamps[0]!r} cannot be decoded by Python's json: {exc}",
                0,
                shape=True,
            ) from None
        batch.attached = self._attached(b) if b.nattach else ()
        return batch

    def next_from_future(self, future, timeout, sigint_default, refused, errnum):
        """poll()'s step in one call into C (fj_flux_next()): pop a
        Batch; if there is none, take the responses that have arrived at
        a flux-core RPC future (see drain_future()) and pop again; if
        none has, wait up to *timeout* seconds (-1.0: no limit; SIGINT
        at its default action meanwhile with *sigint_default*, as
        flux_journal.libflux.wait() does), take what came and pop again.

        *errnum* is a place for the wait's errno (libflux.new_errnum()).

        Returns:
            (batch, error): the Batch popped or None (nothing deliverable
            yet: call again while time is left), and None or the error
            response as drain_future() returns it
        Raises:
            TimeoutError: nothing arrived within *timeout*
            OSError: waiting failed
        """
        b = self._batch
        rc = lib.fj_flux_next(
            self._stream, future, timeout, sigint_default, b, BATCH_SIZE, BATCH_SIZE,
            self.drain_result, errnum,
        )
        if rc == lib.FJ_NEXT_POPPED:
            self.maybe_ready = b.more
            return self.pop(popped=b.count), None
        return None, self.not_popped(rc, refused, errnum)

    def not_popped(self, rc, refused, errnum):
        """An fj_flux_next() result *rc* other than FJ_NEXT_POPPED, as
        next_from_future() returns it: None or the error response's
        OSError.  Raises what next_from_future() raises."""
        if rc == -lib.FJ_ELIBFLUX:
            code = errnum[0]
            raise OSError(code, os.strerror(code))
        check(rc, "taking the next events")
        return self.drained(rc, self.drain_result, refused)[1]

    @property
    def drain_result(self):
        """The fj_drain_t that fj_flux_next() fills (made at first use)."""
        d = self._drain
        if d is None:
            d = self._drain = ffi.new("fj_drain_t *")
        return d

    def c_parts(self):
        """What a caller of the C step needs to call it and read its
        batch (see flux_journal.consumer.live): (the C stream, its batch
        buffer, that buffer's (timestamp, id, name, flags) arrays).  The
        carried texts' (offset, size) arrays are ``attach_columns``."""
        return self._stream, self._batch, self._columns


class _ThenCell:
    """What a C continuation needs alive: its fj_flux_then_t (``d``: the
    drain result deliver() is told about), the handle of the Python
    callable, and the stream."""

    __slots__ = ("cell", "keep", "stream", "d")

    def __init__(self, cell, keep, stream):
        self.cell, self.keep, self.stream = cell, keep, stream
        self.d = cell.d


@ffi.def_extern()
def fj_py_deliver(arg, rc):
    """C continuation (fj_flux_then()) -> the Python callable it was given."""
    ffi.from_handle(arg)(rc)


_validate_state = threading.local()


def validate(payload):
    """Check a payload (bytes) as the fast path would; raise PayloadError."""
    state = _validate_state
    index = getattr(state, "index", None)
    if index is None:
        index = ffi.gc(ffi.new("fj_payload_t *"), lib.fj_payload_release)
        lib.fj_payload_init(index)
        state.index, state.err = index, ffi.new("fj_error_t *")
    if lib.fj_payload_parse(index, payload, len(payload), state.err) < 0:
        raise payload_error(state.err)
