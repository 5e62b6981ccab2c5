"""A histogram of durations kept as plain counters.

The exporter observes a duration per job event, from the thread that
reads the journal, while scrapes read the histogram from the HTTP thread.
prometheus_client's own Histogram takes a lock per observation; this one
is a list of per-bucket counts and a sum that a scrape copies as they
are (a copy of a list is atomic under the GIL).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import List, Sequence, Tuple

__all__ = ["DURATION_BUCKETS", "Histogram"]

#: Upper bounds (seconds) of the duration buckets: from sub-second
#: (test and debug jobs) to a week (the longest HPC allocations).
DURATION_BUCKETS: Tuple[float, ...] = (
    0.1,
    1.0,
    10.0,
    30.0,
    60.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
    3 * 3600.0,
    6 * 3600.0,
    12 * 3600.0,
    86400.0,
    2 * 86400.0,
    7 * 86400.0,
)


class Histogram:
    """Observations counted into buckets with upper bounds *bounds*.

    ``counts[i]`` holds the observations in bucket i alone (not
    cumulative); the last entry is the +Inf bucket.
    """

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float] = DURATION_BUCKETS) -> None:
        self.bounds: Tuple[float, ...] = tuple(sorted(bounds))
        self.counts: List[int] = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        """Count one observation of *value* (in the first bucket whose
        bound is >= value, as Prometheus' ``le`` means)."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> Tuple[List[Tuple[str, int]], float]:
        """A consistent snapshot for exposition: ([(le, count <= le), ...
        ("+Inf", count)], sum)."""
        counts = list(self.counts)
        total = self.total
        buckets = []
        running = 0
        for bound, count in zip(self.bounds + (float("inf"),), counts):
            running += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return buckets, total
