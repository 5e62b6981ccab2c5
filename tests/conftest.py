"""Shared pytest fixtures for flux-journal's tests."""

import pytest

from captures import capture_dir
from upstream import load_upstream


@pytest.fixture(scope="session")
def upstream():
    """flux-core's own journal consumer classes (see tests/upstream.py).

    Fails, rather than skips, when the flux-python wheel cannot be had:
    the differential tests are the point of the suite.
    """
    return load_upstream()


@pytest.fixture(scope="session")
def fixtures_dir():
    """Directory of the captured journal streams (``tests/fixtures``,
    the compressed ones decompressed: see tests/captures.py)."""
    return capture_dir()
