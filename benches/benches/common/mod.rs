//! What the criterion benches share: where their stores live and how a failure stops
//! them. Their sizes come from the report's matrix ([`paxstore_benches::runner::Matrix`])
//! and their cells from the same harness ([`paxstore_benches::workload`],
//! [`paxstore_benches::replica`]), so a criterion figure and a report figure measure the
//! same thing.

use std::path::PathBuf;

use paxstore_benches::BenchError;

/// Where the benches put their stores: `$PAXSTORE_BENCH_DIR`, default `/var/tmp`, so they
/// are on a real disk even where `/tmp` is a tmpfs.
pub(crate) fn bench_dir() -> PathBuf {
    std::env::var_os("PAXSTORE_BENCH_DIR").map_or_else(|| PathBuf::from("/var/tmp"), PathBuf::from)
}

/// A bench cannot return an error from inside criterion's timing loop: it stops with the
/// error message.
pub(crate) fn ok<T>(r: Result<T, BenchError>) -> T {
    r.unwrap_or_else(|e| panic!("benchmark failed: {e}"))
}
