"""The metrics, built at scrape time from the trackers' plain counters.

A prometheus_client custom collector: nothing is locked or updated per
event on the reading side; each scrape copies the counters (see
``JobTracker.snapshot`` and ``RankTracker.snapshot``) and turns them
into metric families.
"""

from __future__ import annotations

from typing import Any, Dict, Hashable, Iterator, List, Optional, Tuple

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from flux_journal.metrics.carry import Counts
from flux_journal.metrics.reader import JournalReader
from flux_journal.metrics.resource import RANK_STATES
from flux_journal.metrics.state import RESULTS, STATE_NAMES
from flux_journal.tree import ROOT

__all__ = ["JournalCollector", "make_registry"]


class JournalCollector(Collector):
    """Collects the exporter's metrics from its journal readers.

    Args:
        jobs: the reader of the job-manager journal, or None
        resource: the reader of the resource journal, or None
    """

    def __init__(
        self, jobs: Optional[JournalReader] = None, resource: Optional[JournalReader] = None
    ) -> None:
        self.readers = [reader for reader in (jobs, resource) if reader is not None]
        self.jobs = jobs
        self.resource = resource
        # --recursive: the job series and the flux_journal_* families
        # carry the instance path (the resource journal's is "/").
        self.by_instance = jobs is not None and jobs.instances is not None

    def _labels(self, *names: str) -> List[str]:
        return [*names, "instance"] if self.by_instance else list(names)

    def _parts(self, reader: JournalReader) -> List[Tuple[List[str], Any, bool]]:
        """(extra label values, counters, still followed) of each
        instance *reader* reads."""
        if reader.instances is None:
            return [([ROOT] if self.by_instance else [], reader.counters, True)]
        return [([path], counters, live) for path, counters, live in reader.instances.parts()]

    def collect(self) -> Iterator[Metric]:
        """Yield every metric family (called by prometheus_client per
        scrape)."""
        yield from self._journal_metrics()
        if self.jobs is not None:
            yield from self._job_metrics(self.jobs)
        if self.resource is not None:
            yield from self._resource_metrics(self.resource)

    def _journal_metrics(self) -> Iterator[Metric]:
        events = CounterMetricFamily(
            "flux_journal_events", "Journal events consumed, by journal and event name",
            labels=self._labels("journal", "name"),
        )
        errors = CounterMetricFamily(
            "flux_journal_errors",
            "Responses or events the exporter could not use, by journal and kind",
            labels=self._labels("journal", "kind"),
        )
        responses = CounterMetricFamily(
            "flux_journal_responses", "Journal responses received", labels=["journal"]
        )
        received = CounterMetricFamily(
            "flux_journal_received_bytes", "Journal response payload bytes received",
            labels=["journal"],
        )
        backlog = GaugeMetricFamily(
            "flux_journal_backlog_events",
            "Events received but not yet consumed (history waiting to be ordered, "
            "or a burst of live events)",
            labels=["journal"],
        )
        last = GaugeMetricFamily(
            "flux_journal_last_event_timestamp_seconds",
            "Timestamp of the latest event consumed (seconds since the epoch)",
            labels=self._labels("journal"),
        )
        for reader in self.readers:
            journal = reader.journal
            for instance, counters, _ in self._parts(reader):
                counts = counters.values()
                for name, count in sorted(_family(counts, "events").items()):
                    events.add_metric([journal, str(name), *instance], count)
                for kind, count in sorted(_family(counts, "errors").items()):
                    errors.add_metric([journal, str(kind), *instance], count)
                timestamp = counters.tracker.last_timestamp
                if timestamp is not None:
                    last.add_metric([journal, *instance], timestamp)
            stats = reader.stats
            responses.add_metric([journal], stats.get("responses", 0))
            received.add_metric([journal], stats.get("bytes", 0))
            backlog.add_metric([journal], stats.get("backlog", 0))
        complete = GaugeMetricFamily(
            "flux_journal_history_complete",
            "1 once the history of every journal read has been consumed, else 0",
            value=1 if all(reader.history_complete for reader in self.readers) else 0,
        )
        yield from (events, errors, responses, received, backlog, last, complete)
        if self.by_instance:
            assert self.jobs is not None and self.jobs.instances is not None
            unreachable = CounterMetricFamily(
                "flux_journal_unreachable_instances",
                "Child instances that could not be read (or not to their end), by kind: "
                "ended, unreachable, denied, lost",
                labels=["kind"],
            )
            counted = self.jobs.instances.unreachable_counts()
            for kind in ("ended", "unreachable", "denied", "lost"):
                unreachable.add_metric([kind], counted.get(kind, 0))
            yield unreachable

    def _job_metrics(self, reader: JournalReader) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "flux_jobs", "Jobs in each state (RFC 21), from the job-manager journal",
            labels=self._labels("state"),
        )
        finished = CounterMetricFamily(
            "flux_jobs_finished", "Jobs that became inactive, by result (as flux jobs shows it)",
            labels=self._labels("result"),
        )
        tracked = GaugeMetricFamily(
            "flux_journal_jobs_tracked", "Active jobs whose state the exporter holds",
            labels=self._labels(),
        )
        histograms = []
        for name, key, what in (
            ("flux_job_queue_seconds", "queue_seconds", "submit to alloc"),
            ("flux_job_run_seconds", "run_seconds", "start to finish"),
        ):
            histograms.append((key, HistogramMetricFamily(
                name, f"Time from {what} of jobs, seconds", labels=self._labels()
            )))
        for instance, counters, live in self._parts(reader):
            tracker = counters.tracker
            counts = counters.values()
            if live:
                # the gauges of an instance that ended go with it
                snap = tracker.snapshot()
                for state in STATE_NAMES.values():
                    jobs.add_metric([state, *instance], snap["states"][state])
                tracked.add_metric(instance, snap["active"])
            results = _family(counts, "results")
            for result in RESULTS:
                finished.add_metric([result, *instance], results.get(result, 0))
            for key, family in histograms:
                buckets, total = _cumulative(counts, key, getattr(tracker, key).bounds)
                family.add_metric(instance, buckets, total)
        yield from (jobs, finished, tracked)
        yield from (family for _, family in histograms)

    @staticmethod
    def _resource_metrics(reader: JournalReader) -> Iterator[Metric]:
        counts = reader.tracker.counts()  # type: ignore[union-attr]
        ranks = GaugeMetricFamily(
            "flux_resource_ranks",
            "Broker ranks online, offline, drained or torpid, from the resource journal",
            labels=["state"],
        )
        for state in RANK_STATES:
            ranks.add_metric([state], counts[state])
        yield ranks


def _family(counts: Counts, family: str) -> Dict[Hashable, float]:
    """{label: value} of one counter family."""
    return {label: value for (name, label), value in counts.items() if name == family}


def _cumulative(
    counts: Counts, name: str, bounds: Tuple[float, ...]
) -> Tuple[List[Tuple[str, float]], float]:
    """Histogram *name*'s buckets as exposition wants them: ([(le,
    observations <= le), ... ("+Inf", all)], sum)."""
    buckets = []
    running = 0.0
    for index, bound in enumerate(bounds + (float("inf"),)):
        running += counts.get((name, index), 0)
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), running))
    return buckets, counts.get((name, "sum"), 0.0)


def make_registry(collector: JournalCollector) -> CollectorRegistry:
    """A registry holding *collector* and the usual process and Python
    platform metrics (``process_*``, ``python_info``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry
