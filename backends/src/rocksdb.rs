//! The RocksDB backend (feature `rocksdb`): the log and its metadata in the default
//! column family of one RocksDB database, one directory per store, in the
//! [single-keyspace layout](crate::kv::flat). The log logic is [`KvStorage`]'s; this
//! file says how RocksDB opens, reads and commits.
//!
//! # Atomicity
//!
//! A batch is **one** [`WriteBatch`] (puts, deletes and a `delete_range` per truncation
//! or trim, in op order) applied with one [`DB::write_opt`]. RocksDB writes a
//! `WriteBatch` to its write-ahead log as one record and applies it atomically; on
//! recovery (the default `kPointInTimeRecovery` WAL mode) a torn last record is dropped
//! whole.
//!
//! # Durability
//!
//! | mode | engine call | guarantee |
//! |---|---|---|
//! | [`Durability::Immediate`] | `WriteOptions::set_sync(true)` | RocksDB fdatasyncs the WAL before `write_opt` returns (`use_fsync` is left off: fdatasync) |
//! | [`Durability::Buffered`] | `WriteOptions::set_sync(false)`, WAL on, `manual_wal_flush` off | the WAL record is handed to the OS with `write(2)` before `write_opt` returns |
//!
//! RocksDB's own caveat (`WriteOptions::sync`, `include/rocksdb/options.h`): with
//! `sync = false`, "if the machine crashes, some recent writes may be lost. Note that if
//! it is just the process that crashes (i.e., the machine does not reboot), no writes
//! will be lost even if sync==false". That is exactly `Buffered`. `Immediate` trusts that
//! fdatasync reaches stable media (a disk cache that lies defeats every backend alike).
//! [`flush`](paxstore::Storage::flush) is `DB::flush_wal(true)`: RocksDB writes out and
//! fdatasyncs its WAL, so every batch written before it survives power loss.
//!
//! Under power loss and failed writes: see [the crate docs](crate#under-power-loss-and-failed-writes).
//!
//! # Opening
//!
//! See [`crate::kv`] for the sequence. A directory holding a RocksDB database has its
//! `CURRENT` file; a database RocksDB cannot open (garbage in `CURRENT`, a read-only
//! directory) is [`StorageError::Engine`] with the `rocksdb::Error` as its source. A
//! store another handle holds is reported the same way, not as
//! [`StorageError::Locked`]: RocksDB's error has no lock kind to match, only a message.
//!
//! [`Durability::Immediate`]: paxstore::Durability::Immediate
//! [`Durability::Buffered`]: paxstore::Durability::Buffered

use std::path::Path;

use paxstore::{StorageError, StorageResult};
use rocksdb::{Direction, IteratorMode, Options, ReadOptions, WriteBatch, WriteOptions, DB};

use crate::kv::flat::{entry_index, entry_key, index_of_key, meta_key, ENTRIES_END};
use crate::kv::{self, DirState, EntryVisitor, KvBatch, KvEngine, KvOp, KvStorage, MetaKey};

/// A [`paxstore::Storage`] in a RocksDB database. See the [module docs](self) for the
/// durability each mode gives.
pub type RocksDbStorage<T> = KvStorage<RocksDbEngine, T>;

/// The RocksDB database under a [`RocksDbStorage`].
pub struct RocksDbEngine {
    db: DB,
}

fn engine_error(context: &str, err: rocksdb::Error) -> StorageError {
    StorageError::engine(RocksDbEngine::NAME, context, err)
}

impl RocksDbEngine {
    /// The first entry key at or after `from` in `direction`, as an index.
    fn entry_from(&self, from: &[u8], direction: Direction) -> StorageResult<Option<u64>> {
        match self.db.iterator(IteratorMode::From(from, direction)).next() {
            None => Ok(None),
            Some(item) => {
                let (key, _) = item.map_err(|e| engine_error("iterating entries", e))?;
                Ok(index_of_key(&key))
            }
        }
    }
}

impl KvEngine for RocksDbEngine {
    const NAME: &'static str = "rocksdb";

    fn inspect(path: &Path) -> StorageResult<DirState> {
        let Some(names) = kv::store_dir_names(path, Self::NAME)? else {
            return Ok(DirState::Fresh);
        };
        if names.iter().any(|n| n == "CURRENT") {
            return Ok(DirState::Existing);
        }
        Err(kv::foreign_dir(path, Self::NAME, "a RocksDB CURRENT file", names))
    }

    fn open(path: &Path, state: DirState) -> StorageResult<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(state == DirState::Fresh);
        opts.set_keep_log_file_num(4);
        let db = DB::open(&opts, path)
            .map_err(|e| engine_error(&format!("opening {}", path.display()), e))?;
        Ok(RocksDbEngine { db })
    }

    fn get_meta(&self, key: MetaKey) -> StorageResult<Option<Vec<u8>>> {
        self.db.get(meta_key(key)).map_err(|e| engine_error(&format!("reading {key:?}"), e))
    }

    fn entry_span(&self) -> StorageResult<Option<(u64, u64)>> {
        let first = self.entry_from(&entry_key(0), Direction::Forward)?;
        let last = self.entry_from(&ENTRIES_END, Direction::Reverse)?;
        Ok(first.zip(last))
    }

    fn scan_entries(&self, from: u64, to: u64, visit: EntryVisitor<'_>) -> StorageResult<()> {
        let mut read_opts = ReadOptions::default();
        read_opts.set_iterate_upper_bound(entry_key(to).to_vec());
        let start = entry_key(from);
        let mode = IteratorMode::From(&start, Direction::Forward);
        for item in self.db.iterator_opt(mode, read_opts) {
            let (key, value) = item.map_err(|e| engine_error("iterating entries", e))?;
            visit(entry_index(&key)?, &value)?;
        }
        Ok(())
    }

    fn commit(&mut self, batch: &KvBatch, sync: bool) -> StorageResult<()> {
        let mut write = WriteBatch::default();
        for op in batch.ops() {
            match op {
                KvOp::PutEntry { idx, value } => write.put(entry_key(*idx), value),
                KvOp::DeleteEntries { from, to } => {
                    write.delete_range(entry_key(*from), entry_key(*to))
                }
                KvOp::PutMeta { key, value } => write.put(meta_key(*key), value),
                KvOp::DeleteMeta(key) => write.delete(meta_key(*key)),
            }
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        self.db.write_opt(write, &opts).map_err(|e| engine_error("writing a batch", e))
    }

    fn flush(&mut self) -> StorageResult<()> {
        self.db.flush_wal(true).map_err(|e| engine_error("syncing the WAL", e))
    }
}
