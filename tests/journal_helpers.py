"""Helpers shared by the tests: reading a consumer to its end, small
payloads and the C stream's output, the stand-in libflux, running the
command line (and a stand-in for flux-core's bindings it can load)."""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from flux_journal import JournalConsumer, PayloadError, ResourceJournalConsumer, core
from flux_journal.cli import main
from flux_journal.core import CoreStream

REPO = Path(__file__).resolve().parents[1]


def poll_all(consumer, timeout=10.0):
    """poll() until None; return the events (*timeout*: per poll)."""
    events = []
    while (event := consumer.poll(timeout)) is not None:
        events.append(event)
    return events


def poll_all_raising(consumer, timeout=10.0):
    """poll() until None, collecting events and the PayloadError and
    OSError exceptions raised, in the order they came."""
    out = []
    while True:
        try:
            event = consumer.poll(timeout)
        except (PayloadError, OSError) as exc:
            out.append(exc)
            continue
        if event is None:
            return out
        out.append(event)


def journal_events(journal, handle, *, follow=False, **kwargs):
    """What flux-journal's consumer delivers from *handle*: the history
    (stopping at the sentinel), or with *follow* the whole stream."""
    cls = JournalConsumer if journal == "jobs" else ResourceJournalConsumer
    consumer = cls(handle, include_sentinel=True, **kwargs).start()
    events = []
    while True:
        event = consumer.poll(30.0)
        if event is None:
            return events
        if event.is_empty():
            if follow:
                continue
            consumer.stop()
            while consumer.poll(30.0) is not None:
                pass
            return events
        events.append(event)


# A ceiling on waits for a command or a thread to get somewhere (not a
# timed assertion: a test fails only if nothing happens for this long).
PATIENCE = 60.0


def wait_until(predicate, what, pause=0.02):
    """Wait (up to PATIENCE seconds) until predicate() is true; fail
    saying *what* was waited for otherwise."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(pause)
    raise AssertionError(f"timed out waiting for {what}")


def run_driven(argv, driver, out_path, err_path, monkeypatch):
    """Run ``flux-journal ARGV`` in this process, its stdout and stderr
    into *out_path* and *err_path*, while *driver()* runs in a thread and
    ends the command (with a signal); return the exit status.  A driver
    that fails ends the command with SIGTERM and its error is raised."""
    failures = []

    def drive():
        try:
            driver()
        except BaseException as exc:  # pylint: disable=broad-except
            failures.append(exc)
            os.kill(os.getpid(), signal.SIGTERM)  # end the command

    # a signal arriving after the command ended must not hit pytest
    previous = signal.signal(signal.SIGINT, lambda *a: None)
    previous_term = signal.signal(signal.SIGTERM, lambda *a: None)
    try:
        with open(out_path, "w", encoding="utf-8") as out, \
                open(err_path, "w", encoding="utf-8") as err:
            monkeypatch.setattr(sys, "stdout", out)
            monkeypatch.setattr(sys, "stderr", err)
            thread = threading.Thread(target=drive, daemon=True)
            thread.start()
            status = main(argv)
            thread.join(PATIENCE)
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
    if failures:
        raise failures[0]
    return status


def cli_env(pythonpath=(), **extra):
    """Environment for the command: this repository first on the path,
    no Flux instance, UTC, a UTF-8 locale, ASCII F58 prefixes."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("FLUX_URI", "NO_COLOR", "FLUX_F58_FORCE_ASCII", "PYTHONPATH")
    }
    env["PYTHONPATH"] = os.pathsep.join([*map(str, pythonpath), str(REPO)])
    env["LC_ALL"] = "C.UTF-8"
    env["TZ"] = "UTC"
    env["FLUX_F58_FORCE_ASCII"] = "1"
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


def command(*args):
    """argv running flux-journal with *args*."""
    return [sys.executable, "-m", "flux_journal", *map(str, args)]


def archive_env(**extra):
    """The command's environment (:func:`cli_env`) with F58 job ids in
    their own letter, as the tests' own process writes them: an
    archive's job records store ``jobid`` as flux jobs prints it where
    they are made."""
    return cli_env(FLUX_F58_FORCE_ASCII=None, **extra)


def archive(*args, check_rc=0, timeout=60):
    """Run ``flux-journal archive``; return the CompletedProcess.  With
    *check_rc* (default 0) the exit status must match and, for 0, the
    command must print nothing."""
    proc = subprocess.run(command("archive", *args), env=archive_env(), capture_output=True,
                          timeout=timeout, check=False)
    if check_rc is not None:
        assert proc.returncode == check_rc, proc.stderr.decode(errors="replace")
        if check_rc == 0:
            assert proc.stderr == b"" and proc.stdout == b""
    return proc


