//! The disk's raw ceiling for durable appends: how many 4 KiB `pwrite` + `fdatasync`
//! pairs per second the disk takes, on a preallocated file whose blocks were already
//! written and synced (so a sync flushes data only, never extent or size metadata).
//!
//! This is the most a backend that syncs once per commit can reach; every durable figure
//! in the report is shown as a fraction of it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::stats::Samples;
use crate::BenchError;

/// The size of one synced write.
pub const WRITE_BYTES: usize = 4096;

/// The size of the preallocated file the writes cycle through.
pub const FILE_BYTES: usize = 16 << 20;

/// A preallocated, already-written file in a fresh directory; removed on drop.
pub struct CeilingFile {
    file: File,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl CeilingFile {
    /// Creates the file in a fresh directory under `parent`, writes all of it with
    /// non-zero bytes, and syncs it, so later writes overwrite allocated blocks.
    pub fn create_in(parent: &Path) -> Result<Self, BenchError> {
        let dir = tempfile::Builder::new()
            .prefix("ceiling-")
            .tempdir_in(parent)
            .map_err(BenchError::io("creating the ceiling directory", parent))?;
        let path = dir.path().join("ceiling.dat");
        let mut file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(BenchError::io("creating the ceiling file", &path))?;
        let chunk = vec![0xa5u8; 1 << 20];
        for _ in 0..FILE_BYTES / chunk.len() {
            file.write_all(&chunk)
                .map_err(BenchError::io("preallocating the ceiling file", &path))?;
        }
        file.sync_all().map_err(BenchError::io("syncing the ceiling file", &path))?;
        Ok(CeilingFile { file, path, _dir: dir })
    }

    /// Runs 4 KiB `pwrite` + `fdatasync` at consecutive offsets (wrapping around the
    /// file) for `time`; one latency per write+sync pair.
    pub fn run(&mut self, time: Duration) -> Result<Samples, BenchError> {
        let block = vec![0x5au8; WRITE_BYTES];
        let blocks = (FILE_BYTES / WRITE_BYTES) as u64;
        let mut samples = Samples::new(1);
        let started = Instant::now();
        let mut i = 0u64;
        while started.elapsed() < time || samples.latencies.len() < 10 {
            let offset = (i % blocks) * WRITE_BYTES as u64;
            let t = Instant::now();
            self.file
                .write_all_at(&block, offset)
                .and_then(|()| self.file.sync_data())
                .map_err(BenchError::io("writing and syncing the ceiling file", &self.path))?;
            samples.latencies.push(t.elapsed());
            i += 1;
        }
        Ok(samples)
    }
}
