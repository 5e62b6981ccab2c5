"""pytest-benchmark set-up for bench/: paths, options, shared streams.

Run with ``pytest bench/ --benchmark-only`` (the repository's default
``pytest`` reads only tests/, per testpaths in pyproject.toml, so none of
this runs in the test suite).

Options:
    --bench-jobs N      jobs in the large generated stream (default
                        100000, about 1M events)
    --bench-quick       the sizes of ``compare.py --quick`` (2,000 jobs,
                        20k live responses, 10k resource events)
    --bench-scenarios   comma-separated scenario names (default all)

Importing bench_streams puts flux_journal (installed, else this checkout)
and tests/ (for upstream.py's load_upstream) on sys.path.  Streams are
built once per session, on first use, by the ``streams`` fixture.
"""

import pytest

import bench_scenarios as sc
import bench_streams
from bench_child import Launcher


def pytest_addoption(parser):
    group = parser.getgroup("flux-journal benchmarks")
    group.addoption(
        "--bench-jobs",
        type=int,
        default=None,
        help="jobs in the large generated stream (default 100000, ~1M events)",
    )
    group.addoption(
        "--bench-quick",
        action="store_true",
        help="small sizes, as compare.py --quick",
    )
    group.addoption(
        "--bench-scenarios",
        default="all",
        help="comma-separated scenario names (S1,S1a,S2,S3,S4,S5,S5cb,S6,M1,P1)",
    )


def bench_sizes(config):
    """{'jobs':, 'live':, 'resource_events':} from the command line."""
    sizes = dict(sc.QUICK_SIZES if config.getoption("--bench-quick") else sc.FULL_SIZES)
    jobs = config.getoption("--bench-jobs")
    if jobs:
        sizes["jobs"] = jobs
    return sizes


def selected_scenarios(config):
    value = config.getoption("--bench-scenarios")
    if value == "all":
        return list(sc.ALL_NAMES)
    return [name.strip() for name in value.split(",") if name.strip()]


def pytest_generate_tests(metafunc):
    """Parametrize ``case_key`` with "<scenario>|<stream key>" for every
    timed case (streams are not built at collection time), and ``lib``
    with both libraries."""
    if "case_key" in metafunc.fixturenames:
        sizes = bench_sizes(metafunc.config)
        keys = sc.stream_keys(sizes["jobs"], sizes["live"], sizes["resource_events"])
        wanted = set(selected_scenarios(metafunc.config))
        memory = metafunc.definition.get_closest_marker("memory") is not None
        params = []
        for name, scenario in sc.SCENARIOS.items():
            if name not in wanted:
                continue
            if (scenario.modes[sc.FLUX_JOURNAL] == "hold") != memory:
                continue
            params.extend(f"{name}|{key}" for key in keys[name])
        metafunc.parametrize("case_key", params)
    if "lib" in metafunc.fixturenames:
        metafunc.parametrize("lib", sc.LIBS)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "memory: a memory scenario (runs its case in a child process)"
    )
    # Started now, while pytest is small: memory children started later
    # from pytest itself would inherit its peak RSS (see bench_child.py).
    if any(
        name in selected_scenarios(config)
        for name, s in sc.SCENARIOS.items()
        if s.modes[sc.FLUX_JOURNAL] == "hold"
    ):
        config.fj_bench_launcher = Launcher()


def pytest_unconfigure(config):
    launcher = getattr(config, "fj_bench_launcher", None)
    if launcher is not None:
        launcher.close()


@pytest.fixture(scope="session")
def launcher(pytestconfig):
    """The memory children's launcher (see bench_child.Launcher)."""
    return pytestconfig.fj_bench_launcher


@pytest.fixture(scope="session")
def libs():
    """Both libraries' consumer classes; flux-core's from the flux-python
    wheel via tests/upstream.py's load_upstream()."""
    return sc.load_libraries()


@pytest.fixture(scope="session")
def streams():
    """The session's StreamCache: every stream is generated once."""
    return bench_streams.StreamCache()


@pytest.fixture
def case(case_key, streams):
    """The Case named by case_key."""
    name, key = case_key.split("|", 1)
    return sc.Case(sc.SCENARIOS[name], streams.get(key))


def rounds_for(events):
    """Few rounds for big streams: one flux-core round at 1M events is
    ~20 s."""
    if events >= 300_000:
        return 3
    if events >= 50_000:
        return 5
    return 15
