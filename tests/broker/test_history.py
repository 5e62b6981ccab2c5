"""``flux-journal history`` against ``flux jobs`` on the same real instance
(skipped without a broker): the instance's jobs, as ``flux jobs -a -A
--json`` prints them, are written into an archive in the layout history
reads, and history's output must equal ``flux jobs``' for the same jobs in
several formats.  Run as:

    flux start -s1 flux python -m pytest -m broker tests/broker/test_history.py
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from history_helpers import write_archive

pytestmark = pytest.mark.broker

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Jobs running while the outputs are taken would show runtimes measured at
# two different instants: both sides list pending and inactive jobs only.
FILTER = "pending,inactive"

FORMATS = [
    "default",
    "long",
    "deps",
    "endreason",
    "{id} {id.dec} {id.hex} {id.dothex} {id.f58plain} {id.words} {id.kvs}",
    "{id.f58:>12} +:{username} {userid} {urgency} {priority:h} {state} {state_single} "
    "{status} {status_abbrev} {result:h} {result_abbrev} {success}",
    "{id.f58} {waitstatus:h} {returncode:h} {exception.occurred} {exception.severity} "
    "{exception.type:<8.8+} {exception.note} {inactive_reason}",
    "{id.f58} {t_submit!D} {t_run!D:h} {t_cleanup!d:%H:%M:%S::>10h} {t_inactive!d} "
    "{runtime!F} {runtime!H} {duration!F:h} {contextual_time!F:h} {t_remaining!H}",
    "{id.f58} {name:<5.5+} {cwd} {ntasks} {ncores} {nnodes:h} {ranks:h} {nodelist:h} "
    "?:{queue} ?:{project} ?+:{bank} {annotations} {sched.resource_summary:h} "
    "{dependencies} {contextual_info}",
    "sort:-status,ntasks,-t_submit {id.f58} {status} {ntasks} {t_submit}",
]


@pytest.fixture(scope="module")
def flux_cmd(flux_handle):
    """The flux command of the instance under test."""
    del flux_handle
    found = shutil.which("flux") or ("/opt/flux/bin/flux" if os.path.exists("/opt/flux/bin/flux")
                                     else None)
    if found is None:
        pytest.skip("needs the flux command")
    return found


def flux(flux_cmd, *args):
    return subprocess.run([flux_cmd, *args], capture_output=True, text=True, check=True,
                          env=dict(os.environ, TZ="UTC")).stdout


@pytest.fixture(scope="module")
def workload(flux_cmd):
    """Jobs of every outcome on the instance, all ended but two held and
    one waiting for a held job."""
    submit = [flux_cmd, "submit", "--wait", "-n1"]
    for command in (["true"], ["false"], ["sh", "-c", "exit 5"], ["/nonexistent/cmd"],
                    ["sh", "-c", "kill -TERM $$"], ["--job-name=a-long-job-name", "true"],
                    ["-t", "1s", "sleep", "30"]):
        subprocess.run(submit + command, capture_output=True, check=False)
    canceled = flux(flux_cmd, "submit", "--urgency=hold", "true").strip()
    flux(flux_cmd, "cancel", "-m", "changed my mind", canceled)
    held = flux(flux_cmd, "submit", "--urgency=hold", "-t", "10m", "true").strip()
    flux(flux_cmd, "submit", f"--dependency=afterok:{held}", "--job-name=after-held", "true")
    flux(flux_cmd, "job", "wait-event", canceled, "clean")


@pytest.fixture(scope="module")
def archive(flux_cmd, workload, tmp_path_factory):
    """The instance's pending and inactive jobs in an archive."""
    del workload
    jobs = json.loads(flux(flux_cmd, "jobs", "-a", "-A", "-f", FILTER, "--json"))["jobs"]
    path = str(tmp_path_factory.mktemp("history") / "archive.sqlite")
    write_archive(path, jobs, instance="broker")
    return path, jobs


def history(*args):
    env = dict(os.environ, TZ="UTC")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-m", "flux_journal", "history", *args],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("fmt", FORMATS)
def test_history_prints_what_flux_jobs_prints(flux_cmd, archive, fmt):
    path, jobs = archive
    expected = flux(flux_cmd, "jobs", "-a", "-A", "-f", FILTER, "-o", fmt)
    assert len(expected.splitlines()) == len(jobs) + 1
    assert history("--db", path, "-A", "-f", FILTER, "-o", fmt) == expected


def test_history_json_is_flux_jobs_json(archive):
    path, jobs = archive
    records = [json.loads(line) for line in history("--db", path, "-A", "--json").splitlines()]
    assert records == [dict(job, instance="broker") for job in jobs]
