"""``flux-journal metrics`` scraped by a real Prometheus server.

Debian's ``prometheus`` package (``apt-get install prometheus``; .ci/run
installs it) is started on 127.0.0.1 with a generated scrape
configuration and a temporary storage directory, pointed at the
exporter replaying a captured job journal; once it has completed a
scrape, its HTTP API is queried and the values checked against
tests/metrics_oracle.py.  Skipped where the binary is absent.
"""

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

import metrics_oracle
from metrics_helpers import DEADLINE, Exporter, free_port

# Debian installs it in /usr/bin, which a restricted PATH may leave out.
PROMETHEUS = shutil.which("prometheus") or (
    "/usr/bin/prometheus" if os.path.exists("/usr/bin/prometheus") else None
)

pytestmark = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="the prometheus binary is not installed (apt-get install prometheus)",
)


def query(port, promql):
    """The result vector of an instant query: [(labels, value), ...]."""
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=10) as response:
        answer = json.load(response)
    assert answer["status"] == "success", answer
    return [(item["metric"], float(item["value"][1])) for item in answer["data"]["result"]]


def start_prometheus(tmp_path, target_port):
    """Start Prometheus scraping 127.0.0.1:*target_port* every second;
    return (process, its port)."""
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "scrape_configs:\n"
        "  - job_name: flux\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{target_port}']\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, port


def wait_for_scrape(proc, port, target):
    """Wait until Prometheus has scraped *target* successfully."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"prometheus exited ({proc.returncode}): {proc.stderr.read()}")
        try:
            if query(port, 'up{job="flux"}') == [
                ({"__name__": "up", "instance": target, "job": "flux"}, 1.0)
            ] and query(port, "flux_journal_history_complete"):
                return
        except OSError:
            pass  # not listening yet
        time.sleep(0.2)
    raise AssertionError("prometheus did not complete a scrape of the exporter")


def test_prometheus_scrapes_the_exporter(tmp_path, fixtures_dir):
    path = fixtures_dir / "jobs-full.jsonl"
    expected = metrics_oracle.expected_jobs(metrics_oracle.read_lines(path))
    every = sum(expected["events"].values())
    with Exporter("--replay", str(path)) as exporter:
        exporter.wait_for(
            lambda s: s.get(("flux_journal_history_complete", ())) == 1.0
            and sum(v for (n, _), v in s.items() if n == "flux_journal_events_total") == every,
            "every event of the capture",
        )
        proc, port = start_prometheus(tmp_path, exporter.port)
        try:
            wait_for_scrape(proc, port, f"127.0.0.1:{exporter.port}")
            jobs = {m["state"]: v for m, v in query(port, "flux_jobs")}
            assert jobs == expected["states"]
            events = {
                m["name"]: v for m, v in query(port, 'flux_journal_events_total{journal="jobs"}')
            }
            assert events == expected["events"]
            (total,) = query(port, "sum(flux_journal_events_total)")
            assert total[1] == every
            results = {m["result"]: v for m, v in query(port, "flux_jobs_finished_total")}
            assert results == expected["results"]
            (count,) = query(port, "flux_job_queue_seconds_count")
            assert count[1] == len(expected["queue"])
            # the README's p95 queue wait query evaluates
            (p95,) = query(port, "histogram_quantile(0.95, sum by (le) "
                                 "(flux_job_queue_seconds_bucket))")
            assert 0 < p95[1] <= 10
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(15)
