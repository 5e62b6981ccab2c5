#!/usr/bin/env bash
# tests/sanitize/run.sh - run the core Python tests against an
# AddressSanitizer + UndefinedBehaviorSanitizer build of flux_journal._core.
#
# Usage:   tests/sanitize/run.sh [--leaks] [PYTEST_ARGS...]
#
#   tests/sanitize/run.sh                       # test_payload, test_fuzz_regressions, test_flux_drain
#   tests/sanitize/run.sh --leaks               # the same, LeakSanitizer on too
#   tests/sanitize/run.sh tests/test_consumer.py -k filter
#
# Default tests: tests/test_payload.py tests/test_fuzz_regressions.py
# tests/test_flux_drain.py.
#
# The developer's in-place build (flux_journal/_core*.so) is left alone:
# the working tree (tracked or not, minus .git, build/ and compiled files)
# is copied to a temporary directory, the extension is built there with
#   FLUX_JOURNAL_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -g -O1"
# and pytest runs from that copy (a symlink puts ../shared beside it, where
# tests/conftest.py looks for the fixtures).  Python itself is not
# instrumented, so the ASan runtime of the compiler that built the
# extension is LD_PRELOADed.  Reports go to files (log_path), so one raised
# in a subprocess is not missed either.
#
# Leaks: CPython does not free everything at exit, so ASAN_OPTIONS has
# detect_leaks=0 by default.  --leaks turns LeakSanitizer on with
# tests/sanitize/lsan-python.supp, which drops every leak whose allocating
# frame (malloc_context_size=3 keeps only the top frames, so "the caller of
# malloc") lies in libpython, an extension module under lib/python3.X, or
# libffi: what remains was allocated by our own code (csrc/, cffi glue).
#
# Environment: PYTHON (default python3), CC (default: Python's compiler,
# gcc here; clang works too), SANITIZE_KEEP=1 keeps the temporary copy.
# Exit status: pytest's, or 1 if any sanitizer report was written.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-python3}
# The interpreter itself, not a wrapper script (pyenv's shims are bash
# scripts: with LD_PRELOAD they would be sanitized and reported too).
PY=$("$PY" -c 'import sys; print(sys.executable)')
LEAKS=0
if [ "${1:-}" = --leaks ]; then LEAKS=1; shift; fi
if [ $# -eq 0 ]; then set -- tests/test_payload.py tests/test_fuzz_regressions.py tests/test_flux_drain.py; fi

CC=${CC:-$("$PY" -c 'import sysconfig; print((sysconfig.get_config_var("CC") or "cc").split()[0])')}
# The ASan runtime that matches the compiler.
# (Output captured before grep -q reads it: under pipefail, a writer
# killed by SIGPIPE when grep -q stops early would fail the pipeline.)
if grep -qi clang <<<"$("$CC" --version 2>/dev/null)"; then
    ASAN_RT=$("$CC" -print-file-name=libclang_rt.asan-x86_64.so)
else
    ASAN_RT=$("$CC" -print-file-name=libasan.so)
fi
if [ ! -e "$ASAN_RT" ]; then
    echo "sanitize: no ASan runtime for $CC ($ASAN_RT); on Debian: apt-get install libasan8 libubsan1" >&2
    exit 2
fi
ASAN_RT=$(readlink -f "$ASAN_RT")

# shellcheck source=tests/sanitize/checkout.sh
. "$HERE/checkout.sh"
copy_checkout sanitize
mkdir -p "$TMP/reports"

t0=$(date +%s)
FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -g -O1"
echo "sanitize: building with CC=$CC FLUX_JOURNAL_CFLAGS=\"$FLAGS\" in $TMP/main"
if ! (cd "$TMP/main" && CC="$CC" FLUX_JOURNAL_CFLAGS="$FLAGS" "$PY" setup.py build_ext --inplace) >"$TMP/build.log" 2>&1; then
    cat "$TMP/build.log" >&2
    echo "sanitize: build failed" >&2
    exit 2
fi
# The tests' own view of the scanner (tests/payload_index.py), built the
# same way, here rather than under LD_PRELOAD.
if ! (cd "$TMP/main" && CC="$CC" FLUX_JOURNAL_CFLAGS="$FLAGS" "$PY" tests/payload_index.py) >>"$TMP/build.log" 2>&1; then
    cat "$TMP/build.log" >&2
    echo "sanitize: build of the test-only scanner module failed" >&2
    exit 2
fi
SO=$(ls "$TMP"/main/flux_journal/_core*.so)
# Make sure the sanitizers really are in (a stale or plain build would
# pass every test and prove nothing).
SYMBOLS=$(nm -D "$SO")
grep -q __asan_ <<<"$SYMBOLS" || { echo "sanitize: $SO has no ASan instrumentation" >&2; exit 2; }
grep -q __ubsan_ <<<"$SYMBOLS" || { echo "sanitize: $SO has no UBSan instrumentation" >&2; exit 2; }

# Records carved from one block must stay fenced (tests/sanitize/slab_check.c).
"$CC" -fsanitize=address -g -I"$TMP/main/csrc" "$HERE/slab_check.c" \
    "$TMP/main/csrc/fj_slab.c" -o "$TMP/slab_check"
"$TMP/slab_check" ok || { echo "sanitize: slab_check failed" >&2; exit 2; }
for mode in overrun released; do
    if ASAN_OPTIONS=detect_leaks=0 "$TMP/slab_check" $mode >/dev/null 2>&1; then
        echo "sanitize: ASan missed a record $mode in a slab" >&2
        exit 1
    fi
done
echo "sanitize: slab records fenced (overrun and use after release reported)"
t1=$(date +%s)

# halt_on_error / abort_on_error: the first report stops the run;
# log_path: reports land in files we check afterwards, whatever the process.
ASAN_OPTS="abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:log_path=$TMP/reports/asan"
if [ $LEAKS = 1 ]; then
    ASAN_OPTS="$ASAN_OPTS:detect_leaks=1:malloc_context_size=3"
    export LSAN_OPTIONS="suppressions=$HERE/lsan-python.supp:print_suppressions=0"
    # Python's own allocator would hide objects in arenas; malloc shows all.
    export PYTHONMALLOC=malloc
else
    ASAN_OPTS="$ASAN_OPTS:detect_leaks=0"
fi

echo "sanitize: pytest $* (LD_PRELOAD=$ASAN_RT, leaks $([ $LEAKS = 1 ] && echo on || echo off))"
rc=0
(
    cd "$TMP/main"
    # The copy, not the developer's tree, must provide flux_journal.
    LD_PRELOAD="$ASAN_RT" ASAN_OPTIONS="$ASAN_OPTS" \
    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$TMP/reports/ubsan" \
        "$PY" -c 'import flux_journal._core as m, sys; assert m.__file__.startswith(sys.argv[1]), m.__file__' "$TMP/main"
    # FLUX_JOURNAL_CFLAGS and CC as at the build: tests/payload_index.py
    # then finds the module built above.
    LD_PRELOAD="$ASAN_RT" ASAN_OPTIONS="$ASAN_OPTS" \
    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$TMP/reports/ubsan" \
    CC="$CC" FLUX_JOURNAL_CFLAGS="$FLAGS" \
        "$PY" -m pytest -q -p no:cacheprovider "$@"
) || rc=$?
t2=$(date +%s)

if compgen -G "$TMP/reports/*" >/dev/null; then
    echo "sanitize: SANITIZER REPORTS:" >&2
    for f in "$TMP"/reports/*; do echo "== $f" >&2; head -n 80 "$f" >&2; done
    [ $rc != 0 ] || rc=1
fi
echo "sanitize: build $((t1 - t0))s, tests $((t2 - t1))s, exit $rc"
exit $rc
