//! The lock file that keeps a second instance, in this process or another, out of a WAL
//! directory.

use std::fs::{File, OpenOptions};
use std::path::Path;

use paxstore::{StorageError, StorageResult};

use super::segment::io_err;

pub(super) fn lock_dir(dir: &Path) -> StorageResult<File> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io_err("opening", &path, e))?;
    // A lock can outlive its holder for an instant: a `fork` in another thread (e.g. a
    // test harness spawning a child) shares the descriptor until the child's `exec`.
    // So "locked" is only reported after it persisted for a second.
    match crate::lock::lock_within(file, std::time::Duration::from_secs(1)) {
        Ok(Some(file)) => Ok(file),
        Ok(None) => Err(StorageError::Locked { path: dir.to_owned(), backend: "wal" }),
        Err(e) => Err(io_err("locking", &path, e)),
    }
}

/// The lock file that keeps a second process (or instance) out of a WAL directory.
pub const LOCK_FILE: &str = "wal.lock";
