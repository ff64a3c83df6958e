//! The fjall backend (feature `fjall`, the fjall 3 line): the log and its metadata in one
//! fjall keyspace, `log`, of one fjall database per directory, in the
//! [single-keyspace layout](crate::kv::flat). The log logic is [`KvStorage`]'s; this
//! file says how fjall opens, reads and commits.
//!
//! # Atomicity
//!
//! A batch is **one** fjall `WriteBatch` (a put per entry and metadata value, a
//! remove per truncated or trimmed index: fjall's batch has no range delete) committed
//! once. fjall writes a batch to its journal as one record with a checksum and applies it
//! to the memtables after; on recovery a torn last record is dropped whole.
//!
//! # Durability
//!
//! | mode | engine call | guarantee |
//! |---|---|---|
//! | [`Durability::Immediate`] | `WriteBatch::durability(Some(PersistMode::SyncData))` + `commit()` | the journal is written and fdatasynced before `commit` returns |
//! | [`Durability::Buffered`] | **the same** `SyncData` commit | survives power loss, so also a process crash |
//!
//! fjall's docs (`PersistMode`): `Buffer` "flushes data to OS buffers. This allows the
//! OS to write out data in case of an application crash. When this function returns,
//! data is **not** guaranteed to be persisted in case of a power loss event or OS
//! crash"; `SyncData` "flushes data using `fdatasync`". `SyncAll` (`fsync`) would also
//! write the file's timestamps, which a journal read back by its length does not need.
//! [`flush`](paxstore::Storage::flush) is `Database::persist(PersistMode::SyncData)`.
//!
//! `Buffered` does not use `PersistMode::Buffer`: after a power cut that kept part of the
//! unsynced journal tail and tore the rest, fjall 3.1 refused to open the database
//! (`JournalRecovery(ChecksumMismatch)` on the torn last batch, although its
//! `RecoveryMode::TolerateCorruptTail` docs say such a batch is discarded; found by the
//! suite's `power_loss_keeps_acknowledged_batches`, 1 run in 20 cuts). The contract
//! requires a store to reopen after power loss in both modes, so `Buffered` costs the
//! same as `Immediate` on this backend, as on redb. An `Immediate` commit cut during its
//! own `fdatasync` could leave such a batch too (not seen in 20 cuts): the store would
//! then refuse to open, with [`StorageError::Engine`], rather than lose anything.
//!
//! Measured with the `commit_syscalls` example under `strace -f -c`: 100 one-entry
//! batches make 100 `write`s and 100 `fdatasync`s more than opening alone (with
//! `PersistMode::Buffer`, 100 `write`s and no sync).
//!
//! Under power loss and failed writes: see [the crate docs](crate#under-power-loss-and-failed-writes).
//!
//! # Opening
//!
//! See [`crate::kv`] for the sequence. A directory holding a fjall database has fjall's
//! `version` file; a database fjall cannot open is [`StorageError::Engine`] with the
//! `fjall::Error` as its source; a database another handle holds is
//! [`StorageError::Locked`] (fjall refuses at once).
//!
//! [`Durability::Immediate`]: paxstore::Durability::Immediate
//! [`Durability::Buffered`]: paxstore::Durability::Buffered

use std::fs;
use std::path::Path;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use paxstore::{StorageError, StorageResult};

use crate::kv::flat::{entry_index, entry_key, index_of_key, meta_key, ENTRIES_END};
use crate::kv::{self, DirState, EntryVisitor, KvBatch, KvEngine, KvOp, KvStorage, MetaKey};

/// A [`paxstore::Storage`] in a fjall database. See the [module docs](self) for the
/// durability each mode gives.
pub type FjallStorage<T> = KvStorage<FjallEngine, T>;

/// fjall's file that marks a database directory.
const VERSION_FILE: &str = "version";
/// The keyspace holding the log.
const KEYSPACE: &str = "log";

/// The fjall database under a [`FjallStorage`].
pub struct FjallEngine {
    db: Database,
    log: Keyspace,
}

fn engine_error(context: &str, err: fjall::Error) -> StorageError {
    match err {
        fjall::Error::Io(source) => StorageError::io(context, source),
        other => StorageError::engine(FjallEngine::NAME, context, other),
    }
}

