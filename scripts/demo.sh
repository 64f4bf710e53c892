#!/usr/bin/env bash
# The bundled default: installs what is needed, builds in release, records a short
# experiment on this machine and describes the trace. Run as root on a fresh Debian machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

cargo build --release --locked --workspace --bins
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"
mkdir -p results
trace=results/demo.pws

echo "== recording 3 s of this machine into $trace"
"$bin/pws-record" -o "$trace" --metadata run=demo --metadata workload=busy-loop --quiet \
    -- sh -c 'end=$(($(date +%s)+3)); while [ "$(date +%s)" -lt "$end" ]; do :; done'
echo
echo "== pws-analyze info $trace"
"$bin/pws-analyze" info "$trace"
cat <<'NOTE'

pws-record recorded every CPU's perf ring (samples at each context switch), cgroup
lifecycles and energy: simulated where the host has no energy counter, and labelled so.
Coming next, in order: OpenWhisk activations and the local function platform this demo will
then run; the analyzer's power models and Parquet tables; notebooks.
NOTE
