//! The sled backend (feature `sled`, the stable sled 0.34 line): the log and its
//! metadata in the default tree of one sled database, one directory per store.
//!
//! # Atomicity
//!
//! [`write_atomically`](Storage::write_atomically) validates the whole batch with
//! [`LogBounds::validate_batch`], builds **one** [`sled::Batch`] (inserts and removes in op
//! order; a batch keeps the last write of each key, which is what applying the ops in
//! order leaves) and applies it with one [`sled::Tree::apply_batch`], which sled makes
//! atomic across crashes with a batch manifest in its log. The cached bounds and ballots
//! change only after the batch and the flush below returned `Ok`.
//!
//! # Durability
//!
//! sled keeps a batch in its in-memory I/O buffers until a flush (its background thread
//! flushes every 500 ms), so **both** modes call [`sled::Db::flush`] after the batch.
//!
//! | mode | engine calls | guarantee |
//! |---|---|---|
//! | [`Durability::Buffered`] | `apply_batch` + `flush()` | the batch is in the `db` file, written with `pwrite(2)`: it survives a process crash |
//! | [`Durability::Immediate`] | `apply_batch` + `flush()` + `fdatasync` of the `db` file (and of every new file in `blobs/` plus the `blobs/` directory) by this backend | survives power loss |
//!
//! Caveat, measured and read in sled 0.34.7's source (`pagecache/iobuf.rs`): although
//! sled's docs say `flush` "calls fsync", on Linux it calls `sync_file_range(2)`
//! (`WAIT_BEFORE | WRITE | WAIT_AFTER`), which starts and waits for writeback of the
//! written range but neither writes file metadata nor flushes the disk's volatile cache,
//! so it is not durable against power loss. Values too large for a sled segment
//! (about 128 KiB with the default 512 KiB segments) go to separate files in `blobs/`,
//! which sled writes without any sync. This backend therefore opens its own handle to
//! the `db` file and fdatasyncs it after every flush in `Immediate` mode (fdatasync is
//! per file, not per descriptor, so it covers sled's writes), and fdatasyncs each blob
//! file it has not synced before and then the `blobs/` directory. When a store is
//! created, `conf`, `db`, `blobs/`, the store directory and its parent are synced too.
//! sled 0.34 itself calls its on-disk format beta; its crash recovery is the engine's.
//!
//! # Key layout (default tree)
//!
//! | key | value |
//! |---|---|
//! | `b"e"` ++ index as `u64` **big-endian** (9 bytes) | the entry at that absolute index, [`crate::codec`] (postcard) |
//! | `b"m:format"` | `b"paxstore-sled/2"`: marks the tree as a paxstore store of this layout |
//! | `b"m:compacted"` | `compacted_idx`, `u64` little-endian |
//! | `b"m:log_end"` | `log_end = compacted_idx + log_len`, `u64` little-endian |
//! | `b"m:decided"` | `decided_idx`, `u64` little-endian; `log_end + 1` when the stop sign is decided |
//! | `b"m:promise"` | the promised ballot, [`codec::ballot_to_bytes`] (20 bytes); absent = `None` |
//! | `b"m:accepted"` | the accepted round, 20 bytes; absent = `None` |
//! | `b"m:stopsign"` | the stop sign, codec; absent = `None` |
//! | `b"m:snapshot"` | the snapshot, codec; absent = `None` |
//!
//! Invariant: entry keys exist exactly for `[compacted, log_end)`, so truncating or
//! trimming removes each key of the range that the bounds say exists (sled has no range
//! delete); [`SledStorage::open`] checks the two ends of the log, and that the bounds are
//! a state the contract allows ([`LogBounds::is_consistent`]).
//!
//! Layout 2 differs from layout 1 only in that `m:decided` may be `log_end + 1` (a
//! decided stop sign), which layout 1's `open` reports as corruption. `open` upgrades a
//! layout-1 store by rewriting its `m:format` key (flushed and synced) before anything
//! else, so an older paxstore refuses the store by its marker instead of misreading it.
//! The marker file (below) names the directory, not the layout, and is unchanged.
//!
//! # Opening
//!
//! The path must be a directory that is absent or empty (a new store is created) or that
//! holds the marker file `paxstore-sled` (content `paxstore-sled/1\n`, written and synced
//! before sled creates its files) beside sled's `conf` and `db`, and whose tree carries
//! the `m:format` key. The marker file is checked **before** sled opens anything, because
//! sled 0.34 does not refuse a data file it cannot parse: it recovers it as an empty tree
//! and overwrites the unreadable segments (measured: a garbage `db` beside a valid `conf`
//! is rewritten on open). So anything without the marker file — a regular file, another
//! backend's files, someone else's sled database, garbage — is
//! [`StorageError::Unrecognized`] and left untouched. A directory with the marker file
//! whose tree lacks the `m:format` key (our store with a corrupted `db`, which sled has
//! then already rewritten) is refused too, never adopted as a new store. A database sled
//! cannot open (a read-only directory, a corrupt `conf`) is [`StorageError::Io`] or
//! [`StorageError::Backend`]; sled 0.34 can panic on some corrupt files, and that panic is
//! caught and returned as [`StorageError::Backend`].

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{self, File};
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use paxstore::{
    Ballot, Durability, LogBounds, StopSign, Storage, StorageError, StorageOp, StorageResult,
};
use sled::Batch;

