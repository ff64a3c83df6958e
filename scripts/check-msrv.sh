#!/usr/bin/env bash
# Checks that the declared MSRV (`rust-version` in Cargo.toml) is true, as far as one
# toolchain can tell (this machine has only the current one; no older toolchain can be
# fetched):
#  1. every package in Cargo.lock's resolve with every feature declares a rust-version
#     no newer than ours (so cargo on the MSRV toolchain accepts the lock file);
#  2. clippy's `incompatible_msrv` lint (run by .ci/run's clippy step with -D warnings)
#     finds no standard-library API stabilised after it.
#  (Only packages built for this host count: `--filter-platform`.)
# Language features newer than the MSRV are not caught here.
set -euo pipefail
cd "$(dirname "$0")/.."
msrv="$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
[[ -n "$msrv" ]] || { echo "check-msrv: no rust-version in Cargo.toml" >&2; exit 1; }
cargo metadata --format-version 1 --all-features --locked \
  --filter-platform "$(rustc -vV | sed -n "s/^host: //p")" | python3 -c '
import json, sys
msrv = sys.argv[1]
def v(s):
    return tuple(int(x) for x in s.split("."))[:3] + (0,) * (3 - len(s.split(".")))
m = json.load(sys.stdin)
ids = {n["id"] for n in m["resolve"]["nodes"]}
newer = sorted(
    (p["name"], p["version"], p["rust_version"])
    for p in m["packages"]
    if p["id"] in ids and p.get("rust_version") and v(p["rust_version"]) > v(msrv)
)
workspace = {p["name"] for p in m["packages"] if p["id"] in m["workspace_members"]}
bad = [p for p in newer if p[0] not in workspace]
mismatch = [p for p in m["packages"] if p["id"] in m["workspace_members"] and p.get("rust_version") and v(p["rust_version"]) != v(msrv)]
for name, version, rv in bad:
    print(f"check-msrv: {name} {version} needs Rust {rv}, newer than our rust-version {msrv}", file=sys.stderr)
for p in mismatch:
    name, rv = p["name"], p["rust_version"]
    print(f"check-msrv: workspace member {name} declares rust-version {rv}, the workspace {msrv}", file=sys.stderr)
if bad or mismatch:
    sys.exit(1)
print(f"check-msrv: rust-version {msrv}: every dependency in the lock file declares {msrv} or older", file=sys.stderr)
' "$msrv"
