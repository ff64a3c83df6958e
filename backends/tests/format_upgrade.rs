//! Stores written in the layout before the decided stop sign (RocksDB, sled and redb
//! layout 1, WAL format version 2) open, keep their data, and are upgraded so that an
//! older paxstore refuses them by their marker or header once they may hold a decided
//! stop sign.
#![cfg(any(feature = "rocksdb", feature = "sled", feature = "redb", feature = "fault-injection"))]
// Test setup helpers: a failed setup step is a failed test, so they unwrap.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use paxstore::StorageOp::*;
use paxstore::{ClusterConfig, Durability, StopSign, Storage};
use paxstore_backends::BackendKind;
use paxstore_conformance::TestEntry;

fn stopsign() -> StopSign {
    StopSign {
        next_config: ClusterConfig {
            configuration_id: 2,
            nodes: vec![1, 2],
            flexible_quorum: None,
        },
        metadata: None,
    }
}

/// The entries [`make_store`] writes.
fn entries() -> Vec<TestEntry> {
    (0..5).map(|i| TestEntry::new(i, 500)).collect()
}

/// Writes entries `[0, 5)` decided to 3 into `store`, in two batches.
fn fill(store: &mut dyn Storage<TestEntry>) {
    store.write_atomically(vec![AppendEntries(entries())]).unwrap();
    store.write_atomically(vec![SetDecidedIndex(3)]).unwrap();
}

/// A fresh store of `kind` at `dir`, filled by [`fill`].
#[cfg(any(feature = "rocksdb", feature = "sled", feature = "redb"))]
fn make_store(kind: BackendKind, dir: &Path) {
    let mut store = kind.open::<TestEntry>(dir, Durability::Immediate).unwrap();
    fill(&mut *store);
}

/// Opens the (upgraded) store, checks the data written by [`make_store`], decides a stop
/// sign, and checks that it survives a reopen.
fn check_upgraded(kind: BackendKind, dir: &Path) {
    {
        let mut store = kind.open::<TestEntry>(dir, Durability::Immediate).unwrap();
        assert_eq!(store.get_log_len().unwrap(), 5, "{kind}: entries after the upgrade");
        assert_eq!(store.get_decided_idx().unwrap(), 3);
        assert_eq!(store.get_entries(0, 5).unwrap(), entries());
        store.write_atomically(vec![SetStopsign(Some(stopsign())), SetDecidedIndex(6)]).unwrap();
    }
    let store = kind.open::<TestEntry>(dir, Durability::Immediate).unwrap();
    assert_eq!(store.get_decided_idx().unwrap(), 6, "{kind}: the decided stop sign");
    assert_eq!(store.get_stopsign().unwrap(), Some(stopsign()));
}

#[cfg(feature = "rocksdb")]
#[test]
fn rocksdb_layout_1_is_upgraded_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    make_store(BackendKind::RocksDb, tmp.path());
    let marker = |value: Option<&[u8]>| {
        let db = rocksdb::DB::open_default(tmp.path()).unwrap();
        if let Some(value) = value {
            db.put(b"m:format", value).unwrap();
        }
        db.get(b"m:format").unwrap()
    };
    assert_eq!(marker(None).as_deref(), Some(&b"paxstore-rocksdb/2"[..]));
    marker(Some(b"paxstore-rocksdb/1"));
    check_upgraded(BackendKind::RocksDb, tmp.path());
    assert_eq!(marker(None).as_deref(), Some(&b"paxstore-rocksdb/2"[..]));
}

#[cfg(feature = "sled")]
#[test]
fn sled_layout_1_is_upgraded_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    make_store(BackendKind::Sled, tmp.path());
    let marker = |value: Option<&[u8]>| {
        let db = sled::open(tmp.path()).unwrap();
        if let Some(value) = value {
            db.insert(b"m:format", value).unwrap();
            db.flush().unwrap();
        }
        db.get(b"m:format").unwrap().map(|v| v.to_vec())
    };
    assert_eq!(marker(None).as_deref(), Some(&b"paxstore-sled/2"[..]));
    marker(Some(b"paxstore-sled/1"));
    check_upgraded(BackendKind::Sled, tmp.path());
    assert_eq!(marker(None).as_deref(), Some(&b"paxstore-sled/2"[..]));
}

