//! The RocksDB backend (feature `rocksdb`): the log and its metadata in one RocksDB
//! database, one directory per store.
//!
//! # Atomicity
//!
//! [`write_atomically`](Storage::write_atomically) validates the whole batch with
//! [`LogBounds::validate_batch`], builds **one** [`WriteBatch`] (puts, deletes and a
//! `delete_range` per truncation or trim, in op order) and applies it with one
//! [`DB::write_opt`]. RocksDB writes a `WriteBatch` to its write-ahead log as one record
//! and applies it atomically; on recovery (the default `kPointInTimeRecovery` WAL mode) a
//! torn last record is dropped whole. The cached bounds and ballots change only after
//! `write_opt` returned `Ok`.
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
//!
//! # Key layout (default column family)
//!
//! | key | value |
//! |---|---|
//! | `b"e"` ++ index as `u64` **big-endian** (9 bytes) | the entry at that absolute index, [`crate::codec`] (postcard) |
//! | `b"m:format"` | `b"paxstore-rocksdb/2"`: marks the database as a paxstore store of this layout |
//! | `b"m:compacted"` | `compacted_idx`, `u64` little-endian |
//! | `b"m:log_end"` | `log_end = compacted_idx + log_len`, `u64` little-endian |
//! | `b"m:decided"` | `decided_idx`, `u64` little-endian; `log_end + 1` when the stop sign is decided |
//! | `b"m:promise"` | the promised ballot, [`codec::ballot_to_bytes`] (20 bytes); absent = `None` |
//! | `b"m:accepted"` | the accepted round, 20 bytes; absent = `None` |
//! | `b"m:stopsign"` | the stop sign, codec; absent = `None` |
//! | `b"m:snapshot"` | the snapshot, codec; absent = `None` |
//!
//! Entry keys sort by index, so a range read is one forward iteration and a truncation
//! is one `delete_range`. Invariant: entry keys exist exactly for `[compacted, log_end)`;
//! [`RocksDbStorage::open`] checks the two ends, and that the bounds are a state the
//! contract allows ([`LogBounds::is_consistent`]).
//!
//! Layout 2 differs from layout 1 only in that `m:decided` may be `log_end + 1` (a
//! decided stop sign), which layout 1's `open` reports as corruption. `open` upgrades a
//! layout-1 store by rewriting its marker (one synced write) before anything else, so
//! an older paxstore refuses the store by its marker instead of misreading it.
//!
//! # Opening
//!
//! The path must be a directory that is absent or empty (a new store is created) or that
//! holds a RocksDB database (`CURRENT` present) carrying the `m:format` marker. Anything
//! else — a regular file, another backend's files, a RocksDB database of someone else, a
//! different marker — is [`StorageError::Unrecognized`]; a database RocksDB cannot open
//! (garbage in `CURRENT`, a read-only directory) is [`StorageError::Backend`] or
//! [`StorageError::Io`]. Nothing is created or removed in a path that is refused.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use paxstore::{
    Ballot, Durability, LogBounds, StopSign, Storage, StorageError, StorageOp, StorageResult,
};
use rocksdb::{Direction, IteratorMode, Options, ReadOptions, WriteBatch, WriteOptions, DB};

use crate::codec::{self, PersistentEntry};
use crate::fsutil::{self, sync_path, DirState};

const BACKEND: &str = "rocksdb";
const FORMAT_KEY: &[u8] = b"m:format";
const FORMAT_VALUE: &[u8] = b"paxstore-rocksdb/2";
/// Layout 1 is layout 2 that never holds a decided stop sign; it is upgraded at open.
const FORMAT_VALUE_V1: &[u8] = b"paxstore-rocksdb/1";
const KEY_COMPACTED: &[u8] = b"m:compacted";
const KEY_LOG_END: &[u8] = b"m:log_end";
const KEY_DECIDED: &[u8] = b"m:decided";
const KEY_PROMISE: &[u8] = b"m:promise";
const KEY_ACCEPTED: &[u8] = b"m:accepted";
const KEY_STOPSIGN: &[u8] = b"m:stopsign";
const KEY_SNAPSHOT: &[u8] = b"m:snapshot";
const ENTRY_PREFIX: u8 = b'e';

/// The key of the entry at absolute index `idx`: `b"e"` then `idx` as big-endian `u64`.
fn entry_key(idx: usize) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = ENTRY_PREFIX;
    key[1..].copy_from_slice(&(idx as u64).to_be_bytes());
    key
}

/// The index of an entry key, or `None` if `key` is not one.
fn index_of_key(key: &[u8]) -> Option<u64> {
    match key {
        [ENTRY_PREFIX, rest @ ..] => rest.try_into().ok().map(u64::from_be_bytes),
        _ => None,
    }
}

