"""Shared pytest fixtures for flux-journal's tests."""

import ctypes
import shutil

import pytest

from flux_journal import libflux

from captures import capture_dir
from journal_helpers import REPO, compile_shared
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


@pytest.fixture(scope="session")
def fake_libflux_build(tmp_path_factory):
    """tests/fake_libflux.c compiled as a shared library."""
    out = tmp_path_factory.mktemp("fakeflux") / "libfakeflux.so"
    compile_shared(REPO / "tests" / "fake_libflux.c", out)
    return out


@pytest.fixture
def fake(fake_libflux_build, tmp_path):
    """A fresh stand-in libflux (its own copy, so its own script), bound."""
    path = tmp_path / "libfakeflux.so"
    shutil.copy(fake_libflux_build, path)
    handle = ctypes.CDLL(str(path), use_errno=True)
    handle.fake_future.restype = ctypes.c_void_p
    handle.fake_push.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    libflux.bind(str(path))
    return handle
