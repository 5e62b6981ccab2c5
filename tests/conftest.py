"""Shared pytest fixtures for flux-journal's tests."""

import pytest

from captures import capture_dir
from pg_cluster import Cluster, ClusterUnavailable
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


@pytest.fixture(scope="session")
def pg_cluster():
    """A real PostgreSQL server for this test session (tests/pg_cluster.py),
    or skip, saying why, where none can run."""
    try:
        import psycopg  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    except ImportError as exc:
        pytest.skip(f"needs psycopg (pip install 'flux-journal[postgres]'): {exc}")
    try:
        cluster = Cluster()
    except ClusterUnavailable as exc:
        pytest.skip(f"needs a PostgreSQL server: {exc}")
    yield cluster
    cluster.stop()
