#!/usr/bin/env bash
# `cargo publish --dry-run` for every publishable crate of the workspace, in dependency
# order (cargo packages each one, then builds it from its packaged sources against the
# others through a local registry, then stops before uploading). paxstore-benches is
# `publish = false`. Any argument goes to cargo (e.g. --allow-dirty).
set -euo pipefail
cd "$(dirname "$0")/.."
# cargo extracts the local registry's crates under $CARGO_HOME/registry/src/-<hash>/ and
# reuses an extraction it finds there, even when the crate was packaged again with other
# sources: a second dry run on the same machine then verifies against the first run's
# sources (seen in CI: the contract crate of an older commit). Remove those extractions
# of our own crates first; crates.io's extractions are not touched.
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
for stale in "$cargo_home"/registry/src/-*/paxstore-*; do
    [ -e "$stale" ] && rm -rf "$stale"
done
cargo publish --dry-run --workspace "$@"
