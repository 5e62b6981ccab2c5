"""Response intake: how a request's responses are read off its future and
fed into the consumer's pipeline.

Chosen at the first response, by what the future offers:

* a flux-core RPC: the broker's NUL-terminated payload is read in place
  with ``flux_rpc_get()`` and fed to C by its address (no copy);
* a future with ``get_str()`` (the simulated instance, replays): the text,
  encoded once; a burst of arrived ASCII payloads goes to C in one call;
* any other future: ``get()``, encoded back to JSON.

Whatever happens, the future is reset after each response, as flux-core
does: a response that made a hook raise is not read again.
"""

import errno
import json

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

    def take(self, future):
        """Consume the future's current response."""
        pipeline = self.pipeline
        try:
            self.read(future)
        except OSError as exc:
            # The response itself is an error: the stream is over.
            pipeline.finish(None if exc.errno == errno.ENODATA else exc)
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
            # flux-core's get_str() does the same: an exception raised in
            # a callback on this handle is the real cause
            if hasattr(future, "raise_if_handle_exception"):
                future.raise_if_handle_exception()
            raise
        if holder[0] == self._ffi.NULL:
            raise PayloadError("response has no payload", 0, shape=True)
        self.pipeline.feed_address(int(self._ffi.cast("uintptr_t", holder[0])))


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
    """The intake for a request whose first response is on *future*."""
    pimpl = getattr(future, "pimpl", None)
    if (
        hasattr(pipeline, "feed_address")
        and hasattr(pimpl, "ffi")
        and hasattr(pimpl, "flux_rpc_get")
    ):
        return RawIntake(pipeline, limit_backlog, future)
    if hasattr(future, "get_str"):
        return TextIntake(pipeline, limit_backlog)
    return ObjectIntake(pipeline, limit_backlog)
