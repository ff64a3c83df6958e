//! The I/O seam: every call that changes a file or a directory goes through [`WalIo`],
//! so tests can fail the n-th call, tear a write, or drop what was not synced
//! ([`super::FaultIo`]). Reads do not go through it: they use the memory map of the
//! real file, which sees every byte the seam wrote (one page cache).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The file-system calls the WAL makes to change anything on disk.
///
/// An implementation must behave like the POSIX calls named on each method: in
/// particular a write is not durable until [`WalIo::sync_data`] of its file returned
/// `Ok`, and a create, rename or remove is not durable until [`WalIo::sync_dir`] of its
/// directory returned `Ok`.
pub trait WalIo: Send + Sync + fmt::Debug {
    /// `mkdir -p`.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Creates a new file (fails if it exists), open for reading and writing.
    fn create_new(&self, path: &Path) -> io::Result<File>;
    /// Opens an existing file for reading and writing.
    fn open(&self, path: &Path) -> io::Result<File>;
    /// `pwrite` all of `data` at `offset`.
    fn write_at(&self, file: &File, offset: u64, data: &[u8]) -> io::Result<()>;
    /// `ftruncate`: sets the file's length (new bytes read as zero).
    fn set_len(&self, file: &File, len: u64) -> io::Result<()>;
    /// `fdatasync`: the file's data, and the metadata needed to read it, are durable.
    fn sync_data(&self, file: &File) -> io::Result<()>;
    /// `rename`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// `unlink`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// `fsync` of a directory: creates, renames and removes in it are durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real file system, through `std::fs`.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdIo;

impl WalIo for StdIo {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    fn create_new(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new().read(true).write(true).create_new(true).open(path)
    }

    fn open(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new().read(true).write(true).open(path)
    }

    fn write_at(&self, file: &File, offset: u64, data: &[u8]) -> io::Result<()> {
        file.write_all_at(data, offset)
    }

    fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        file.set_len(len)
    }

    fn sync_data(&self, file: &File) -> io::Result<()> {
        file.sync_data()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}
