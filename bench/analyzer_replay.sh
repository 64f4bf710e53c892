#!/usr/bin/env bash
# Replay throughput of pws-analyze: against inflating the same blocks and nothing else, against
# `perf script` on the same workload's samples, and from 1 to 2 rayon threads.
#
# The same CPU-bound workload (one busy process per CPU for SECONDS_ s) is recorded twice at
# FREQ Hz per CPU with context-switch samples: once by pws-record, once by perf record. Then,
# REPS times each (best kept), with RAYON_NUM_THREADS=1 and =THREADS (2):
#   inflate  `pws-analyze bench-replay --inflate-only TRACE`: the small blocks read, every
#            perf-data block inflated once, nothing else (the floor under the replay);
#   replay   `pws-analyze bench-replay TRACE`: the replay alone (side band, lifecycles, join,
#            accounting), no models, no tables;
#   analyze  `pws-analyze TRACE -o DIR`: the whole analysis, every Parquet table, peak RSS;
# and once, `perf script` (decoding and printing every sample, output to /dev/null).
# Printed: samples/s of each; replay/inflate (target ≥ 0.60) and replay/perf script (target
# ≥ 15×), both at THREADS threads; the speed-up from 1 to THREADS threads of replay and analyze.
#
# Needs root (system-wide perf) and perf (`apt-get install linux-perf`); builds the release
# binaries if PWS_BIN is not given. Exits 0 whatever the targets say.
# Usage: sudo bench/analyzer_replay.sh [--quick]
# Environment: SECONDS_ (20), FREQ (10000), REPS (3), THREADS (2), OUT (a new /tmp dir), PERF,
# PWS_BIN (directory of release pws-record and pws-analyze).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_=${SECONDS_:-20}
FREQ=${FREQ:-10000}
REPS=${REPS:-3}
THREADS=${THREADS:-2}
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

# One timing per line of $OUT/times: "<mode> <threads> <seconds> [<peak RSS KiB>]".
: >"$OUT/times"
for r in $(seq "$REPS"); do
    for th in 1 "$THREADS"; do
        export RAYON_NUM_THREADS=$th
        "$PWS_BIN/pws-analyze" bench-replay --inflate-only "$OUT/trace.pws" >"$OUT/inflate.json"
        echo "inflate $th $(python3 -c "import json; print(json.load(open('$OUT/inflate.json'))['seconds'])")" >>"$OUT/times"
        "$PWS_BIN/pws-analyze" bench-replay "$OUT/trace.pws" >"$OUT/replay.json"
        echo "replay $th $(python3 -c "import json; print(json.load(open('$OUT/replay.json'))['seconds'])")" >>"$OUT/times"
        rm -rf "$OUT/tables"
        /usr/bin/time -f '%e %M' -o "$OUT/time.pws" "$PWS_BIN/pws-analyze" -q "$OUT/trace.pws" -o "$OUT/tables" --summary-json "$OUT/summary.json"
        echo "analyze $th $(cat "$OUT/time.pws")" >>"$OUT/times"
    done
    unset RAYON_NUM_THREADS
    /usr/bin/time -f '%e' -o "$OUT/time.perf" "$PERF" script -i "$OUT/perf.data" >"$OUT/perf-script.txt" 2>/dev/null || true
    echo "perf-script 1 $(cat "$OUT/time.perf")" >>"$OUT/times"
    echo "   rep $r: $(awk -v r="$r" 'BEGIN{ORS="; "} {print $1 "@" $2 " " $3 " s"}' <(tail -n 7 "$OUT/times"))"
done
perf_samples=$(wc -l <"$OUT/perf-script.txt")
python3 - "$OUT" "$perf_samples" "$THREADS" "$(stat -c %s "$OUT/trace.pws")" "$(stat -c %s "$OUT/perf.data")" <<'PY'
import json, sys
out, fs, th = sys.argv[1], float(sys.argv[2]), sys.argv[3]
tb, fb = float(sys.argv[4]), float(sys.argv[5])
best, rss = {}, 0
for line in open(f"{out}/times"):
    f = line.split()
    k = (f[0], f[1])
    best[k] = min(best.get(k, float("inf")), max(float(f[2]), 1e-9))
    if len(f) > 3:
        rss = max(rss, int(f[3]))
ps = json.load(open(f"{out}/replay.json"))["samples"]
inflated = json.load(open(f"{out}/inflate.json"))["inflated_bytes"]
rate = lambda m, t: ps / best[(m, t)]
fr = fs / best[("perf-script", "1")]
for m, what in [("inflate", "inflate only (small blocks read, each perf-data block inflated once)"),
                ("replay", "replay alone (side band, lifecycles, join, accounting)"),
                ("analyze", "whole analysis (replay, models, every Parquet table)")]:
    print(f"{m:8} {what}: {ps:.0f} samples; 1 thread {best[(m, '1')]:.3f} s = {rate(m, '1'):,.0f}/s; "
          f"{th} threads {best[(m, th)]:.3f} s = {rate(m, th):,.0f}/s")
print(f"perf script (decode and print to /dev/null): {fs:.0f} samples in {best[('perf-script', '1')]:.3f} s = {fr:,.0f}/s (perf.data {fb/1e6:.1f} MB)")
print(f"trace {tb/1e6:.1f} MB, {inflated/1e6:.1f} MB of perf data inflated; analyze peak RSS {rss/1024:.0f} MiB")
ri = rate("replay", th) / rate("inflate", th)
rp = rate("replay", th) / fr
print(f"{'PASS' if ri >= 0.60 else 'FAIL'}  replay at {ri:.2f} of inflate-only throughput, {th} threads (target >= 0.60)")
print(f"{'PASS' if rp >= 15 else 'FAIL'}  replay at {rp:.1f}x perf script's samples/s, {th} threads (target >= 15x)")
print(f"       whole analysis at {rate('analyze', th) / fr:.1f}x perf script's samples/s")
for m in ("replay", "analyze", "inflate"):
    print(f"speed-up 1 -> {th} threads: {m} {best[(m, '1')] / best[(m, th)]:.2f}x")
PY
