#!/usr/bin/env bash
# Installs the one system dependency paxstore's build needs beyond the Rust toolchain:
# libclang, which bindgen loads while building the RocksDB backend (`rocksdb` crate,
# feature `bindgen-runtime`), together with clang's builtin headers (stddef.h, ...) that
# libclang needs to parse RocksDB's C header.
#
#   scripts/install-deps.sh          # check; install with apt-get what is missing
#   scripts/install-deps.sh --check  # check only: exit 0 if present, 1 if missing
#
# The check looks where bindgen's loader (the clang-sys crate) looks, for the names it
# accepts: LIBCLANG_PATH if set (and then only there), else `llvm-config --prefix`'s
# bin/lib/lib64, LD_LIBRARY_PATH, and /usr/local/llvm*/lib*, /usr/local/lib*{,/*,/*/*},
# /usr/lib*{,/*,/*/*}; names libclang.so, libclang-*.so, libclang.so.*, libclang-*.so.*,
# never libclang-cpp.* (a different library that images often ship alone), and only a
# 64-bit ELF file counts. The headers count if clang/<version>/include/stddef.h exists
# beside the library found or under /usr/lib/llvm-*/lib or /usr/lib.
#
# For tests only: PAXSTORE_DEPS_ROOT=DIR makes the check look at DIR as if it were `/`
# (scripts/tests/install-deps.sh runs it against machine states built in a temp dir).
set -euo pipefail

root="${PAXSTORE_DEPS_ROOT:-}"
package="libclang-dev"
found_lib=""
found_headers=""

# Is $1 a 64-bit ELF file (what clang-sys validates before accepting a library)?
is_elf64() {
  local magic
  magic="$(head -c 5 "$1" 2>/dev/null | od -An -tx1 | tr -d ' \n')" || return 1
  [[ "$magic" == "7f454c4602" ]]
}

# Prints the libclang candidates in directory $1 (absolute, under $root).
candidates_in() {
  local dir="$1" f name
  [[ -d "$dir" ]] || return 0
  for f in "$dir"/libclang.so "$dir"/libclang-*.so "$dir"/libclang.so.* "$dir"/libclang-*.so.*; do
    [[ -e "$f" ]] || continue
    name="${f##*/}"
    [[ "$name" == *-cpp.* ]] && continue
    echo "$f"
  done
}

# The directories clang-sys searches, in its order (each under $root).
search_dirs() {
  if [[ -n "${LIBCLANG_PATH:-}" ]]; then
    # Only there: the path itself (a directory) or its parent (a file).
    if [[ -d "${root}${LIBCLANG_PATH}" ]]; then echo "${root}${LIBCLANG_PATH}"; else dirname "${root}${LIBCLANG_PATH}"; fi
    return 0
  fi
  local prefix d
  if prefix="$(llvm-config --prefix 2>/dev/null)" && [[ -n "$prefix" ]]; then
    for d in bin lib lib64; do echo "${root}${prefix}/$d"; done
  fi
  if [[ -n "${LD_LIBRARY_PATH:-}" ]]; then
    tr ':' '\n' <<<"$LD_LIBRARY_PATH" | while read -r d; do [[ -n "$d" ]] && echo "${root}$d"; done
  fi
  shopt -s nullglob
  for d in "$root"/usr/local/llvm*/lib* "$root"/usr/local/lib*/*/* "$root"/usr/local/lib*/* \
    "$root"/usr/local/lib* "$root"/usr/lib*/*/* "$root"/usr/lib*/* "$root"/usr/lib*; do
    [[ -d "$d" ]] && echo "$d"
  done
  shopt -u nullglob
}

find_libclang() {
  local dir f
  found_lib=""
  while read -r dir; do
    while read -r f; do
      [[ -n "$f" ]] || continue
      if is_elf64 "$f"; then
        found_lib="$f"
        return 0
      fi
    done < <(candidates_in "$dir")
  done < <(search_dirs)
  return 1
}

find_headers() {
  local libdir real h
  found_headers=""
  libdir="$(dirname "$found_lib")"
  real="$(dirname "$(readlink -f "$found_lib")")"
  shopt -s nullglob
  for h in "$libdir"/clang/*/include/stddef.h "$real"/clang/*/include/stddef.h \
    "$root"/usr/lib/llvm-*/lib/clang/*/include/stddef.h "$root"/usr/lib/clang/*/include/stddef.h; do
    found_headers="$h"
    break
  done
  shopt -u nullglob
  [[ -n "$found_headers" ]]
}

# 0 when both are present; otherwise prints what is missing and returns 1.
check() {
  if ! find_libclang; then
    echo "install-deps: no libclang shared library (libclang.so, libclang-*.so*; libclang-cpp does not count) where bindgen looks${LIBCLANG_PATH:+ (LIBCLANG_PATH=$LIBCLANG_PATH)}" >&2
    return 1
  fi
  if ! find_headers; then
    echo "install-deps: found $found_lib but not clang's builtin headers (clang/<version>/include/stddef.h)" >&2
    return 1
  fi
  echo "install-deps: libclang present: $found_lib (headers: ${found_headers%/stddef.h})" >&2
  return 0
}

if check; then
  exit 0
fi
if [[ "${1:-}" == "--check" ]]; then
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: apt-get is not available. Install libclang and clang's headers" >&2
  echo "  (Debian/Ubuntu: $package; Fedora: clang-devel; Arch: clang), or point LIBCLANG_PATH" >&2
  echo "  at the directory holding libclang.so, then run again." >&2
  exit 1
fi
sudo_cmd=()
if [[ "$(id -u)" -ne 0 ]]; then sudo_cmd=(sudo); fi
echo "install-deps: installing $package with apt-get (bindgen loads libclang to build the RocksDB backend)" >&2
if ! "${sudo_cmd[@]}" apt-get update -qq ||
  ! DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$package" >/dev/null; then
  echo "install-deps: 'apt-get install $package' failed; install $package by hand and run again." >&2
  exit 1
fi
if ! check; then
  echo "install-deps: $package is installed but libclang is still not found where bindgen looks;" >&2
  echo "  set LIBCLANG_PATH to the directory holding libclang.so and run again." >&2
  exit 1
fi