use crate::codec::{self, PersistentEntry};
use crate::fsutil::{self, sync_path, DirState};

const BACKEND: &str = "sled";
const FORMAT_KEY: &[u8] = b"m:format";
const FORMAT_VALUE: &[u8] = b"paxstore-sled/2";
/// Layout 1 is layout 2 that never holds a decided stop sign; it is upgraded at open.
const FORMAT_VALUE_V1: &[u8] = b"paxstore-sled/1";
const KEY_COMPACTED: &[u8] = b"m:compacted";
const KEY_LOG_END: &[u8] = b"m:log_end";
const KEY_DECIDED: &[u8] = b"m:decided";
const KEY_PROMISE: &[u8] = b"m:promise";
const KEY_ACCEPTED: &[u8] = b"m:accepted";
const KEY_STOPSIGN: &[u8] = b"m:stopsign";
const KEY_SNAPSHOT: &[u8] = b"m:snapshot";
const ENTRY_PREFIX: u8 = b'e';
/// The files sled 0.34 keeps in its directory.
const SLED_DATA_FILE: &str = "db";
const SLED_CONF_FILE: &str = "conf";
const SLED_BLOB_DIR: &str = "blobs";
/// paxstore's own file in the store directory, written before sled creates its files, so
/// a directory is recognised before sled touches it: sled 0.34 rewrites a data file it
/// cannot parse instead of refusing it.
const MARKER_FILE: &str = "paxstore-sled";
const MARKER_CONTENT: &[u8] = b"paxstore-sled/1\n";

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

fn engine_error(context: &str, err: sled::Error) -> StorageError {
    match err {
        sled::Error::Io(source) => StorageError::io(context, source),
        other => StorageError::Backend { backend: BACKEND, detail: format!("{context}: {other}") },
    }
}

fn unrecognized(path: &Path, detail: impl Into<String>) -> StorageError {
    fsutil::unrecognized(path, BACKEND, detail)
}

/// Checks what `path` holds before sled touches it; creates it if absent.
fn inspect_dir(path: &Path) -> StorageResult<DirState> {
    let Some(names) = fsutil::list_store_dir(path, BACKEND)? else {
        return Ok(DirState::Fresh);
    };
    let has = |name: &str| names.iter().any(|n| n == name);
    // Only the marker: a creation that crashed before sled wrote anything.
    if names.is_empty() || names.len() == 1 && has(MARKER_FILE) {
        return Ok(DirState::Fresh);
    }
    if !has(MARKER_FILE) {
        return Err(fsutil::foreign_dir(
            path,
            BACKEND,
            &format!("the {MARKER_FILE} marker file"),
            names,
        ));
    }
    let marker_path = path.join(MARKER_FILE);
    let marker = fs::read(&marker_path)
        .map_err(|e| StorageError::io(format!("reading {}", marker_path.display()), e))?;
    if marker != MARKER_CONTENT {
        return Err(unrecognized(
            path,
            format!(
                "{MARKER_FILE} holds {:?}, expected {:?}",
                String::from_utf8_lossy(&marker[..marker.len().min(64)]),
                String::from_utf8_lossy(MARKER_CONTENT)
            ),
        ));
    }
    if !(has(SLED_CONF_FILE) && has(SLED_DATA_FILE)) {
        return Err(unrecognized(
            path,
            "a paxstore sled directory without sled's conf and db files (a creation that crashed part-way; remove the directory to start afresh)",
        ));
    }
    Ok(DirState::Existing)
}

