#!/usr/bin/env bash
# pws-analyze at testbed scale: memory bounded by a window, time linear in the run (issue 15).
# Targets: the peak RSS of a LONG (3600) s trace ≤ RSS_RATIO (1.3)× that of a SHORT (360) s
# trace of the same density, and ≤ TARGET_MIB (1024); analysis time ≤ TIME_RATIO (12)× the
# short trace's for 10× the span.
#
# `pws-analyze synth` writes an invoker node: CPUS CPUs sampled at FREQ Hz, FUNCTIONS functions
# of Zipf popularity sharing RATE activations a second, each function's containers kept warm
# KEEP_ALIVE after their last run (paused between runs, then removed: hundreds of containers
# live at once). The long and short traces differ only in --seconds; both are cached under CACHE
# and reused by later runs. Each is analysed with `pws-analyze -q TRACE -o DIR` under
# `/usr/bin/time -f '%M %e'`; printed: peak RSS and time of each, their ratios, the long
# trace's peak against TARGET_MIB, and the Parquet output's size per table, with PASS/FAIL.
#
# Usage: bench/analyzer_scale.sh [--quick] [--long S] [--short S] [--breakdown] [--phases] [--clean]
#   --quick      360 s against 36 s (a few minutes in all)
#   --long S     the long trace's span in seconds (the short one stays SHORT: the ratio
#                targets then scale to it as stated above only for 10×)
#   --short S    the short trace's span in seconds
#   --breakdown  also analyse the short trace with one idle policy, and at --interval 100ms,
#                to see where the memory goes
#   --phases     also print, for both traces, the resident set and its high-water mark after
#                each phase of the analysis (pws-analyze with PWS_MEMORY_PHASES set)
#   --clean      delete the cached traces and exit
# Environment: CPUS (8), FREQ (1000), FUNCTIONS (50), RATE (50), KEEP_ALIVE (10m), LONG (3600),
# SHORT (360), RSS_RATIO (1.3), TARGET_MIB (1024), TIME_RATIO (12),
# CACHE (/tmp/pws-analyzer-scale), PWS_BIN (directory of a release pws-analyze; built with cargo
# when not given). FREQ 1000 is synth's lowest: the point is memory and time against the span,
# and at 1 kHz an hour of 8 CPUs is 28.8 M samples, which a 2-core machine writes and reads in
# minutes (`bench/analyzer_memory.sh` covers memory against the sample rate).
# Exit status 0 whatever the verdict; non-zero means the benchmark itself broke.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
CPUS=${CPUS:-8}
FREQ=${FREQ:-1000}
FUNCTIONS=${FUNCTIONS:-50}
RATE=${RATE:-50}
KEEP_ALIVE=${KEEP_ALIVE:-10m}
LONG=${LONG:-3600}
SHORT=${SHORT:-360}
RSS_RATIO=${RSS_RATIO:-1.3}
TARGET_MIB=${TARGET_MIB:-1024}
TIME_RATIO=${TIME_RATIO:-12}
CACHE=${CACHE:-/tmp/pws-analyzer-scale}
BREAKDOWN=0
PHASES=0
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) LONG=360; SHORT=36 ;;
        --long) LONG=${2:?--long needs a number of seconds}; shift ;;
        --short) SHORT=${2:?--short needs a number of seconds}; shift ;;
        --breakdown) BREAKDOWN=1 ;;
        --phases) PHASES=1 ;;
        --clean) rm -rf "$CACHE"; echo "removed $CACHE"; exit 0 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "analyzer_scale.sh: unknown argument $1 (--quick, --long S, --short S, --breakdown, --phases, --clean)" >&2; exit 2 ;;
    esac
    shift
done
case "$CPUS$FREQ$FUNCTIONS$LONG$SHORT$TARGET_MIB" in
    *[!0-9]*) echo "analyzer_scale.sh: CPUS, FREQ, FUNCTIONS, LONG, SHORT and TARGET_MIB are whole numbers" >&2; exit 2 ;;
