#!/usr/bin/env bash
# Recorder overhead: pws-record against `perf record` (same workload, equivalent events and
# frequency) and against per-cgroup counting as PowerAPI's hwpc-sensor does it
# (`perf stat -a` with one counter per cgroup). See bench/README.md.
#
#   bench/recorder_overhead.sh            # full run: 6-7 minutes on a 2-core VM
#   bench/recorder_overhead.sh --quick    # smoke check: about 70 seconds
#
# Needs root (system-wide perf events, cgroup creation). Installs perf and python3 with
# apt-get when missing. Prints PASS/FAIL per target; exits non-zero only if the benchmark
# itself breaks.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
HELPER="$HERE/summarize.py"

usage() {
    cat <<'EOF'
Usage: bench/recorder_overhead.sh [--quick] [--out DIR] [--keep] [--skip-part N]...

  --quick        1 repetition of 3 s, 5 s loss check, 3 s cgroup windows (< 2 min)
  --out DIR      where results go (default: /tmp/pws-bench-<date>-<pid>)
  --keep         keep the traces (perf.data, .pws) next to the results
  --skip-part N  skip part 1 (vs perf record), 2 (10 kHz loss check), 3 (cgroups) or
                 4 (steady state: two recording lengths)

Environment (defaults in brackets; --quick changes the marked ones):
  PWS_BIN        directory holding pws-record [$(cargo metadata)/release, built if missing]
  PERF           perf binary [found on PATH or /usr/bin/perf_*, installed if missing]
  REPS           repetitions of each run in part 1 [5; quick 1]
  WORK_SECONDS   bare duration of the workload in part 1 [10; quick 3]
  FREQ           sampling frequency in part 1, Hz per CPU [1000]
  PROCS          workload processes [number of online CPUs]
  LOSS_FREQ      frequency of the loss check [10000]
  LOSS_SECONDS   duration of the loss check [30; quick 5]
  CG_COUNTS      cgroup counts in part 3 [10,100,1000]
  CG_WINDOW      seconds each tool runs in part 3 [10; quick 3]
  CG_WAKEUPS     wakeups per second shared by all cgroups' processes in part 3 [200]
  STEADY_SHORT   shorter recording of part 4, seconds [10; quick 5]
  STEADY_LONG    longer recording of part 4, seconds [40; quick 15; 600 checks RSS over 10 min]
  STEADY_REPS    repetitions of each part-4 recording [2; quick 1]
  STEADY_MODES   part-4 modes, comma-separated [perf,perf-z,pws,pws-noenergy,pws-thread;
                 pws-thread is pws-record --energy-clock thread, the energy read by a waking
                 thread instead of the kernel; perf-z-group (not by default) is perf record -z
                 with pws-record's counter group read in every timer sample as well; where a GPU is found (nvidia-smi -L), pws-nvml
                 (--energy nvml) is added: the nvml source's own cost is pws-nvml minus
                 pws-noenergy]
  PWS_ARGS       extra arguments for every pws-record run [none]
EOF
}

QUICK=0 KEEP=0 OUT="" SKIP=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --keep) KEEP=1 ;;
        --out) OUT="$2"; shift ;;
        --skip-part) SKIP="$SKIP $2"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "recorder_overhead.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
skipped() { [[ " $SKIP " == *" $1 "* ]]; }

if [ "$QUICK" = 1 ]; then
    : "${REPS:=1}" "${WORK_SECONDS:=3}" "${LOSS_SECONDS:=5}" "${CG_WINDOW:=3}"
    : "${STEADY_SHORT:=5}" "${STEADY_LONG:=15}" "${STEADY_REPS:=1}"
