"""``--recursive``: the commands' reading layer over a whole hierarchy.

:class:`TreeFollower` puts an :class:`~flux_journal.tree.InstanceTree`
where a command's :class:`~flux_journal.cli.follow.Follower` was: the
root instance is still read by that follower (so ``--reconnect``
applies to it, and only to it), and the tree adds the child instances.
Its items are :class:`~flux_journal.tree.TreeEvent` s (instance path,
event); :func:`unwrap` gives a reader the event of an item.

For the reader, the history is over once every instance followed has
delivered its own (:attr:`TreeFollower.consumer`'s ``history_complete``):
the children's sentinels are dropped and the root's is delivered once
the whole tree's history is through, so that ``jobs --recursive``
without ``--follow`` prints the history of the tree as it stands.

:class:`UnreachableReport` prints each child that cannot be read once on
stderr (the first :data:`MAX_REPORTS`; then only how many more).
"""

import sys

from flux_journal.cli.errors import PROG
from flux_journal.tree import ROOT, InstanceTree, TreeEvent

__all__ = [
    "MAX_REPORTS",
    "TreeFollower",
    "UnreachableReport",
    "unwrap",
]

#: Children that cannot be read printed one line each; past this many,
#: only their number is printed at the end.
MAX_REPORTS = 10


def unwrap(item):
    """The journal event of a reader's *item* (a TreeEvent or an event)."""
    return item.event if type(item) is TreeEvent else item


class UnreachableReport:
    """Prints children that cannot be read on *stream* (stderr): one
    line each for the first :data:`MAX_REPORTS`, then a count at
    :meth:`close`."""

    def __init__(self, stream=None, *, prog=PROG):
        self._stream = stream
        self._prog = prog
        #: Children reported so far.
        self.count = 0

    def __call__(self, record):
        self.count += 1
        if self.count <= MAX_REPORTS:
            self._print(f"child instance {record.instance} ({record.uri}) not followed: "
                        f"{record.reason}")

    def close(self):
        """Print how many children were not printed."""
        if self.count > MAX_REPORTS:
            self._print(f"{self.count - MAX_REPORTS} more child instances not followed "
                        f"({self.count} in all)")

    def _print(self, text):
        stream = self._stream if self._stream is not None else sys.stderr
        sys.stdout.flush()
        print(f"{self._prog}: {text}", file=stream, flush=True)


class _FollowerReader:
    """The root's :class:`~flux_journal.cli.follow.Follower` as a reader
    of the tree (see :class:`~flux_journal.tree.InstanceTree`'s
    *root*)."""

    def __init__(self, follower):
        self.follower = follower

    @property
    def consumer(self):
        """The follower's current consumer (None while reconnecting)."""
        return self.follower.consumer

    @property
    def handle(self):
        """The current consumer's handle (None while reconnecting)."""
        consumer = self.follower.consumer
        return None if consumer is None else consumer.handle

    def progress(self):
        """Responses the current consumer has taken."""
        consumer = self.follower.consumer
        return 0 if consumer is None else consumer.stats.get("responses", 0)

    def poll(self, timeout):
        """The follower's next items (it raises what it raises)."""
        return self.follower.poll(timeout)

    def stop(self):
        """Ask the root's stream to end."""
        self.follower.stop()


class _TreeView:
    """What a reader reads of "the consumer" of a tree: whether the
    tree's history is through, the root's cursor, counters over every
    instance."""

    def __init__(self, owner):
        self._owner = owner

    @property
    def history_complete(self):
        """True once every instance's history has been passed on."""
        return self._owner.history_delivered

    @property
    def cursor(self):
        """The root consumer's cursor."""
        return self._owner.follower.consumer.cursor

    @property
    def stats(self):
        """Counters summed over every instance read so far."""
        return self._owner.tree.stats


class TreeFollower:
    """A :class:`~flux_journal.cli.follow.Follower`'s interface over the
    tree rooted at *follower*'s instance.

    Args:
        follower: the root's follower (started, or connecting)
        connect: ``connect(uri)`` opens a child instance
        level: levels of children to follow (None: all)
        allow, deny: the names the user wants (sets, or None)
        on_unreachable: called with each child that cannot be read
        cursor_window, resume: for the children's consumers (see
            :class:`~flux_journal.tree.InstanceTree`)
        discovered: a list to which each connection to the root that
            resumes after a cursor appends its active jobs' discovery
            events, read before its stream was asked for (see
            :func:`~flux_journal.tree.discovery_events`): the tree takes
            them now and at each reconnection
    """

    def __init__(self, follower, *, connect, level=None, allow=None, deny=None,
                 on_unreachable=None, cursor_window=None, resume=None, discovered=None):
        self.follower = follower
        self._discovered = discovered if discovered is not None else []
        self._on_reconnect = follower.on_reconnect
        follower.on_reconnect = self._reconnected
        self.service = follower.service
        self.label = follower.label
        self.tree = InstanceTree(
            None,
            root=_FollowerReader(follower),
            connect=connect,
            level=level,
            allow=allow or None,
            deny=deny or None,
            include_sentinel=True,
            on_unreachable=on_unreachable,
            cursor_window=cursor_window,
            resume=resume,
        )
        self._take_discovered()
        #: The root's sentinel has been passed on (the tree's history is over).
        self.history_delivered = False
        self._root_sentinel = None
        self._view = _TreeView(self)

    @property
    def consumer(self):
        """A view for the reader: history_complete, cursor, stats."""
        return self._view

    @property
    def on_reconnect(self):
        """Called as the root follower's *on_reconnect* (the root alone
        is reconnected to)."""
        return self._on_reconnect

    @on_reconnect.setter
    def on_reconnect(self, callback):
        self._on_reconnect = callback

    def _reconnected(self, consumer, cursor):
        self._take_discovered()
        if self._on_reconnect is not None:
            self._on_reconnect(consumer, cursor)

    def _take_discovered(self):
        # Before the stream's first events: the running children its
        # resumed stream cannot show.
        while self._discovered:
            self.tree.add_discovered(self._discovered.pop(0))

    def poll(self, timeout):
        """The tree's next items (TreeEvents; None at the end), as
        :meth:`Follower.poll` returns a follower's."""
        try:
            items = self.tree.poll_batch(1000, timeout)
        except TimeoutError:
            items = []
        out = []
        for item in items:
            if item is not None and item.event.is_empty():
                if item.instance == ROOT and not self.history_delivered:
                    self._root_sentinel = item
                continue  # each instance's own sentinel stays here
            out.append(item)
        if not self.history_delivered and self.tree.history_complete:
            self.history_delivered = True
            if self._root_sentinel is not None:
                # before the end of the stream, if it came too
                out.insert(len(out) - 1 if out and out[-1] is None else len(out),
                           self._root_sentinel)
        return out

    def stop(self):
        """Ask every stream to end."""
        self.tree.stop()

    def drain(self):
        """Ask every stream to end and read them to their end (briefly)."""
        self.tree.close()

