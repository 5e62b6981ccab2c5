"""The one exception the store raises."""

__all__ = ["ArchiveError", "one_line"]


class ArchiveError(Exception):
    """The archive cannot be used: unreachable, refused, of another schema,
    another process archiving the same journal, or a write failed.  The
    message is one line that names the archive."""


def one_line(exc):
    """The message of a database driver's exception on one line (libpq's
    run over several, with indentation)."""
    return " ".join(str(exc).split()) or type(exc).__name__
