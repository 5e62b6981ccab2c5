# tests/sanitize/checkout.sh - sourced by run.sh and valgrind.sh.
#
# copy_checkout LABEL: make TMP a new directory /tmp/fj-LABEL.XXXXXX holding
# main/, a copy of the working tree (tracked or not, minus .git, build
# output and caches), and shared, a symlink to ../shared when it exists
# (tests/conftest.py looks for the fixtures there).  The extension is then
# built in the copy, so the developer's in-place build is left alone.  TMP
# is removed at exit unless SANITIZE_KEEP=1.  Needs REPO set.  No "python"
# in the directory name: lsan-python.supp matches module paths.
copy_checkout () {
    TMP=$(mktemp -d "/tmp/fj-$1.XXXXXX")
    if [ "${SANITIZE_KEEP:-0}" = 1 ]; then
        echo "$1: keeping $TMP"
    else
        trap 'rm -rf "$TMP"' EXIT
    fi
    mkdir -p "$TMP/main"
    tar -C "$REPO" --exclude=./.git --exclude=./build --exclude='*.so' --exclude='*.o' \
        --exclude=__pycache__ --exclude=./.hypothesis --exclude=./.benchmarks \
        --exclude=./.cache --exclude=./venv --exclude=./flux_journal/_core_cffi.c \
        -cf - . | tar -C "$TMP/main" -xf -
    if [ -d "$REPO/../shared" ]; then ln -s "$(cd "$REPO/../shared" && pwd)" "$TMP/shared"; fi
}
