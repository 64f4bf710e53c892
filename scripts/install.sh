#!/usr/bin/env bash
# Installs what building and testing Powerful Serverless needs on Debian/Ubuntu:
# a C compiler (zstd is built from source by its crate), git, and a Rust toolchain recent
# enough for the workspace (rust-version in Cargo.toml). Safe to run again; does nothing
# that is already done. Run as root, or with sudo available.
set -euo pipefail

need_rust="$(sed -n 's/^rust-version = "\(.*\)"/\1/p' "$(dirname "$0")/../Cargo.toml" | head -n1)"

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "install.sh: need root to run: $*" >&2; exit 1; fi
}

missing=()
command -v cc >/dev/null || missing+=(build-essential)
command -v git >/dev/null || missing+=(git)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null; then
        echo "install.sh: please install: ${missing[*]} (no apt-get on this machine)" >&2; exit 1
    fi
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# Docker, for `pws-load run --runtime docker` and its tests: with PWS_INSTALL_DOCKER=1, and
# under CI (whose tests must run). Debian's docker.io (daemon, CLI, containerd, runc); the
# tests start a dockerd themselves when none runs (no systemd needed).
case "${PWS_INSTALL_DOCKER:-}${CI:-}" in
    ""|0|false|0false|false0) ;;
    *)
        if ! command -v dockerd >/dev/null; then
            as_root apt-get update -qq
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io
        fi
        ;;
esac

# The second, independent trace reader (crates/trace-format/python) reads compressed blocks
# with `zstandard`; without it the cross-check covers uncompressed traces only.
if ! python3 -c 'import zstandard' 2>/dev/null; then
    python3 -m pip install --quiet zstandard 2>/dev/null \
        || { command -v apt-get >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-zstandard; } \
        || echo "install.sh: note: python3 zstandard unavailable; compressed blocks are cross-checked by the Rust reader only"
fi

# Rust: use the one on PATH if recent enough, else rustup (Debian's package where it exists).
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
version_ok() {
    local have
    have="$(rustc --version 2>/dev/null | awk '{print $2}')" || return 1
    [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$need_rust" "$have" | sort -V | head -n1)" = "$need_rust" ]
}
if ! version_ok; then
    if ! command -v rustup >/dev/null && command -v apt-get >/dev/null; then
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustup || true
    fi
    if command -v rustup >/dev/null; then
        rustup toolchain install stable --profile minimal -c rustfmt -c clippy
        rustup default stable
    fi
    if ! version_ok; then
        echo "install.sh: Rust >= $need_rust is needed and could not be installed from Debian's packages." >&2
        echo "  Install it with rustup (https://rustup.rs), then run this again." >&2
        exit 1
    fi
fi
# rustfmt and clippy are part of the test command.
if command -v rustup >/dev/null; then
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
echo "install.sh: ready ($(rustc --version), $(cc --version | head -n1))"
