"""Response intake: how a request's responses are read off its future and
fed into the consumer's pipeline.

Chosen when the request is sent, by what its future offers:

* a flux-core RPC, with libflux reachable from C (:mod:`flux_journal.libflux`):
  C waits on the future and drains every arrived response itself, in one
  call from Python (in callback mode, a C continuation does, and enters
  Python only when there is something to deliver);
* a flux-core RPC otherwise: the broker's NUL-terminated payload is read in
  place with ``flux_rpc_get()`` and fed to C by its address (no copy);
* a future with ``get_str()`` (the simulated instance, replays): the text,
  encoded once; a burst of arrived ASCII payloads goes to C in one call;
* any other future: ``get()``, encoded back to JSON.

Whatever happens, the future is reset after each response, as flux-core
does: a response that made a hook raise is not read again.
"""

import errno
import json

from flux_journal import core, libflux
from flux_journal.consumer.live import GENERAL, live_steps, sigint_default
from flux_journal.errors import PayloadError


class Intake:
    """Reads one request's responses into *pipeline*.

    Args:
        pipeline: the request's :class:`~.pipeline.Pipeline`
        limit_backlog (bool): check the consumer's max_backlog after each
            response
    """

    def __init__(self, pipeline, limit_backlog):
        self.pipeline = pipeline
        self.limit_backlog = limit_backlog

    def read(self, future):
        """Feed the future's current response into the pipeline, or raise
        the response's OSError."""
        raise NotImplementedError

    def wait_and_take(self, future, timeout, more):
        """Block until a response is ready (raise TimeoutError after
        *timeout* seconds; -1.0 waits indefinitely), consume it, and up to
        *more* that have arrived after it."""
        future.wait_for(timeout)
        self.take(future)
        if more:
            self.take_arrived(future, more)

    def set_then(self, future, react, dispatch=None):
        """Take responses from the reactor: at each, *react(take)* is called
        with a function taking what arrived (it runs it, then delivers).
        *dispatch*: the CallbackDispatch, for an intake that can hand it
        one event past *react*."""
        del dispatch
        pipeline = self.pipeline

        def on_response(fut):
            if pipeline.over:
                # the end seen again, or a request replaced by start():
                # nothing more to read from it
                fut.reset()
                return
            react(lambda: self.take(fut))

        future.then(on_response)

    def take(self, future):
        """Consume the future's current response."""
        pipeline = self.pipeline
        try:
            self.read(future)
        except OSError as exc:
            end_at_error_response(pipeline, exc)
        except PayloadError as exc:
            pipeline.fail(exc)
        finally:
            future.reset()
        if self.limit_backlog:
            pipeline.check_backlog()

    def take_arrived(self, future, limit):
        """Consume up to *limit* responses that have already arrived,
        without waiting.  Returns how many were taken."""
        pipeline = self.pipeline
        if not hasattr(future, "is_ready"):
            try:
                future.wait_for(0)
            except TimeoutError:
                return 0
            self.take(future)
            return 1
        is_ready = future.is_ready
        taken = 0
        while taken < limit and not pipeline.over and is_ready():
            self.take(future)
            taken += 1
        return taken


def text_payload(future):
    """The payload of a future offering get_str(), as bytes."""
    try:
        text = future.get_str()
    except UnicodeDecodeError as exc:
        # flux's get_str() decodes the payload: report it like the C
        # scanner reports bad UTF-8 in a payload it reads raw
        raise PayloadError("invalid UTF-8", exc.start) from None
    if text is None:
        raise PayloadError("response has no payload", 0, shape=True)
    return text.encode("utf-8", "surrogatepass")


class RawIntake(Intake):
    """A flux-core RPC: the payload read in place with flux_rpc_get()."""

    def __init__(self, pipeline, limit_backlog, future):
        super().__init__(pipeline, limit_backlog)
        pimpl = future.pimpl
        self._ffi = pimpl.ffi
        self._holder = pimpl.ffi.new("char *[1]")

    def read(self, future):
        holder = self._holder
        try:
            future.pimpl.flux_rpc_get(holder)
        except OSError:
            _raise_handle_exception(future)
            raise
        if holder[0] == self._ffi.NULL:
            raise PayloadError("response has no payload", 0, shape=True)
        self.pipeline.feed_address(int(self._ffi.cast("uintptr_t", holder[0])))