fi
: "${STEADY_SHORT:=10}" "${STEADY_LONG:=40}" "${STEADY_REPS:=2}" "${STEADY_MODES:=perf,perf-z,pws,pws-noenergy,pws-thread}"
: "${REPS:=5}" "${WORK_SECONDS:=10}" "${FREQ:=1000}" "${LOSS_FREQ:=10000}" "${LOSS_SECONDS:=30}"
: "${CG_COUNTS:=10,100,1000}" "${CG_WINDOW:=10}" "${CG_WAKEUPS:=200}" "${PWS_ARGS:=}"
PROCS="${PROCS:-$(nproc)}"
SETTLE=1 # seconds a recorder runs before the workload starts (same for every tool)
CG_MOUNT=/sys/fs/cgroup/unified
[ -d "$CG_MOUNT" ] && [ "$(stat -fc %T "$CG_MOUNT")" = cgroup2fs ] || CG_MOUNT=/sys/fs/cgroup

say() { printf '\n== %s\n' "$*"; }
ran() { printf '   $ %s\n' "$*"; } # what we run, as we run it
die() { echo "recorder_overhead.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: system-wide perf events and cgroup creation need it"

# ------------------------------------------------------------------ what it needs
say "Setup"
apt_install() {
    command -v apt-get >/dev/null || die "please install: $* (no apt-get here)"
    ran "apt-get update -qq && apt-get install -y -qq $*"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
command -v python3 >/dev/null || apt_install python3
find_perf() {
    local p
    local cands=("${PERF:-}" "$(command -v perf 2>/dev/null || true)")
    mapfile -t -O 2 cands < <(find /usr/bin -maxdepth 1 -name 'perf_*' 2>/dev/null | sort -V -r)
    for p in "${cands[@]}"; do
        # Debian's /usr/bin/perf may be a wrapper that refuses a kernel it has no perf for.
        [ -n "$p" ] && [ -x "$p" ] && "$p" --version >/dev/null 2>&1 && { echo "$p"; return 0; }
    done
    return 1
}
PERF="$(find_perf)" || { apt_install linux-perf; PERF="$(find_perf)" || die "no working perf after installing linux-perf"; }
echo "   perf: $PERF ($("$PERF" --version))"

if [ -z "${PWS_BIN:-}" ]; then
    command -v cargo >/dev/null || { [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"; }
    if ! command -v cargo >/dev/null; then
        ran "$REPO/scripts/install.sh"
        "$REPO/scripts/install.sh"
        . "$HOME/.cargo/env" 2>/dev/null || true
    fi
    tdir="$(cd "$REPO" && cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
    PWS_BIN="$tdir/release"
    if [ ! -x "$PWS_BIN/pws-record" ]; then
        ran "cd $REPO && cargo build --release -p pws-recorder -p pws-analyzer"
        (cd "$REPO" && cargo build --release -p pws-recorder -p pws-analyzer)
    fi
fi
PWS="$PWS_BIN/pws-record"
[ -x "$PWS" ] || die "no pws-record in PWS_BIN=$PWS_BIN"
echo "   pws-record: $PWS ($("$PWS" --version))"

# A GPU? Then part 4 also measures the nvml source's own cost (--energy nvml against --energy
# none), and the default pws-record (--energy auto) reads the GPUs too.
GPU=0
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    GPU=1
    echo "   GPUs: $(nvidia-smi -L | wc -l) ($(nvidia-smi -L | head -1)); pws-record's default --energy auto reads them through NVML too"
fi

# perf opens one event per CPU and per cgroup (part 3), pws-record several per CPU.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

OUT="${OUT:-/tmp/pws-bench-$(date +%Y%m%d-%H%M%S)-$$}"
mkdir -p "$OUT"
echo "   results: $OUT"

# ------------------------------------------------------------------ cleanup, whatever happens
CG_BASE="$CG_MOUNT/pws-bench-$$"
CG_PIDS=()
CG_DIRS=()
TOOL_PID=""
FIFO="$OUT/idle.fifo"
cleanup_cgroups() {
    local d i
    if [ ${#CG_PIDS[@]} -gt 0 ]; then kill -KILL "${CG_PIDS[@]}" 2>/dev/null || true; fi
    for d in "${CG_DIRS[@]}"; do
        if [ -e "$d/cgroup.kill" ]; then echo 1 >"$d/cgroup.kill" 2>/dev/null || true; fi
    done
    if [ ${#CG_PIDS[@]} -gt 0 ]; then wait "${CG_PIDS[@]}" 2>/dev/null || true; fi
    # Deepest first: the per-process cgroups, then the bench's own directory.
    for i in 1 2 3 4 5 6 7 8 9 10; do
        for d in "${CG_DIRS[@]}"; do if [ -d "$d" ]; then rmdir "$d" 2>/dev/null || true; fi; done
        if [ "${1:-}" = all ]; then
            if [ -d "$CG_BASE" ]; then rmdir "$CG_BASE" 2>/dev/null || true; fi
            [ -d "$CG_BASE" ] || break
        else
            [ "$(find "$CG_BASE" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | head -1)" = "" ] && break
        fi
        sleep 0.5
    done
    if [ -d "$CG_BASE" ] && [ "${1:-}" = all ]; then
        echo "recorder_overhead.sh: could not remove $CG_BASE" >&2
    fi
    CG_PIDS=()
    CG_DIRS=()
}
BUSY=()
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$TOOL_PID" ] && kill -0 "$TOOL_PID" 2>/dev/null; then
        kill -TERM "$TOOL_PID" 2>/dev/null || true # the helper passes it on as SIGINT
        wait "$TOOL_PID" 2>/dev/null || true
    fi
    if [ "${#BUSY[@]}" -gt 0 ]; then
        kill "${BUSY[@]}" 2>/dev/null || true
        wait "${BUSY[@]}" 2>/dev/null || true
    fi
    cleanup_cgroups all
    rm -f "$FIFO"
    if [ "$KEEP" = 0 ]; then
        find "$OUT" \( -name '*.pws' -o -name 'perf.data*' \) -delete 2>/dev/null || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "recorder_overhead.sh: interrupted, cleaning up" >&2; exit 130' INT TERM

# ------------------------------------------------------------------ commands compared
# The same events for both recorders, as far as perf can express them:
#  - cpu-clock sampled at FREQ Hz per CPU (pws-record's leader on a host without a PMU);
#  - a sample at every context switch (pws-record's switch sampler, period 1);
#  - switch side-band records (pws-record sets context_switch on its leader);
#  - the cgroup id in every sample and cgroup records (--all-cgroups);
#  - the ten cgroup:* tracepoints pws-record samples.
# perf rejects -F with -c on one command line, so the two periods are per-event terms.
CG_TPS=(cgroup_mkdir cgroup_rmdir cgroup_release cgroup_rename cgroup_freeze cgroup_unfreeze
    cgroup_notify_frozen cgroup_notify_populated cgroup_attach_task cgroup_transfer_tasks)
# These set CMD to the command line.
perf_record_cmd() { # FREQ OUTFILE
    local t
    CMD=("$PERF" record -a -o "$2" -e "cpu-clock/freq=$1/" -e "context-switches/period=1/")
    for t in "${CG_TPS[@]}"; do CMD+=(-e "cgroup:$t"); done
    CMD+=(--switch-events --all-cgroups)
}
# perf record -z with pws-record's counter group read in every timer sample (leader sampling,
# `:S`), beside the same switch samples and tracepoints: closer to the bytes pws-record keeps a
# sample (info; perf cannot have a sampling member read the group, as pws-record's switch
# sampler does). Hardware counters where the host has them, as pws-record's --events.
perf_group_cmd() { # FREQ OUTFILE
    local group t
    if "$PERF" stat -x, -e cycles -- true 2>&1 | grep -q '^[0-9]'; then
        group="{cycles/freq=$1/,instructions,ref-cycles,LLC-load-misses,context-switches}:S"
    else
        group="{cpu-clock/freq=$1/,task-clock,context-switches}:S"
    fi
    CMD=("$PERF" record -a -z -o "$2" -e "$group" -e "context-switches/period=1/")
    for t in "${CG_TPS[@]}"; do CMD+=(-e "cgroup:$t"); done
    CMD+=(--switch-events --all-cgroups)
}
pws_record_cmd() { # FREQ OUTFILE SUMMARY [extra...]
    local f=$1 o=$2 s=$3 more
    shift 3
    read -r -a more <<<"$PWS_ARGS"
    CMD=("$PWS" -q -o "$o" --freq "$f" --summary-json "$s" "${more[@]}" "$@")
}

# CMD for one recorder mode of parts 1 and 4, writing into RUNDIR.
mode_cmd() { # MODE RUNDIR
    case "$1" in
        perf) perf_record_cmd "$FREQ" "$2/perf.data" ;;
        perf-z) perf_record_cmd "$FREQ" "$2/perf.data" && CMD+=(-z) ;;
        perf-z-group) perf_group_cmd "$FREQ" "$2/perf.data" ;;
        pws) pws_record_cmd "$FREQ" "$2/trace.pws" "$2/summary.json" ;;
        pws-noenergy) pws_record_cmd "$FREQ" "$2/trace.pws" "$2/summary.json" --energy none ;;
        pws-thread) pws_record_cmd "$FREQ" "$2/trace.pws" "$2/summary.json" --energy-clock thread ;;
        pws-nvml) pws_record_cmd "$FREQ" "$2/trace.pws" "$2/summary.json" --energy nvml ;;
        *) die "unknown mode $1" ;;
    esac
}

