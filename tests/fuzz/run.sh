#!/usr/bin/env bash
# tests/fuzz/run.sh - build and run flux-journal's libFuzzer targets.
#
# Usage:   tests/fuzz/run.sh [SECONDS]          (default 60)
#
#   CI / quick check:  tests/fuzz/run.sh 60
#   long campaign:     tests/fuzz/run.sh 3600
#
# What it does:
#   1. finds clang with libFuzzer (installs Debian's clang-14 and
#      libclang-rt-14-dev with apt-get when none is found: we are root on
#      the project's machines, and nothing else is needed);
#   2. builds tests/fuzz/fuzz_payload.c (fj_payload_parse) and
#      tests/fuzz/fuzz_stream.c (one fj_stream_t driven by a program) with
#      -fsanitize=fuzzer,address,undefined, UB fatal;
#   3. replays every file of tests/fuzz/regressions/ through its target
#      (stream-* files through fuzz_stream, all others through
#      fuzz_payload): a regression fails the run before any fuzzing;
#   4. builds seed corpora at run time from tests/fixtures/*.jsonl and
#      *.jsonl.gz (one payload per seed file; stream seeds are programs
#      feeding fixture lines in order);
#   5. fuzzes both targets for SECONDS of wall-clock time: side by side,
#      one per core, when there are two or more cores, else SECONDS/2 each;
#   6. prints executions per target (libFuzzer's final
#      stat::number_of_executed_units) and the total; on any crash, leak,
#      timeout or out-of-memory, minimises the input, copies it into
#      tests/fuzz/regressions/ as <target>-<kind>-<sha1> and exits 1.
#
# Environment:
#   FUZZ_WORK      work directory (binaries, corpora kept between runs,
#                  logs, raw crash artifacts); default /tmp/flux-journal-fuzz
#   FUZZ_FIXTURES  fixtures directory; default <repo>/tests/fixtures
#   FUZZ_MAX_LEN_PAYLOAD, FUZZ_MAX_LEN_STREAM  -max_len of each target
#                  (defaults 1048576 and 65536; shorter stream programs
#                  run several times faster: a complementary regime)
#   CC             a clang to use instead of searching
#
# Exit status: 0 clean, 1 a finding (see the log named in the output),
# 2 a setup problem (no compiler, build failure).
set -euo pipefail

SECONDS_BUDGET=${1:-60}
case $SECONDS_BUDGET in
    '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WORK=${FUZZ_WORK:-/tmp/flux-journal-fuzz}
FIXTURES=${FUZZ_FIXTURES:-$REPO/tests/fixtures}
REGRESSIONS=$HERE/regressions
mkdir -p "$WORK"/{bin,seeds/payload,seeds/stream,corpus/payload,corpus/stream,crashes,logs}

say () { printf 'fuzz: %s\n' "$*"; }

# --- 1. a clang that links libFuzzer ------------------------------------
works () {   # does "$1" build and run a trivial fuzzer with our sanitizers?
    local cc=$1 t="$WORK/bin/probe"
    command -v "$cc" >/dev/null 2>&1 || return 1
    printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput (const uint8_t *d, size_t n) { return 0; }\n' >"$t.c"
    "$cc" -fsanitize=fuzzer,address,undefined "$t.c" -o "$t" >/dev/null 2>&1 \
        && "$t" -runs=1 >/dev/null 2>&1
}

find_clang () {
    local cc
    for cc in ${CC:-} clang clang-19 clang-16 clang-14; do
        if works "$cc"; then echo "$cc"; return 0; fi
    done
    return 1
}

if ! CLANG=$(find_clang); then
    # Debian 12 ships clang 14 as its default; libFuzzer and the sanitizer
    # runtimes are in libclang-rt-14-dev (clang-14 alone lacks them).
    say "no clang with libFuzzer found: installing clang-14 libclang-rt-14-dev"
    if [ "$(id -u)" != 0 ]; then
        echo "fuzz: need root for apt-get (or set CC to a clang with libFuzzer)" >&2
        exit 2
    fi
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang-14 libclang-rt-14-dev >/dev/null
    CLANG=$(find_clang) || { echo "fuzz: clang still cannot build a fuzzer" >&2; exit 2; }
fi
say "compiler: $CLANG ($("$CLANG" --version | head -n1))"

# --- 2. build -------------------------------------------------------------
# -O1 keeps sanitizer reports readable and still runs fast; UB is fatal so
# libFuzzer saves the input instead of printing and carrying on.
CFLAGS=(-g -O1 -fno-omit-frame-pointer -std=gnu99 -Wall
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
        -I"$REPO/csrc")
