#!/usr/bin/env bash
# Peak memory of pws-analyze against trace size. Target: peak RSS ≤ TARGET_MIB (1024) for a
# SIZE_MIB (2048) trace, and the peak must not grow with the trace.
#
# `pws-analyze synth` writes a trace like pws-record's (cpu-clock sampled on every CPU, group
# reads, cgroup ids, switch samples, energy every 10 ms, activations) with CPUS CPUs sampled at
# FREQ Hz, long enough to weigh SIZE_MIB; then a trace of the same span and CPUs sampled ten
# times less often (~10× smaller, same intervals and cgroups, so the same output). Both are
# cached under CACHE and reused by later runs. Each is analysed with
# `pws-analyze -q TRACE -o DIR` under `/usr/bin/time -f '%M %e'`; the peak RSS of each, and the
# difference (what the extra trace bytes cost), are printed with PASS/FAIL against the target.
#
# Usage: bench/analyzer_memory.sh [--quick] [--size MIB] [--clean] [--help]
#   --quick   a 200 MiB trace (and a ~20 MiB one): under a minute
#   --size N  the large trace's size in MiB
#   --clean   delete the cached traces and exit
# Environment: CPUS (64), FREQ (20000), TARGET_MIB (1024), CACHE (/tmp/pws-analyzer-memory),
# PWS_BIN (directory of a release pws-analyze; built with cargo when not given).
# Exit status 0 whatever the verdict; non-zero means the benchmark itself broke.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
SIZE_MIB=${SIZE_MIB:-2048}
CPUS=${CPUS:-64}
FREQ=${FREQ:-20000}
TARGET_MIB=${TARGET_MIB:-1024}
CACHE=${CACHE:-/tmp/pws-analyzer-memory}
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) SIZE_MIB=200 ;;
        --size) SIZE_MIB=${2:?--size needs a number of MiB}; shift ;;
        --clean) rm -rf "$CACHE"; echo "removed $CACHE"; exit 0 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "analyzer_memory.sh: unknown argument $1 (--quick, --size MIB, --clean)" >&2; exit 2 ;;
    esac
    shift
done
case "$SIZE_MIB$CPUS$FREQ$TARGET_MIB" in
    *[!0-9]*) echo "analyzer_memory.sh: SIZE_MIB, CPUS, FREQ and TARGET_MIB are whole numbers" >&2; exit 2 ;;
