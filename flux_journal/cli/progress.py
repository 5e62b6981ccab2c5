"""The ``N events`` indicator ``flux-journal`` draws on a terminal while
it reads a journal's history."""

import sys
import time

from flux_journal.cli.errors import PROG

__all__ = ["Progress", "isatty"]

# Progress indicator refresh period.
_PROGRESS_PERIOD = 0.2


def isatty(stream):
    """Whether *stream* is a terminal (false for anything without a descriptor)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


class Progress:
    """A one-line ``N events`` indicator on stderr while history is read,
    when stderr is a terminal."""

    def __init__(self, enabled, stream=None, shares_terminal=False):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        # Output is written to the same terminal: erase the indicator
        # before each write so lines do not run into it.
        self.shares_terminal = shares_terminal
        self._shown = False
        self._next = time.monotonic() + _PROGRESS_PERIOD

    def update(self, received, written):
        """Redraw, at most every _PROGRESS_PERIOD seconds."""
        if not self.enabled:
            return
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + _PROGRESS_PERIOD
        self.stream.write(f"\r\033[K{PROG}: reading history: {received:,} events received, "
                          f"{written:,} written")
        self.stream.flush()
        self._shown = True

    def erase(self):
        """Before output is written: erase the indicator line if the
        output goes to the same terminal; the next update redraws it."""
        if self._shown and self.shares_terminal:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False

    def clear(self):
        """Erase the indicator; it is not shown again."""
        if self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False
        self.enabled = False
