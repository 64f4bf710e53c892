#!/usr/bin/env bash
# Runs every notebook under notebooks/ headless, as CI does: makes sure the pinned Python
# environment exists (scripts/python-env.sh), builds pws-analyze (release), analyses the bundled
# recording datasets/local-default/local-default.pws and the bundled sweep
# datasets/sweep-keep-alive into a temporary directory, then executes
# each notebook top to bottom with nbclient (notebooks/run.py). Any cell error, a notebook over
# its time budget, or a notebook committed with outputs makes the exit status non-zero.
# Environment:
#   PWS_RESULTS           run against this pws-analyze dataset instead (no analysis)
#   PWS_SWEEP_RESULTS     the analysed sweep 03-compare reads (default: the bundled one)
#   PWS_ANALYZE           this pws-analyze binary (no build)
#   PWS_NOTEBOOK_TIMEOUT  seconds each notebook may take (default 300)
#   PWS_NOTEBOOK_OUTPUT   keep the executed notebooks (with outputs) and their figures there
#   PWS_PYTHON_ENV        the venv (default .venv-notebooks); CARGO_TARGET_DIR is honoured
#   PWS_CARGO_PROFILE     cargo profile of the pws-analyze it builds (default release)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash scripts/python-env.sh
python=${PWS_PYTHON_ENV:-$root/.venv-notebooks}/bin/python

work=$(mktemp -d "${TMPDIR:-/tmp}/pws-notebooks.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ -z "${PWS_ANALYZE:-}" ]; then
    if ! command -v cargo >/dev/null && [ -f "$HOME/.cargo/env" ]; then
        . "$HOME/.cargo/env"
    fi
    # CI (scripts/test.sh) passes PWS_CARGO_PROFILE=dev to reuse the test build: built with the
    # features `cargo test --workspace` resolved (`--workspace --bins --tests`), it is found
    # built; `-p pws-analyzer` alone resolves others and would build the analyzer again.
    profile=${PWS_CARGO_PROFILE:-release}
    select=(-p pws-analyzer)
    [ "$profile" = dev ] && select=(--workspace --bins --tests)
    echo "+ cargo build --profile $profile --locked ${select[*]}"
    cargo build --profile "$profile" --locked "${select[@]}"
    dir=$profile
    [ "$profile" = dev ] && dir=debug
    target_dir=$(cargo metadata --format-version 1 --no-deps |
        "$python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
    export PWS_ANALYZE=$target_dir/$dir/pws-analyze
fi
if [ -z "${PWS_RESULTS:-}" ]; then
    trace=datasets/local-default/local-default.pws
    echo "+ $PWS_ANALYZE --quiet $trace -o $work/results"
    "$PWS_ANALYZE" --quiet "$trace" -o "$work/results"
    export PWS_RESULTS=$work/results
fi
# 03-compare: the bundled sweep (its manifest labels each run with its keep-alive).
if [ -z "${PWS_SWEEP_RESULTS:-}" ]; then
    sweep=datasets/sweep-keep-alive
    echo "+ $PWS_ANALYZE --quiet $sweep -o $work/sweep-results"
    "$PWS_ANALYZE" --quiet "$sweep" -o "$work/sweep-results"
    export PWS_SWEEP_RESULTS=$work/sweep-results
fi

args=(--results "$PWS_RESULTS")
[ -z "${PWS_NOTEBOOK_OUTPUT:-}" ] || args+=(--output-dir "$PWS_NOTEBOOK_OUTPUT")
echo "+ $python notebooks/run.py ${args[*]} notebooks/*.ipynb"
"$python" notebooks/run.py "${args[@]}" notebooks/*.ipynb