esac
# The smaller trace's frequency: ten times less, kept a multiple of 1000 Hz (synth's rule).
SMALL_FREQ=$(( FREQ / 10 / 1000 * 1000 ))
[ "$SMALL_FREQ" -ge 1000 ] || { echo "analyzer_memory.sh: FREQ must be at least 10000 (the smaller trace samples at FREQ/10)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "analyzer_memory.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

say() { printf '== %s\n' "$*"; }

if [ -z "${PWS_BIN:-}" ]; then
    TARGET=$(cd "$REPO" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    PWS_BIN=$TARGET/release
    say "building pws-analyze (cargo build --release -p pws-analyzer)"
    (cd "$REPO" && cargo build --release --locked -p pws-analyzer >/dev/null 2>&1)
fi
ANALYZE=$PWS_BIN/pws-analyze
mkdir -p "$CACHE"
WORK=$(mktemp -d /tmp/pws-analyzer-memory-run-XXXXXX)
trap 'rm -rf "$WORK"' EXIT INT TERM

# How long the large trace must be: bytes per second from a 4 s trace of the same CPUs and
# frequency (the stream is steady, so size grows linearly with its span).
"$ANALYZE" synth --seconds 4 --cpus "$CPUS" --freq "$FREQ" -o "$WORK/calibrate.pws" 2>/dev/null
CAL=$(stat -c %s "$WORK/calibrate.pws")
rm -f "$WORK/calibrate.pws"
SPAN=$(( (SIZE_MIB * 1048576 * 4 + CAL - 1) / CAL ))
[ "$SPAN" -ge 2 ] || SPAN=2

# Writes (once) the trace of $1 Hz over $SPAN s and prints its path; written under a temporary
# name first, so an interrupted generation is never taken for a cached trace.
trace() {
    local f="$CACHE/synth-${CPUS}cpu-${1}hz-${SPAN}s.pws"
    if [ ! -s "$f" ]; then
        say "generating $f ($CPUS CPUs at $1 Hz for $SPAN s)" >&2
        /usr/bin/time -f '%e' -o "$WORK/gen.time" \
            "$ANALYZE" synth --seconds "$SPAN" --cpus "$CPUS" --freq "$1" -o "$f.partial" 2>"$WORK/gen.log" \
            || { cat "$WORK/gen.log" >&2; exit 1; }
        mv "$f.partial" "$f"
        echo "   written in $(cat "$WORK/gen.time") s: $(tail -1 "$WORK/gen.log")" >&2
    fi
    echo "$f"
}

# Analyses $2 (label $1) under /usr/bin/time; also samples RssAnon and RssFile from /proc
# every 0.2 s, to tell heap (tables, replay state) from mapped trace pages at the peak.
measure() {
    local label=$1 f=$2 out="$WORK/tables-$1"
    rm -rf "$out"
    /usr/bin/time -f '%M %e' -o "$WORK/$label.time" \
        "$ANALYZE" -q "$f" -o "$out" --summary-json "$WORK/$label.json" &
    local tpid=$! pid="" anon=0 file=0 a fl
    while kill -0 "$tpid" 2>/dev/null; do
        [ -n "$pid" ] || pid=$(pgrep -P "$tpid" || true)
        if [ -n "$pid" ] && read -r a fl < <(awk '/^RssAnon/{a=$2}/^RssFile/{f=$2}END{print a+0, f+0}' "/proc/$pid/status" 2>/dev/null); then
            [ "$a" -gt "$anon" ] && anon=$a
            [ "$fl" -gt "$file" ] && file=$fl
        fi
        sleep 0.2
    done
    wait "$tpid" || { echo "pws-analyze failed on $f" >&2; exit 1; }
    rm -rf "$out"
    echo "$anon $file" >"$WORK/$label.proc"
}

say "traces: ${SIZE_MIB} MiB at $FREQ Hz and the same span at $SMALL_FREQ Hz, $CPUS CPUs (cache: $CACHE)"
LARGE=$(trace "$FREQ")
SMALL=$(trace "$SMALL_FREQ")
say "analysing the smaller trace"
measure small "$SMALL"
say "analysing the large trace"
measure large "$LARGE"

python3 - "$WORK" "$LARGE" "$SMALL" "$TARGET_MIB" "$SIZE_MIB" "$FREQ" "$SMALL_FREQ" <<'PY'
import json, os, sys
work, large, small, target, size_mib, freq, small_freq = sys.argv[1:]
target, size_mib = float(target), float(size_mib)
MiB = 1 << 20

def row(label, path):
    rss_kib, secs = open(f"{work}/{label}.time").read().split()[:2]
    anon, file = (int(x) for x in open(f"{work}/{label}.proc").read().split())
    s = json.load(open(f"{work}/{label}.json"))[0]
    return dict(size=os.path.getsize(path) / MiB, samples=s["perf_samples"], span=s["seconds"],
                rss=int(rss_kib) / 1024, secs=float(secs), anon=anon / 1024, file=file / 1024)

L, S = row("large", large), row("small", small)
print(f"{'trace':<26}{'size MiB':>10}{'samples':>14}{'span s':>8}{'intervals':>11}"
      f"{'peak RSS MiB':>14}{'anon/file MiB':>15}{'time s':>8}")
for name, r in ((f"large ({freq} Hz)", L), (f"smaller ({small_freq} Hz)", S)):
    print(f"{name:<26}{r['size']:>10.1f}{r['samples']:>14,}{r['span']:>8.0f}{r['span'] * 100:>11,.0f}"
          f"{r['rss']:>14.0f}{r['anon']:>8.0f}/{r['file']:<6.0f}{r['secs']:>8.1f}")
grow = L["rss"] - S["rss"]
print(f"growth: {grow:+.0f} MiB of peak for {L['size'] - S['size']:+.0f} MiB of trace "
      f"({L['size'] / S['size']:.1f}x the bytes and samples); same span, CPUs and cgroups, so the same output:")
print(f"  output (tables, per-interval state) ≈ {S['rss']:.0f} MiB, the smaller trace's peak; "
      f"trace-dependent ≈ {grow:.0f} MiB")
print("  (anon/file: the highest RssAnon and RssFile sampled every 0.2 s; file = mapped trace pages and the binary)")
ok = L["rss"] <= target
print(f"{'PASS' if ok else 'FAIL'}  peak RSS {L['rss']:.0f} MiB for a {L['size']:.0f} MiB trace "
      f"(target ≤ {target:.0f} MiB for {size_mib:.0f} MiB)")
PY
