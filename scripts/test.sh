#!/usr/bin/env bash
# Runs every test: formatting, lints, unit, property, end-to-end and doc tests, and checks
# that the fuzz targets still build. This is what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== fuzz targets build"
cargo check --manifest-path fuzz/Cargo.toml --bins --quiet
# Before the tests: tests/end_to_end.rs queries the analyzer's Parquet with DuckDB from this
# environment, and fails (rather than skips) without it.
echo "== python environment"
bash scripts/python-env.sh
export PWS_PYTHON_ENV=${PWS_PYTHON_ENV:-$PWD/.venv-notebooks}
echo "== cargo test"
cargo test --workspace --locked
echo "== notebooks (headless, against the bundled dataset)"
PWS_CARGO_PROFILE=dev bash scripts/notebooks.sh
