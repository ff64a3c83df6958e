//! The sled backend (feature `sled`, sled 0.34): the log in the default tree of one sled
//! database per directory, in the [single-keyspace layout](crate::kv::flat), under
//! [`KvStorage`]; this file says how sled opens, reads and commits.
//!
//! A batch is **one** [`sled::Batch`] (a remove per truncated index: no range delete)
//! applied with [`sled::Tree::apply_batch`], atomic across crashes by a batch manifest in
//! sled's log. sled buffers it in memory until a flush, so **both** modes flush:
//!
//! | mode | engine calls | guarantee |
//! |---|---|---|
//! | `Buffered` | `apply_batch` + `flush()` | in the `db` file via `pwrite(2)`: survives a process crash |
//! | `Immediate` | the same + this backend's `fdatasync` of `db`, of each new file in `blobs/` and of `blobs/` | survives power loss, but sled 0.34.7 itself may fail to reopen after one (see the crate docs) |
//!
//! Read in sled 0.34.7 (`pagecache/iobuf.rs`): on Linux `flush` calls
//! `sync_file_range(2)`, which neither writes file metadata nor flushes the disk cache;
//! values over about 128 KiB go to unsynced files in `blobs/`. Hence the fdatasyncs (per
//! file, so our own handle covers sled's writes). `flush()` of the store does the
//! `Immediate` calls. sled calls its 0.34 format beta.
//!
//! Under power loss and failed writes: see [the crate docs](crate#under-power-loss-and-failed-writes).
//!
//! sled 0.34 does not refuse a data file it cannot parse: it opens it as an empty tree
//! and overwrites it (measured). So a store is recognised, **before** sled opens
//! anything, by paxstore's marker file `paxstore-sled` (`paxstore-sled/1\n`, synced
//! before sled creates its files; it names the directory, not the layout) beside `conf`
//! and `db`; without it the directory is [`StorageError::Unrecognized`] and untouched.
//! A store another handle keeps open is [`StorageError::Locked`] after a 10 s wait; a
//! panic of sled on a corrupt file is returned as [`StorageError::Backend`].

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use paxstore::{StorageError, StorageResult};

use crate::kv::flat::{entry_index, entry_key, index_of_key, meta_key, ENTRIES_END};
use crate::kv::{
    self, sync_path, DirState, EntryVisitor, KvBatch, KvEngine, KvOp, KvStorage, MetaKey,
};

/// A [`paxstore::Storage`] in a sled database; see the [module docs](self).
pub type SledStorage<T> = KvStorage<SledEngine, T>;

/// The sled database under a [`SledStorage`], with this backend's handles for syncing.
pub struct SledEngine {
    db: sled::Db,
    path: PathBuf,
    /// Our own handle to sled's `db` file, for fdatasync.
    data_file: File,
    /// Blob files already synced (by name), so each is synced once.
    synced_blobs: HashSet<OsString>,
}

const DATA_FILE: &str = "db";
const CONF_FILE: &str = "conf";
const BLOB_DIR: &str = "blobs";
const MARKER_FILE: &str = "paxstore-sled";
const MARKER_CONTENT: &[u8] = b"paxstore-sled/1\n";
/// How long [`open_db`] waits for a previous handle's lock to go away.
const LOCK_WAIT: Duration = Duration::from_secs(10);

fn engine_error(context: &str, err: sled::Error) -> StorageError {
    match err {
        sled::Error::Io(source) => StorageError::io(context, source),
        other => StorageError::engine("sled", context, other),
    }
}

fn io_error(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> StorageError {
    let context = format!("{what} {}", path.display());
    move |e| StorageError::io(context, e)
}

/// Opens sled at `path`, turning a panic into an error.
///
/// sled 0.34 takes its lock (`flock` on `db`) without waiting, and lets go of it only
/// when its background threads drop the file, a moment after the last `Db` handle was
/// dropped. So the lock is first awaited here, up to [`LOCK_WAIT`], without polling
/// ([`crate::lock`]); still held after that is [`StorageError::Locked`].
///
/// The lock cannot be handed from our wait to sled (two handles of one process conflict),
/// so sled can still find it taken in between (seen in CI: a reopen right after a power
/// cut failed with sled's `WouldBlock`); then the wait starts again, within the same
/// [`LOCK_WAIT`].
fn open_db(path: &Path) -> StorageResult<sled::Db> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match open_db_once(path, deadline.saturating_duration_since(Instant::now())) {
            Err(StorageError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline =>
            {
                // Lost the race to whoever holds the lock now: a short pause before
                // waiting for it again, so a holder that lets go and retakes it at once
                // does not make this spin.
                std::thread::sleep(Duration::from_millis(10));
            }
            opened => return opened,
        }
    }
}

