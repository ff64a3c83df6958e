# Shared by scripts/*.sh: cargo builds that say how far they are.
# shellcheck shell=bash

# The target directory cargo builds into (CARGO_TARGET_DIR, or ./target).
target_dir() {
  if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then echo "$CARGO_TARGET_DIR"; else echo "$PWD/target"; fi
}

# How many of RocksDB's C++ sources the release build has compiled, and how many there
# are ("done total"), or nothing when RocksDB is not being compiled.
rocksdb_progress() {
  local out src total done
  out="$(ls -td "$(target_dir)"/release/build/librocksdb-sys-*/out 2>/dev/null | head -1)"
  [[ -n "$out" ]] || return 0
  src="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/librocksdb-sys-*/rocksdb_lib_sources.txt 2>/dev/null | head -1)"
  total="$(wc -l <"$src" 2>/dev/null || echo 0)"
  done="$(find "$out" -name '*.o' 2>/dev/null | wc -l)"
  [[ "$total" -gt 0 && "$done" -gt 0 ]] && echo "$done $total"
}

# Runs `cargo "$@"` and prints a progress line every 30 s while it runs: time elapsed,
# the crate being compiled, and for RocksDB's C++ (the longest step, compiled once per
# machine) how many files are done and an estimate of the time left.
cargo_with_progress() {
  local log start pid status line rocks rocks_start="" rocks_first=0 eta
  log="$(mktemp)"
  start=$SECONDS
  cargo "$@" >"$log" 2>&1 &
  pid=$!
  tail -n +1 -f --pid="$pid" "$log" &
  local tail_pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null && sleep 1; done
    kill -0 "$pid" 2>/dev/null || break
    line="$(grep -E '^ *(Compiling|Checking|Building)' "$log" | tail -1 | sed 's/^ *//')"
    rocks="$(rocksdb_progress)"
    eta=""
    if [[ -n "$rocks" ]]; then
      local d="${rocks% *}" t="${rocks#* }"
      if [[ -z "$rocks_start" ]]; then rocks_start=$SECONDS; rocks_first=$d; fi
      if [[ "$d" -lt "$t" && $((SECONDS - rocks_start)) -gt 0 && "$d" -gt "$rocks_first" ]]; then
        local left=$(((SECONDS - rocks_start) * (t - d) / (d - rocks_first)))
        eta=", RocksDB C++ $d/$t files, about $((left / 60))m$((left % 60))s left"
      elif [[ "$d" -lt "$t" ]]; then
        eta=", RocksDB C++ $d/$t files (12-30 min on 2 cores, once per machine)"
      fi
    fi
    echo "build: $(((SECONDS - start) / 60))m$(((SECONDS - start) % 60))s elapsed${line:+, last: $line}$eta" >&2
  done
  status=0
  wait "$pid" || status=$?
  wait "$tail_pid" 2>/dev/null || true
  rm -f "$log"
  return "$status"
}
