"""Shared pytest fixtures for flux-journal's tests."""

import pytest

from upstream import REPO_ROOT, load_upstream


@pytest.fixture(scope="session")
def upstream():
    """flux-core's own journal consumer classes (see tests/upstream.py).

    Fails, rather than skips, when the flux-python wheel cannot be had:
    the differential tests are the point of the suite.
    """
    return load_upstream()


@pytest.fixture(scope="session")
def fixtures_dir():
    """Path of the captured journal streams, ``<repo>/../shared/fixtures``."""
    path = (REPO_ROOT.parent / "shared" / "fixtures").resolve()
    if not path.is_dir():
        raise FileNotFoundError(
            f"captured journal fixtures not found at {path}: the tests "
            "expect the shared fixtures directory beside the repository"
        )
    return path
