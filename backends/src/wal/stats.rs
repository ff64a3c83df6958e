//! [`WalStats`]: what a WAL did to the disk since it was opened, counted at the I/O seam.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::WalIo;

/// What a [`WalStorage`](super::WalStorage) did to the disk since it was opened
/// ([`WalStorage::stats`](super::WalStorage::stats)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalStats {
    /// `fdatasync` calls on segment files plus `fsync` calls on directories.
    pub syncs: u64,
    /// Bytes written with `pwrite`: records, segment headers, the zeros written ahead of
    /// the tail (with `Immediate`) and the zeros that undo a refused record.
    pub bytes_written: u64,
    /// Records written and acknowledged: batches, checkpoints (one per segment) and seals.
    pub records: u64,
    /// The bytes of those records, framed (header, payload, padding): `bytes_written`
    /// minus this is what the WAL wrote besides its records.
    pub record_bytes: u64,
    /// Segment files created.
    pub segments_created: u64,
    /// Trimmed segments recycled as the next spare (renamed, new header, no zeros written).
    pub segments_recycled: u64,
    /// Seals written (one per rollover with `Immediate`).
    pub seals: u64,
}

/// The counts [`WalStats`] takes from the WAL itself rather than from its I/O seam.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Counters {
    pub(super) records: u64,
    pub(super) record_bytes: u64,
    pub(super) segments_created: u64,
    pub(super) segments_recycled: u64,
    pub(super) seals: u64,
}

/// The seam the WAL does its I/O through, counting syncs and bytes on the way.
#[derive(Debug)]
pub(super) struct CountingIo {
    inner: Arc<dyn WalIo>,
    syncs: AtomicU64,
    bytes_written: AtomicU64,
}

impl CountingIo {
    pub(super) fn new(inner: Arc<dyn WalIo>) -> Self {
        CountingIo { inner, syncs: AtomicU64::new(0), bytes_written: AtomicU64::new(0) }
    }

    pub(super) fn stats(&self, c: Counters) -> WalStats {
        WalStats {
            syncs: self.syncs.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            records: c.records,
            record_bytes: c.record_bytes,
            segments_created: c.segments_created,
            segments_recycled: c.segments_recycled,
            seals: c.seals,
        }
    }
}

impl WalIo for CountingIo {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }

    fn create_new(&self, path: &Path) -> io::Result<File> {
        self.inner.create_new(path)
    }

    fn open(&self, path: &Path) -> io::Result<File> {
        self.inner.open(path)
    }

    fn write_at(&self, file: &File, offset: u64, data: &[u8]) -> io::Result<()> {
        self.inner.write_at(file, offset, data)?;
        self.bytes_written.fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        self.inner.set_len(file, len)
    }

    fn sync_data(&self, file: &File) -> io::Result<()> {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.inner.sync_data(file)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.inner.sync_dir(dir)
    }
}

#[cfg(test)]
mod tests {
    use paxstore::{Durability, NoSnapshot, Storage};
    use serde::{Deserialize, Serialize};

    use super::super::WalStorage;

    #[derive(Clone, Debug, Serialize, Deserialize)]
    struct E(u64);
    impl paxstore::Entry for E {
        type Snapshot = NoSnapshot;
    }

    fn three_writes(durability: Durability) -> (super::WalStats, super::WalStats) {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = WalStorage::<E>::open(&dir.path().join("wal"), durability).unwrap();
        let before = wal.stats();
        for i in 0..3 {
            wal.append_entries(vec![E(i), E(i + 1)]).unwrap();
        }
        (before, wal.stats())
    }

    #[test]
    fn immediate_writes_are_each_synced_and_counted() {
        let (before, after) = three_writes(Durability::Immediate);
        assert!(before.syncs > 0, "creating a WAL syncs its first segment and directory");
        assert_eq!(after.syncs - before.syncs, 3);
        assert!(after.bytes_written > before.bytes_written + 3 * 16);
    }

    #[test]
    fn records_seals_and_segments_are_counted() {
        let (before, after) = three_writes(Durability::Immediate);
        assert_eq!(before.records, 1, "the first checkpoint");
        assert_eq!(after.records, 4);
        assert_eq!(before.segments_created, 1);
        assert!(after.record_bytes > before.record_bytes + 3 * 24);
        assert!(after.bytes_written >= after.record_bytes);
        // Rollovers: a seal, a checkpoint and a new (or recycled) segment each.
        let dir = tempfile::tempdir().unwrap();
        let options = super::super::WalOptions::new(Durability::Immediate).segment_bytes(4096);
        let mut wal = WalStorage::<E>::open_with_options(&dir.path().join("wal"), options).unwrap();
        for i in 0..200 {
            wal.append_entry(E(i)).unwrap();
            wal.trim(i as usize).unwrap();
        }
        let s = wal.stats();
        assert!(s.seals > 2, "{s:?}");
        assert!(s.segments_recycled > 0, "{s:?}");
        assert_eq!(s.segments_created + s.segments_recycled, s.seals + 2, "{s:?}");
        assert_eq!(s.records, 1 + 400 + 2 * s.seals, "{s:?}");
    }

    #[test]
    fn buffered_writes_are_counted_but_not_synced() {
        let (before, after) = three_writes(Durability::Buffered);
        assert_eq!(after.syncs, before.syncs);
        assert!(after.bytes_written > before.bytes_written);
    }
}
