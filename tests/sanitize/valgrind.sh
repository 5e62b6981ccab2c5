#!/usr/bin/env bash
# tests/sanitize/valgrind.sh - run the core Python tests under valgrind
# memcheck against a plain (uninstrumented, -O3 -g) build of
# flux_journal._core.
#
# Usage:   tests/sanitize/valgrind.sh [PYTEST_ARGS...]
#
#   tests/sanitize/valgrind.sh                   # test_payload + test_fuzz_regressions
#   tests/sanitize/valgrind.sh tests/test_payload.py -k truncation
#
# Default tests: tests/test_payload.py tests/test_fuzz_regressions.py.
#
# As tests/sanitize/run.sh, it copies the working tree to a temporary
# directory and builds the extension there (FLUX_JOURNAL_CFLAGS=-g on top of
# the usual -O3: the code that ships, with line numbers), leaving the
# developer's in-place build alone.  Then:
#
#   PYTHONMALLOC=malloc valgrind --tool=memcheck --error-exitcode=1 \
#       --leak-check=full --errors-for-leak-kinds=definite \
#       --show-leak-kinds=definite --suppressions=valgrind-python.supp \
#       --suppressions=valgrind-cpython311.supp python -m pytest ...
#
# then the same without PYTHONMALLOC and without valgrind-cpython311.supp
# (see the two passes below for why).  PYTHONMALLOC=malloc routes Python's
# allocations through malloc so that memcheck sees every block.
# valgrind-python.supp drops definite leaks whose allocating caller is
# CPython or a third-party extension (CPython frees not all at exit) and
# one glibc over-read; errors and leaks in our code are never suppressed.
#
# valgrind runs the x87 unit at 64-bit precision, not 80 (a documented
# limitation): csrc/fj_number.c notices and reads timestamps with strtod
# instead of its extended-precision path, so every test runs here too (the
# x87 path itself is exercised natively and under ASan/UBSan in run.sh).
#
# Environment: PYTHON (default python3), SANITIZE_KEEP=1 keeps the copy.
# Exit status: 0 with zero errors and zero definite leaks, else non-zero.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-python3}
# The interpreter itself, not a wrapper script (pyenv's shims are bash).
PY=$("$PY" -c 'import sys; print(sys.executable)')
if [ $# -eq 0 ]; then set -- tests/test_payload.py tests/test_fuzz_regressions.py; fi

if ! command -v valgrind >/dev/null; then
    echo "valgrind: not installed; on Debian: apt-get install valgrind" >&2
    exit 2
fi

# shellcheck source=tests/sanitize/checkout.sh
. "$HERE/checkout.sh"
copy_checkout valgrind

t0=$(date +%s)
echo "valgrind: building with FLUX_JOURNAL_CFLAGS=-g in $TMP/main"
# The extension, then the tests' own view of the scanner
# (tests/payload_index.py), both outside valgrind.
export FLUX_JOURNAL_CFLAGS="-g"
if ! (cd "$TMP/main" && "$PY" setup.py build_ext --inplace && "$PY" tests/payload_index.py) >"$TMP/build.log" 2>&1; then
    cat "$TMP/build.log" >&2
    echo "valgrind: build failed" >&2
    exit 2
fi
t1=$(date +%s)

# Two passes (VALGRIND_PASSES to pick): "malloc" with PYTHONMALLOC=malloc,
# so every block is a malloc block (CPython 3.11's own uninitialised reads
# suppressed by valgrind-cpython311.supp); "pymalloc" with Python's
# allocator and no uninitialised-value suppression at all, so bytes our
# code leaves undefined are caught wherever Python first tests them.
rc=0
for pass in ${VALGRIND_PASSES:-malloc pymalloc}; do
    supp=(--suppressions="$HERE/valgrind-python.supp")
    if [ "$pass" = malloc ]; then
        supp+=(--suppressions="$HERE/valgrind-cpython311.supp")
        export PYTHONMALLOC=malloc
    else
        unset PYTHONMALLOC
    fi
    echo "valgrind: [$pass] pytest $*"
    (
        cd "$TMP/main"
        "$PY" -c 'import flux_journal._core as m, sys; assert m.__file__.startswith(sys.argv[1]), m.__file__' "$TMP/main"
        # --num-callers: enough to see past cffi and the interpreter.
        valgrind --tool=memcheck --quiet --error-exitcode=1 \
            --leak-check=full --errors-for-leak-kinds=definite \
            --show-leak-kinds=definite --num-callers=30 "${supp[@]}" \
            --log-file="$TMP/valgrind-$pass.%p.log" \
            "$PY" -m pytest -q -p no:cacheprovider "$@"
    ) || rc=$?
done
t2=$(date +%s)

# Any error or definite leak (ours) is in the log of some process.
reports=0
for f in "$TMP"/valgrind-*.log; do
    [ -s "$f" ] || continue
    if grep -qE '^==[0-9]+== [^ ]' "$f"; then
        reports=1
        echo "== $f" >&2
        head -n 120 "$f" >&2
    fi
done
[ $reports = 0 ] || [ $rc != 0 ] || rc=1
echo "valgrind: build $((t1 - t0))s, tests $((t2 - t1))s, exit $rc"
exit $rc