# Starts a recorder in the background under the measuring helper.
start_tool() { # RUNDIR CMD...
    local rd=$1
    shift
    python3 "$HELPER" run --out "$rd/run.json" --log "$rd/tool.log" -- "$@" &
    TOOL_PID=$!
    sleep "$SETTLE"
    kill -0 "$TOOL_PID" 2>/dev/null || { wait "$TOOL_PID" || true; TOOL_PID=""; cat "$rd/tool.log" >&2; die "the recorder exited at start: $*"; }
}
stop_tool() {
    kill -INT "$TOOL_PID"
    wait "$TOOL_PID" || echo "   warning: recorder exit status $? (see its tool.log)"
    TOOL_PID=""
}

cat >"$OUT/params.json" <<EOF
{"quick": $QUICK, "reps": $REPS, "work_seconds": $WORK_SECONDS, "freq": $FREQ, "procs": $PROCS,
 "loss_freq": $LOSS_FREQ, "loss_seconds": $LOSS_SECONDS, "cg_counts": "$CG_COUNTS",
 "cg_window": $CG_WINDOW, "cg_wakeups": $CG_WAKEUPS, "settle_s": $SETTLE,
 "steady_short_s": $STEADY_SHORT, "steady_long_s": $STEADY_LONG, "steady_reps": $STEADY_REPS,
 "perf": "$PERF", "perf_version": "$("$PERF" --version)", "pws_record": "$PWS",
 "pws_args": "$PWS_ARGS", "kernel": "$(uname -r)", "cpus": $(nproc),
 "perf_event_max_sample_rate": $(cat /proc/sys/kernel/perf_event_max_sample_rate),
 "cgroup_mount": "$CG_MOUNT", "gpu": $GPU}
