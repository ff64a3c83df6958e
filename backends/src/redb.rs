//! The redb backend (feature `redb`, the redb 4 line): the log and its metadata in two
//! tables of one redb file, `<dir>/paxstore.redb`, one directory per store.
//!
//! # Atomicity
//!
//! [`write_atomically`](Storage::write_atomically) validates the whole batch with
//! [`LogBounds::validate_batch`], then applies every op in **one** redb write transaction
//! and commits it once. redb's copy-on-write B-trees and its commit slots make a commit
//! atomic across crashes: after a crash, reopening finds the last committed transaction
//! (repairing the allocator state if needed), never part of one. A transaction that is
//! dropped on an early error is aborted. The cached bounds and ballots change only after
//! `commit` returned `Ok`.
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
//! `Buffered` costs the same as `Immediate` on this backend. Commits use redb's default
//! one-phase commit with checksums (not `set_two_phase_commit`); redb's docs note that
//! its guarantees rely on `fsync` reaching stable media.
//!
//! # Table layout
//!
//! | table | key | value |
//! |---|---|---|
//! | `entries` | absolute index as `[u8; 8]`, `u64` **big-endian** | the entry, [`crate::codec`] (postcard) |
//! | `meta` | `"format"` | `b"paxstore-redb/2"`: marks the file as a paxstore store of this layout |
//! | `meta` | `"compacted"`, `"log_end"`, `"decided"` | the index, `u64` little-endian (`decided` is `log_end + 1` when the stop sign is decided) |
//! | `meta` | `"promise"`, `"accepted"` | the ballot, [`codec::ballot_to_bytes`] (20 bytes); absent = `None` |
//! | `meta` | `"stopsign"`, `"snapshot"` | the value, codec; absent = `None` |
//!
//! Invariant: entry keys exist exactly for `[compacted, log_end)`; truncation and
//! trimming remove a key range with `Table::retain_in`, and [`RedbStorage::open`] checks
//! the two ends of the log, and that the bounds are a state the contract allows
//! ([`LogBounds::is_consistent`]).
//!
//! Layout 2 differs from layout 1 only in that `decided` may be `log_end + 1` (a decided
//! stop sign), which layout 1's `open` reports as corruption. `open` upgrades a layout-1
//! store by rewriting its marker (one committed transaction) before anything else, so an
//! older paxstore refuses the store by its marker instead of misreading it.
//!
//! # Opening
//!
//! The path must be a directory that is absent or empty (a new store is created) or that
//! holds `paxstore.redb`, a redb file carrying the `format` marker. Anything else — a
//! regular file, another backend's files, a redb file of someone else, a different
//! marker — is [`StorageError::Unrecognized`]; a file redb cannot open (garbage bytes, a
//! read-only directory or file) is [`StorageError::Backend`] or [`StorageError::Io`].
//! Nothing is created or removed in a path that is refused. An empty `paxstore.redb`
//! (a creation that crashed before redb wrote its header) is initialised as new.

use std::fs;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use paxstore::{
    Ballot, Durability, LogBounds, StopSign, Storage, StorageError, StorageOp, StorageResult,
};
use redb::{
    Database, ReadableDatabase, ReadableTable, TableDefinition, TableHandle, WriteTransaction,
};

use crate::codec::{self, PersistentEntry};
use crate::fsutil::{self, sync_path, DirState};

const BACKEND: &str = "redb";
/// The file of the store inside its directory.
pub const FILE_NAME: &str = "paxstore.redb";
const ENTRIES: TableDefinition<[u8; 8], &[u8]> = TableDefinition::new("entries");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const FORMAT_KEY: &str = "format";
const FORMAT_VALUE: &[u8] = b"paxstore-redb/2";
/// Layout 1 is layout 2 that never holds a decided stop sign; it is upgraded at open.
const FORMAT_VALUE_V1: &[u8] = b"paxstore-redb/1";
const KEY_COMPACTED: &str = "compacted";
const KEY_LOG_END: &str = "log_end";
const KEY_DECIDED: &str = "decided";
const KEY_PROMISE: &str = "promise";
const KEY_ACCEPTED: &str = "accepted";
const KEY_STOPSIGN: &str = "stopsign";
const KEY_SNAPSHOT: &str = "snapshot";

