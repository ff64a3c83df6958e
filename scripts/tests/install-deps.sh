#!/usr/bin/env bash
# Tests scripts/install-deps.sh against machine states built in a temporary directory
# (PAXSTORE_DEPS_ROOT stands in for `/`), including the one a fresh image is in: it ships
# libclang-cpp.so.14 but not the libclang that bindgen loads. Also runs the install path
# with a stubbed apt-get. Exits non-zero on the first wrong answer.
set -euo pipefail
cd "$(dirname "$0")/../.."
script="$PWD/scripts/install-deps.sh"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
unset LIBCLANG_PATH LD_LIBRARY_PATH
failures=0

elf64() { mkdir -p "$(dirname "$1")"; printf '\x7fELF\x02\x01\x01\x00rest' >"$1"; }
elf32() { mkdir -p "$(dirname "$1")"; printf '\x7fELF\x01\x01\x01\x00rest' >"$1"; }
headers() { mkdir -p "$1/clang/14.0.6/include"; : >"$1/clang/14.0.6/include/stddef.h"; }

# expect NAME WANT(0|1) ROOT [VAR=VALUE ...]: runs the check against ROOT.
expect() {
  local name="$1" want="$2" root="$3" got=0
  shift 3
  env "$@" PAXSTORE_DEPS_ROOT="$root" "$script" --check >"$tmp/out" 2>&1 || got=$?
  if [[ "$got" == "$want" ]]; then
    echo "ok   $name"
  else
    echo "FAIL $name: exit $got, wanted $want"; sed 's/^/     /' "$tmp/out"; failures=$((failures + 1))
  fi
}

# The fresh image: only libclang-cpp (in the LLVM dir and linked from the multiarch dir).
r="$tmp/fresh"
elf64 "$r/usr/lib/llvm-14/lib/libclang-cpp.so.14"
mkdir -p "$r/usr/lib/x86_64-linux-gnu"
ln -s ../llvm-14/lib/libclang-cpp.so.14 "$r/usr/lib/x86_64-linux-gnu/libclang-cpp.so.14"
expect "fresh image (libclang-cpp only) is missing libclang" 1 "$r"

# Debian's libclang1-14 without libclang-common-14-dev: library but no builtin headers.
r="$tmp/no-headers"
elf64 "$r/usr/lib/x86_64-linux-gnu/libclang-14.so.14.0.6"
ln -s libclang-14.so.14.0.6 "$r/usr/lib/x86_64-linux-gnu/libclang-14.so.1"
expect "library without clang's headers is missing" 1 "$r"

# Debian after libclang-dev: versioned library + headers under the LLVM dir.
r="$tmp/debian"
cp -a "$tmp/no-headers/." "$r/"
elf64 "$r/usr/lib/llvm-14/lib/libclang.so.1"
headers "$r/usr/lib/llvm-14/lib"
expect "Debian layout after libclang-dev is present" 0 "$r"

# Only a 32-bit library: clang-sys rejects it.
r="$tmp/elf32"
elf32 "$r/usr/lib/libclang.so"
headers "$r/usr/lib"
expect "32-bit libclang does not count" 1 "$r"

# A plain libclang.so under /usr/local/lib with its headers.
r="$tmp/local"
elf64 "$r/usr/local/lib/libclang.so"
headers "$r/usr/local/lib"
headers "$r/usr/lib"
expect "libclang.so in /usr/local/lib is present" 0 "$r"

# LIBCLANG_PATH restricts the search to that directory.
r="$tmp/libclang-path"
cp -a "$tmp/debian/." "$r/"
mkdir -p "$r/opt/empty"
expect "LIBCLANG_PATH pointing at an empty directory is missing" 1 "$r" LIBCLANG_PATH=/opt/empty
expect "LIBCLANG_PATH pointing at the library's directory is present" 0 "$r" LIBCLANG_PATH=/usr/lib/llvm-14/lib

# The install path, with apt-get stubbed: it must install libclang-dev, then re-check.
stub="$tmp/bin"
mkdir -p "$stub"
cat >"$stub/apt-get" <<'STUB'
#!/usr/bin/env bash
echo "apt-get $*" >>"$STUB_LOG"
if [[ "$1" == install && "$STUB_MODE" == works ]]; then
  printf '\x7fELF\x02\x01\x01\x00' >"$PAXSTORE_DEPS_ROOT/usr/lib/llvm-14/lib/libclang.so.1"
  mkdir -p "$PAXSTORE_DEPS_ROOT/usr/lib/llvm-14/lib/clang/14.0.6/include"
  : >"$PAXSTORE_DEPS_ROOT/usr/lib/llvm-14/lib/clang/14.0.6/include/stddef.h"
fi
[[ "$1" != install || "$STUB_MODE" == works ]]
STUB
chmod +x "$stub/apt-get"
for mode in works fails; do
  r="$tmp/install-$mode"
  cp -a "$tmp/fresh/." "$r/"
  log="$tmp/apt-$mode.log"
  : >"$log"
  got=0
  PATH="$stub:$PATH" STUB_LOG="$log" STUB_MODE="$mode" PAXSTORE_DEPS_ROOT="$r" "$script" >"$tmp/out" 2>&1 || got=$?
  want=0; [[ "$mode" == fails ]] && want=1
  if [[ "$got" == "$want" ]] && grep -q 'install .*libclang-dev' "$log" &&
    { [[ "$mode" == works ]] || grep -q 'libclang-dev' "$tmp/out"; }; then
    echo "ok   install path, apt-get $mode: exit $got, installed libclang-dev"
  else
    echo "FAIL install path, apt-get $mode: exit $got (wanted $want)"; sed 's/^/     /' "$log" "$tmp/out"
    failures=$((failures + 1))
  fi
done

if [[ "$failures" != 0 ]]; then
  echo "install-deps tests: $failures failed" >&2
  exit 1
fi
echo "install-deps tests: all passed"