/// Writes and syncs the marker file of a new store, before sled creates anything.
fn write_marker_file(path: &Path) -> StorageResult<()> {
    let marker_path = path.join(MARKER_FILE);
    File::create(&marker_path)
        .and_then(|mut f| {
            std::io::Write::write_all(&mut f, MARKER_CONTENT)?;
            f.sync_all()
        })
        .map_err(|e| StorageError::io(format!("writing {}", marker_path.display()), e))
}

/// How long [`open_db`] waits for a previous handle's lock to go away.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Opens sled at `path`, turning a panic into an error.
///
/// sled 0.34 releases the exclusive lock on its `db` file only when its background
/// threads have let go of the file, which can be a moment after the last `Db` handle was
/// dropped; so a lock conflict is retried for up to [`LOCK_WAIT`]. A lock still held
/// after that (another process has the store open) is returned as the I/O error.
fn open_db(path: &Path) -> StorageResult<sled::Db> {
    let started = Instant::now();
    loop {
        let config = sled::Config::new().path(path);
        let opened = panic::catch_unwind(AssertUnwindSafe(|| config.open()));
        match opened {
            Ok(Ok(db)) => return Ok(db),
            Ok(Err(sled::Error::Io(err)))
                if err.to_string().contains("could not acquire lock")
                    && started.elapsed() < LOCK_WAIT =>
            {
                thread::sleep(Duration::from_millis(10));
            }
            Ok(Err(err)) => return Err(engine_error(&format!("opening {}", path.display()), err)),
            Err(_) => {
                return Err(StorageError::Backend {
                    backend: BACKEND,
                    detail: format!("sled panicked while opening {}", path.display()),
                })
            }
        }
    }
}

/// A [`Storage`] in a sled database. See the [module docs](self) for the layout and the
/// durability each mode gives.
pub struct SledStorage<T: PersistentEntry> {
    db: sled::Db,
    path: PathBuf,
    durability: Durability,
    /// Set when an engine write failed in a way that leaves what is durable unknown.
    poisoned: Option<String>,
    /// Our own handle to sled's `db` file, for fdatasync in `Immediate` mode.
    data_file: File,
    /// Blob files already synced (by name), so each is synced once.
    synced_blobs: HashSet<OsString>,
    /// Cached from disk; changed only after a write succeeded.
    bounds: LogBounds,
    promise: Option<Ballot>,
    accepted_round: Option<Ballot>,
    _entries: PhantomData<fn() -> T>,
}

impl<T: PersistentEntry> std::fmt::Debug for SledStorage<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStorage")
            .field("path", &self.path)
            .field("durability", &self.durability)
            .field("bounds", &self.bounds)
            .finish_non_exhaustive()
    }
}

impl<T: PersistentEntry> SledStorage<T> {
    /// Opens the store in directory `path`, creating it if `path` is absent or empty.
    ///
    /// Errors: [`StorageError::Unrecognized`] if `path` holds anything but a paxstore sled
    /// store; [`StorageError::Backend`] or [`StorageError::Io`] if sled refuses to open or
    /// read it; [`StorageError::Corruption`] or [`StorageError::Codec`] if the stored
    /// metadata is inconsistent.
    pub fn open(path: &Path, durability: Durability) -> StorageResult<Self> {
        let state = inspect_dir(path)?;
        if state == DirState::Fresh {
            write_marker_file(path)?;
        }
        let db = open_db(path)?;
        let data_path = path.join(SLED_DATA_FILE);
        let data_file = File::open(&data_path)
            .map_err(|e| StorageError::io(format!("opening {}", data_path.display()), e))?;
        let mut storage = SledStorage {
            db,
            path: path.to_owned(),
            durability,
            poisoned: None,
            data_file,
            synced_blobs: HashSet::new(),
            bounds: LogBounds::default(),
            promise: None,
            accepted_round: None,
            _entries: PhantomData,
        };
        storage.check_format(state)?;
        if state == DirState::Fresh {
            storage.sync_new_store()?;
        }
        storage.load()?;
        Ok(storage)
    }