/// The key of the entry at absolute index `idx`: `idx` as big-endian `u64`.
fn entry_key(idx: usize) -> [u8; 8] {
    (idx as u64).to_be_bytes()
}

fn engine_error(context: &str, err: impl std::fmt::Display) -> StorageError {
    StorageError::Backend { backend: BACKEND, detail: format!("{context}: {err}") }
}

/// Maps an error writing meta key `key`.
fn meta_err(key: &'static str) -> impl Fn(redb::StorageError) -> StorageError {
    move |e| engine_error(&format!("writing meta {key}"), e)
}

fn unrecognized(path: &Path, detail: impl Into<String>) -> StorageError {
    fsutil::unrecognized(path, BACKEND, detail)
}

/// Checks what `path` holds before redb touches it; creates it if absent.
fn inspect_dir(path: &Path) -> StorageResult<DirState> {
    let Some(names) = fsutil::list_store_dir(path, BACKEND)? else {
        return Ok(DirState::Fresh);
    };
    if names.is_empty() {
        return Ok(DirState::Fresh);
    }
    if names.iter().any(|n| n == FILE_NAME) {
        // An empty file is a creation that crashed before redb wrote its header: there
        // is nothing to lose, so it is created afresh (redb initialises an empty file).
        let file = path.join(FILE_NAME);
        let len = fs::metadata(&file)
            .map_err(|e| StorageError::io(format!("reading metadata of {}", file.display()), e))?
            .len();
        return Ok(if len == 0 && names.len() == 1 { DirState::Fresh } else { DirState::Existing });
    }
    Err(fsutil::foreign_dir(path, BACKEND, FILE_NAME, names))
}

/// A [`Storage`] in a redb file. See the [module docs](self) for the layout and the
/// durability each mode gives.
pub struct RedbStorage<T: PersistentEntry> {
    db: Database,
    path: PathBuf,
    durability: Durability,
    /// Set when a commit failed in a way that leaves what is durable unknown.
    poisoned: Option<String>,
    /// Cached from disk; changed only after a commit succeeded.
    bounds: LogBounds,
    promise: Option<Ballot>,
    accepted_round: Option<Ballot>,
    _entries: PhantomData<fn() -> T>,
}

impl<T: PersistentEntry> std::fmt::Debug for RedbStorage<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStorage")
            .field("path", &self.path)
            .field("durability", &self.durability)
            .field("bounds", &self.bounds)
            .finish_non_exhaustive()
    }
}

/// The stored metadata as read in one transaction.
struct Loaded {
    bounds: LogBounds,
    promise: Option<Ballot>,
    accepted_round: Option<Ballot>,
}

impl<T: PersistentEntry> RedbStorage<T> {
    /// Opens the store in directory `path`, creating it if `path` is absent or empty.
    ///
    /// Errors: [`StorageError::Unrecognized`] if `path` holds anything but a paxstore redb
    /// store; [`StorageError::Backend`] if redb refuses to open or read it;
    /// [`StorageError::Corruption`] or [`StorageError::Codec`] if the stored metadata is
    /// inconsistent.
    pub fn open(path: &Path, durability: Durability) -> StorageResult<Self> {
        let state = inspect_dir(path)?;
        let file = path.join(FILE_NAME);
        let db = match state {
            DirState::Fresh => Database::create(&file),
            DirState::Existing => Database::open(&file),
        }
        .map_err(|e| engine_error(&format!("opening {}", file.display()), e))?;
        if state == DirState::Fresh {
            sync_path(path)?;
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_path(parent)?;
            }
        }
        let mut storage = RedbStorage {
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
        let loaded = storage.load()?;
        storage.bounds = loaded.bounds;
        storage.promise = loaded.promise;
        storage.accepted_round = loaded.accepted_round;
        Ok(storage)
    }

    fn begin_write(&self) -> StorageResult<WriteTransaction> {
        let mut txn = self.db.begin_write().map_err(|e| engine_error("beginning a write", e))?;
        // `Buffered` also commits with `Immediate`: see the module docs.
        txn.set_durability(redb::Durability::Immediate)
            .map_err(|e| engine_error("setting commit durability", e))?;
        Ok(txn)
    }