EOF
echo "   kernel $(uname -r), $(nproc) CPUs, kernel.perf_event_max_sample_rate=$(cat /proc/sys/kernel/perf_event_max_sample_rate)"
T_START=$(date +%s)

# ------------------------------------------------------------------ part 1: vs perf record
if ! skipped 1; then
    say "Part 1: workload bare, under perf record, under pws-record ($REPS × ~${WORK_SECONDS}s, $FREQ Hz)"
    mkdir -p "$OUT/p1"
    python3 "$HELPER" work --out "$OUT/calib.json" --procs "$PROCS" --seconds 2 >/dev/null
    ITERS=$(python3 -c "import json; c=json.load(open('$OUT/calib.json')); print(int(c['iters_per_s_per_proc']*$WORK_SECONDS))")
    echo "   workload: $PROCS processes × $ITERS iterations of a Python integer loop"
    perf_record_cmd "$FREQ" RUNDIR/perf.data
    echo "   perf record: ${CMD[*]}"
    pws_record_cmd "$FREQ" RUNDIR/trace.pws RUNDIR/summary.json
    echo "   pws-record:  ${CMD[*]}"
    echo "   (each recorder runs ${SETTLE}s alone, then during the workload, then gets SIGINT)"
    # Do both recorders really record the same streams? A short run of each under a load
    # with context switches (a pipe ping-pong) and cgroup events (a short-lived cgroup with a
    # process moved into it), pws-record uncompressed so the repository's Python reader can
    # count its samples per event with the standard library alone.
    rd="$OUT/streams"
    mkdir -p "$rd" "$CG_BASE"
    CG_DIRS+=("$CG_BASE/eq")
    for tool in perf pws; do
        if [ "$tool" = perf ]; then perf_record_cmd "$FREQ" "$rd/perf.data"
        else pws_record_cmd "$FREQ" "$rd/trace.pws" "$rd/summary.json" --compression-level 0; fi
        mkdir -p "$rd/$tool"
        start_tool "$rd/$tool" "${CMD[@]}"
        python3 "$HELPER" switchload --seconds 2 >/dev/null &
        load=$!
        for i in 1 2 3; do
            mkdir "$CG_BASE/eq"
            sleep 0.2 &
            echo $! >"$CG_BASE/eq/cgroup.procs"
            wait $!
            rmdir "$CG_BASE/eq"
        done
        wait "$load"
        stop_tool
    done
    python3 "$HELPER" streams --perf-data "$rd/perf.data" --pws-trace "$rd/trace.pws" --repo "$REPO" --out "$rd/streams.json"
    python3 - "$rd/streams.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for tool in ("perf", "pws"):
    x = r[tool]
    print(f"   samples per stream, {tool:4s}: " + (x.get("error") or ", ".join(f"{k} {v}" for k, v in sorted(x["streams"].items()))))
