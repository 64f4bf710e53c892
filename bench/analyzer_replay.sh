#!/usr/bin/env bash
# Replay throughput of pws-analyze: against inflating the same blocks and nothing else, against
# `perf script` on the same workload's samples, and from 1 to 2 rayon threads.
#
# The same CPU-bound workload (one busy process per CPU for SECONDS_ s) is recorded twice at
# FREQ Hz per CPU with context-switch samples: once by pws-record, once by perf record. Then,
# REPS times each (best kept), with RAYON_NUM_THREADS=1 and =THREADS (2), on the recorded trace
# and on a synthetic one with more CPU streams (`pws-analyze synth --seconds SYNTH_SECONDS
# --cpus SYNTH_CPUS --freq FREQ`, 60 s × 8 CPUs; SYNTH_SECONDS=0 leaves it out):
#   inflate  `pws-analyze bench-replay --inflate-only TRACE`: the small blocks read, every
#            perf-data block inflated once, nothing else (the floor under the replay);
#   replay   `pws-analyze bench-replay TRACE`: the replay alone (side band, lifecycles, join,
#            accounting), no models, no tables;
#   analyze  `pws-analyze TRACE -o DIR`: the whole analysis, every Parquet table, peak RSS;
# and `perf script` on the recorded samples (decoding and printing each, output to /dev/null).
# Printed: samples/s of each; replay/inflate (target ≥ 0.60) and replay/perf script (target
# ≥ 15×, recorded trace only), both at THREADS threads; the speed-up from 1 to THREADS threads
# of replay and analyze, and what Amdahl's law makes of it for 64 threads.
#
# Needs root (system-wide perf) and perf (`apt-get install linux-perf`); builds the release
# binaries if PWS_BIN is not given. Exits 0 whatever the targets say.
# Usage: sudo bench/analyzer_replay.sh [--quick]
# Environment: SECONDS_ (20), FREQ (10000), REPS (3), THREADS (2), SYNTH_SECONDS (60),
# SYNTH_CPUS (8), OUT (a new /tmp dir), PERF, PWS_BIN (directory of release pws-record and
# pws-analyze). --quick: 5 s recordings, a 10 s synthetic trace, 1 repetition.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_=${SECONDS_:-20}
FREQ=${FREQ:-10000}
REPS=${REPS:-3}
THREADS=${THREADS:-2}
SYNTH_SECONDS=${SYNTH_SECONDS:-60}
SYNTH_CPUS=${SYNTH_CPUS:-8}
if [ "${1:-}" = "--quick" ]; then SECONDS_=5; REPS=1; SYNTH_SECONDS=10; fi
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

# Timings, one a line in $OUT/times: "<trace> <mode> <threads> <seconds> [<peak RSS KiB>]".
: >"$OUT/times"
time_modes() { # LABEL TRACE: inflate, replay and analyze at 1 and THREADS threads, once each
    local label=$1 trace=$2 th
    for th in 1 "$THREADS"; do
        RAYON_NUM_THREADS=$th "$PWS_BIN/pws-analyze" bench-replay --inflate-only "$trace" >"$OUT/$label.inflate.json"
        echo "$label inflate $th $(python3 -c "import json; print(json.load(open('$OUT/$label.inflate.json'))['seconds'])")" >>"$OUT/times"
        RAYON_NUM_THREADS=$th "$PWS_BIN/pws-analyze" bench-replay "$trace" >"$OUT/$label.replay.json"
        echo "$label replay $th $(python3 -c "import json; print(json.load(open('$OUT/$label.replay.json'))['seconds'])")" >>"$OUT/times"
        rm -rf "$OUT/tables"
        RAYON_NUM_THREADS=$th /usr/bin/time -f '%e %M' -o "$OUT/time.pws" "$PWS_BIN/pws-analyze" -q "$trace" -o "$OUT/tables"
        echo "$label analyze $th $(cat "$OUT/time.pws")" >>"$OUT/times"
    done
}
if [ "$SYNTH_SECONDS" != 0 ]; then
    say "synthetic trace: pws-analyze synth --seconds $SYNTH_SECONDS --cpus $SYNTH_CPUS --freq $FREQ (more CPU streams than this machine records)"
    "$PWS_BIN/pws-analyze" synth -o "$OUT/synth.pws" --seconds "$SYNTH_SECONDS" --cpus "$SYNTH_CPUS" --freq "$FREQ" >/dev/null