    /// Makes a just-created store's files and directory entries durable.
    fn sync_new_store(&self) -> StorageResult<()> {
        sync_path(&self.path.join(SLED_CONF_FILE))?;
        sync_path(&self.path.join(SLED_DATA_FILE))?;
        sync_path(&self.path.join(SLED_BLOB_DIR))?;
        sync_path(&self.path)?;
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_path(parent)?;
        }
        Ok(())
    }

    /// Flushes sled's buffers to the OS and, in `Immediate` mode, to stable storage.
    fn make_durable(&mut self) -> StorageResult<()> {
        self.db.flush().map_err(|e| engine_error("flushing", e))?;
        if self.durability == Durability::Immediate {
            self.data_file
                .sync_data()
                .map_err(|e| StorageError::io(format!("syncing {}/db", self.path.display()), e))?;
            self.sync_blobs()?;
        }
        Ok(())
    }

    /// fdatasyncs every blob file not synced yet, then the blob directory.
    fn sync_blobs(&mut self) -> StorageResult<()> {
        let blob_dir = self.path.join(SLED_BLOB_DIR);
        let entries = fs::read_dir(&blob_dir)
            .map_err(|e| StorageError::io(format!("listing {}", blob_dir.display()), e))?;
        let mut new_blobs = Vec::new();
        for entry in entries {
            let entry = entry
                .map_err(|e| StorageError::io(format!("listing {}", blob_dir.display()), e))?;
            let name = entry.file_name();
            if !self.synced_blobs.contains(&name) {
                sync_path(&entry.path())?;
                new_blobs.push(name);
            }
        }
        if !new_blobs.is_empty() {
            sync_path(&blob_dir)?;
            // Forget blobs sled has since removed, so the set does not grow forever.
            if self.synced_blobs.len() > 1024 {
                self.synced_blobs.clear();
            }
            self.synced_blobs.extend(new_blobs);
        }
        Ok(())
    }

    fn check_poisoned(&self) -> StorageResult<()> {
        match &self.poisoned {
            Some(reason) => Err(StorageError::Poisoned { reason: reason.clone() }),
            None => Ok(()),
        }
    }

    fn get_raw(&self, key: &[u8]) -> StorageResult<Option<sled::IVec>> {
        self.db
            .get(key)
            .map_err(|e| engine_error(&format!("reading key {}", String::from_utf8_lossy(key)), e))
    }

    /// Recognises our own store, and marks a brand-new (empty) tree as ours.
    fn check_format(&mut self, state: DirState) -> StorageResult<()> {
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
                // the marker is refused, never adopted (sled 0.34 opens a data file it
                // cannot parse as an empty tree, so "empty" does not mean "ours").
                if state == DirState::Existing {
                    return Err(unrecognized(&self.path, "a sled database without the paxstore format marker (not a paxstore store, data sled could not read, or a creation that crashed before its marker was written; remove the directory to start afresh)"));
                }
                self.write_format_marker()
            }
        }
    }

    /// Writes the format marker of this layout, flushed and synced.
    fn write_format_marker(&mut self) -> StorageResult<()> {
        let mut batch = Batch::default();
        batch.insert(FORMAT_KEY, FORMAT_VALUE);
        self.db.apply_batch(batch).map_err(|e| engine_error("writing the format marker", e))?;
        let durability = self.durability;
        self.durability = Durability::Immediate;
        let synced = self.make_durable();
        self.durability = durability;
        synced
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
        let first = match self.db.range(&[ENTRY_PREFIX][..]..).next() {
            None => None,
            Some(item) => {
                let (key, _) = item.map_err(|e| engine_error("iterating entries", e))?;
                index_of_key(&key)
            }
        };
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

    /// Adds the inserts of `entries` at `start..` to `batch`.
    fn put_entries<'a>(
        batch: &mut Batch,
        start: usize,
        entries: impl IntoIterator<Item = &'a T>,
    ) -> StorageResult<()> {
        for (offset, entry) in entries.into_iter().enumerate() {
            batch.insert(&entry_key(start + offset)[..], codec::encode("entry", entry)?);
        }
        Ok(())
    }

    /// Adds a remove of every entry in `[from, to)`; the caller passes a range of indices
    /// that exist (within the bounds before the op).
    fn delete_entries(batch: &mut Batch, from: usize, to: usize) {
        for idx in from..to {
            batch.remove(&entry_key(idx)[..]);
        }
    }
}

