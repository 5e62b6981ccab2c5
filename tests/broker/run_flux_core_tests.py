#!/usr/bin/env python3
"""Run flux-core's own journal consumer tests with flux_journal.install().

flux-core's t/python/t0030-journal.py and t0032-resource-journal.py are the
judge of whether install() is a drop-in: this runs each, unchanged, from a
flux-core source tree, under a fresh instance of the installed flux-core,
with install() applied before the test module is loaded, and prints TAP-like
"ok" / "not ok" lines per test and a summary.

    FLUX_CORE_SRC=/path/to/flux-core FLUX_PREFIX=/opt/flux \\
        python tests/broker/run_flux_core_tests.py [--end-of-stream-callback]

FLUX_CORE_SRC: a flux-core source tree (the one flux-core was built from,
or any of the same version); FLUX_PREFIX: where that flux-core is installed
(PREFIX/bin/flux).  The tests run under the interpreter that runs this
script (the one flux_journal is installed into, a virtual environment's
say), with flux-core's bindings from PREFIX on its path: they must have
been built for the same Python version.  Exit status 0 when every test
passes.
"""

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

# flux-core's test files and the instance size each one asks for.
TEST_FILES = (("t0030-journal.py", 2), ("t0032-resource-journal.py", 4))

# Applied in the test process before the test module is loaded.
INSTALL_THEN_RUN = """\
import runpy, sys
import flux_journal
flux_journal.install(end_of_stream_callback={end})
path = sys.argv[1]
sys.argv = [path]
runpy.run_path(path, run_name="__main__")
"""

RESULT_LINE = re.compile(r"^(not ok|ok) \d+ (\S+)")


def bindings_dir(prefix):
    """flux-core's Python bindings under *prefix*, for this interpreter.

    Raises:
        SystemExit: none there for this Python version (they are built
            for one version; the tests would fail to import ``flux``)
    """
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    path = prefix / "lib" / version / "site-packages"
    if not (path / "flux").is_dir():
        built = sorted(p.parent.parent.name for p in prefix.glob("lib/python*/site-packages/flux"))
        raise SystemExit(
            f"no flux-core bindings for {version} under {prefix}/lib "
            f"(built for: {', '.join(built) or 'none'}); run this script with that Python"
        )
    return path


def run_test_file(src, prefix, name, size, end_of_stream_callback, timeout):
    """Run one flux-core test file; return its (passed, name) results and output."""
    tests = src / "t" / "python"
    env = dict(os.environ)
    env["IN_SUBFLUX"] = "1"  # don't let subflux.py start a second instance
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(tests), str(tests / "tap"), str(bindings_dir(prefix)),
                      env.get("PYTHONPATH")])
    )
    code = INSTALL_THEN_RUN.format(end=bool(end_of_stream_callback))
    # This interpreter, not `flux python`: flux_journal is installed here.
    command = [str(prefix / "bin" / "flux"), "start", f"-s{size}",
               sys.executable, "-c", code, name]
    proc = subprocess.run(
        command, cwd=tests, env=env, capture_output=True, text=True, timeout=timeout
    )
    output = proc.stdout + proc.stderr
    results = [
        (match.group(1) == "ok", match.group(2))
        for match in map(RESULT_LINE.match, proc.stdout.splitlines())
        if match
    ]
    return results, output, proc.returncode


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--end-of-stream-callback", action="store_true",
                        help="install(end_of_stream_callback=True): the documented None")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds allowed per test file (default 300)")
    parser.add_argument("--verbose", action="store_true", help="print each file's output")
    args = parser.parse_args(argv)
    try:
        src = Path(os.environ["FLUX_CORE_SRC"])
        prefix = Path(os.environ["FLUX_PREFIX"])
    except KeyError as exc:
        parser.error(f"set {exc.args[0]} (see --help)")
    passed_total = 0
    total = 0
    all_ran = True
    for name, size in TEST_FILES:
        results, output, returncode = run_test_file(
            src, prefix, name, size, args.end_of_stream_callback, args.timeout
        )
        print(f"# {name} (flux start -s{size})")
        for passed, test in results:
            print(f"{'ok' if passed else 'not ok'} {test}")
        npassed = sum(passed for passed, _ in results)
        print(f"# {name}: {npassed}/{len(results)} passed, exit status {returncode}")
        if args.verbose or not results:
            print(output)
        total += len(results)
        passed_total += npassed
        all_ran = all_ran and bool(results) and returncode == 0
    print(f"# {passed_total}/{total} passed")
    return 0 if all_ran and passed_total == total else 1


if __name__ == "__main__":
    sys.exit(main())
