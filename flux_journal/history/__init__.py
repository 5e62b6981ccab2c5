"""``flux-journal history``: archived jobs listed the way ``flux jobs``
lists live ones.

:mod:`~flux_journal.history.fields` computes ``flux jobs``' fields from an
archived record, :mod:`~flux_journal.history.format` is its output format
language, :mod:`~flux_journal.history.query` turns the command's filters
into SQL for any backend, :mod:`~flux_journal.history.reader` opens an
archive and runs the queries.  The subcommand is
:mod:`flux_journal.cli.history`; nothing here imports the command line.
"""
