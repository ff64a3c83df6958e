#!/usr/bin/env bash
# Installs the one system package paxstore needs beyond the Rust toolchain: libclang,
# which the RocksDB crate's bindgen loads at build time. Does nothing when it is there.
set -euo pipefail

have_libclang() {
  ldconfig -p 2>/dev/null | grep -q 'libclang[-.0-9]*\.so' && return 0
  compgen -G '/usr/lib/llvm-*/lib/libclang*.so*' >/dev/null
}

if have_libclang; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: libclang is missing and apt-get is not available;" >&2
  echo "install libclang (e.g. your distribution's libclang-dev) and run again." >&2
  exit 1
fi
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
echo "install-deps: installing libclang-dev (needed by the RocksDB backend's bindgen)" >&2
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq libclang-dev >/dev/null
have_libclang
