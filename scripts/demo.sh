#!/usr/bin/env bash
# The bundled default: installs what is needed, builds in release, runs a ~30 s experiment on
# the local function platform (pws-load, crates/loader/workloads/default.yaml) recorded by
# pws-record with the best energy source this host has, analyses it with pws-analyze (tables in
# results/demo/, summary printed). Without root, system-wide perf or cgroup v2 it analyses the
# bundled recording datasets/local-default/local-default.pws instead, and says why.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

cargo build --release --locked --workspace --bins
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"
out=results/demo
rm -rf "$out"
mkdir -p "$out"

why=""
if [ "$(id -u)" != 0 ]; then
    why="not root: system-wide perf events and creating cgroups need root"
elif ! grep -q cgroup2 /proc/mounts; then
    why="no cgroup v2 hierarchy mounted: the local platform runs its function instances in cgroup v2"
elif [ ! -e /proc/sys/kernel/perf_event_paranoid ]; then
    why="this kernel has no perf events"
fi

if [ -z "$why" ]; then
    trace="$out/local-default.pws"
    echo "== recording the default workload (30 s, 5 functions) on the local platform into $trace"
    "$bin/pws-record" -o "$trace" --quiet \
        --metadata run=demo --metadata workload=default.yaml \
        --activations "$out/activations.jsonl" --invoker-log "$out/invoker.log" \
        --summary-json "$out/record-summary.json" -- \
        "$bin/pws-load" run crates/loader/workloads/default.yaml \
        --activations-out "$out/activations.jsonl" --invoker-log-out "$out/invoker.log" \
        --summary-json "$out/load-summary.json"
else
    trace=datasets/local-default/local-default.pws
    echo "== cannot record here ($why);"
    echo "   analysing the bundled recording $trace instead (see datasets/local-default/PROVENANCE.md)"
fi
echo
echo "== pws-analyze $trace -o $out/tables"
"$bin/pws-analyze" "$trace" -o "$out/tables"
echo
echo "== the tables (Parquet, hive-partitioned by run and host) are in $out/tables:"
ls "$out/tables"
cat <<NOTE

Query them with DuckDB, pandas or polars (columns: crates/analyzer/TABLES.md), e.g.
  SELECT function, model, idle_policy, energy_mean_j, keep_alive_j
  FROM read_parquet('$out/tables/functions/**/*.parquet', hive_partitioning = true);
Energy marked SIMULATED comes from pws-record's simulated source (a published server's
SPECpower curve applied to this host's CPU busy time): it is not a measurement.
NOTE