    /// Recognises our own store, and marks a brand-new (tableless) file as ours.
    fn check_format(&self, state: DirState) -> StorageResult<()> {
        let read = self.db.begin_read().map_err(|e| engine_error("beginning a read", e))?;
        let tables: Vec<String> = read
            .list_tables()
            .map_err(|e| engine_error("listing tables", e))?
            .map(|t| t.name().to_owned())
            .collect();
        if tables.is_empty() && state == DirState::Existing {
            return Err(unrecognized(&self.path, "a redb database without the paxstore format marker (not a paxstore store, data redb could not read, or a creation that crashed before its marker was written; remove the directory to start afresh)"));
        }
        if tables.is_empty() {
            drop(read);
            return self.write_format_marker();
        }
        let has_meta = tables.iter().any(|t| t == META.name());
        let marker = if has_meta {
            let meta = read.open_table(META).map_err(|e| {
                unrecognized(&self.path, format!("a redb file whose meta table is not ours: {e}"))
            })?;
            let value = meta
                .get(FORMAT_KEY)
                .map_err(|e| engine_error("reading the format marker", e))?
                .map(|v| v.value().to_vec());
            value
        } else {
            None
        };
        match marker {
            Some(value) if value == FORMAT_VALUE => Ok(()),
            Some(value) if value == FORMAT_VALUE_V1 => {
                drop(read);
                self.write_format_marker()
            }
            Some(value) => Err(unrecognized(
                &self.path,
                format!(
                    "format marker {:?}, expected {:?}",
                    String::from_utf8_lossy(&value),
                    String::from_utf8_lossy(FORMAT_VALUE)
                ),
            )),
            None => Err(unrecognized(
                &self.path,
                format!(
                    "a redb file with tables ({}) but no paxstore format marker",
                    tables.join(", ")
                ),
            )),
        }
    }

    /// Writes the format marker of this layout (creating both tables if absent) in one
    /// committed transaction.
    fn write_format_marker(&self) -> StorageResult<()> {
        let txn = self.begin_write()?;
        {
            let mut meta = txn.open_table(META).map_err(|e| engine_error("opening meta", e))?;
            meta.insert(FORMAT_KEY, FORMAT_VALUE)
                .map_err(|e| engine_error("writing the format marker", e))?;
            txn.open_table(ENTRIES).map_err(|e| engine_error("creating entries", e))?;
        }
        txn.commit().map_err(|e| engine_error("committing the format marker", e))
    }

    /// Reads the metadata and checks the ends of the log against the bounds.
    fn load(&self) -> StorageResult<Loaded> {
        let read = self.db.begin_read().map_err(|e| engine_error("beginning a read", e))?;
        let meta = read.open_table(META).map_err(|e| engine_error("opening meta", e))?;
        let entries = read.open_table(ENTRIES).map_err(|e| engine_error("opening entries", e))?;
        let raw = |key: &str| -> StorageResult<Option<Vec<u8>>> {
            Ok(meta
                .get(key)
                .map_err(|e| engine_error(&format!("reading meta {key}"), e))?
                .map(|v| v.value().to_vec()))
        };
        let index = |key: &str| -> StorageResult<usize> {
            match raw(key)? {
                None => Ok(0),
                Some(bytes) => {
                    let what = "stored index";
                    codec::index_from_u64(what, codec::u64_from_le(what, &bytes)?)
                }
            }
        };
        let ballot = |key: &str| -> StorageResult<Option<Ballot>> {
            raw(key)?.map(|bytes| codec::ballot_from_bytes(&bytes)).transpose()
        };
        let bounds = LogBounds {
            compacted_idx: index(KEY_COMPACTED)?,
            log_end: index(KEY_LOG_END)?,
            decided_idx: index(KEY_DECIDED)?,
            has_stopsign: raw(KEY_STOPSIGN)?.is_some(),
        };
        if !bounds.is_consistent() {
            return Err(StorageError::Corruption {
                location: format!(
                    "{} (meta compacted, log_end, decided, stopsign)",
                    self.path.display()
                ),
                detail: format!("inconsistent bounds {bounds:?}"),
            });
        }
        let first = entries
            .first()
            .map_err(|e| engine_error("reading the first entry", e))?
            .map(|(k, _)| u64::from_be_bytes(k.value()));
        let last = entries
            .last()
            .map_err(|e| engine_error("reading the last entry", e))?
            .map(|(k, _)| u64::from_be_bytes(k.value()));
        let expected = (bounds.log_len() > 0)
            .then(|| (bounds.compacted_idx as u64, bounds.log_end as u64 - 1));
        if first.zip(last) != expected {
            return Err(StorageError::Corruption {
                location: format!("{} (table entries)", self.path.display()),
                detail: format!(
                    "entries do not span [{}, {}): stored keys run from {first:?} to {last:?}",
                    bounds.compacted_idx, bounds.log_end
                ),
            });
        }
        Ok(Loaded { bounds, promise: ballot(KEY_PROMISE)?, accepted_round: ballot(KEY_ACCEPTED)? })
    }