fn engine_error(context: &str, err: rocksdb::Error) -> StorageError {
    StorageError::Backend { backend: BACKEND, detail: format!("{context}: {err}") }
}

/// A [`Storage`] in a RocksDB database. See the [module docs](self) for the layout and
/// the durability each mode gives.
pub struct RocksDbStorage<T: PersistentEntry> {
    db: DB,
    path: PathBuf,
    durability: Durability,
    /// Set when an engine write failed in a way that leaves what is durable unknown.
    poisoned: Option<String>,
    /// Cached from disk; changed only after a write succeeded.
    bounds: LogBounds,
    promise: Option<Ballot>,
    accepted_round: Option<Ballot>,
    _entries: PhantomData<fn() -> T>,
}

impl<T: PersistentEntry> std::fmt::Debug for RocksDbStorage<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksDbStorage")
            .field("path", &self.path)
            .field("durability", &self.durability)
            .field("bounds", &self.bounds)
            .finish_non_exhaustive()
    }
}

fn unrecognized(path: &Path, detail: impl Into<String>) -> StorageError {
    fsutil::unrecognized(path, BACKEND, detail)
}

/// Checks what `path` holds before RocksDB touches it; creates it if absent.
fn inspect_dir(path: &Path) -> StorageResult<DirState> {
    let Some(names) = fsutil::list_store_dir(path, BACKEND)? else {
        return Ok(DirState::Fresh);
    };
    if names.is_empty() {
        return Ok(DirState::Fresh);
    }
    if names.iter().any(|n| n == "CURRENT") {
        return Ok(DirState::Existing);
    }
    Err(fsutil::foreign_dir(path, BACKEND, "a RocksDB CURRENT file", names))
}