/// The index of an entry read back from fjall, for [`KvEngine::entry_span`].
fn guard_index(guard: Option<fjall::Guard>) -> StorageResult<Option<u64>> {
    match guard {
        None => Ok(None),
        Some(guard) => {
            Ok(index_of_key(&guard.key().map_err(|e| engine_error("reading entries", e))?))
        }
    }
}

/// fsyncs every file and directory under `dir`, for a store fjall just created: fjall
/// does not sync the directory entries of the files it creates, and a power cut then
/// lost them all (11 paths: found by `power_loss_keeps_acknowledged_batches`).
fn sync_tree(dir: &Path) -> StorageResult<()> {
    let entries =
        fs::read_dir(dir).map_err(|e| StorageError::io(format!("listing {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io(format!("listing {}", dir.display()), e))?;
        let path = entry.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            kv::sync_path(&path)?;
        }
    }
    kv::sync_path(dir)
}

impl KvEngine for FjallEngine {
    const NAME: &'static str = "fjall";

    fn inspect(path: &Path) -> StorageResult<DirState> {
        let Some(names) = kv::store_dir_names(path, Self::NAME)? else {
            return Ok(DirState::Fresh);
        };
        if names.iter().any(|n| n == VERSION_FILE) {
            return Ok(DirState::Existing);
        }
        Err(kv::foreign_dir(path, Self::NAME, "fjall's version file", names))
    }

    fn open(path: &Path, state: DirState) -> StorageResult<Self> {
        let db = Database::builder(path).open().map_err(|e| match e {
            fjall::Error::Locked => {
                StorageError::Locked { path: path.to_owned(), backend: Self::NAME }
            }
            e => engine_error(&format!("opening {}", path.display()), e),
        })?;
        let log = db
            .keyspace(KEYSPACE, KeyspaceCreateOptions::default)
            .map_err(|e| engine_error("opening the log keyspace", e))?;
        if state == DirState::Fresh {
            sync_tree(path)?;
        }
        Ok(FjallEngine { db, log })
    }

    fn get_meta(&self, key: MetaKey) -> StorageResult<Option<Vec<u8>>> {
        let value = self.log.get(meta_key(key));
        Ok(value.map_err(|e| engine_error(&format!("reading {key:?}"), e))?.map(|v| v.to_vec()))
    }

    fn entry_span(&self) -> StorageResult<Option<(u64, u64)>> {
        let mut entries = self.log.range(&entry_key(0)[..]..&ENTRIES_END[..]);
        let first = guard_index(entries.next())?;
        let last = guard_index(entries.next_back())?;
        Ok(first.zip(last.or(first)))
    }

    fn scan_entries(&self, from: u64, to: u64, visit: EntryVisitor<'_>) -> StorageResult<()> {
        for guard in self.log.range(entry_key(from)..entry_key(to)) {
            let (key, value) =
                guard.into_inner().map_err(|e| engine_error("reading entries", e))?;
            visit(entry_index(&key)?, &value)?;
        }
        Ok(())
    }

    fn commit(&mut self, batch: &KvBatch, _sync: bool) -> StorageResult<()> {
        // `Buffered` also syncs: see the module docs.
        let mut write = self.db.batch().durability(Some(PersistMode::SyncData));
        for op in batch.ops() {
            match op {
                KvOp::PutEntry { idx, value } => {
                    write.insert(&self.log, entry_key(*idx), value.as_slice())
                }
                KvOp::DeleteEntries { from, to } => {
                    (*from..*to).for_each(|idx| write.remove(&self.log, entry_key(idx)))
                }
                KvOp::PutMeta { key, value } => {
                    write.insert(&self.log, meta_key(*key), value.as_slice())
                }
                KvOp::DeleteMeta(key) => write.remove(&self.log, meta_key(*key)),
            }
        }
        write.commit().map_err(|e| engine_error("committing a batch", e))
    }

    fn flush(&mut self) -> StorageResult<()> {
        self.db.persist(PersistMode::SyncData).map_err(|e| engine_error("syncing the journal", e))
    }
}
