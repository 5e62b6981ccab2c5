"""Pausing Python's cyclic garbage collector around work that allocates
many objects and makes no reference cycles.

The collector runs after every 700 net allocations of container objects
and examines every object allocated since; objects that stay alive past a
few of its runs move to its oldest generation, whose growth in turn
triggers collections of the whole program.  Work that keeps thousands of
new objects alive at once (a batch of events, an archive's open commit)
therefore pays for the collector many times over, while making no cycle
for it to find: for such work it is paused, then resumed if it was
running.  Tests check that the work it covers leaves no cyclic garbage.
"""

import gc

__all__ = ["CollectorPaused"]


class CollectorPaused:
    """``with CollectorPaused():`` runs its block with the cyclic
    collector disabled, and enables it again after (whatever the block
    raises) if it was enabled before.  Not re-entrant: one instance per
    block (nested blocks each need their own)."""

    __slots__ = ("_was_enabled",)

    def __init__(self):
        self._was_enabled = False

    def __enter__(self):
        self._was_enabled = gc.isenabled()
        gc.disable()
        return self

    def __exit__(self, *exc_info):
        if self._was_enabled:
            gc.enable()
        return False
