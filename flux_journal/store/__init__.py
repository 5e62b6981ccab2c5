"""Archive storage: SQLite files and PostgreSQL databases, one logical
schema (:mod:`flux_journal.store.schema`).

:class:`~flux_journal.cli.archive.Archive` writes a journal into
either; :func:`connect` opens either for reading (``flux-journal
history``).  A ``postgresql://`` or ``postgres://`` URL names a
PostgreSQL database; anything else is an SQLite file.
"""

from flux_journal.store.errors import ArchiveError, one_line

__all__ = ["ArchiveError", "connect", "is_postgres", "open_backend"]


def is_postgres(url):
    """Whether *url* names a PostgreSQL database."""
    from flux_journal.store.postgres import URL_SCHEMES  # pylint: disable=import-outside-toplevel

    return str(url).startswith(URL_SCHEMES)


def open_backend(url, *, readonly=False, synchronous="NORMAL"):
    """Open the database of *url* (see :func:`connect`); for writing, an
    SQLite file is created if missing, with *synchronous* (ignored by
    PostgreSQL, whose commits are durable as the server is set up)."""
    # pylint: disable=import-outside-toplevel
    if is_postgres(url):
        from flux_journal.store.postgres import open_postgres

        return open_postgres(str(url), readonly=readonly)
    from flux_journal.store.sqlite import open_sqlite

    return open_sqlite(url, readonly=readonly, synchronous=synchronous)


def connect(url, *, readonly=True):
    """Open an existing archive to query it.

    Args:
        url: an SQLite file's path, or a PostgreSQL URL
            (``postgresql://user@/flux?host=/run/postgresql``)
        readonly (bool): refuse writes (SQLite: the file is opened
            ``mode=ro``; PostgreSQL: the session's transactions are
            read-only).  Queries need nothing more.

    Returns:
        a :class:`~flux_journal.store.backend.Backend` whose
        ``connection`` is the DB-API connection (in autocommit mode when
        read-only), ``paramstyle`` its placeholder (``?`` for SQLite,
        ``%s`` for PostgreSQL), ``kind`` ``sqlite`` or ``postgresql``,
        ``label`` the archive for messages (no password) and ``errors``
        the driver's exception class; ``close()`` closes it.  The tables
        are those of :mod:`flux_journal.store.schema`, every row with its
        ``instance``.

    Raises:
        ArchiveError: unreachable, refused, missing, or not an archive
            of this schema version (the message is one line)
    """
    backend = open_backend(url, readonly=readonly)
    try:
        try:
            backend.open_schema(None, None, create=False)
        except backend.errors as exc:
            raise backend.error(one_line(exc)) from exc
    except BaseException:
        backend.close()
        raise
    return backend
