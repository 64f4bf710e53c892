#!/usr/bin/env bash
# Parity and speed of `pws-analyze smartwatts` against smartwatts 2.4.1 from PyPI.
# Creates bench/smartwatts/.venv (pinned requirements.txt), builds the release analyzer, then
# runs compare.py. Prints PASS/FAIL lines; exits non-zero only if the comparison itself broke.
# Options are compare.py's (--ticks N, --seed S, --repeat N, --work DIR, --skip-fixtures).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv="$here/.venv"
python=${PYTHON:-python3}

if [ ! -x "$venv/bin/python" ]; then
    echo "+ $python -m venv $venv"
    "$python" -m venv "$venv" || {
        echo "compare.sh: cannot create a venv (on Debian: apt-get install python3-venv)" >&2
        exit 2
    }
fi
# Quick when everything is already there; pins make both tools see the same sklearn.
echo "+ pip install -r requirements.txt"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"

echo "+ cargo build --release -p pws-analyzer"
(cd "$root" && cargo build --release --quiet -p pws-analyzer)
target_dir=$(cd "$root" && cargo metadata --format-version 1 --no-deps \
    | "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')

exec "$venv/bin/python" "$here/compare.py" --bin "$target_dir/release/pws-analyze" "$@"
