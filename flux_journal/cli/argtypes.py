"""Types of ``flux-journal``'s option values: each parses one argument
or raises ``argparse.ArgumentTypeError`` with a message for the user."""

import argparse

from flux_journal.timestamps import parse_timestamp

__all__ = ["positive_int", "count", "seconds", "rate", "parse_time", "names", "jobid"]


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