impl<T: PersistentEntry> RocksDbStorage<T> {
    /// Opens the store in directory `path`, creating it if `path` is absent or empty.
    ///
    /// Errors: [`StorageError::Unrecognized`] if `path` holds anything but a paxstore
    /// RocksDB store; [`StorageError::Backend`] if RocksDB refuses to open or read it;
    /// [`StorageError::Corruption`] or [`StorageError::Codec`] if the stored metadata is
    /// inconsistent.
    pub fn open(path: &Path, durability: Durability) -> StorageResult<Self> {
        let state = inspect_dir(path)?;
        let mut opts = Options::default();
        opts.create_if_missing(state == DirState::Fresh);
        opts.set_keep_log_file_num(4);
        let db = DB::open(&opts, path)
            .map_err(|e| engine_error(&format!("opening {}", path.display()), e))?;
        let mut storage = RocksDbStorage {
            db,
            path: path.to_owned(),
            durability,
            poisoned: None,
            bounds: LogBounds::default(),
            promise: None,
            accepted_round: None,
            _entries: PhantomData,
        };
        storage.check_format(state)?;
        if state == DirState::Fresh {
            // RocksDB syncs the files it creates inside `path`; the entry of `path` itself
            // (which may have just been created above) lives in the parent.
            sync_path(path)?;
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_path(parent)?;
            }
        }
        storage.load()?;
        Ok(storage)
    }

    fn write_options(&self) -> WriteOptions {
        let mut opts = WriteOptions::default();
        opts.set_sync(self.durability == Durability::Immediate);
        opts
    }

    fn check_poisoned(&self) -> StorageResult<()> {
        match &self.poisoned {
            Some(reason) => Err(StorageError::Poisoned { reason: reason.clone() }),
            None => Ok(()),
        }
    }

    fn get_raw(&self, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        self.db
            .get(key)
            .map_err(|e| engine_error(&format!("reading key {}", String::from_utf8_lossy(key)), e))
    }

    /// Recognises our own store, and marks a brand-new (keyless) database as ours.
    fn check_format(&self, state: DirState) -> StorageResult<()> {
        match self.get_raw(FORMAT_KEY)? {
            Some(value) if value == FORMAT_VALUE => Ok(()),
            Some(value) if value == FORMAT_VALUE_V1 => self.write_format_marker(),
            Some(value) => Err(unrecognized(
                &self.path,
                format!(
                    "format marker {:?}, expected {:?}",
                    String::from_utf8_lossy(&value),
                    String::from_utf8_lossy(FORMAT_VALUE)
                ),
            )),
            None => {
                // Only a store created by this call is marked; an existing database without
                // the marker is refused, never adopted.
                if state == DirState::Existing {
                    return Err(unrecognized(&self.path, "a RocksDB database without the paxstore format marker (not a paxstore store, data RocksDB could not read, or a creation that crashed before its marker was written; remove the directory to start afresh)"));
                }
                self.write_format_marker()
            }
        }
    }

    /// Writes the format marker of this layout, synced.
    fn write_format_marker(&self) -> StorageResult<()> {
        let mut batch = WriteBatch::default();
        batch.put(FORMAT_KEY, FORMAT_VALUE);
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db.write_opt(batch, &opts).map_err(|e| engine_error("writing the format marker", e))
    }

    fn get_index(&self, key: &'static [u8]) -> StorageResult<usize> {
        match self.get_raw(key)? {
            None => Ok(0),
            Some(bytes) => {
                let what = "stored index";
                codec::index_from_u64(what, codec::u64_from_le(what, &bytes)?)
            }
        }
    }

    fn get_ballot(&self, key: &[u8]) -> StorageResult<Option<Ballot>> {
        self.get_raw(key)?.map(|bytes| codec::ballot_from_bytes(&bytes)).transpose()
    }

    /// Fills the caches from disk and checks the ends of the log against the bounds.
    fn load(&mut self) -> StorageResult<()> {
        let bounds = LogBounds {
            compacted_idx: self.get_index(KEY_COMPACTED)?,
            log_end: self.get_index(KEY_LOG_END)?,
            decided_idx: self.get_index(KEY_DECIDED)?,
            has_stopsign: self.get_raw(KEY_STOPSIGN)?.is_some(),
        };
        if !bounds.is_consistent() {
            return Err(StorageError::Corruption {
                location: format!(
                    "{} (m:compacted, m:log_end, m:decided, m:stopsign)",
                    self.path.display()
                ),
                detail: format!("inconsistent bounds {bounds:?}"),
            });
        }
        let first = self.first_entry_index()?;
        let expected_first = (bounds.log_len() > 0).then_some(bounds.compacted_idx as u64);
        let last_ok = bounds.log_len() == 0
            || self.get_raw(&entry_key(bounds.log_end - 1))?.is_some()
                && self.get_raw(&entry_key(bounds.log_end))?.is_none();
        if first != expected_first || !last_ok {
            return Err(StorageError::Corruption {
                location: format!("{} (entry keys)", self.path.display()),
                detail: format!(
                    "entries do not span [{}, {}): first stored index is {first:?}",
                    bounds.compacted_idx, bounds.log_end
                ),
            });
        }
        self.bounds = bounds;
        self.promise = self.get_ballot(KEY_PROMISE)?;
        self.accepted_round = self.get_ballot(KEY_ACCEPTED)?;
        Ok(())
    }

    fn first_entry_index(&self) -> StorageResult<Option<u64>> {
        let mut iter = self.db.iterator(IteratorMode::From(&[ENTRY_PREFIX], Direction::Forward));
        match iter.next() {
            None => Ok(None),
            Some(item) => {
                let (key, _) = item.map_err(|e| engine_error("iterating entries", e))?;
                Ok(index_of_key(&key))
            }
        }
    }

    /// Adds the puts of `entries` at `start..` to `batch`.
    fn put_entries<'a>(
        batch: &mut WriteBatch,
        start: usize,
        entries: impl IntoIterator<Item = &'a T>,
        buf: &mut Vec<u8>,
    ) -> StorageResult<()> {
        for (offset, entry) in entries.into_iter().enumerate() {
            buf.clear();
            codec::encode_into("entry", entry, buf)?;
            batch.put(entry_key(start + offset), &buf[..]);
        }
        Ok(())
    }

    fn delete_entries(batch: &mut WriteBatch, from: usize, to: usize) {
        if from < to {
            batch.delete_range(entry_key(from), entry_key(to));
        }
    }
}