class DrainIntake(Intake):
    """A flux-core RPC whose responses C takes straight from libflux: one
    call drains every response that has arrived (see
    :meth:`flux_journal.core.CoreStream.drain_future`)."""

    def __init__(self, pipeline, limit_backlog, pointer, future):
        super().__init__(pipeline, limit_backlog)
        self._pointer = pointer
        self._future = future
        self._errnum = libflux.new_errnum()
        self._reactor_running = getattr(
            type(pipeline.consumer.handle), "reactor_running", lambda: False
        )

    def wait_and_take(self, future, timeout, more):
        # One call into C pops what is deliverable, or drains every
        # arrived response (*more* or not), or waits, drains and pops:
        # the popped batch goes straight to the queue.
        del more
        pipeline = self.pipeline
        if pipeline.over:
            return
        try:
            batch, error = pipeline.core.next_from_future(
                self._pointer, timeout, sigint_default(self._reactor_running),
                pipeline.fail, self._errnum,
            )
        except OSError:
            _raise_handle_exception(future)
            raise
        if batch is not None:
            pipeline.fill(batch=batch)
        elif error is not None:
            self._end(future, error)
        if self.limit_backlog:
            pipeline.check_backlog()

    def live_step(self, consumer):
        """poll()'s live step on this request (see live.live_steps()), or
        None if the consumer cannot take it: its builder cannot build one
        event alone, or a cursor window records what is delivered.  The
        C continuation (set_then()) then takes the same shortcut."""
        build = consumer._build_events  # pylint: disable=protected-access
        if not hasattr(build, "one") or self.pipeline.resume.window is not None:
            return None
        step, self._live_pop = live_steps(
            consumer, self, self._pointer, self._errnum, self._reactor_running
        )
        return step

    def settle_not_popped(self, rc):
        """The live step's C call returned *rc*, not FJ_NEXT_POPPED: as
        wait_and_take() would, end the stream at an error response or
        raise what waiting raised."""
        try:
            error = self.pipeline.core.not_popped(rc, self.pipeline.fail, self._errnum)
        except OSError:
            _raise_handle_exception(self._future)
            raise
        if error is not None:
            self._end(self._future, error)

    def take(self, future):
        self.take_arrived(future, core.BATCH_SIZE)

    def take_arrived(self, future, limit):
        pipeline = self.pipeline
        if pipeline.over:
            return 0
        taken, error = pipeline.core.drain_future(self._pointer, limit, pipeline.fail)
        if error is not None:
            taken += 1
            self._end(future, error)
        if self.limit_backlog:
            pipeline.check_backlog()
        return taken

    def set_then(self, future, react, dispatch=None):
        pipeline = self.pipeline
        live_pop = self._live_pop if dispatch is not None else None
        idle = core.lib.FJ_DRAIN_IDLE

        def on_drained(rc):
            if pipeline.over:
                return
            if live_pop is not None and rc == idle and dispatch.takes_one():
                # a live response (C reports IDLE once ordered history is
                # over): its one event straight to the callback
                event = live_pop()
                if event is not GENERAL:
                    if not dispatch.deliver_one(event) or not pipeline.core.maybe_ready:
                        return  # it raised (the rest waits for the next run), or all done
            react(lambda: self._after_continuation(future, rc, cell.d))

        cell = pipeline.core.then_future(self._pointer, on_drained)
        # the cell (and on_drained) must live exactly as long as the
        # future that calls it
        future.flux_journal_then = cell

    def _after_continuation(self, future, rc, drained):
        """The C continuation stopped with *rc* (fj_flux_drain()'s result,
        *drained* its counts): end the stream at an error response, or
        drain on past a refused payload or the sentinel."""
        more, error = self.pipeline.core.drained(rc, drained, self.pipeline.fail)
        if error is not None:
            self._end(future, error)
        elif more or rc == core.lib.FJ_DRAIN_SENTINEL:
            self.take_arrived(future, 1 << 30)
        elif self.limit_backlog:
            self.pipeline.check_backlog()

    def _end(self, future, error):
        """An error response (left current in the future by the drain)."""
        try:
            _raise_handle_exception(future)
        finally:
            future.reset()
        end_at_error_response(self.pipeline, error)


def end_at_error_response(pipeline, exc):
    """An error response ends the stream: ENODATA is its normal end; any
    other error is raised after what came before it."""
    pipeline.finish(None if exc.errno == errno.ENODATA else exc)


def _raise_handle_exception(future):
    """flux-core's get_str() does the same at an error response: an
    exception raised in a callback on this handle is the real cause."""
    if hasattr(future, "raise_if_handle_exception"):
        future.raise_if_handle_exception()


class TextIntake(Intake):
    """A future offering get_str()."""

    def read(self, future):
        self.pipeline.feed(text_payload(future))

    def take_arrived(self, future, limit):
        if self.limit_backlog or not hasattr(self.pipeline, "feed_many"):
            return super().take_arrived(future, limit)
        return self._take_burst(future, limit)

    def _take_burst(self, future, limit):
        """take_arrived() into C, kept to a few Python operations per
        response: ASCII payloads (their length in characters is their
        length in bytes) are gathered and fed together, in one call; any
        other response (an error, no payload, non-ASCII text) is left to
        take(), which reads it again, after those before it."""
        is_ready, get_str, reset = future.is_ready, future.get_str, future.reset
        pipeline = self.pipeline
        texts = []
        taken = 0
        while taken < limit and is_ready():
            taken += 1
            try:
                text = get_str()
            except (OSError, UnicodeDecodeError):
                text = None
            if text is not None and text.isascii():
                texts.append(text)
                reset()
                continue
            self._feed_texts(texts)
            texts = []
            self.take(future)
            if pipeline.over:
                break
        self._feed_texts(texts)
        return taken

    def _feed_texts(self, texts):
        if texts:
            self.pipeline.feed_many(
                "".join(texts).encode("ascii"), [len(text) for text in texts]
            )


class ObjectIntake(Intake):
    """A future offering only get(): the decoded payload, encoded again."""

    def read(self, future):
        resp = future.get()
        if resp is None:
            raise PayloadError("response has no payload", 0, shape=True)
        self.pipeline.feed(json.dumps(resp).encode())


def choose_intake(future, pipeline, limit_backlog):
    """The intake for a request whose responses come on *future*."""
    pimpl = getattr(future, "pimpl", None)
    if (
        hasattr(pipeline, "feed_address")
        and hasattr(pimpl, "ffi")
        and hasattr(pimpl, "flux_rpc_get")
    ):
        # The C drain takes many responses between two looks at the
        # backlog: with max_backlog, responses are read one at a time.
        pointer = None
        if not limit_backlog and libflux.bind_flux_bindings():
            pointer = libflux.future_pointer(future)
        if pointer is not None:
            return DrainIntake(pipeline, limit_backlog, pointer, future)
        return RawIntake(pipeline, limit_backlog, future)
    if hasattr(future, "get_str"):
        return TextIntake(pipeline, limit_backlog)
    return ObjectIntake(pipeline, limit_backlog)