esac
[ "$SHORT" -ge 2 ] && [ "$LONG" -gt "$SHORT" ] || { echo "analyzer_scale.sh: give 2 ≤ SHORT < LONG seconds" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "analyzer_scale.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "analyzer_scale.sh: needs python3" >&2; exit 2; }

say() { printf '== %s\n' "$*"; }

if [ -z "${PWS_BIN:-}" ]; then
    TARGET=$(cd "$REPO" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    PWS_BIN=$TARGET/release
    say "building pws-analyze (cargo build --release -p pws-analyzer)"
    (cd "$REPO" && cargo build --release --locked -p pws-analyzer >/dev/null 2>&1)
fi
ANALYZE=$PWS_BIN/pws-analyze
[ -x "$ANALYZE" ] || { echo "analyzer_scale.sh: no $ANALYZE" >&2; exit 2; }
mkdir -p "$CACHE"
WORK=$(mktemp -d /tmp/pws-analyzer-scale-run-XXXXXX)
trap 'rm -rf "$WORK"' EXIT INT TERM

# Writes (once) the trace of $1 seconds and prints its path; written under a temporary name
# first, so an interrupted generation is never taken for a cached trace.
trace() {
    local f="$CACHE/synth-${CPUS}cpu-${FREQ}hz-${FUNCTIONS}f-${RATE}ps-ka${KEEP_ALIVE}-${1}s.pws"
    if [ ! -s "$f" ]; then
        say "generating $f" >&2
        /usr/bin/time -f '%e s, %M KiB' -o "$WORK/gen.time" \
            "$ANALYZE" synth --seconds "$1" --cpus "$CPUS" --freq "$FREQ" --functions "$FUNCTIONS" \
            --rate "$RATE" --keep-alive "$KEEP_ALIVE" -o "$f.partial" 2>"$WORK/gen.log" \
            || { cat "$WORK/gen.log" >&2; exit 1; }
        mv "$f.partial" "$f"
        echo "   written in $(cat "$WORK/gen.time"): $(tail -1 "$WORK/gen.log")" >&2
    fi
    echo "$f"
}

# Analyses $2 (label $1, extra options after) under /usr/bin/time; keeps the per-table output
# sizes in $WORK/$1.sizes and drops the tables.
measure() {
    local label=$1 f=$2 out="$WORK/tables-$1"
    shift 2
    rm -rf "$out"
    local phases=()
    [ "$PHASES" = 1 ] && phases=(env PWS_MEMORY_PHASES=1)
    /usr/bin/time -f '%M %e' -o "$WORK/$label.time" \
        "${phases[@]}" "$ANALYZE" -q "$f" -o "$out" --summary-json "$WORK/$label.json" "$@" \
        2>"$WORK/$label.err" || { cat "$WORK/$label.err" >&2; echo "pws-analyze failed on $f" >&2; exit 1; }
    python3 - "$out" >"$WORK/$label.sizes" <<'PY'
import json, os, sys
out = sys.argv[1]
sizes = {}
for root, _, files in os.walk(out):
    rel = os.path.relpath(root, out)
    if rel == ".":
        continue
    table = rel.split(os.sep)[0]
    sizes[table] = sizes.get(table, 0) + sum(os.path.getsize(os.path.join(root, f)) for f in files)
print(json.dumps(sizes))
PY
    rm -rf "$out"
}

say "traces: $CPUS CPUs at $FREQ Hz, $FUNCTIONS functions at $RATE activations/s, keep-alive $KEEP_ALIVE; $LONG s and $SHORT s (cache: $CACHE)"
LONG_T=$(trace "$LONG")
SHORT_T=$(trace "$SHORT")
say "analysing the $SHORT s trace"
measure short "$SHORT_T"
say "analysing the $LONG s trace"
measure long "$LONG_T"
if [ "$BREAKDOWN" = 1 ]; then
    say "breakdown on the $SHORT s trace: --idle-policy unassigned; --interval 100ms"
    measure one-policy "$SHORT_T" --idle-policy unassigned
    measure interval-100ms "$SHORT_T" --interval 100ms
fi

python3 - "$WORK" "$LONG_T" "$SHORT_T" "$LONG" "$SHORT" "$RSS_RATIO" "$TARGET_MIB" "$TIME_RATIO" "$BREAKDOWN" "$PHASES" <<'PY'
import json, os, re, sys
work, long_t, short_t, long_s, short_s, rss_ratio, target, time_ratio, breakdown, phases = sys.argv[1:]
rss_ratio, target, time_ratio = float(rss_ratio), float(target), float(time_ratio)
MiB = 1 << 20

def row(label, path=None):
    rss_kib, secs = open(f"{work}/{label}.time").read().split()[:2]
    s = json.load(open(f"{work}/{label}.json"))[0]
    return dict(size=os.path.getsize(path) / MiB if path else None, samples=s["perf_samples"],
                span=s["seconds"], rss=int(rss_kib) / 1024, secs=float(secs),
                containers=s.get("function_containers"), activations=s.get("activations"),
                tables=json.load(open(f"{work}/{label}.sizes")))

L, S = row("long", long_t), row("short", short_t)
print(f"{'trace':<10}{'size MiB':>10}{'samples':>14}{'span s':>8}{'activations':>13}{'containers':>12}"
      f"{'peak RSS MiB':>14}{'time s':>8}{'MiB per s':>11}")
for name, r in ((f"{long_s} s", L), (f"{short_s} s", S)):
    print(f"{name:<10}{r['size']:>10.1f}{r['samples']:>14,}{r['span']:>8.0f}{r['activations'] or 0:>13,}"
          f"{r['containers'] or 0:>12,}{r['rss']:>14.0f}{r['secs']:>8.1f}{r['rss'] / r['span']:>11.3f}")
span = L["span"] / S["span"]
rr, tr = L["rss"] / S["rss"], L["secs"] / S["secs"]
print(f"span ratio {span:.1f}x: peak RSS ratio {rr:.2f}x, time ratio {tr:.2f}x, "
      f"growth {(L['rss'] - S['rss']) / (L['span'] - S['span']):.3f} MiB per second of trace")
print("Parquet output per table (KiB):")
tables = sorted(set(L["tables"]) | set(S["tables"]), key=lambda t: -L["tables"].get(t, 0))
print(f"  {'table':<24}{long_s + ' s':>14}{short_s + ' s':>14}{'ratio':>8}")
for t in tables:
    a, b = L["tables"].get(t, 0), S["tables"].get(t, 0)
    print(f"  {t:<24}{a / 1024:>14,.0f}{b / 1024:>14,.0f}{(a / b if b else float('nan')):>8.1f}")
a, b = sum(L["tables"].values()), sum(S["tables"].values())
print(f"  {'total':<24}{a / 1024:>14,.0f}{b / 1024:>14,.0f}{a / b:>8.1f}")
if breakdown == "1":
    print(f"breakdown on the {short_s} s trace (peak RSS MiB, time s):")
    print(f"  {'all idle policies (default)':<34}{S['rss']:>8.0f}{S['secs']:>8.1f}")
    for label, what in (("one-policy", "--idle-policy unassigned"), ("interval-100ms", "--interval 100ms")):
        r = row(label)
        print(f"  {what:<34}{r['rss']:>8.0f}{r['secs']:>8.1f}")
if phases == "1":
    def phase_rows(label):
        pat = re.compile(r"^memory phase (.*?)\s+rss\s+(\d+) MiB\s+hwm\s+(\d+) MiB")
        return [(m[1], int(m[2]), int(m[3])) for m in map(pat.match, open(f"{work}/{label}.err")) if m]
    lp, sp = phase_rows("long"), dict((n, (r, h)) for n, r, h in phase_rows("short"))
    print(f"memory after each phase (MiB; hwm: the peak so far):")
    print(f"  {'phase':<28}{long_s + ' s rss':>12}{'hwm':>8}{short_s + ' s rss':>12}{'hwm':>8}")
    for n, r, h in lp:
        sr, sh = sp.get(n, (0, 0))
        print(f"  {n:<28}{r:>12}{h:>8}{sr:>12}{sh:>8}")
verdict = lambda ok: "PASS" if ok else "FAIL"
print(f"{verdict(rr <= rss_ratio)}  peak RSS {L['rss']:.0f} MiB at {long_s} s is {rr:.2f}x that at {short_s} s "
      f"(target ≤ {rss_ratio}x)")
print(f"{verdict(L['rss'] <= target)}  peak RSS {L['rss']:.0f} MiB at {long_s} s (target ≤ {target:.0f} MiB)")
print(f"{verdict(tr <= time_ratio)}  analysis time {L['secs']:.1f} s at {long_s} s is {tr:.2f}x that at {short_s} s "
      f"(target ≤ {time_ratio}x)")
PY