PY
    [ "$KEEP" = 1 ] || rm -f "$rd/perf.data" "$rd/trace.pws"

    MODES=(bare perf perf-z pws pws-noenergy)
    for rep in $(seq 1 "$REPS"); do
        # Rotate the order each repetition so slow drifts of the VM hit every mode.
        n=${#MODES[@]}
        for k in $(seq 0 $((n - 1))); do
            mode=${MODES[$(((k + rep - 1) % n))]}
            rd="$OUT/p1/$mode-$rep"
            mkdir -p "$rd"
            [ "$mode" = bare ] || { mode_cmd "$mode" "$rd" && start_tool "$rd" "${CMD[@]}"; }
            wall=$(python3 "$HELPER" work --out "$rd/work.json" --procs "$PROCS" --iters "$ITERS")
            [ "$mode" = bare ] || stop_tool
            extra=""
            if [ "$mode" = perf ]; then
                stat -c '%s' "$rd/perf.data" >"$rd/size.json"
                python3 "$HELPER" perfstats --perf "$PERF" --data "$rd/perf.data" >"$rd/perfstats.json"
                extra="$(python3 -c "import json; s=json.load(open('$rd/perfstats.json')); r=json.load(open('$rd/run.json')); print(f\"recorder cpu {r['cpu_s']:.3f}s, {s['samples']} samples, {int(open('$rd/size.json').read())} bytes\")")"
            elif [ "$mode" = perf-z ]; then
                stat -c '%s' "$rd/perf.data" >"$rd/size.json"
                extra="$(python3 -c "import json; r=json.load(open('$rd/run.json')); print(f\"recorder cpu {r['cpu_s']:.3f}s, {int(open('$rd/size.json').read())} bytes\")")"
            elif [ "$mode" != bare ]; then
                extra="$(python3 -c "import json; s=json.load(open('$rd/summary.json')); r=json.load(open('$rd/run.json')); print(f\"recorder cpu {r['cpu_s']:.3f}s, {s['samples']} samples, {s['bytes']} bytes, {s['lost_records']} lost\")")"
            fi
            printf '   rep %d %-13s workload %6.2fs  %s\n' "$rep" "$mode" "$wall" "$extra"
            [ "$KEEP" = 1 ] || rm -f "$rd/perf.data" "$rd/trace.pws"
        done
    done
fi

# ------------------------------------------------------------------ part 2: loss at 10 kHz
if ! skipped 2; then
    say "Part 2: pws-record at $LOSS_FREQ Hz for ${LOSS_SECONDS}s with the workload on every CPU"
    rd="$OUT/p2"
    mkdir -p "$rd"
    pws_record_cmd "$LOSS_FREQ" "$rd/trace.pws" "$rd/summary.json"
    echo "   ${CMD[*]}"
    if [ "$LOSS_FREQ" -gt "$(cat /proc/sys/kernel/perf_event_max_sample_rate)" ]; then
        echo "   note: kernel.perf_event_max_sample_rate is below $LOSS_FREQ: the kernel will refuse or throttle"
    fi
    python3 "$HELPER" run --out "$rd/run.json" --log "$rd/tool.log" -- "${CMD[@]}" &
    TOOL_PID=$!
    sleep "$SETTLE"
    if kill -0 "$TOOL_PID" 2>/dev/null; then
        python3 "$HELPER" work --out "$rd/work.json" --procs "$PROCS" --seconds "$LOSS_SECONDS" >/dev/null
        stop_tool
        python3 -c "import json; s=json.load(open('$rd/summary.json')); print('   ', s['samples'], 'samples,', s['lost_records'], 'lost,', s['throttled'], 'throttled,', s['bytes'], 'bytes')" || true
    else
        wait "$TOOL_PID" || true
        TOOL_PID=""
        echo "   pws-record exited at start:"
        sed 's/^/     /' "$rd/tool.log"
    fi
    [ "$KEEP" = 1 ] || rm -f "$rd/trace.pws"
fi

# ------------------------------------------------------------------ part 3: cgroups
if ! skipped 3; then
    say "Part 3: cost against the number of live cgroups ($CG_COUNTS), ${CG_WINDOW}s per tool"
    echo "   cgroups under $CG_BASE, one process each; all of them together wake $CG_WAKEUPS times/s"
    mkfifo "$FIFO"
    rel="${CG_BASE#"$CG_MOUNT"/}" # perf -G names are relative to the perf_event (here: v2) mount
    IFS=, read -r -a counts <<<"$CG_COUNTS"
    for n in "${counts[@]}"; do
        mkdir -p "$CG_BASE"
        period=$(python3 -c "print(f'{$n / $CG_WAKEUPS:.3f}' if $CG_WAKEUPS > 0 else '')")
        t0=$(date +%s.%N)
        for i in $(seq -w 1 "$n"); do
            d="$CG_BASE/cg$i"
            mkdir "$d"
            CG_DIRS+=("$d")
            # A process that moves itself into its cgroup, then wakes every $period s (a bash
            # builtin read timing out on a FIFO nobody writes: no fork per wakeup).
            bash -c 'echo $$ >"$1/cgroup.procs" && exec 3<>"$2" || exit 1
                     while :; do read -r ${3:+-t "$3"} -u 3 _ || :; done' _ "$d" "$FIFO" "$period" &
            CG_PIDS+=($!)
        done
        sleep 1
        populated=$(grep -l '^populated 1' "$CG_BASE"/cg*/cgroup.events | wc -l)
        printf '   %d cgroups created and populated (%d populated) in %.1fs, each process wakes every %ss\n' \
            "$n" "$populated" "$(python3 -c "import time; print(time.time() - $t0)")" "${period:-∞}"
        groups=$(printf "$rel/cg%s," $(seq -w 1 "$n"))
        groups=${groups%,}
        for tool in baseline pws perfstat; do
            rd="$OUT/p3/$n-$tool"
            mkdir -p "$rd"
            case $tool in
                baseline) CMD=(sleep "$CG_WINDOW") ;;
                pws) pws_record_cmd "$FREQ" "$rd/trace.pws" "$rd/summary.json" ;;
                # hwpc-sensor style: one counter per cgroup per CPU, read every second.
                perfstat) CMD=("$PERF" stat -a -e cpu-clock --for-each-cgroup "$groups" -I 1000 -x ',' -o "$rd/stat.csv") ;;
            esac
            if [ "$tool" = perfstat ]; then
                echo "   perf stat: $PERF stat -a -e cpu-clock --for-each-cgroup $rel/cg$(seq -w 1 "$n" | head -1),…,$rel/cg$n -I 1000 -x, -o stat.csv"
            elif [ "$tool" = pws ] && [ "$n" = "${counts[0]}" ]; then
                echo "   pws-record: ${CMD[*]}"
            fi
            python3 "$HELPER" run --out "$rd/run.json" --log "$rd/tool.log" --stop-after "$CG_WINDOW" -- "${CMD[@]}" &
            TOOL_PID=$!
            wait "$TOOL_PID" || echo "   warning: $tool exit status $? (see $rd/tool.log)"
            TOOL_PID=""
            python3 -c "import json; r=json.load(open('$rd/run.json')); print(f\"   {$n:5d} cgroups {'$tool':9s} own cpu {r['cpu_s']:.3f}s, host busy {r['host_busy_s']:.2f}s over {r['wall_s']:.1f}s\")"
            [ "$KEEP" = 1 ] || rm -f "$rd/trace.pws"
        done
        cleanup_cgroups
    done
    cleanup_cgroups all
    rm -f "$FIFO"
