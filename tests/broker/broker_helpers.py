"""Helpers of the broker tests: the instance's flux command, reading a
whole journal history, comparing job records."""

import json
import os
import shutil
import subprocess
import time
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


def journal_listeners(uri=None, seconds=60):
    """How many streams the job manager's journal sends to now (job-list's
    among them), from ``flux module stats job-manager`` of the instance
    at *uri* (None: the tests' own), waiting for its job manager to be
    loaded."""
    env = dict(os.environ) if uri is None else {**os.environ, "FLUX_URI": uri}
    deadline = time.monotonic() + seconds
    while True:
        proc = subprocess.run([flux_command(), "module", "stats", "job-manager"], env=env,
                              capture_output=True, text=True, timeout=60, check=False)
        if proc.returncode == 0:
            return json.loads(proc.stdout)["journal"]["listeners"]
        assert time.monotonic() < deadline, f"flux module stats job-manager: {proc.stderr}"
        time.sleep(0.1)


def wait_for_listeners(count, uri=None, seconds=60):
    """Wait until the journal of the instance at *uri* has *count*
    listeners: an archiver started before is then following it, so the
    events sent only live (annotations) reach it."""
    deadline = time.monotonic() + seconds
    while journal_listeners(uri) < count:
        assert time.monotonic() < deadline, f"the journal never had {count} listeners"
        time.sleep(0.05)


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
