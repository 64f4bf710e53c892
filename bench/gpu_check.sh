#!/usr/bin/env bash
# GPU check (issue 18), for a machine with an NVIDIA GPU: two cgroups load GPU 0 at the same
# time, A at duty cycle 0.8 and B at 0.4 (bench/gpu-load: short launches of a busy kernel), while
# pws-record records with --energy auto (the CPU source and nvml); pws-analyze then splits the
# GPU's energy, and the sm-share model must give A and B dynamic energy in the ratio of the SM
# time they used: 2 when each got its duty. Prints that, PASS/FAIL, the GPU counter's measured
# update period (quality table) and the CPU the recorder's NVML thread used.
#
#   bench/gpu_check.sh                       # ~2 minutes once built (60 s of load)
#   bench/gpu_check.sh --seconds 30 --keep   # shorter; keep the trace and tables
#
# Needs root (system-wide perf events, cgroup creation), an NVIDIA GPU and driver (nvidia-smi,
# libcuda.so, libnvidia-ml.so.1), cargo (the builds: pws-record, pws-analyze, bench/gpu-load;
# a cold build of pws-analyze takes minutes of its own), and python3 with duckdb or pyarrow to
# read the tables (.venv-notebooks from scripts/python-env.sh is used where it exists).
# Exits 0 on PASS, 1 on FAIL or when the check itself cannot run.
#
# Two processes time-share one GPU (kernels of different processes do not run at once without
# MPS), and 0.8 + 0.4 asks for more than the GPU has: each load waits for the other and gets
# less than its duty. Each load reports the SM time it did use (launches × the kernel's length
# alone, calibrated once on the idle GPU), and the check compares the analyzer's split with the
# ratio of those; it also says how far that is from the nominal 0.8/0.4.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"

usage() {
    cat <<'EOF'
Usage: bench/gpu_check.sh [--seconds S] [--out DIR] [--keep]

  --seconds S   how long the two loads run [60]
  --out DIR     where the trace, tables and logs go (default: /tmp/pws-gpu-check-<date>-<pid>)
  --keep        keep the trace and tables (removed after a PASS by default)

Environment: PWS_BIN (directory holding pws-record and pws-analyze; built when unset),
DUTY_A [0.8], DUTY_B [0.4], TOLERANCE [0.10] (relative), PYTHON (an interpreter with duckdb or
pyarrow).
EOF
}

SECONDS_LOAD=60 OUT="" KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) SECONDS_LOAD="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        --keep) KEEP=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
: "${DUTY_A:=0.8}" "${DUTY_B:=0.4}" "${TOLERANCE:=0.10}"

