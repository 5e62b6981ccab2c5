"""``flux-journal metrics``: a Prometheus exporter driven by the journals.

Modules:

``state``
    :class:`~flux_journal.metrics.state.JobTracker`: job states (RFC 21)
    and results from the job-manager journal, as flux-core's job-list
    computes them
``resource``
    :class:`~flux_journal.metrics.resource.RankTracker`: ranks online,
    offline, drained and torpid from the resource journal
``histogram``
    durations counted into buckets, without a lock
``reader``
    :class:`~flux_journal.metrics.reader.JournalReader`: one journal's
    consumer feeding its tracker, in a thread
``collector``
    the prometheus_client collector building metrics at scrape time
``server``
    the HTTP thread serving ``/metrics``
``command``
    the ``metrics`` subcommand

prometheus_client is imported only by ``collector`` and ``server``, and
``command`` imports the rest when it runs, so that registering the
subcommand costs the command line nothing.
"""
