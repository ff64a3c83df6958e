#!/usr/bin/env bash
# `cargo publish --dry-run` for every publishable crate of the workspace, in dependency
# order (cargo packages each one, then builds it from its packaged sources against the
# others through a local registry, then stops before uploading). paxstore-benches is
# `publish = false`. Any argument goes to cargo (e.g. --allow-dirty).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo publish --dry-run --workspace "$@"
