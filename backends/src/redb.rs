//! The redb backend (feature `redb`, the redb 4 line): the log and its metadata in two
//! tables of one redb file, `<dir>/paxstore.redb`, one directory per store. The log
//! logic is [`KvStorage`]'s; this file says how redb opens, reads and commits.
//!
//! # Atomicity
//!
//! A batch is **one** redb write transaction, committed once. redb's copy-on-write
//! B-trees and its commit slots make a commit atomic across crashes: after a crash,
//! reopening finds the last committed transaction (repairing the allocator state if
//! needed), never part of one. A transaction dropped on an early error is aborted.
//!
//! # Durability
//!
//! | mode | engine call | guarantee |
//! |---|---|---|
//! | [`Durability::Immediate`] | `WriteTransaction::set_durability(redb::Durability::Immediate)` (redb's default) + `commit()` | redb fsyncs the data and then the commit slot before `commit` returns: survives power loss |
//! | [`Durability::Buffered`] | **the same** `Immediate` commit | survives power loss, so also a process crash |
//!
//! redb has no commit mode that only hands the data to the OS. Its docs say of
//! `redb::Durability::None`: "Commits with this durability level will not be persisted to
//! disk unless followed by a commit with `Durability::Immediate`": such a commit lives in
//! the process's memory only, and a process crash loses it, which `Buffered` may not. So
//! `Buffered` costs the same as `Immediate` on this backend, and
//! [`flush`](paxstore::Storage::flush) has nothing to do. Commits use redb's default
//! one-phase commit with checksums; redb's docs note that its guarantees rely on `fsync`
//! reaching stable media.
//!
//! Under power loss and failed writes: see [the crate docs](crate#under-power-loss-and-failed-writes).
//!
//! # Table layout
//!
//! | table | key | value |
//! |---|---|---|
//! | `entries` | absolute index as `[u8; 8]`, `u64` **big-endian** | the entry |
//! | `meta` | [`MetaKey::name`]: `"format"`, `"compacted"`, `"log_end"`, ... | the value ([`crate::kv`] gives each encoding) |
//!
//! Truncation and trimming remove a key range with `Table::retain_in`.
//!
//! # Opening
//!
//! See [`crate::kv`] for the sequence. A store directory holds `paxstore.redb`; a file
//! redb cannot open (garbage bytes, a read-only directory or file) is
//! [`StorageError::Engine`]; a file another handle has open is [`StorageError::Locked`]
//! (redb refuses at once: there is nothing to wait for); a `meta` table of another type is
//! [`StorageError::Unrecognized`]. An empty `paxstore.redb` alone (a creation that
//! crashed before redb wrote its header) is initialised as new.
//!
//! [`Durability::Immediate`]: paxstore::Durability::Immediate
//! [`Durability::Buffered`]: paxstore::Durability::Buffered

use std::fs;
use std::path::{Path, PathBuf};

use paxstore::{StorageError, StorageResult};
use redb::{Database, DatabaseError, ReadableDatabase, ReadableTable, TableDefinition, TableError};

use crate::kv::{self, DirState, EntryVisitor, KvBatch, KvEngine, KvOp, KvStorage, MetaKey};

/// A [`paxstore::Storage`] in a redb file. See the [module docs](self) for the
/// durability each mode gives.
pub type RedbStorage<T> = KvStorage<RedbEngine, T>;

/// The file of the store inside its directory.
pub const FILE_NAME: &str = "paxstore.redb";
const ENTRIES: TableDefinition<[u8; 8], &[u8]> = TableDefinition::new("entries");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// The redb database under a [`RedbStorage`].
pub struct RedbEngine {
    db: Database,
    path: PathBuf,
}

fn engine_error(context: &str, err: impl Into<redb::Error>) -> StorageError {
    StorageError::engine(RedbEngine::NAME, context, err.into())
}

impl RedbEngine {
    /// Opens `table` in a read transaction; `None` if it does not exist yet.
    fn read_table<K: redb::Key + 'static>(
        &self,
        table: TableDefinition<K, &'static [u8]>,
    ) -> StorageResult<Option<redb::ReadOnlyTable<K, &'static [u8]>>> {
        let read = self.db.begin_read().map_err(|e| engine_error("beginning a read", e))?;
        match read.open_table(table) {
            Ok(table) => Ok(Some(table)),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e @ TableError::TableTypeMismatch { .. }) => Err(kv::unrecognized(
                &self.path,
                Self::NAME,
                format!("a redb file whose tables are not ours: {e}"),
            )),
            Err(e) => Err(engine_error("opening a table", e)),
        }
    }
}

