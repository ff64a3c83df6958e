#!/usr/bin/env bash
# The whole test suite: every crate of the workspace with every backend compiled in,
# then the example custom backend (its own crate, outside the workspace).
#
# Everything builds in the release profile, the profile the report uses, so RocksDB's
# C++ is compiled once per machine (see README, "Build profile").
#
# Knobs (environment): PAXSTORE_SOAK=N runs every randomised test N times its CI size
# (nightly soak: PAXSTORE_SOAK=10); PAXSTORE_PROPTEST_CASES (random sequences per
# property, default 256), PAXSTORE_CRASH_ITERATIONS (SIGKILL iterations per persistent
# backend, default 30), PAXSTORE_SIM_SEEDS (simulator seeds) set one count directly;
# PAXSTORE_KILL_SECS (seconds of SIGKILLs per backend in paxstore-node's kill test,
# default 40; wal and redb run, sled and RocksDB are ignored tests: `--include-ignored`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
scripts/install-deps.sh
echo "test.sh: building the tests (release profile, every backend)" >&2
cargo_with_progress test --release --workspace --all-features --no-run
if cargo nextest --version >/dev/null 2>&1; then
    # Same build; test binaries run side by side (about twice as fast here), then the
    # doc tests, which nextest does not run.
    cargo nextest run --release --workspace --all-features
    cargo test --release --workspace --all-features --doc
else
    echo "test.sh: cargo-nextest is not installed; running cargo test (the same tests, one binary at a time)" >&2
    cargo test --release --workspace --all-features
fi
cargo test --release --manifest-path examples/custom-backend/Cargo.toml