impl<T: PersistentEntry> Storage<T> for SledStorage<T> {
    fn write_atomically(&mut self, ops: Vec<StorageOp<T>>) -> StorageResult<()> {
        self.check_poisoned()?;
        let end_bounds = self.bounds.validate_batch(&ops)?;
        if ops.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::default();
        let mut bounds = self.bounds;
        let mut promise = self.promise;
        let mut accepted_round = self.accepted_round;
        for (position, op) in ops.iter().enumerate() {
            let before = bounds;
            bounds.apply(op).map_err(|reason| StorageError::InvalidOp { position, reason })?;
            match op {
                StorageOp::AppendEntry(entry) => {
                    Self::put_entries(&mut batch, before.log_end, [entry])?
                }
                StorageOp::AppendEntries(entries) => {
                    Self::put_entries(&mut batch, before.log_end, entries)?
                }
                StorageOp::AppendOnPrefix(from_idx, entries) => {
                    Self::delete_entries(&mut batch, *from_idx, before.log_end);
                    Self::put_entries(&mut batch, *from_idx, entries)?;
                }
                StorageOp::Trim(idx) | StorageOp::SetCompactedIdx(idx) => {
                    let to = (*idx).min(before.log_end);
                    Self::delete_entries(&mut batch, before.compacted_idx, to);
                }
                StorageOp::SetPromise(ballot) => promise = Some(*ballot),
                StorageOp::SetAcceptedRound(ballot) => accepted_round = Some(*ballot),
                StorageOp::SetDecidedIndex(_) => {}
                StorageOp::SetStopsign(None) => batch.remove(KEY_STOPSIGN),
                StorageOp::SetStopsign(Some(stopsign)) => {
                    batch.insert(KEY_STOPSIGN, codec::encode("stopsign", stopsign)?)
                }
                StorageOp::SetSnapshot(None) => batch.remove(KEY_SNAPSHOT),
                StorageOp::SetSnapshot(Some(snapshot)) => {
                    batch.insert(KEY_SNAPSHOT, codec::encode("snapshot", snapshot)?)
                }
            }
        }
        debug_assert_eq!(bounds, end_bounds);
        if bounds.compacted_idx != self.bounds.compacted_idx {
            batch.insert(KEY_COMPACTED, &(bounds.compacted_idx as u64).to_le_bytes()[..]);
        }
        if bounds.log_end != self.bounds.log_end {
            batch.insert(KEY_LOG_END, &(bounds.log_end as u64).to_le_bytes()[..]);
        }
        if bounds.decided_idx != self.bounds.decided_idx {
            batch.insert(KEY_DECIDED, &(bounds.decided_idx as u64).to_le_bytes()[..]);
        }
        if promise != self.promise {
            if let Some(ballot) = &promise {
                batch.insert(KEY_PROMISE, &codec::ballot_to_bytes(ballot)[..]);
            }
        }
        if accepted_round != self.accepted_round {
            if let Some(ballot) = &accepted_round {
                batch.insert(KEY_ACCEPTED, &codec::ballot_to_bytes(ballot)[..]);
            }
        }
        // Once sled has applied the batch in memory, a failure leaves the tree and the
        // disk ahead of what was acknowledged: poison, so every later call says to reopen
        // (which recovers what sled persisted).
        let written = self
            .db
            .apply_batch(batch)
            .map_err(|e| engine_error("applying a batch", e))
            .and_then(|()| self.make_durable());
        if let Err(err) = written {
            self.poisoned = Some(format!("sled write or flush failed: {err}"));
            return Err(err);
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
        let range = &entry_key(from)[..]..&entry_key(to)[..];
        for item in self.db.range(range) {
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
