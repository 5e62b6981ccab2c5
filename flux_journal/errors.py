"""Exceptions raised by flux-journal beyond those flux-core raises."""

from __future__ import annotations


class PayloadError(ValueError):
    """A journal response payload could not be used.

    Raised (from ``poll()``, or out of the reactor in callback mode) at the
    point of the stream where the bad response arrived; the response is
    dropped and the stream goes on.

    Attributes:
        offset (int): byte offset in the payload where the problem was found
        reason (str): what was wrong, e.g. "invalid escape in string"
        shape (bool): True if the payload was valid JSON of the wrong shape
            (no "events" array, an entry without a numeric timestamp, ...),
            False if it was not valid JSON at all
    """

    def __init__(self, reason: str, offset: int, shape: bool = False) -> None:
        self.reason = reason
        self.offset = offset
        self.shape = shape
        kind = "unexpected journal response" if shape else "malformed JSON"
        super().__init__(f"{kind} at byte {offset}: {reason}")


class BacklogFullError(MemoryError):
    """More history was buffered than the consumer's ``max_backlog`` allows.

    Raised instead of letting a huge history exhaust the machine's memory.
    The stream is cancelled; events already buffered are still delivered
    before this error.
    """