#[cfg(feature = "redb")]
#[test]
fn redb_layout_1_is_upgraded_at_open() {
    use redb::{ReadableDatabase, TableDefinition};
    const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
    let tmp = tempfile::tempdir().unwrap();
    make_store(BackendKind::Redb, tmp.path());
    let file = tmp.path().join(paxstore_backends::redb::FILE_NAME);
    let marker = |value: Option<&[u8]>| {
        let db = redb::Database::open(&file).unwrap();
        if let Some(value) = value {
            let txn = db.begin_write().unwrap();
            txn.open_table(META).unwrap().insert("format", value).unwrap();
            txn.commit().unwrap();
        }
        let read = db.begin_read().unwrap();
        let meta = read.open_table(META).unwrap();
        let value = meta.get("format").unwrap().map(|v| v.value().to_vec());
        value
    };
    assert_eq!(marker(None).as_deref(), Some(&b"paxstore-redb/2"[..]));
    marker(Some(b"paxstore-redb/1"));
    check_upgraded(BackendKind::Redb, tmp.path());
    assert_eq!(marker(None).as_deref(), Some(&b"paxstore-redb/2"[..]));
}

#[cfg(feature = "fault-injection")]
mod wal {
    use std::fs;
    use std::path::{Path, PathBuf};

    use paxstore::Durability;
    use paxstore_backends::wal::format::{parse_segment_header, FORMAT_VERSION};
    use paxstore_backends::wal::{WalOptions, WalStorage};
    use paxstore_backends::BackendKind;
    use paxstore_conformance::TestEntry;

    fn version(path: &Path) -> u32 {
        let bytes = fs::read(path).unwrap();
        parse_segment_header(&bytes).unwrap();
        u32::from_le_bytes(bytes[8..12].try_into().unwrap())
    }

    /// Rewrites a segment header as format version 2 (with its CRC).
    fn make_version_2(path: &Path) {
        let mut bytes = fs::read(path).unwrap();
        bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
        let crc = crc32fast::hash(&bytes[0..28]);
        bytes[28..32].copy_from_slice(&crc.to_le_bytes());
        fs::write(path, bytes).unwrap();
    }

    /// The live segments and the spare, seen by an open that leaves them as they are (no
    /// seal at close).
    fn segments(dir: &Path) -> (Vec<PathBuf>, Option<PathBuf>) {
        let options = WalOptions::new(Durability::Immediate).seal_on_close(false);
        WalStorage::<TestEntry>::open_with_options(dir, options).unwrap().segment_paths()
    }

    #[test]
    fn version_2_log_continues_in_version_3_segments() {
        let tmp = tempfile::tempdir().unwrap();
        {
            // Small segments, filled past half by the first batch, so the second makes a
            // spare: the next rollover would otherwise write into it. No seal at close: it
            // would roll over into the spare.
            let options =
                WalOptions::new(Durability::Immediate).segment_bytes(4096).seal_on_close(false);
            let mut wal = WalStorage::<TestEntry>::open_with_options(tmp.path(), options).unwrap();
            super::fill(&mut wal);
        }
        let (live, spare) = segments(tmp.path());
        assert!(spare.is_some(), "the setup made a spare segment");
        assert_eq!(FORMAT_VERSION, 3);
        for path in live.iter().chain(&spare) {
            assert_eq!(version(path), 3, "{} written by this version", path.display());
            make_version_2(path);
        }
        super::check_upgraded(BackendKind::Wal, tmp.path());
        let (live_after, spare_after) = segments(tmp.path());
        let active = live_after.last().unwrap();
        assert_eq!(version(active), 3, "the write after the upgrade rolled over");
        for path in &live_after[..live_after.len() - 1] {
            assert!(live.contains(path), "older segments are kept: {}", path.display());
        }
        for path in spare_after.iter() {
            assert_eq!(version(path), 3, "no spare of version 2 is kept");
        }
    }
}
