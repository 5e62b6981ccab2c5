"""Types of ``flux-journal``'s option values: each parses one argument
or raises ``argparse.ArgumentTypeError`` with a message for the user."""

import argparse
import re

from flux_journal.timestamps import parse_timestamp

__all__ = [
    "positive_int", "count", "seconds", "rate", "parse_time", "names", "jobid",
    "join_relative_times",
]

# Options whose value may be a time before now written with a leading
# minus (``--since -6h``), and such a value: a minus, then a digit or a
# point.  argparse takes ``-6h`` for an unknown option (only plain
# negative numbers pass), so these are joined as ``--since=-6h`` first.
_TIME_OPTIONS = ("--since", "--until")
_RELATIVE_TIME = re.compile(r"-\.?\d")


def _integer(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def positive_int(text):
    """An integer > 0 (``--sim N``, ``--batch-size``)."""
    value = _integer(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def count(text):
    """An integer >= 0, where 0 means no limit (``history -c N``)."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (no limit) or more: {text!r}")
    return value


def seconds(text):
    """A finite number of seconds >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0: {text!r}")
    return value


def rate(text):
    """A finite number > 0 (``--sim-rate``)."""
    value = seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def parse_time(text):
    """Parse ``--since``: seconds since the epoch, or an ISO 8601 date/time.

    A date/time without a zone is local time, as ``date`` prints it.
    """
    try:
        return parse_timestamp(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a timestamp or ISO 8601 date/time: {text!r}"
        ) from None


def names(text):
    """A comma-separated list of event names (``--name``, ``--exclude``)."""
    listed = [name.strip() for name in text.split(",")]
    if not all(listed):
        raise argparse.ArgumentTypeError(f"empty event name in {text!r}")
    return listed


def jobid(text):
    """A Flux job id in any RFC 19 form, as an int (``--jobid``)."""
    # Imported here: JobID may come from flux-core's bindings, which need
    # not be loaded for `--help`.
    from flux_journal.job import JobID  # pylint: disable=import-outside-toplevel

    try:
        value = JobID(text)
    except (ValueError, OSError, NotImplementedError):
        raise argparse.ArgumentTypeError(f"not a valid Flux job id: {text!r}") from None
    if not 0 <= value < 1 << 64:
        raise argparse.ArgumentTypeError(f"not a valid Flux job id: {text!r}")
    return int(value)


def join_relative_times(argv):
    """*argv* with every ``--since``/``--until`` followed by a relative
    time before now (``-6h``, ``-1.5d``) joined into one argument
    (``--since=-6h``), so that argparse reads it as the option's value;
    nothing after a ``--`` is touched."""
    joined = []
    words = iter(argv)
    for word in words:
        if word == "--":
            joined.append(word)
            joined.extend(words)
            break
        if word in _TIME_OPTIONS:
            value = next(words, None)
            if value is not None and _RELATIVE_TIME.match(value):
                joined.append(f"{word}={value}")
                continue
            joined.append(word)
            if value is not None:
                joined.append(value)
            continue
        joined.append(word)
    return joined