fi

# ------------------------------------------------------------------ part 4: steady state
# What a recorder left on for an hour costs is its CPU per second once started: two
# recordings of different lengths under the same busy load, and the difference of their CPU
# divided by the extra seconds, so start-up and stop costs (perf's process synthesis and
# build-id pass, pws-record's snapshot) cancel out instead of being spread over the run.
if ! skipped 4; then
    say "Part 4: steady state, ${STEADY_SHORT}s and ${STEADY_LONG}s recordings × $STEADY_REPS, every CPU busy, $FREQ Hz"
    mkdir -p "$OUT/p4"
    read -r -a MODES4 <<<"${STEADY_MODES//,/ }"
    # The nvml source's own cost: --energy nvml against --energy none, same method.
    if [ "$GPU" = 1 ]; then
        [[ " ${MODES4[*]} " == *" pws-noenergy "* ]] || MODES4+=(pws-noenergy)
        [[ " ${MODES4[*]} " == *" pws-nvml "* ]] || MODES4+=(pws-nvml)
        echo "   GPU found: pws-nvml (--energy nvml) against pws-noenergy (--energy none) gives the nvml source's own cost"
    else
        echo "   nvml source's cost skipped: no GPU found (nvidia-smi -L failed or is not installed)"
    fi
    for rep in $(seq 1 "$STEADY_REPS"); do
        for len in "$STEADY_SHORT" "$STEADY_LONG"; do
            n=${#MODES4[@]}
            for k in $(seq 0 $((n - 1))); do
                mode=${MODES4[$(((k + rep - 1) % n))]}
                rd="$OUT/p4/$mode-$len-$rep"
                mkdir -p "$rd"
                mode_cmd "$mode" "$rd"
                # A shell busy loop per workload process: steady, no start-up of its own.
                BUSY=()
                for _ in $(seq 1 "$PROCS"); do
                    bash -c 'while :; do :; done' &
                    BUSY+=($!)
                done
                python3 "$HELPER" run --out "$rd/run.json" --log "$rd/tool.log" --stop-after "$len" -- "${CMD[@]}" &
                TOOL_PID=$!
                wait "$TOOL_PID" || echo "   warning: $mode exit status $? (see $rd/tool.log)"
                TOOL_PID=""
                kill "${BUSY[@]}" 2>/dev/null || true
                wait "${BUSY[@]}" 2>/dev/null || true
                BUSY=()
                python3 -c "import json; r=json.load(open('$rd/run.json')); print(f\"   rep $rep {'$mode':13s} {$len:4d} s: cpu {r['cpu_s']:.3f} s, peak RSS {r['max_rss_kb']/1024:.1f} MiB\")"
                [ "$KEEP" = 1 ] || rm -f "$rd/perf.data" "$rd/trace.pws"
            done
        done
    done
fi

# ------------------------------------------------------------------ report
say "Results ($(($(date +%s) - T_START)) s; raw data in $OUT)"
python3 "$HELPER" report --dir "$OUT"
