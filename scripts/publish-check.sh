#!/usr/bin/env bash
# `cargo publish --dry-run` for every publishable crate of the workspace, in dependency
# order (cargo packages each one, then builds it from its packaged sources against the
# others through a local registry, then stops before uploading). paxstore-benches is
# `publish = false`. Any argument goes to cargo (e.g. --allow-dirty).
set -euo pipefail
cd "$(dirname "$0")/.."
# cargo treats a registry crate as immutable, keyed by name and version: it reuses an
# extraction of the local registry's crates under $CARGO_HOME/registry/src/-<hash>/ and a
# build of them in the target dir, even when the crate was packaged again from other
# sources. A second dry run on one machine then verified against the first run's contract
# crate (seen in CI). So remove those extractions of our own crates (crates.io's are not
# touched), and verify in a target dir of its own (dev profile, default features: no
# RocksDB) from which our crates' builds are removed first; the dependencies' builds stay.
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
for stale in "$cargo_home"/registry/src/-*/paxstore-*; do
    [ -e "$stale" ] && rm -rf "$stale"
done
target="${CARGO_TARGET_DIR:-target}/publish-check"
for stale in "$target"/debug/.fingerprint/paxstore-* "$target"/debug/build/paxstore-* \
    "$target"/debug/deps/libpaxstore* "$target"/debug/deps/paxstore*; do
    [ -e "$stale" ] && rm -rf "$stale"
done
CARGO_TARGET_DIR="$target" cargo publish --dry-run --workspace "$@"
