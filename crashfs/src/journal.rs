//! One file's data: its durable content, and what was changed since its last fsync, in
//! the order it was issued.
//!
//! The backing file always holds the *live* content. The journal keeps what is needed to
//! get the durable content back at a power cut: the durable length, and the durable bytes
//! of every block changed since the last fsync (saved before the first change of the
//! block, so every block not saved still holds its durable bytes in the backing file).
//! The unsynced changes themselves are kept in issue order, with their data, so a cut can
//! let some of them survive (torn, reordered).
//!
//! A failed fsync follows Linux: the pages it failed to write are marked clean, so the
//! changes made before it never become durable, even if a later fsync succeeds; only
//! blocks changed again after the failure are written by that later fsync.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// The unit the kernel writes back (a page): a changed block's durable bytes are kept whole.
pub(crate) const BLOCK: u64 = 4096;
/// The unit a disk writes atomically: a torn write keeps or loses whole 512-byte sectors.
pub const SECTOR: u64 = 512;

/// A change to a file's content or size that is not durable yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// `pwrite` of `data` at `offset`.
    Write { offset: u64, data: Vec<u8> },
    /// `ftruncate`, or a size-changing `fallocate`.
    SetLen(u64),
    /// `fallocate` punch-hole or zero-range inside the file: the bytes read as zeros.
    Zero { offset: u64, len: u64 },
}

/// A change and its place in the filesystem-wide issue order.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub(crate) seq: u64,
    pub(crate) change: Change,
}

/// The durable state of one file and the changes made to it since.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    /// The file's length as of its last successful fsync.
    durable_len: u64,
    /// Block number -> the block's durable bytes (clipped to `durable_len`), for every
    /// block whose live bytes may differ from them.
    saved: BTreeMap<u64, Vec<u8>>,
    /// Blocks changed since the last fsync, successful or not.
    dirty: BTreeSet<u64>,
    /// Blocks changed before a failed fsync and not since: their changes are lost.
    doomed: BTreeSet<u64>,
    /// Changes since the last fsync, in issue order.
    pending: Vec<Pending>,
}

impl Journal {
    /// A file whose live content is durable as it stands (found at mount) of `len` bytes.
    pub(crate) fn durable(len: u64) -> Journal {
        Journal { durable_len: len, ..Journal::default() }
    }

    /// A newly created file: durable content empty.
    pub(crate) fn created() -> Journal {
        Journal::default()
    }

    /// Call before changing the live bytes `[start, end)` of `file`: saves the durable
    /// bytes of the blocks the change touches, once per block until the next fsync.
    pub(crate) fn before_change(&mut self, file: &File, start: u64, end: u64) -> io::Result<()> {
        if start >= end {
            return Ok(());
        }
        for block in start / BLOCK..=(end - 1) / BLOCK {
            self.dirty.insert(block);
            let at = block * BLOCK;
            if at >= self.durable_len || self.saved.contains_key(&block) {
                continue;
            }
            let mut bytes = vec![0u8; (self.durable_len - at).min(BLOCK) as usize];
            file.read_exact_at(&mut bytes, at)?;
            self.saved.insert(block, bytes);
        }
        Ok(())
    }

    /// Records a change that was applied to the live file.
    pub(crate) fn record(&mut self, seq: u64, change: Change) {
        self.pending.push(Pending { seq, change });
    }

    /// A successful fsync or fdatasync: the live content, `live_len` bytes, is durable,
    /// except the blocks a failed fsync lost that were not changed again since.
    pub(crate) fn synced(&mut self, live_len: u64) {
        let lost: BTreeSet<u64> = self.doomed.difference(&self.dirty).copied().collect();
        self.saved.retain(|block, _| lost.contains(block));
        for &block in &lost {
            let at = block * BLOCK;
            if at >= live_len {
                self.saved.remove(&block);
                continue;
            }
            // Bytes past the old durable length were never written: zeros.
            let want = (live_len - at).min(BLOCK) as usize;
            let bytes = self.saved.entry(block).or_default();
            bytes.resize(want, 0);
        }
        self.durable_len = live_len;
        self.dirty.clear();
        self.doomed.clear();
        self.pending.clear();
    }

    /// A failed fsync: the changes so far never reach the disk.
    pub(crate) fn sync_failed(&mut self) {
        self.doomed.append(&mut self.dirty);
        self.pending.clear();
    }

    /// Makes `file` hold the durable content: the saved blocks written back, the length
    /// set to the durable length.
    pub(crate) fn restore(&self, file: &File) -> io::Result<()> {
        for (block, bytes) in &self.saved {
            file.write_all_at(bytes, block * BLOCK)?;
        }
        file.set_len(self.durable_len)
    }