# Both targets link the whole C core (every csrc/*.c file): the payload
# target uses the scanner's units, the stream target all of them.
"$CLANG" "${CFLAGS[@]}" "$HERE/fuzz_payload.c" "$REPO"/csrc/*.c \
    -o "$WORK/bin/fuzz_payload" || { echo "fuzz: build of fuzz_payload failed" >&2; exit 2; }
"$CLANG" "${CFLAGS[@]}" "$HERE/fuzz_stream.c" "$REPO"/csrc/*.c \
    -o "$WORK/bin/fuzz_stream" || { echo "fuzz: build of fuzz_stream failed" >&2; exit 2; }
say "built $WORK/bin/fuzz_payload and $WORK/bin/fuzz_stream"

# --- 3. regressions first ------------------------------------------------
if [ -d "$REGRESSIONS" ]; then
    mapfile -t stream_regs < <(find "$REGRESSIONS" -maxdepth 1 -type f -name 'stream-*' | sort)
    mapfile -t payload_regs < <(find "$REGRESSIONS" -maxdepth 1 -type f ! -name 'stream-*' ! -name '*.md' ! -name '.*' | sort)
    for target in payload stream; do
        if [ "$target" = payload ]; then files=("${payload_regs[@]}"); else files=("${stream_regs[@]}"); fi
        [ ${#files[@]} -gt 0 ] || continue
        if ! "$WORK/bin/fuzz_$target" -runs=1 "${files[@]}" >"$WORK/logs/regressions-$target.log" 2>&1; then
            say "REGRESSION: a file of $REGRESSIONS fails fuzz_$target; see $WORK/logs/regressions-$target.log"
            grep -m5 -E 'check failed|ERROR|runtime error|Running:' "$WORK/logs/regressions-$target.log" >&2 || true
            exit 1
        fi
        say "replayed ${#files[@]} regression input(s) through fuzz_$target: clean"
    done
fi

# --- 4. seeds from the captured fixtures ---------------------------------
if ! ls "$FIXTURES"/*.jsonl* >/dev/null 2>&1; then
    echo "fuzz: no fixtures at $FIXTURES (set FUZZ_FIXTURES)" >&2
    exit 2
fi
rm -f "$WORK"/seeds/payload/* "$WORK"/seeds/stream/*
python3 - "$FIXTURES" "$WORK/seeds" <<'PY'
"""Seed corpora from the fixtures (one payload per file; stream programs)."""
import gzip
import pathlib
import struct
import sys

fixtures, seeds = map(pathlib.Path, sys.argv[1:3])
OP_RAW, OP_POP, OP_DRAIN, OP_MARK = 2, 7, 9, 5
for path in sorted(fixtures.glob("*.jsonl*")):
    packed = path.suffix == ".gz"
    lines = (gzip.decompress if packed else bytes)(path.read_bytes()).splitlines()
    if packed:
        path = path.with_suffix("")  # the capture's own name
    # Payload seeds: every line of the small captures, the first 100 and
    # every 500th of the 10k-job one (its lines are all alike).
    picked = lines if len(lines) <= 200 else lines[:100] + lines[100::500]
    for i, line in enumerate(picked):
        (seeds / "payload" / f"{path.stem}-{i:05d}.json").write_bytes(line)
    # Stream seeds: header (flags, since, batch cap, no filters, no tie
    # seed), then the fixture's lines in order as raw feeds, a pop now and
    # then, a mark, then a drain.  Job journals are ordered history job
    # streams, resource journals ordered history resource streams.
    flags = 0x1 | 0x2 | (0x8 if path.stem.startswith("resource") else 0x4)
    for k, start in enumerate(range(0, min(len(lines), 400), 40)):
        prog = bytearray([flags, 0, 200 if k % 2 else 5, 0, 0])
        for j, line in enumerate(lines[start : start + 40]):
            if len(line) > 0xFFFF:
                continue
            prog += bytes([OP_RAW]) + struct.pack("<H", len(line)) + line
            if j % 7 == 6:
                prog += bytes([OP_POP]) + struct.pack("<H", 100)
            if j == 3:
                prog += bytes([OP_MARK, 1])
        prog += bytes([OP_DRAIN])
        (seeds / "stream" / f"{path.stem}-{k:03d}.prog").write_bytes(prog)
PY
say "seeds: $(ls "$WORK/seeds/payload" | wc -l) payloads, $(ls "$WORK/seeds/stream" | wc -l) stream programs from $FIXTURES"

# A dictionary steers the payload target to JSON tokens, member names and
# the UTF-8 boundaries that matter (overlong forms, surrogates, > U+10FFFF).
cat >"$WORK/payload.dict" <<'DICT'
"{"
"}"
"["
"]"
":"
","
"\""
"\\u"
"\\ud800"
"\\udc00"
"\\u0000"
"true"
"false"
"null"
"-0"
"1e400"
"-1e-400"
"0.1"
"1795812829.7204976"
"9223372036854775807"
"-9223372036854775808"
"9223372036854775808"
"\"events\""
"\"id\""
"\"timestamp\""
"\"name\""
"\"context\""
"\"jobspec\""
"\"R\""
"\"ev\\u0065nts\""
"\"submit\""
"\"alloc\""
"{\"events\":[]}"
"{\"id\":-1,\"events\":[]}"
"{\"timestamp\":1.5,\"name\":\"a\"}"
"\xc2\x80"
"\xdf\xbf"
"\xe0\xa0\x80"
"\xed\x9f\xbf"
"\xed\xa0\x80"
"\xef\xbb\xbf"
"\xf0\x90\x80\x80"
"\xf4\x8f\xbf\xbf"
"\xf4\x90\x80\x80"
"\xc0\xaf"
"\xe0\x80\xaf"
"\xf5\x80\x80\x80"
DICT

# --- 5. fuzz ---------------------------------------------------------------
CORES=$(nproc 2>/dev/null || echo 1)
if [ "$CORES" -ge 2 ]; then PER=$SECONDS_BUDGET; PARALLEL=1; else PER=$(( (SECONDS_BUDGET + 1) / 2 )); PARALLEL=0; fi
[ "$PER" -ge 1 ] || PER=1
STAMP=$(date +%Y%m%d-%H%M%S)
ML_PAYLOAD=${FUZZ_MAX_LEN_PAYLOAD:-1048576}
ML_STREAM=${FUZZ_MAX_LEN_STREAM:-65536}

run_target () {   # name max_len extra-args...
    local name=$1 max_len=$2; shift 2
    local log="$WORK/logs/$name-$STAMP.log"
    # -timeout: one input may not take more than 25 s (a hang is a bug);
    # -rss_limit_mb: 4 GiB per process, well within the machine's memory.
    "$WORK/bin/fuzz_$name" -max_len="$max_len" -max_total_time="$PER" \
        -timeout=25 -rss_limit_mb=4096 -print_final_stats=1 \
        -artifact_prefix="$WORK/crashes/$name-" "$@" \
        "$WORK/corpus/$name" "$WORK/seeds/$name" >"$log" 2>&1
}

PIDS=()
cleanup () { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

say "fuzzing for ${SECONDS_BUDGET}s: fuzz_payload (max_len $ML_PAYLOAD) and fuzz_stream (max_len $ML_STREAM), ${PER}s each$( [ $PARALLEL = 1 ] && echo ', side by side')"
t0=$(date +%s)
rc_payload=0; rc_stream=0
if [ $PARALLEL = 1 ]; then
    run_target payload "$ML_PAYLOAD" -dict="$WORK/payload.dict" & PIDS+=($!)
    run_target stream "$ML_STREAM" & PIDS+=($!)
    wait "${PIDS[0]}" || rc_payload=$?
    wait "${PIDS[1]}" || rc_stream=$?
    PIDS=()
else
    run_target payload "$ML_PAYLOAD" -dict="$WORK/payload.dict" || rc_payload=$?
    run_target stream "$ML_STREAM" || rc_stream=$?
fi
t1=$(date +%s)

# --- 6. report -------------------------------------------------------------
executions () {   # from libFuzzer's final stats, else its last status line
    local log=$1 n
    n=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
    if [ -z "$n" ]; then n=$(grep -oE '^#[0-9]+' "$log" | tail -n1 | tr -d '#'); fi
    echo "${n:-0}"
}
total=0
status=0
for name in payload stream; do
    log="$WORK/logs/$name-$STAMP.log"
    n=$(executions "$log")
    total=$((total + n))
    rc=$([ $name = payload ] && echo $rc_payload || echo $rc_stream)
    verdict=clean
    [ "$rc" = 0 ] || { verdict="FAILED (exit $rc)"; status=1; }
    printf 'fuzz: %-8s executions %12d  corpus %6d files  %s  (log %s)\n' \
        "$name" "$n" "$(ls "$WORK/corpus/$name" | wc -l)" "$verdict" "$log"
done
printf 'fuzz: total    executions %12d in %ds wall\n' "$total" $((t1 - t0))

# New artifacts: minimise, then keep as regressions (small files that the
# lead commits; tests/test_fuzz_regressions.py replays them through Python).
# Processed artifacts move to crashes/seen/ so a later run reports only its
# own findings.
mkdir -p "$WORK/crashes/seen"
for art in "$WORK"/crashes/*; do
    [ -f "$art" ] || continue
    base=$(basename "$art")
    target=${base%%-*}            # payload | stream
    rest=${base#*-}               # crash-<sha1> | leak-... | timeout-... | oom-...
    kind=${rest%%-*}
    sha=$(sha1sum "$art" | cut -c1-12)
    dest="$REGRESSIONS/$target-$kind-$sha"
    status=1
    mkdir -p "$REGRESSIONS"
    min="$WORK/crashes/seen/$base.min"
    if [ "$kind" = crash ] || [ "$kind" = leak ]; then
        "$WORK/bin/fuzz_$target" -minimize_crash=1 -max_total_time=60 \
            -exact_artifact_path="$min" "$art" >"$WORK/logs/minimize-$base.log" 2>&1 || true
    fi
    if [ -s "$min" ]; then cp "$min" "$dest"; else cp "$art" "$dest"; fi
    mv "$art" "$WORK/crashes/seen/"
    say "FINDING: $base -> $dest"
    "$WORK/bin/fuzz_$target" -runs=1 "$dest" 2>&1 \
        | grep -m3 -E 'check failed|ERROR: |runtime error|SUMMARY' | sed 's/^/fuzz:   /' || true
done
exit $status
