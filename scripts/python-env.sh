#!/usr/bin/env bash
# Creates the Python environment the notebooks run in: a venv at $PWS_PYTHON_ENV (default
# <repo>/.venv-notebooks) with exactly the versions pinned in notebooks/requirements.txt.
#   scripts/python-env.sh          the headless set (what scripts/notebooks.sh needs)
#   scripts/python-env.sh --lab    also JupyterLab (notebooks/requirements-lab.txt)
# Idempotent: a stamp in the venv holds the hash of the requirements and the interpreter's
# version, so a second run with nothing changed returns at once. Prints every command it runs.
# The interpreter is $PYTHON (default python3, 3.11 tested); python3-venv comes from apt-get
# only if creating the venv fails.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${PWS_PYTHON_ENV:-$root/.venv-notebooks}
python=${PYTHON:-python3}
requirements=$root/notebooks/requirements.txt

case "${1:-}" in
    "") ;;
    --lab) requirements=$root/notebooks/requirements-lab.txt ;;
    -h | --help) sed -n '2,9s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "python-env.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
esac

run() {
    echo "+ $*"
    "$@"
}

# Another run in the same checkout may be creating the same venv: take turns.
mkdir -p "$venv"
if command -v flock >/dev/null; then
    exec 9>"$venv/.pws-lock"
    flock 9
fi

if ! "$venv/bin/python" -c '' 2>/dev/null; then
    if ! run "$python" -m venv "$venv"; then
        echo "python-env: '$python -m venv' failed; installing python3-venv" >&2
        sudo=()
        [ "$(id -u)" = 0 ] || sudo=(sudo -n)
        version=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
        run "${sudo[@]}" apt-get update
        run "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv ||
            run "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "python$version-venv"
        run "$python" -m venv "$venv"
    fi
fi

# The stamp holds one hash per requirement set installed (the venv's interpreter version and the
# files' contents); a lab venv holds both, so it also serves the headless set.
digest() {
    { "$venv/bin/python" -c 'import sys; print(sys.version)'; cat "$@"; } | sha256sum | cut -d' ' -f1
}
base=$(digest "$root/notebooks/requirements.txt")
want=$base
[ "$requirements" = "$root/notebooks/requirements.txt" ] ||
    want=$(digest "$root/notebooks/requirements.txt" "$requirements")
stamp=$venv/.pws-requirements
if [ -f "$stamp" ] && grep -qx "$want" "$stamp"; then
    echo "python-env: $venv is up to date ($(basename "$requirements"))"
    exit 0
fi

run "$venv/bin/python" -m pip install --disable-pip-version-check --no-input --quiet \
    -r "$requirements"
run "$venv/bin/python" -m pip check --disable-pip-version-check
printf '%s\n' "$want" "$base" | uniq >"$stamp"
echo "python-env: $venv ready ($(basename "$requirements"))"