def run_cli(*args, env=None, timeout=60, check_rc=0):
    """Run flux-journal; return the CompletedProcess (bytes output).

    With *check_rc* (default 0) the exit status must match and, for 0,
    stderr must be empty.
    """
    proc = subprocess.run(
        command(*args),
        env=env if env is not None else cli_env(),
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if check_rc is not None:
        assert proc.returncode == check_rc, proc.stderr.decode(errors="replace")
        if check_rc == 0:
            assert proc.stderr == b""
    return proc


def late_cuts(stream):
    """Numbers of events after which a later event of *stream* is older
    than one already consumed: stopping there leaves a late event in
    flight, which a resume must still deliver."""
    stamps = [event.timestamp for event in stream]
    cuts = [c for c in range(1, len(stamps)) if min(stamps[c:]) < max(stamps[:c])]
    assert cuts, "the capture has out-of-order live events"
    return cuts


def paced_env(fake_flux, capture, pace, live=None):
    """Environment for ``--uri sim://paced`` (see FAKE_FLUX)."""
    extra = {"FAKE_FLUX_CAPTURE": str(capture), "FAKE_FLUX_PACE": str(pace)}
    if live is not None:
        extra["FAKE_FLUX_LIVE"] = str(live)
    return cli_env(pythonpath=[fake_flux], **extra)


FAKE_FLUX = '''
"""Stand-in for flux-core's bindings: flux.Flux(uri) opens a simulated
instance chosen by the URI (for flux-journal's CLI tests)."""
import errno
import os
import threading
import time

from flux_journal.sim import ReplayService, SimFlux, Workload, read_capture

TOPICS = ("job-manager.events-journal", "resource.journal")


class Flux:
    def __new__(cls, url=None, flags=0):
        uri = url or os.environ["FLUX_URI"]
        kind = uri.split("://", 1)[1]
        if kind == "down":
            raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        if kind == "enosys":
            return SimFlux(defaults=False)
        if kind == "eperm":
            return SimFlux(
                services=[ReplayService([], topic=t, errors={0: errno.EPERM}) for t in TOPICS],
                defaults=False,
            )
        if kind == "late-eperm":
            return SimFlux(
                services=[
                    ReplayService(os.environ["FAKE_FLUX_CAPTURE"], errors={40: errno.EPERM})
                ],
                defaults=False,
            )
        if kind == "paced":
            return paced(os.environ["FAKE_FLUX_CAPTURE"], float(os.environ["FAKE_FLUX_PACE"]),
                          os.environ.get("FAKE_FLUX_LIVE"))
        return SimFlux(jobs=Workload(njobs=20, seed=5), autolive=False)


def paced(capture, pace, live):
    """The capture's history at once, then its live responses one every
    `pace` seconds, as a running instance sends them, then ENODATA; with
    `live`, only that many live responses, and the stream stays open."""
    lines = read_capture(capture)
    history = lines.index('{"id":-1,"events":[]}') + 1
    if live is None:
        service = ReplayService(lines, end=errno.ENODATA, hold=history)
    else:
        service = ReplayService(lines[: history + int(live)], hold=history)

    def feed():
        while True:
            time.sleep(pace)
            service.release(1)

    threading.Thread(target=feed, daemon=True).start()
    return SimFlux(services=[service], defaults=False)
'''


# ----------------------------------------------------------------------
# The C stream: small payloads of each kind, and what it delivers

HISTORY = [
    b'{"id":%d,"events":[{"timestamp":%d.5,"name":"submit","context":{"n":%d}}],"jobspec":{"j":%d}}'
    % (i, 100 - i, i, i)
    for i in range(1, 6)
]
SENTINEL = b'{"id":-1,"events":[]}'
LIVE = [b'{"id":%d,"events":[{"timestamp":%d.25,"name":"finish"}]}' % (i, 200 + i) for i in range(1, 6)]
BAD = [b'{"id":7,"events":[{"timestamp":1.0,"name":"x\\q"}]}', b'{"id":8}', b"[", b""]


def one_by_one(payloads, kind):
    stream = CoreStream(kind, 0.0)
    errors = []
    for payload in payloads:
        try:
            stream.feed(payload)
        except PayloadError as exc:
            errors.append(exc)
            stream.mark(core.FIRST_USER_MARK + len(errors) - 1)
    return stream, errors


def drained(stream):
    """Everything the stream delivers: events and markers, in order."""
    stream.end()
    out = []
    while True:
        batch = stream.pop()
        if batch is None:
            return out
        if batch.marker:
            out.append(("marker", batch.marker))
            if batch.marker == core.END:
                return out
            continue
        names = [stream.names[n] for n in batch.names]
        out.extend(zip(batch.timestamps, batch.ids, names, batch.items))
        out.append(("attached", tuple(batch.attached)))


# ----------------------------------------------------------------------
# The stand-in libflux (tests/fake_libflux.c; the fixtures are in conftest)


def compile_shared(source, out):
    """Build a shared library with the system compiler, outside any
    sanitizer the tests run under (tests/sanitize/run.sh preloads one)."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler to build a stand-in libflux")
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-g", "-o", str(out), str(source)], check=True, env=env)


def script(fake, responses, arrive=True):
    """Queue responses: bytes payloads, None (no payload), or (errno, message)."""
    for response in responses:
        if isinstance(response, tuple):
            errnum, message = response
            fake.fake_push(None, errnum, None if message is None else message.encode())
        else:
            fake.fake_push(response, 0, None)
    if arrive:
        fake.fake_arrive(len(responses))
