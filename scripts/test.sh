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
echo "== cargo test"
cargo test --workspace --locked
echo "== notebooks (headless, against the bundled dataset)"
PWS_CARGO_PROFILE=dev bash scripts/notebooks.sh
