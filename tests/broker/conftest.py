"""Fixtures for tests that need a real Flux broker.

They run when flux-core's Python bindings import and a broker answers
(inside ``flux start``, or with FLUX_URI set), and skip with the reason
otherwise.  Run them as:

    flux start -s1 env PYTHONPATH=PREFIX/lib/python3.11/site-packages \\
        python -m pytest -m broker tests/broker

with the Python flux-journal is installed into (README, "install()").
"""

import pytest

NJOBS = 4


@pytest.fixture(scope="session")
def flux_handle():
    """A handle on a real Flux instance, or skip."""
    try:
        import flux  # pylint: disable=import-outside-toplevel
    except Exception as exc:  # pylint: disable=broad-except
        pytest.skip(f"needs a real Flux broker: flux-core's bindings do not import ({exc})")
    try:
        return flux.Flux()
    except Exception as exc:  # pylint: disable=broad-except
        pytest.skip(f"needs a real Flux broker: none reachable ({exc}); run under flux start")


@pytest.fixture(scope="session")
def finished_jobs(flux_handle):
    """Run NJOBS short jobs to completion; return their ids."""
    import flux.job  # pylint: disable=import-outside-toplevel

    jobspec = flux.job.JobspecV1.from_command(["true"])
    jobids = [flux.job.submit(flux_handle, jobspec, waitable=True) for _ in range(NJOBS)]
    for jobid in jobids:
        flux.job.wait(flux_handle, jobid)
    return jobids
