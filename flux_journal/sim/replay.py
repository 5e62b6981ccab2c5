"""Serve a captured (or hand-written) response stream on a journal topic.

A capture is one raw response payload per line, exactly as
``get_str()`` returned it from a real broker (the test fixtures'
README describes how they were captured).  :class:`ReplayService` sends those
payloads byte for byte to every streaming request on its topic, then
keeps the stream open until the request is cancelled (ENODATA), unless
told to end it right away.  Scripts can also mix in anything a consumer
must survive: malformed payloads, payloads that are not UTF-8, empty
(None) payloads, and error responses at chosen positions.  That is how
consumer fault tests are written::

    h = SimFlux.replay(lines, topic="resource.journal",
                       errors={5: errno.EPERM})     # EPERM after 5 lines
"""

import bisect
import errno
import os

from flux_journal.sim.errors import SimError
from flux_journal.sim.services import SimService

__all__ = ["ReplayService", "read_capture"]

# What each real service answers to a request missing FLUX_RPC_STREAMING.
_STREAMING_ERRORS = {
    "job-manager.events-journal": "job-manager.events requires streaming RPC flag",
    "resource.journal": "journal requires streaming RPC flag",
}


def read_capture(path):
    """Read a capture file into a list of payloads, one per line.

    Lines are split on ``\\n`` only and kept exactly; a line that is
    valid UTF-8 becomes a str, any other stays bytes (so ``get_str()``
    fails on it the way flux's UTF-8 decode would).  A final newline
    does not make an extra empty line.
    """
    with open(path, "rb") as stream:
        data = stream.read()
    if data.endswith(b"\n"):
        data = data[:-1]
    if not data:
        return []
    lines = []
    for raw in data.split(b"\n"):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(raw)
    return lines


def _as_error(spec):
    """Turn an errno, (errno, errstr) pair or SimError into a SimError."""
    if isinstance(spec, SimError):
        return spec
    if isinstance(spec, tuple):
        return SimError(*spec)
    if isinstance(spec, BaseException) and getattr(spec, "errno", None):
        return SimError(spec.errno, spec.strerror)
    return SimError(int(spec))


class ReplayService(SimService):
    """Replays a fixed list of responses to each request on *topic*.

    Arguments:
        source: a capture path, or a list whose items are payload str,
            bytes, None (a response without payload) or
            :class:`~flux_journal.sim.errors.SimError` (an error response;
            it ends the stream, so nothing after it is sent).
        topic: the journal topic served; ``<topic>-cancel`` cancels.
        end: None to keep the stream open after the last item until it
            is cancelled; otherwise an errno, (errno, errstr) or SimError
            sent right after the last item (e.g. ``errno.ENODATA``).
        errors: {position: errno | (errno, errstr) | SimError} inserting
            an error response after *position* items (``{5: EPERM}``:
            five responses, then EPERM).
        hold: if set, only the first *hold* items go out when a request
            arrives; :meth:`release` sends more later (from any thread).
        require_streaming: answer non-streaming requests with the real
            service's EPROTO error instead of replaying.

    Every request gets the whole script from the start.
    """

    def __init__(
        self,
        source,
        topic="job-manager.events-journal",
        *,
        end=None,
        errors=None,
        hold=None,
        require_streaming=True,
    ):
        super().__init__()
        if isinstance(source, (str, bytes, os.PathLike)):
            items = read_capture(source)
        else:
            items = [item if not isinstance(item, bytearray) else bytes(item) for item in source]
        if errors:
            # Insert from the back so earlier positions stay valid.
            for position in sorted(errors, reverse=True):
                if not 0 <= position <= len(items):
                    raise ValueError(f"error position {position} outside 0..{len(items)}")
                items.insert(position, _as_error(errors[position]))
        if end is not None:
            items.append(_as_error(end))
        self.items = items
        self._errors = [i for i, item in enumerate(items) if isinstance(item, SimError)]
        self.topic = topic
        self.topics = (topic, f"{topic}-cancel")
        self.hold = hold
        self.require_streaming = require_streaming
        # Per open request: how many items it has been sent.
        self._sent = {}

    def handle_request(self, request):
        """Replay the script to *request* (or handle a cancel)."""
        if request.topic == f"{self.topic}-cancel":
            self.cancel(request)
            self._sent = {m: n for m, n in self._sent.items() if self._is_listening(m)}
            return
        if self.require_streaming and not request.streaming:
            message = _STREAMING_ERRORS.get(self.topic, f"{self.topic} requires streaming RPC flag")
            raise SimError(errno.EPROTO, message)
        with self._cond:
            count = len(self.items) if self.hold is None else min(self.hold, len(self.items))
            self._send(request, 0, count)

    def _send(self, request, first, last):
        # the first error response at or after `first` (found by bisection:
        # scripts can be a million lines long) ends the stream
        at = bisect.bisect_left(self._errors, first)
        stop = self._errors[at] - first if at < len(self._errors) and self._errors[at] < last else None
        chunk = self.items[first:last] if stop is None else self.items[first : first + stop + 1]
        request.respond_many(chunk)
        if stop is not None or not request.is_open:
            self._listeners = [(r, x) for r, x in self._listeners if r is not request]
            self._sent.pop(request.matchtag, None)
            return
        if (request, None) not in self._listeners:
            self._listeners.append((request, None))
        self._sent[request.matchtag] = last

    def _is_listening(self, matchtag):
        return any(r.matchtag == matchtag for r, _ in self._listeners)

    def release(self, count=None):
        """Send up to *count* more held items (default: all) to every open stream.

        Returns the number of streams that got something.
        """
        with self._cond:
            served = 0
            for request, _ in list(self._listeners):
                first = self._sent.get(request.matchtag, 0)
                last = len(self.items) if count is None else min(len(self.items), first + count)
                if last > first:
                    self._send(request, first, last)
                    served += 1
            return served
