"""Helpers of the broker tests: the instance's flux command, reading a
whole journal history, comparing job records."""

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def flux_command():
    """The flux command of the instance the tests run in."""
    found = shutil.which("flux")
    if found:
        return found
    import flux  # pylint: disable=import-outside-toplevel

    # <prefix>/lib/pythonX.Y/site-packages/flux/__init__.py
    return str(Path(flux.__file__).resolve().parents[4] / "bin" / "flux")


def differences(mine, theirs):
    """[(field, job-list's value, ours)] where the two records differ, in
    value or in type (absent fields as '<absent>')."""
    out = []
    for key in sorted(set(mine) | set(theirs)):
        ours, want = mine.get(key, "<absent>"), theirs.get(key, "<absent>")
        if ours != want or type(ours) is not type(want):
            out.append((key, want, ours))
    return out


def full_history(consumer):
    """Start *consumer* (created with include_sentinel=True), poll() to the
    sentinel, then stop() and poll() to the end; the events before the
    sentinel."""
    consumer.start()
    events = []
    while not (event := consumer.poll(30.0)).is_empty():
        events.append(event)
    consumer.stop()
    while consumer.poll(30.0) is not None:
        pass
    return events
