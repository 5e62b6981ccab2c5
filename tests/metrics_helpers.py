"""Running ``flux-journal metrics`` and scraping it, for the metrics tests."""

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

# Longest any test waits for the exporter (start-up, history, a value).
DEADLINE = 60.0


def console_script():
    """The installed ``flux-journal`` console script of this interpreter's
    environment (what ``pip install`` put there)."""
    path = Path(sys.executable).parent / "flux-journal"
    assert path.exists(), f"{path} is missing: install the package (pip install -e .)"
    return str(path)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port, path="/metrics", method="GET", timeout=10.0):
    """(status, body text) of one request to the exporter."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8")
    finally:
        conn.close()


def scrape(port):
    """The exporter's samples parsed by prometheus_client's own parser:
    {(sample name, ((label, value), ...)): value}."""
    status, text = get(port)
    assert status == 200, text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def values(samples, name, label):
    """{label value: sample value} of the samples called *name*."""
    return {
        dict(labels)[label]: value
        for (sample, labels), value in samples.items()
        if sample == name
    }


class Exporter:
    """``flux-journal metrics ARGS --listen 127.0.0.1:PORT`` in a subprocess,
    stopped (SIGTERM, then SIGKILL) when the with-block ends."""

    def __init__(self, *args, port=None):
        self.port = port or free_port()
        self.argv = [console_script(), "metrics", *args, "--listen", f"127.0.0.1:{self.port}"]
        self.proc = None
        self.returncode = None
        self.stderr = ""

    def start(self):
        """Start the exporter (once)."""
        if self.proc is None and self.returncode is None:
            env = dict(os.environ)
            env.pop("FLUX_URI", None)
            self.proc = subprocess.Popen(
                self.argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def stop(self, sig=signal.SIGTERM):
        """Stop the exporter; return its exit status."""
        if self.proc is None:
            return self.returncode
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
            try:
                _, self.stderr = self.proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                _, self.stderr = self.proc.communicate(timeout=15)
        finally:
            self.returncode = self.proc.returncode
            self.proc = None
        return self.returncode

    def wait_for(self, predicate, what):
        """Scrape until *predicate(samples)* holds; return the samples."""
        deadline = time.monotonic() + DEADLINE
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"exporter exited ({self.proc.returncode}): {self.proc.stderr.read()}"
                )
            with contextlib.suppress(OSError):
                last = scrape(self.port)
                if predicate(last):
                    return last
            time.sleep(0.1)
        raise AssertionError(f"no {what} within {DEADLINE} s; last scrape: {last}")

    def wait_history(self):
        """Samples once the history of every journal is consumed."""
        return self.wait_for(
            lambda s: s.get(("flux_journal_history_complete", ())) == 1.0, "complete history"
        )
