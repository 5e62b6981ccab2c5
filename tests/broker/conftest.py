"""Fixtures for tests that need a real Flux broker.

They run when flux-core's Python bindings import and a broker answers
(inside ``flux start``, or with FLUX_URI set), and skip with the reason
otherwise.  Run them as:

    flux start -s1 flux python -m pytest -m broker tests/broker
"""

import pytest


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