    fn check_poisoned(&self) -> StorageResult<()> {
        match &self.poisoned {
            Some(reason) => Err(StorageError::Poisoned { reason: reason.clone() }),
            None => Ok(()),
        }
    }

    fn get_meta(&self, key: &str) -> StorageResult<Option<Vec<u8>>> {
        self.check_poisoned()?;
        let read = self.db.begin_read().map_err(|e| engine_error("beginning a read", e))?;
        let meta = read.open_table(META).map_err(|e| engine_error("opening meta", e))?;
        let value = meta
            .get(key)
            .map_err(|e| engine_error(&format!("reading meta {key}"), e))?
            .map(|v| v.value().to_vec());
        Ok(value)
    }

    /// Writes `ops` into `txn`; returns the bounds and ballots after them. Called with a
    /// batch that [`LogBounds::validate_batch`] accepted.
    fn stage(
        &self,
        txn: &WriteTransaction,
        ops: &[StorageOp<T>],
    ) -> StorageResult<(LogBounds, Option<Ballot>, Option<Ballot>)> {
        let mut entries =
            txn.open_table(ENTRIES).map_err(|e| engine_error("opening entries", e))?;
        let mut meta = txn.open_table(META).map_err(|e| engine_error("opening meta", e))?;
        let mut bounds = self.bounds;
        let mut promise = self.promise;
        let mut accepted_round = self.accepted_round;
        let mut buf = Vec::new();
        let put = |table: &mut redb::Table<[u8; 8], &[u8]>,
                   idx: usize,
                   entry: &T,
                   buf: &mut Vec<u8>|
         -> StorageResult<()> {
            buf.clear();
            codec::encode_into("entry", entry, buf)?;
            table
                .insert(entry_key(idx), buf.as_slice())
                .map_err(|e| engine_error(&format!("inserting entry {idx}"), e))?;
            Ok(())
        };
        let delete = |table: &mut redb::Table<[u8; 8], &[u8]>,
                      from: usize,
                      to: usize|
         -> StorageResult<()> {
            if from < to {
                table
                    .retain_in(entry_key(from)..entry_key(to), |_, _| false)
                    .map_err(|e| engine_error(&format!("removing entries [{from}, {to})"), e))?;
            }
            Ok(())
        };
        for (position, op) in ops.iter().enumerate() {
            let before = bounds;
            bounds.apply(op).map_err(|reason| StorageError::InvalidOp { position, reason })?;
            match op {
                StorageOp::AppendEntry(entry) => {
                    put(&mut entries, before.log_end, entry, &mut buf)?
                }
                StorageOp::AppendEntries(es) => {
                    for (offset, entry) in es.iter().enumerate() {
                        put(&mut entries, before.log_end + offset, entry, &mut buf)?;
                    }
                }
                StorageOp::AppendOnPrefix(from_idx, es) => {
                    delete(&mut entries, *from_idx, before.log_end)?;
                    for (offset, entry) in es.iter().enumerate() {
                        put(&mut entries, from_idx + offset, entry, &mut buf)?;
                    }
                }
                StorageOp::Trim(idx) | StorageOp::SetCompactedIdx(idx) => {
                    delete(&mut entries, before.compacted_idx, (*idx).min(before.log_end))?;
                }
                StorageOp::SetPromise(ballot) => promise = Some(*ballot),
                StorageOp::SetAcceptedRound(ballot) => accepted_round = Some(*ballot),
                StorageOp::SetDecidedIndex(_) => {}
                StorageOp::SetStopsign(None) => {
                    meta.remove(KEY_STOPSIGN).map_err(meta_err(KEY_STOPSIGN))?;
                }
                StorageOp::SetStopsign(Some(stopsign)) => {
                    let bytes = codec::encode("stopsign", stopsign)?;
                    meta.insert(KEY_STOPSIGN, bytes.as_slice()).map_err(meta_err(KEY_STOPSIGN))?;
                }
                StorageOp::SetSnapshot(None) => {
                    meta.remove(KEY_SNAPSHOT).map_err(meta_err(KEY_SNAPSHOT))?;
                }
                StorageOp::SetSnapshot(Some(snapshot)) => {
                    let bytes = codec::encode("snapshot", snapshot)?;
                    meta.insert(KEY_SNAPSHOT, bytes.as_slice()).map_err(meta_err(KEY_SNAPSHOT))?;
                }
            }
        }
        let indices = [
            (KEY_COMPACTED, bounds.compacted_idx, self.bounds.compacted_idx),
            (KEY_LOG_END, bounds.log_end, self.bounds.log_end),
            (KEY_DECIDED, bounds.decided_idx, self.bounds.decided_idx),
        ];
        for (key, new, old) in indices {
            if new != old {
                meta.insert(key, &(new as u64).to_le_bytes()[..]).map_err(meta_err(key))?;
            }
        }
        for (key, new, old) in [
            (KEY_PROMISE, promise, self.promise),
            (KEY_ACCEPTED, accepted_round, self.accepted_round),
        ] {
            if let Some(ballot) = new.filter(|_| new != old) {
                meta.insert(key, &codec::ballot_to_bytes(&ballot)[..]).map_err(meta_err(key))?;
            }
        }
        Ok((bounds, promise, accepted_round))
    }
}

