#!/usr/bin/env bash
# Replay throughput of pws-analyze against `perf script` on the same workload's samples.
#
# The same CPU-bound workload (one busy process per CPU for SECONDS s) is recorded twice at
# FREQ Hz per CPU with context-switch samples: once by pws-record, once by perf record. Then
# `pws-analyze TRACE -o DIR` (replay, lifecycles, models, every Parquet table) and
# `perf script` (decoding and printing every sample, output to /dev/null) are each timed REPS
# times; samples per second of each, and the ratio, are printed. Target: pws-analyze ≥ 50×
# perf script's samples/s. Also printed: pws-analyze's peak RSS.
#
# Needs root (system-wide perf) and perf (`apt-get install linux-perf`); builds the release
# binaries if PWS_BIN is not given. Usage: sudo bench/analyzer_replay.sh [--quick]
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_=${SECONDS_:-20}
FREQ=${FREQ:-10000}
REPS=${REPS:-3}
if [ "${1:-}" = "--quick" ]; then SECONDS_=5; REPS=1; fi
OUT=${OUT:-$(mktemp -d /tmp/pws-replay-bench-XXXXXX)}
mkdir -p "$OUT"
PERF=${PERF:-}

say() { printf '== %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
    echo "analyzer_replay.sh: needs root (system-wide perf sampling)" >&2
    exit 2
fi
if [ -z "$PERF" ]; then
    # Debian's /usr/bin/perf wrapper refuses kernels it has no perf_<version> for: take a
    # working perf_* binary then.
    for p in $(command -v perf 2>/dev/null) /usr/bin/perf_*; do
        if [ -x "$p" ] && "$p" --version >/dev/null 2>&1; then PERF=$p; break; fi
    done
fi
if [ -z "$PERF" ]; then
    say "installing perf: apt-get install -y linux-perf"
    apt-get install -y linux-perf >/dev/null
    for p in $(command -v perf 2>/dev/null) /usr/bin/perf_*; do
        if [ -x "$p" ] && "$p" --version >/dev/null 2>&1; then PERF=$p; break; fi
    done
fi
[ -n "$PERF" ] || { echo "no working perf binary found" >&2; exit 2; }

if [ -z "${PWS_BIN:-}" ]; then
    TARGET=$(cd "$REPO" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    PWS_BIN=$TARGET/release
    say "building release binaries (cargo build --release -p pws-recorder -p pws-analyzer)"
    (cd "$REPO" && cargo build --release --locked -p pws-recorder -p pws-analyzer >/dev/null 2>&1)
fi

NCPU=$(nproc)
workload() { # busy loops on every CPU for SECONDS_ s
    local pids=()
    for _ in $(seq "$NCPU"); do timeout "$SECONDS_" sh -c 'while :; do :; done' & pids+=($!); done
    wait "${pids[@]}" 2>/dev/null || true
}

say "recording ${SECONDS_}s at ${FREQ} Hz on $NCPU CPUs with pws-record and with perf record (results in $OUT)"
"$PWS_BIN/pws-record" -q -o "$OUT/trace.pws" --freq "$FREQ" --energy simulated -- bash -c "$(declare -f workload); SECONDS_=$SECONDS_ NCPU=$NCPU workload"
"$PERF" record -q -a -o "$OUT/perf.data" -e "cpu-clock/freq=$FREQ/" -e "context-switches/period=1/" \
    --switch-events --all-cgroups -- bash -c "$(declare -f workload); SECONDS_=$SECONDS_ NCPU=$NCPU workload" 2>/dev/null

best() { sort -n | head -1; }
pws_times=(); perf_times=(); rss=0
for r in $(seq "$REPS"); do
    rm -rf "$OUT/tables"
    /usr/bin/time -f '%e %M' -o "$OUT/time.pws" "$PWS_BIN/pws-analyze" -q "$OUT/trace.pws" -o "$OUT/tables" --summary-json "$OUT/summary.json"
    read -r t m <"$OUT/time.pws"; pws_times+=("$t"); [ "$m" -gt "$rss" ] && rss=$m
    /usr/bin/time -f '%e' -o "$OUT/time.perf" "$PERF" script -i "$OUT/perf.data" >"$OUT/perf-script.txt" 2>/dev/null || true
    perf_times+=("$(cat "$OUT/time.perf")")
    echo "   rep $r: pws-analyze ${pws_times[-1]} s, perf script ${perf_times[-1]} s"
done
pws_samples=$(python3 -c "import json; print(sum(s['perf_samples'] for s in json.load(open('$OUT/summary.json'))))")
perf_samples=$(wc -l <"$OUT/perf-script.txt")
pws_t=$(printf '%s\n' "${pws_times[@]}" | best)
perf_t=$(printf '%s\n' "${perf_times[@]}" | best)
python3 - "$pws_samples" "$pws_t" "$perf_samples" "$perf_t" "$rss" "$(stat -c %s "$OUT/trace.pws")" "$(stat -c %s "$OUT/perf.data")" <<'PY'
import sys
ps, pt, fs, ft, rss, tb, fb = (float(x) for x in sys.argv[1:])
pr, fr = ps / max(pt, 1e-9), fs / max(ft, 1e-9)
ratio = pr / fr if fr else float("nan")
print(f"pws-analyze: {ps:.0f} samples in {pt:.2f} s = {pr:,.0f} samples/s (trace {tb/1e6:.1f} MB, all tables written), peak RSS {rss/1024:.0f} MiB")
print(f"perf script: {fs:.0f} samples in {ft:.2f} s = {fr:,.0f} samples/s (perf.data {fb/1e6:.1f} MB)")
print(f"{'PASS' if ratio >= 50 else 'FAIL'}  pws-analyze replays {ratio:.1f}x perf script's samples/s (target >= 50x)")
PY