fn open_db_once(path: &Path, wait: Duration) -> StorageResult<sled::Db> {
    match File::open(path.join(DATA_FILE)) {
        Ok(file) => match crate::lock::lock_within(file, wait) {
            Ok(Some(_released_on_drop)) => {}
            Ok(None) => {
                return Err(StorageError::Locked { path: path.to_owned(), backend: "sled" })
            }
            Err(e) => return Err(StorageError::io(format!("locking {}/db", path.display()), e)),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StorageError::io(format!("opening {}/db", path.display()), e)),
    }
    let config = sled::Config::new().path(path);
    match panic::catch_unwind(AssertUnwindSafe(|| config.open())) {
        Ok(opened) => opened.map_err(|e| engine_error(&format!("opening {}", path.display()), e)),
        Err(_) => Err(StorageError::Backend {
            backend: "sled",
            detail: format!("sled panicked while opening {}", path.display()),
        }),
    }
}

impl SledEngine {
    /// fdatasyncs the `db` file, then every blob file not synced yet and `blobs/`.
    fn sync_files(&mut self) -> StorageResult<()> {
        self.data_file.sync_data().map_err(io_error("syncing", &self.path.join(DATA_FILE)))?;
        kv::sync_new_files(&self.path.join(BLOB_DIR), &mut self.synced_blobs)
    }
}

impl KvEngine for SledEngine {
    const NAME: &'static str = "sled";

    fn inspect(path: &Path) -> StorageResult<DirState> {
        let Some(names) = kv::store_dir_names(path, Self::NAME)? else {
            return Ok(DirState::Fresh);
        };
        let has = |name: &str| names.iter().any(|n| n == name);
        // Only the marker: a creation that crashed before sled wrote anything.
        if names.len() == 1 && has(MARKER_FILE) {
            return Ok(DirState::Fresh);
        }
        if !has(MARKER_FILE) {
            let missing = format!("the {MARKER_FILE} marker file");
            return Err(kv::foreign_dir(path, Self::NAME, &missing, names));
        }
        kv::check_marker_file(path, Self::NAME, MARKER_FILE, MARKER_CONTENT)?;
        if !(has(CONF_FILE) && has(DATA_FILE)) {
            return Err(kv::unrecognized(path, Self::NAME, "a paxstore sled directory without sled's conf and db files (a creation that crashed part-way; remove the directory to start afresh)"));
        }
        Ok(DirState::Existing)
    }

    fn open(path: &Path, state: DirState) -> StorageResult<Self> {
        if state == DirState::Fresh {
            kv::write_marker_file(path, MARKER_FILE, MARKER_CONTENT)?;
        }
        let db = open_db(path)?;
        let data_path = path.join(DATA_FILE);
        let data_file = File::open(&data_path).map_err(io_error("opening", &data_path))?;
        if state == DirState::Fresh {
            for name in [CONF_FILE, DATA_FILE, BLOB_DIR] {
                sync_path(&path.join(name))?;
            }
            // And their entries in the store directory: a power cut lost one without it.
            sync_path(path)?;
        }
        Ok(SledEngine { db, path: path.to_owned(), data_file, synced_blobs: HashSet::new() })
    }

    fn get_meta(&self, key: MetaKey) -> StorageResult<Option<Vec<u8>>> {
        let value = self.db.get(meta_key(key));
        Ok(value.map_err(|e| engine_error(&format!("reading {key:?}"), e))?.map(|v| v.to_vec()))
    }

    fn entry_span(&self) -> StorageResult<Option<(u64, u64)>> {
        let mut keys = self.db.range(&entry_key(0)[..]..&ENTRIES_END[..]).keys();
        let index = |item: Option<sled::Result<sled::IVec>>| match item {
            None => Ok(None),
            Some(key) => Ok(index_of_key(&key.map_err(|e| engine_error("reading entries", e))?)),
        };
        let first = index(keys.next())?;
        let last = index(keys.next_back())?;
        Ok(first.zip(last.or(first)))
    }

    fn scan_entries(&self, from: u64, to: u64, visit: EntryVisitor<'_>) -> StorageResult<()> {
        for item in self.db.range(&entry_key(from)[..]..&entry_key(to)[..]) {
            let (key, value) = item.map_err(|e| engine_error("reading entries", e))?;
            visit(entry_index(&key)?, &value)?;
        }
        Ok(())
    }

    fn commit(&mut self, batch: &KvBatch, sync: bool) -> StorageResult<()> {
        let mut write = sled::Batch::default();
        for op in batch.ops() {
            match op {
                KvOp::PutEntry { idx, value } => write.insert(&entry_key(*idx)[..], &value[..]),
                KvOp::DeleteEntries { from, to } => {
                    (*from..*to).for_each(|idx| write.remove(&entry_key(idx)[..]))
                }
                KvOp::PutMeta { key, value } => write.insert(meta_key(*key), &value[..]),
                KvOp::DeleteMeta(key) => write.remove(meta_key(*key)),
            }
        }
        self.db.apply_batch(write).map_err(|e| engine_error("applying a batch", e))?;
        self.db.flush().map_err(|e| engine_error("flushing", e))?;
        if sync {
            self.sync_files()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> StorageResult<()> {
        self.db.flush().map_err(|e| engine_error("flushing", e))?;
        self.sync_files()
    }
}