impl<T: PersistentEntry> Storage<T> for RocksDbStorage<T> {
    fn write_atomically(&mut self, ops: Vec<StorageOp<T>>) -> StorageResult<()> {
        self.check_poisoned()?;
        let end_bounds = self.bounds.validate_batch(&ops)?;
        if ops.is_empty() {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        let mut buf = Vec::new();
        let mut bounds = self.bounds;
        let mut promise = self.promise;
        let mut accepted_round = self.accepted_round;
        for (position, op) in ops.iter().enumerate() {
            let before = bounds;
            bounds.apply(op).map_err(|reason| StorageError::InvalidOp { position, reason })?;
            match op {
                StorageOp::AppendEntry(entry) => {
                    Self::put_entries(&mut batch, before.log_end, [entry], &mut buf)?
                }
                StorageOp::AppendEntries(entries) => {
                    Self::put_entries(&mut batch, before.log_end, entries, &mut buf)?
                }
                StorageOp::AppendOnPrefix(from_idx, entries) => {
                    Self::delete_entries(&mut batch, *from_idx, before.log_end);
                    Self::put_entries(&mut batch, *from_idx, entries, &mut buf)?;
                }
                StorageOp::Trim(idx) | StorageOp::SetCompactedIdx(idx) => {
                    let to = (*idx).min(before.log_end);
                    Self::delete_entries(&mut batch, before.compacted_idx, to);
                }
                StorageOp::SetPromise(ballot) => promise = Some(*ballot),
                StorageOp::SetAcceptedRound(ballot) => accepted_round = Some(*ballot),
                StorageOp::SetDecidedIndex(_) => {}
                StorageOp::SetStopsign(None) => batch.delete(KEY_STOPSIGN),
                StorageOp::SetStopsign(Some(stopsign)) => {
                    batch.put(KEY_STOPSIGN, codec::encode("stopsign", stopsign)?)
                }
                StorageOp::SetSnapshot(None) => batch.delete(KEY_SNAPSHOT),
                StorageOp::SetSnapshot(Some(snapshot)) => {
                    batch.put(KEY_SNAPSHOT, codec::encode("snapshot", snapshot)?)
                }
            }
        }
        debug_assert_eq!(bounds, end_bounds);
        if bounds.compacted_idx != self.bounds.compacted_idx {
            batch.put(KEY_COMPACTED, (bounds.compacted_idx as u64).to_le_bytes());
        }
        if bounds.log_end != self.bounds.log_end {
            batch.put(KEY_LOG_END, (bounds.log_end as u64).to_le_bytes());
        }
        if bounds.decided_idx != self.bounds.decided_idx {
            batch.put(KEY_DECIDED, (bounds.decided_idx as u64).to_le_bytes());
        }
        if promise != self.promise {
            if let Some(ballot) = &promise {
                batch.put(KEY_PROMISE, codec::ballot_to_bytes(ballot));
            }
        }
        if accepted_round != self.accepted_round {
            if let Some(ballot) = &accepted_round {
                batch.put(KEY_ACCEPTED, codec::ballot_to_bytes(ballot));
            }
        }
        if let Err(err) = self.db.write_opt(batch, &self.write_options()) {
            // RocksDB may have written the WAL record but failed its sync: what is durable
            // is unknown until a reopen recovers it.
            self.poisoned = Some(format!("RocksDB write failed: {err}"));
            return Err(engine_error("writing a batch", err));
        }
        self.bounds = bounds;
        self.promise = promise;
        self.accepted_round = accepted_round;
        Ok(())
    }

    fn get_entries(&self, from: usize, to: usize) -> StorageResult<Vec<T>> {
        self.check_poisoned()?;
        self.bounds.check_range("get_entries", from, to)?;
        let mut out = Vec::with_capacity(to - from);
        if from == to {
            return Ok(out);
        }
        let mut read_opts = ReadOptions::default();
        read_opts.set_iterate_upper_bound(entry_key(to).to_vec());
        let start = entry_key(from);
        let iter = self.db.iterator_opt(IteratorMode::From(&start, Direction::Forward), read_opts);
        for item in iter {
            let (key, value) = item.map_err(|e| engine_error("iterating entries", e))?;
            let expected = (from + out.len()) as u64;
            if index_of_key(&key) != Some(expected) {
                return Err(missing_entry(&self.path, expected, &key));
            }
            out.push(codec::decode("entry", &value)?);
        }
        if out.len() != to - from {
            let expected = (from + out.len()) as u64;
            return Err(missing_entry(&self.path, expected, b"(end of entries)"));
        }
        Ok(out)
    }

    fn get_log_len(&self) -> StorageResult<usize> {
        self.check_poisoned()?;
        Ok(self.bounds.log_len())
    }

    fn get_decided_idx(&self) -> StorageResult<usize> {
        self.check_poisoned()?;
        Ok(self.bounds.decided_idx)
    }

    fn get_promise(&self) -> StorageResult<Option<Ballot>> {
        self.check_poisoned()?;
        Ok(self.promise)
    }

    fn get_accepted_round(&self) -> StorageResult<Option<Ballot>> {
        self.check_poisoned()?;
        Ok(self.accepted_round)
    }

    fn get_compacted_idx(&self) -> StorageResult<usize> {
        self.check_poisoned()?;
        Ok(self.bounds.compacted_idx)
    }

    fn get_stopsign(&self) -> StorageResult<Option<StopSign>> {
        self.check_poisoned()?;
        self.get_raw(KEY_STOPSIGN)?.map(|bytes| codec::decode("stopsign", &bytes)).transpose()
    }

    fn get_snapshot(&self) -> StorageResult<Option<T::Snapshot>> {
        self.check_poisoned()?;
        self.get_raw(KEY_SNAPSHOT)?.map(|bytes| codec::decode("snapshot", &bytes)).transpose()
    }
}

fn missing_entry(path: &Path, expected: u64, found: &[u8]) -> StorageError {
    StorageError::Corruption {
        location: format!("{} (entry key e/{expected})", path.display()),
        detail: format!(
            "entry {expected} is missing inside the stored log; next key found: {}",
            String::from_utf8_lossy(found)
        ),
    }
}