    /// Whether a restore changes anything: some block or the length may differ.
    pub(crate) fn differs(&self, live_len: u64) -> bool {
        !self.saved.is_empty() || live_len != self.durable_len
    }

    /// The blocks changed since the last fsync (successful or not): the kernel's dirty
    /// pages.
    pub(crate) fn dirty_blocks(&self) -> impl Iterator<Item = u64> + '_ {
        self.dirty.iter().copied()
    }

    /// The length as of the last successful fsync.
    pub(crate) fn durable_len(&self) -> u64 {
        self.durable_len
    }

    /// The unsynced changes, in issue order.
    pub(crate) fn pending(&self) -> &[Pending] {
        &self.pending
    }

    /// Bytes of unsynced write data held for this file.
    pub(crate) fn held_bytes(&self) -> u64 {
        let data: usize = self
            .pending
            .iter()
            .map(|p| match &p.change {
                Change::Write { data, .. } => data.len(),
                _ => 0,
            })
            .sum();
        let saved: usize = self.saved.values().map(Vec::len).sum();
        (data + saved) as u64
    }

    /// As if everything were durable now (only the deliberately broken variants do this).
    pub(crate) fn forget_all(&mut self, live_len: u64) {
        *self = Journal::durable(live_len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(bytes: &[u8]) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, bytes).unwrap();
        let file = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
        (dir, file)
    }

    fn read_all(file: &File) -> Vec<u8> {
        let len = file.metadata().unwrap().len() as usize;
        let mut out = vec![0; len];
        file.read_exact_at(&mut out, 0).unwrap();
        out
    }

    fn write(j: &mut Journal, file: &File, offset: u64, data: &[u8]) {
        j.before_change(file, offset, offset + data.len() as u64).unwrap();
        file.write_all_at(data, offset).unwrap();
        j.record(0, Change::Write { offset, data: data.to_vec() });
    }

    #[test]
    fn restore_undoes_unsynced_writes_and_growth() {
        let old = vec![7u8; 10_000];
        let (_d, file) = file_with(&old);
        let mut j = Journal::durable(old.len() as u64);
        write(&mut j, &file, 5_000, &[1u8; 8_000]);
        assert_ne!(read_all(&file), old);
        j.restore(&file).unwrap();
        assert_eq!(read_all(&file), old);
    }

    #[test]
    fn restore_undoes_a_shrink() {
        let old: Vec<u8> = (0..9_000u32).map(|i| i as u8).collect();
        let (_d, file) = file_with(&old);
        let mut j = Journal::durable(old.len() as u64);
        j.before_change(&file, 100, old.len() as u64).unwrap();
        file.set_len(100).unwrap();
        j.restore(&file).unwrap();
        assert_eq!(read_all(&file), old);
    }

    #[test]
    fn synced_changes_stay() {
        let (_d, file) = file_with(&[1u8; 100]);
        let mut j = Journal::durable(100);
        write(&mut j, &file, 50, &[2u8; 100]);
        j.synced(150);
        write(&mut j, &file, 0, &[3u8; 10]);
        j.restore(&file).unwrap();
        let mut want = vec![1u8; 50];
        want.extend([2u8; 100]);
        assert_eq!(read_all(&file), want);
    }

    #[test]
    fn a_failed_fsync_loses_its_writes_even_after_a_later_success() {
        let (_d, file) = file_with(&[1u8; 3 * BLOCK as usize]);
        let mut j = Journal::durable(3 * BLOCK);
        write(&mut j, &file, 0, &[2u8; 10]);
        write(&mut j, &file, 2 * BLOCK, &[2u8; 10]);
        j.sync_failed();
        // Block 2 is changed again after the failure: the later fsync writes it whole.
        write(&mut j, &file, 2 * BLOCK + 100, &[3u8; 10]);
        j.synced(3 * BLOCK);
        j.restore(&file).unwrap();
        let got = read_all(&file);
        assert_eq!(&got[..10], &[1u8; 10], "block 0's write was lost by the failed fsync");
        assert_eq!(&got[2 * BLOCK as usize..][..10], &[2u8; 10], "block 2 rewritten whole");
        assert_eq!(&got[2 * BLOCK as usize + 100..][..10], &[3u8; 10]);
    }

    #[test]
    fn a_lost_extension_reads_as_zeros() {
        let (_d, file) = file_with(&[1u8; 100]);
        let mut j = Journal::durable(100);
        write(&mut j, &file, 100, &[2u8; 100]);
        j.sync_failed();
        j.synced(200);
        j.restore(&file).unwrap();
        let mut want = vec![1u8; 100];
        want.extend([0u8; 100]);
        assert_eq!(read_all(&file), want);
    }
}
