//! Writes `BATCHES` batches of `ENTRIES` one-entry-sized appends to a new store of one
//! backend, for counting the system calls each commit makes (the syncs quoted in each
//! engine module's docs):
//!
//! ```text
//! cargo build --release -p paxstore-backends --all-features --example commit_syscalls
//! strace -f -c -e trace=fsync,fdatasync,sync_file_range,write,pwrite64,writev \
//!     target/release/examples/commit_syscalls fjall immediate 100 1
//! ```
//!
//! The store is opened (and its creation synced) before the first batch; subtract the run
//! with `BATCHES = 0` to leave only what the batches did.

use std::process::ExitCode;

use paxstore::{Durability, StorageOp};
use paxstore_backends::BackendKind;
use paxstore_conformance::TestEntry;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("commit_syscalls: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let usage = "usage: commit_syscalls BACKEND immediate|buffered BATCHES ENTRIES";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [backend, mode, batches, entries] = args.as_slice() else { return Err(usage.into()) };
    let kind: BackendKind = backend.parse().map_err(|e| format!("{e}"))?;
    let durability = match mode.as_str() {
        "immediate" => Durability::Immediate,
        "buffered" => Durability::Buffered,
        other => return Err(format!("unknown mode {other:?}; {usage}")),
    };
    let number = |s: &str| s.parse::<u64>().map_err(|e| format!("{s:?}: {e}; {usage}"));
    let (batches, entries) = (number(batches)?, number(entries)?);
    let dir = tempfile::tempdir().map_err(|e| format!("creating a directory: {e}"))?;
    let mut store =
        kind.open::<TestEntry>(&dir.path().join("store"), durability).map_err(|e| e.to_string())?;
    for batch in 0..batches {
        let appended = (0..entries).map(|i| TestEntry::new(batch * entries + i, 100)).collect();
        store
            .write_atomically(vec![StorageOp::AppendEntries(appended)])
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