impl KvEngine for RedbEngine {
    const NAME: &'static str = "redb";

    fn inspect(path: &Path) -> StorageResult<DirState> {
        let Some(names) = kv::store_dir_names(path, Self::NAME)? else {
            return Ok(DirState::Fresh);
        };
        if !names.iter().any(|n| n == FILE_NAME) {
            return Err(kv::foreign_dir(path, Self::NAME, FILE_NAME, names));
        }
        // An empty file is a creation that crashed before redb wrote its header: there
        // is nothing to lose, so it is created afresh (redb initialises an empty file).
        let file = path.join(FILE_NAME);
        let len = fs::metadata(&file)
            .map_err(|e| StorageError::io(format!("reading metadata of {}", file.display()), e))?
            .len();
        Ok(if len == 0 && names.len() == 1 { DirState::Fresh } else { DirState::Existing })
    }

    fn open(path: &Path, state: DirState) -> StorageResult<Self> {
        let file = path.join(FILE_NAME);
        let db = match state {
            DirState::Fresh => Database::create(&file),
            DirState::Existing => Database::open(&file),
        }
        .map_err(|e| match e {
            DatabaseError::DatabaseAlreadyOpen => {
                StorageError::Locked { path: path.to_owned(), backend: Self::NAME }
            }
            e => engine_error(&format!("opening {}", file.display()), e),
        })?;
        Ok(RedbEngine { db, path: path.to_owned() })
    }

    fn get_meta(&self, key: MetaKey) -> StorageResult<Option<Vec<u8>>> {
        let Some(meta) = self.read_table(META)? else { return Ok(None) };
        let value =
            meta.get(key.name()).map_err(|e| engine_error(&format!("reading {key:?}"), e))?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    fn entry_span(&self) -> StorageResult<Option<(u64, u64)>> {
        let Some(entries) = self.read_table(ENTRIES)? else { return Ok(None) };
        let first = entries.first().map_err(|e| engine_error("reading the first entry", e))?;
        let last = entries.last().map_err(|e| engine_error("reading the last entry", e))?;
        let index = |(k, _): (redb::AccessGuard<[u8; 8]>, _)| u64::from_be_bytes(k.value());
        Ok(first.map(index).zip(last.map(index)))
    }

    fn scan_entries(&self, from: u64, to: u64, visit: EntryVisitor<'_>) -> StorageResult<()> {
        let Some(entries) = self.read_table(ENTRIES)? else { return Ok(()) };
        let range = entries
            .range(from.to_be_bytes()..to.to_be_bytes())
            .map_err(|e| engine_error("reading entries", e))?;
        for item in range {
            let (key, value) = item.map_err(|e| engine_error("reading entries", e))?;
            visit(u64::from_be_bytes(key.value()), value.value())?;
        }
        Ok(())
    }

    fn commit(&mut self, batch: &KvBatch, _sync: bool) -> StorageResult<()> {
        let mut txn = self.db.begin_write().map_err(|e| engine_error("beginning a write", e))?;
        // `Buffered` also commits with `Immediate`: see the module docs.
        txn.set_durability(redb::Durability::Immediate)
            .map_err(|e| engine_error("setting commit durability", e))?;
        {
            let mut entries =
                txn.open_table(ENTRIES).map_err(|e| engine_error("opening entries", e))?;
            let mut meta = txn.open_table(META).map_err(|e| engine_error("opening meta", e))?;
            for op in batch.ops() {
                match op {
                    KvOp::PutEntry { idx, value } => entries
                        .insert(idx.to_be_bytes(), value.as_slice())
                        .map(drop)
                        .map_err(|e| engine_error(&format!("inserting entry {idx}"), e)),
                    KvOp::DeleteEntries { from, to } => entries
                        .retain_in(from.to_be_bytes()..to.to_be_bytes(), |_, _| false)
                        .map_err(|e| engine_error(&format!("removing entries [{from}, {to})"), e)),
                    KvOp::PutMeta { key, value } => meta
                        .insert(key.name(), value.as_slice())
                        .map(drop)
                        .map_err(|e| engine_error(&format!("writing {key:?}"), e)),
                    KvOp::DeleteMeta(key) => meta
                        .remove(key.name())
                        .map(drop)
                        .map_err(|e| engine_error(&format!("removing {key:?}"), e)),
                }?;
            }
        }
        // On an error above the transaction is dropped, which aborts it.
        txn.commit().map_err(|e| engine_error("committing a batch", e))
    }

    /// Every commit is already durable (see the module docs): nothing to do.
    fn flush(&mut self) -> StorageResult<()> {
        Ok(())
    }
}
