#!/usr/bin/env bash
# The whole test suite: every crate of the workspace with every backend compiled in,
# then the example custom backend (its own crate, outside the workspace).
#
# Knobs (environment): PAXSTORE_PROPTEST_CASES (random sequences per property, default
# 256), PAXSTORE_CRASH_ITERATIONS (SIGKILL iterations per persistent backend, default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo test --workspace --all-features
cargo test --manifest-path examples/custom-backend/Cargo.toml