fi
for r in $(seq "$REPS"); do
    time_modes recorded "$OUT/trace.pws"
    [ "$SYNTH_SECONDS" = 0 ] || time_modes synth "$OUT/synth.pws"
    # perf script may exit non-zero after printing every sample (242 seen with perf 6.1);
    # time then writes a line about it before the time.
    /usr/bin/time -f '%e' -o "$OUT/time.perf" "$PERF" script -i "$OUT/perf.data" >"$OUT/perf-script.txt" 2>/dev/null || true
    echo "recorded perf-script 1 $(tail -n 1 "$OUT/time.perf")" >>"$OUT/times"
    echo "   rep $r done"
done
perf_samples=$(wc -l <"$OUT/perf-script.txt")
python3 - "$OUT" "$perf_samples" "$THREADS" "$(stat -c %s "$OUT/perf.data")" <<'PY'
import json, os, sys
out, fs, th, fb = sys.argv[1], float(sys.argv[2]), sys.argv[3], float(sys.argv[4])
best, rss = {}, {}
for line in open(f"{out}/times"):
    f = line.split()
    k = (f[0], f[1], f[2])
    best[k] = min(best.get(k, float("inf")), max(float(f[3]), 1e-9))
    if len(f) > 4:
        rss[f[0]] = max(rss.get(f[0], 0), int(f[4]))
fr = fs / best[("recorded", "perf-script", "1")]
for label in ("recorded", "synth"):
    if not os.path.exists(f"{out}/{label}.replay.json"):
        continue
    rep = json.load(open(f"{out}/{label}.replay.json"))
    ps, inflated = rep["samples"], rep["inflated_bytes"]
    size = os.path.getsize(f"{out}/{'trace' if label == 'recorded' else 'synth'}.pws")
    rate = lambda m, t: ps / best[(label, m, t)]
    print(f"-- {label} trace: {size/1e6:.1f} MB, {ps:,} samples, {inflated/1e6:.1f} MB of perf data inflated; analyze peak RSS {rss[label]/1024:.0f} MiB")
    for m, what in [("inflate", "small blocks read, each perf-data block inflated once, nothing else"),
                    ("replay", "replay alone: side band, lifecycles, join, accounting"),
                    ("analyze", "whole analysis: replay, models, every Parquet table")]:
        print(f"{m:8} 1 thread {best[(label, m, '1')]:.3f} s = {rate(m, '1')/1e6:5.2f} M samples/s; "
              f"{th} threads {best[(label, m, th)]:.3f} s = {rate(m, th)/1e6:5.2f} M samples/s  ({what})")
    ri = rate("replay", th) / rate("inflate", th)
    print(f"{'PASS' if ri >= 0.60 else 'FAIL'}  replay at {ri:.2f} of inflate-only throughput, {th} threads (target >= 0.60)")
    if label == "recorded":
        print(f"perf script: {fs:.0f} samples in {best[('recorded', 'perf-script', '1')]:.3f} s = {fr/1e6:.2f} M samples/s (decode and print to /dev/null; perf.data {fb/1e6:.1f} MB)")
        rp = rate("replay", th) / fr
        print(f"{'PASS' if rp >= 15 else 'FAIL'}  replay at {rp:.1f}x perf script's samples/s, {th} threads (target >= 15x); whole analysis at {rate('analyze', th) / fr:.1f}x")
    for m in ("replay", "analyze"):
        s = best[(label, m, "1")] / best[(label, m, th)]
        # Amdahl: the parallel share p from the speed-up s on n threads, s = 1/((1-p) + p/n).
        # Only a trace with 64 CPU streams or more keeps 64 threads busy (a task per stream).
        n = float(th)
        p = (1 - 1 / s) / (1 - 1 / n) if n > 1 else 0.0
        if 0 < p <= 1:
            note = f"parallel share {p:.2f}: Amdahl's law gives {1 / ((1 - p) + p / 64):.1f}x on 64 threads"
        else:
            note = "outside 1..THREADS: the machine was not quiet, rerun"
        print(f"speed-up 1 -> {th} threads: {m} {s:.2f}x ({note})")
PY