impl<T: PersistentEntry> Storage<T> for RedbStorage<T> {
    fn write_atomically(&mut self, ops: Vec<StorageOp<T>>) -> StorageResult<()> {
        self.check_poisoned()?;
        let end_bounds = self.bounds.validate_batch(&ops)?;
        if ops.is_empty() {
            return Ok(());
        }
        let txn = self.begin_write()?;
        // On an error here the transaction is dropped, which aborts it.
        let (bounds, promise, accepted_round) = self.stage(&txn, &ops)?;
        debug_assert_eq!(bounds, end_bounds);
        if let Err(err) = txn.commit() {
            let reason = format!("redb commit failed: {err}");
            self.poisoned = Some(reason.clone());
            return Err(engine_error("committing a batch", err));
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
        let read = self.db.begin_read().map_err(|e| engine_error("beginning a read", e))?;
        let entries = read.open_table(ENTRIES).map_err(|e| engine_error("opening entries", e))?;
        let range = entries
            .range(entry_key(from)..entry_key(to))
            .map_err(|e| engine_error("reading entries", e))?;
        for item in range {
            let (key, value) = item.map_err(|e| engine_error("reading entries", e))?;
            let expected = (from + out.len()) as u64;
            let found = u64::from_be_bytes(key.value());
            if found != expected {
                return Err(missing_entry(&self.path, expected, Some(found)));
            }
            out.push(codec::decode("entry", value.value())?);
        }
        if out.len() != to - from {
            return Err(missing_entry(&self.path, (from + out.len()) as u64, None));
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
        self.get_meta(KEY_STOPSIGN)?.map(|bytes| codec::decode("stopsign", &bytes)).transpose()
    }

    fn get_snapshot(&self) -> StorageResult<Option<T::Snapshot>> {
        self.get_meta(KEY_SNAPSHOT)?.map(|bytes| codec::decode("snapshot", &bytes)).transpose()
    }
}

fn missing_entry(path: &Path, expected: u64, found: Option<u64>) -> StorageError {
    StorageError::Corruption {
        location: format!("{}/{FILE_NAME} (entries key {expected})", path.display()),
        detail: format!(
            "entry {expected} is missing inside the stored log; next key found: {found:?}"
        ),
    }
}
