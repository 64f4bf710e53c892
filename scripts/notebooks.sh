#!/usr/bin/env bash
# Runs every notebook under notebooks/ headless, as CI does: makes sure the pinned Python
# environment exists (scripts/python-env.sh), builds pws-analyze (release), analyses the bundled
# recording datasets/local-default/local-default.pws into a temporary directory, then executes
# each notebook top to bottom with nbclient (notebooks/run.py). Any cell error, a notebook over
# its time budget, or a notebook committed with outputs makes the exit status non-zero.
# Environment:
#   PWS_RESULTS           run against this pws-analyze dataset instead (no build, no analysis)
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

if [ -z "${PWS_RESULTS:-}" ]; then
    if ! command -v cargo >/dev/null && [ -f "$HOME/.cargo/env" ]; then
        . "$HOME/.cargo/env"
    fi
    # CI (scripts/test.sh) passes PWS_CARGO_PROFILE=dev to reuse the test build.
    profile=${PWS_CARGO_PROFILE:-release}
    echo "+ cargo build --profile $profile --locked -p pws-analyzer"
    cargo build --profile "$profile" --locked -p pws-analyzer
    dir=$profile
    [ "$profile" = dev ] && dir=debug
    target_dir=$(cargo metadata --format-version 1 --no-deps |
        "$python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
    trace=datasets/local-default/local-default.pws
    echo "+ $target_dir/$dir/pws-analyze --quiet $trace -o $work/results"
    "$target_dir/$dir/pws-analyze" --quiet "$trace" -o "$work/results"
    export PWS_RESULTS=$work/results
fi

args=(--results "$PWS_RESULTS")
[ -z "${PWS_NOTEBOOK_OUTPUT:-}" ] || args+=(--output-dir "$PWS_NOTEBOOK_OUTPUT")
echo "+ $python notebooks/run.py ${args[*]} notebooks/*.ipynb"
"$python" notebooks/run.py "${args[@]}" notebooks/*.ipynb