say() { printf '\n== %s\n' "$*"; }
ran() { printf '   $ %s\n' "$*"; }
die() { echo "gpu_check.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: system-wide perf events and cgroup creation need it"
command -v nvidia-smi >/dev/null || die "no nvidia-smi: this check needs an NVIDIA GPU and its driver"
nvidia-smi -L >/dev/null 2>&1 || die "nvidia-smi -L failed: no GPU or no driver ($(nvidia-smi -L 2>&1 | head -1))"

say "Setup"
nvidia-smi -L | sed 's/^/   /'
# CUDA's device 0 is then NVML's index 0: both in PCI bus order.
export CUDA_DEVICE_ORDER=PCI_BUS_ID

OUT="${OUT:-/tmp/pws-gpu-check-$(date +%Y%m%d-%H%M%S)-$$}"
mkdir -p "$OUT"
echo "   output: $OUT"

command -v cargo >/dev/null || { [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"; }
command -v cargo >/dev/null || die "no cargo (scripts/install.sh installs Rust)"
tdir="$(cd "$REPO" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
if [ -z "${PWS_BIN:-}" ]; then
    PWS_BIN="$tdir/release"
    ran "cargo build --release -p pws-recorder -p pws-analyzer"
    (cd "$REPO" && cargo build --release -p pws-recorder -p pws-analyzer)
fi
for b in pws-record pws-analyze; do [ -x "$PWS_BIN/$b" ] || die "no $b in PWS_BIN=$PWS_BIN"; done
ran "cargo build --release --manifest-path bench/gpu-load/Cargo.toml --target-dir $tdir/gpu-load"
cargo build --release --manifest-path "$HERE/gpu-load/Cargo.toml" --target-dir "$tdir/gpu-load"
LOAD="$tdir/gpu-load/release/gpu-load"
echo "   pws-record: $("$PWS_BIN/pws-record" --version), gpu-load: $LOAD"

# An interpreter that reads Parquet: $PYTHON, the notebooks' venv, python3, or a new venv.
has_reader() { "$1" -c 'import importlib.util as u, sys; sys.exit(not (u.find_spec("duckdb") or u.find_spec("pyarrow")))' 2>/dev/null; }
PY=""
for p in "${PYTHON:-}" "${PWS_PYTHON_ENV:-$REPO/.venv-notebooks}/bin/python" python3; do
    if [ -n "$p" ] && has_reader "$p"; then PY="$p"; break; fi
done
if [ -z "$PY" ]; then
    ran "scripts/python-env.sh"
    "$REPO/scripts/python-env.sh" >&2 || die "no Python with duckdb or pyarrow, and scripts/python-env.sh failed"
    PY="${PWS_PYTHON_ENV:-$REPO/.venv-notebooks}/bin/python"
fi
echo "   python: $PY"

CG_MOUNT=/sys/fs/cgroup/unified
[ -d "$CG_MOUNT" ] && [ "$(stat -fc %T "$CG_MOUNT")" = cgroup2fs ] || CG_MOUNT=/sys/fs/cgroup
[ "$(stat -fc %T "$CG_MOUNT")" = cgroup2fs ] || die "no cgroup v2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified"

# ------------------------------------------------------------------ cleanup, whatever happens
CG_BASE="$CG_MOUNT/pws-gpu-check-$$"
REC_PID="" LOAD_PIDS=()
cleanup() {
    local rc=$? d
    trap - EXIT INT TERM
    if [ ${#LOAD_PIDS[@]} -gt 0 ]; then
        kill -KILL "${LOAD_PIDS[@]}" 2>/dev/null || true
        wait "${LOAD_PIDS[@]}" 2>/dev/null || true
    fi
    for d in "$CG_BASE/a" "$CG_BASE/b"; do
        if [ -e "$d/cgroup.kill" ]; then echo 1 >"$d/cgroup.kill" 2>/dev/null || true; fi
    done
    if [ -n "$REC_PID" ] && kill -0 "$REC_PID" 2>/dev/null; then
        kill -INT "$REC_PID" 2>/dev/null || true
        wait "$REC_PID" 2>/dev/null || true
    fi
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        for d in "$CG_BASE/a" "$CG_BASE/b" "$CG_BASE"; do
            if [ -d "$d" ]; then rmdir "$d" 2>/dev/null || true; fi
        done
        [ -d "$CG_BASE" ] || break
        sleep 0.5
    done
    if [ -d "$CG_BASE" ]; then echo "gpu_check.sh: could not remove $CG_BASE" >&2; fi
    # Kept after a failure, to look into.
    if [ "$KEEP" = 0 ] && [ "$rc" = 0 ]; then rm -rf "$OUT/trace.pws" "$OUT/tables"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "gpu_check.sh: interrupted, cleaning up" >&2; exit 130' INT TERM

# CPU time (ns) of the recorder's NVML thread, pws-gpu (schedstat: time on CPU).
gpu_thread_ns() {
    local t
    for t in /proc/"$REC_PID"/task/*; do
        if [ "$(cat "$t/comm" 2>/dev/null)" = pws-gpu ]; then cut -d' ' -f1 "$t/schedstat"; return 0; fi
    done
    echo ""
}

# ------------------------------------------------------------------ calibrate, record, load
say "Calibrate: one launch of the busy kernel on the idle GPU"
ran "$LOAD --calibrate"
"$LOAD" --calibrate >"$OUT/calibrate.json" || die "gpu-load --calibrate failed"
read -r ITERS KMS < <(python3 -c "import json; c=json.load(open('$OUT/calibrate.json')); print(c['iters'], c['kernel_ms'])")
echo "   $ITERS rounds per thread: $KMS ms a launch on $(python3 -c "import json; print(json.load(open('$OUT/calibrate.json'))['device'])")"

say "Record: pws-record --energy auto, A (duty $DUTY_A) and B (duty $DUTY_B) for ${SECONDS_LOAD}s"
mkdir -p "$CG_BASE/a" "$CG_BASE/b"
TRACE="$OUT/trace.pws"
REC=("$PWS_BIN/pws-record" -q -o "$TRACE" --energy auto --summary-json "$OUT/record.json" --metadata run=gpu-check)
ran "${REC[*]}"
"${REC[@]}" 2>"$OUT/record.log" &
REC_PID=$!
# The trace exists once every source is open (NVML included).
for _ in $(seq 1 120); do
    [ -s "$TRACE" ] && break
    kill -0 "$REC_PID" 2>/dev/null || { wait "$REC_PID" || true; REC_PID=""; cat "$OUT/record.log" >&2; die "pws-record exited at start"; }
    sleep 0.5
done
[ -s "$TRACE" ] || die "pws-record wrote no trace within 60 s"
sleep 1
[ -n "$(gpu_thread_ns)" ] || echo "   warning: pws-record has no pws-gpu thread: nvml is not used (see the sources below)"
cpu0=$(gpu_thread_ns) t0=$(date +%s.%N)
for x in a b; do
    if [ "$x" = a ]; then duty=$DUTY_A; else duty=$DUTY_B; fi
    # The process joins its cgroup before it touches the GPU: every sample of it is the cgroup's.
    sh -c 'echo $$ >"$1/cgroup.procs" && exec "$2" --duty "$3" --seconds "$4" --iters "$5" --kernel-ms "$6"' \
        _ "$CG_BASE/$x" "$LOAD" "$duty" "$SECONDS_LOAD" "$ITERS" "$KMS" >"$OUT/$x.json" 2>"$OUT/$x.log" &
    LOAD_PIDS+=($!)
done
ran "gpu-load --duty $DUTY_A in $CG_BASE/a, gpu-load --duty $DUTY_B in $CG_BASE/b"
failed=0
for p in "${LOAD_PIDS[@]}"; do wait "$p" || failed=1; done
LOAD_PIDS=()
[ "$failed" = 0 ] || { cat "$OUT/a.log" "$OUT/b.log" >&2; die "a gpu-load failed"; }
sleep 1 # NVML's last utilisation samples (one per ~1/6 s) reach the recorder
cpu1=$(gpu_thread_ns) t1=$(date +%s.%N)
kill -INT "$REC_PID"
wait "$REC_PID" || { cat "$OUT/record.log" >&2; die "pws-record failed"; }
REC_PID=""
python3 - "$OUT/a.json" "$OUT/b.json" <<'PY'
import json, sys
for name, path in zip("AB", sys.argv[1:]):
    r = json.load(open(path))
    print(f"   {name}: pid {r['pid']}, duty {r['duty']}: {r['launches']} launches of {r['kernel_ms']:.2f} ms = "
          f"{r['busy_s']:.2f} s of SM time in {r['wall_s']:.1f} s (achieved duty {r['achieved_duty']:.3f})")
PY
if [ -n "$cpu0" ] && [ -n "$cpu1" ]; then
    python3 -c "print(f'   nvml source: pws-record\'s pws-gpu thread used {($cpu1 - $cpu0) / 1e6 / ($t1 - $t0):.1f} ms of CPU per second of recording')"
fi

say "What the trace holds"
"$PWS_BIN/pws-analyze" info "$TRACE" | grep -E '^(energy|gpu|errors) ' | sed 's/^/   /' || true
python3 - "$OUT/record.json" <<'PY'
import json, sys
for s in json.load(open(sys.argv[1]))["sources"]:
    if s["kind"] == "energy" and s["status"] != "disabled":
        print(f"   source {s['name']}: {s['status']}: {s['detail']}")
PY

say "Analyse"
ran "pws-analyze $TRACE -o $OUT/tables"
"$PWS_BIN/pws-analyze" "$TRACE" -o "$OUT/tables" >"$OUT/analyze.log" 2>&1 || { cat "$OUT/analyze.log" >&2; die "pws-analyze failed"; }

say "Check: GPU dynamic energy of A and B (domain gpu, model sm-share, idle policy unassigned)"
"$PY" - "$OUT/tables" "$CG_BASE" "$CG_MOUNT" "$OUT/a.json" "$OUT/b.json" "$DUTY_A" "$DUTY_B" "$TOLERANCE" <<'PY'
import json, os, sys

tables, cg_base, cg_mount, a_json, b_json = sys.argv[1:6]
duty_a, duty_b, tol = (float(x) for x in sys.argv[6:9])


def read(table, columns):
    """The table's rows as dicts of the columns asked for, with DuckDB or else pyarrow."""
    path = os.path.join(tables, table)
    if not os.path.isdir(path):
        sys.exit(f"FAIL: no {table} table in {tables}")
    try:
        import duckdb
        glob = f"{path}/**/*.parquet".replace("'", "''")
        cur = duckdb.connect().execute(
            f"SELECT {', '.join(columns)} FROM read_parquet('{glob}', hive_partitioning = true)")
        return [dict(zip(columns, r)) for r in cur.fetchall()]
    except ImportError:
        import pyarrow.dataset as ds
        return ds.dataset(path, format="parquet", partitioning="hive").to_table(columns=columns).to_pylist()


rows = read("attribution", ["domain", "model", "idle_policy", "cgroup", "dynamic_j", "energy_j"])
gpu = [r for r in rows if r["domain"] == "gpu"]
if not gpu:
    sys.exit("FAIL: no attribution rows of domain gpu: was nvml used? (see the sources above)")
sel = [r for r in gpu if r["model"] == "sm-share" and r["idle_policy"] == "unassigned"]
if not sel:
    models = sorted({(r["model"], r["idle_policy"]) for r in gpu})
    sys.exit(f"FAIL: no gpu rows of model sm-share, idle policy unassigned; there are {models}")
by_cg = {}
for r in sel:
    by_cg[r["cgroup"]] = by_cg.get(r["cgroup"], 0.0) + (r["dynamic_j"] or 0.0)
total = sum(by_cg.values())
print(f"   gpu dynamic energy, sm-share: {total:.1f} J in all; the largest cgroups:")
for cg, j in sorted(by_cg.items(), key=lambda kv: -kv[1])[:6]:
    print(f"     {j:10.2f} J  {cg}")
rel = "/" + os.path.relpath(cg_base, cg_mount)


def of(x):
    want = f"{rel}/{x}"
    return sum(j for cg, j in by_cg.items() if cg == want or cg.endswith(want))


ea, eb = of("a"), of("b")
work = [json.load(open(p)) for p in (a_json, b_json)]
truth = work[0]["busy_s"] / work[1]["busy_s"]
nominal = duty_a / duty_b
print(f"   A ({rel}/a): {ea:.2f} J   B ({rel}/b): {eb:.2f} J")
if eb <= 0:
    sys.exit("FAIL: B got no GPU dynamic energy")
ratio = ea / eb
ok = abs(ratio / truth - 1) <= tol
print(f"   A/B = {ratio:.3f}; the SM time they used (launches × kernel) gives {truth:.3f}: "
      f"off by {100 * (ratio / truth - 1):+.1f} % (tolerance ±{100 * tol:.0f} %)")
near = abs(ratio / nominal - 1) <= tol
print(f"   against the nominal {duty_a}/{duty_b} = {nominal:.2f}: off by {100 * (ratio / nominal - 1):+.1f} %"
      f" ({'within' if near else 'outside'} ±{100 * tol:.0f} %; the loads got duties "
      f"{work[0]['achieved_duty']:.3f} and {work[1]['achieved_duty']:.3f})")

q = read("quality", ["scope", "subject", "metric", "value", "text"])
counters = {}
for r in q:
    if r["scope"] == "counter":
        counters.setdefault(r["subject"], {})[r["metric"]] = r
gpus = {s: m for s, m in counters.items()
        if (m.get("domain") or {}).get("text") == "gpu" or s.startswith("nvml:")}
if not gpus:
    print("   quality: no GPU counter rows")
for s, m in sorted(gpus.items()):
    v = lambda k: (m.get(k) or {}).get("value")
    fmt = lambda x: "?" if x is None else f"{x:.2f}"
    print(f"   GPU counter {s!r}: update period {fmt(v('update_period_ms'))} ms (p99 {fmt(v('update_period_p99_ms'))} ms), "
          f"read every {fmt(v('read_period_ms'))} ms, {fmt(v('readings'))} readings")
print("PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
