//! [`KvStorage`]: the log and its metadata over any [`KvEngine`], written once.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use paxstore::{
    Ballot, Durability, LogBounds, StopSign, Storage, StorageError, StorageOp, StorageResult,
};

use super::dir::{self, sync_new_dir};
use super::{DirState, KvBatch, KvEngine, KvOp, MetaKey};
use crate::codec::{self, PersistentEntry};

/// What the store caches from disk; replaced only after a commit succeeded.
#[derive(Clone, Copy, Debug, Default)]
struct Cached {
    bounds: LogBounds,
    promise: Option<Ballot>,
    accepted_round: Option<Ballot>,
}

/// A [`Storage`] over the sorted key-value store `E`. Each engine module names its own
/// alias (`RocksDbStorage<T>`, `SledStorage<T>`, `RedbStorage<T>`) and documents the
/// durability each mode gives; the [module docs](super) give the layout and the open
/// sequence they share.
pub struct KvStorage<E: KvEngine, T: PersistentEntry> {
    engine: E,
    path: PathBuf,
    durability: Durability,
    /// Set when a commit failed in a way that leaves what is durable unknown.
    poisoned: Option<StorageError>,
    cached: Cached,
    _entries: PhantomData<fn() -> T>,
}

impl<E: KvEngine, T: PersistentEntry> std::fmt::Debug for KvStorage<E, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvStorage")
            .field("engine", &E::NAME)
            .field("path", &self.path)
            .field("durability", &self.durability)
            .field("bounds", &self.cached.bounds)
            .finish_non_exhaustive()
    }
}

/// The format marker of the current layout, `paxstore-<engine>/2`.
fn format_marker<E: KvEngine>() -> String {
    format!("paxstore-{}/2", E::NAME)
}

/// Layout 1 is layout 2 that never holds a decided stop sign; it is upgraded at open.
fn format_marker_v1<E: KvEngine>() -> String {
    format!("paxstore-{}/1", E::NAME)
}

impl<E: KvEngine, T: PersistentEntry> KvStorage<E, T> {
    /// Opens the store in directory `path`, creating it if `path` is absent or empty.
    ///
    /// Errors: [`StorageError::Unrecognized`] if `path` holds anything but a paxstore
    /// store of this engine (nothing in it is changed); [`StorageError::Engine`] or
    /// [`StorageError::Io`] if the engine refuses to open or read it;
    /// [`StorageError::Corruption`] or [`StorageError::Codec`] if the stored metadata is
    /// inconsistent.
    pub fn open(path: &Path, durability: Durability) -> StorageResult<Self> {
        let state = E::inspect(path)?;
        let engine = E::open(path, state)?;
        let mut storage = KvStorage {
            engine,
            path: path.to_owned(),
            durability,
            poisoned: None,
            cached: Cached::default(),
            _entries: PhantomData,
        };
        storage.check_format(state)?;
        if state == DirState::Fresh {
            sync_new_dir(path)?;
        }
        storage.cached = storage.load()?;
        Ok(storage)
    }

    /// Recognises our own store, upgrades layout 1, and marks a new store as ours.
    fn check_format(&mut self, state: DirState) -> StorageResult<()> {
        let current = format_marker::<E>();
        match self.engine.get_meta(MetaKey::Format)? {
            Some(value) if value == current.as_bytes() => Ok(()),
            Some(value) if value == format_marker_v1::<E>().as_bytes() => {
                self.write_format_marker()
            }
            Some(value) => Err(dir::unrecognized(
                &self.path,
                E::NAME,
                format!("format marker {:?}, expected {current:?}", String::from_utf8_lossy(&value)),
            )),
            // Only a store created by this call is marked; an existing database without
            // the marker is refused, never adopted.
            None if state == DirState::Existing => Err(dir::unrecognized(
                &self.path,
                E::NAME,
                format!("a {} database without the paxstore format marker (not a paxstore store, data the engine could not read, or a creation that crashed before its marker was written; remove the directory to start afresh)", E::NAME),
            )),
            None => self.write_format_marker(),
        }
    }

    /// Writes the format marker of this layout, synced.
    fn write_format_marker(&mut self) -> StorageResult<()> {
        let mut batch = KvBatch::default();
        batch.push(KvOp::PutMeta { key: MetaKey::Format, value: format_marker::<E>().into() });
        self.engine.commit(&batch, true)
    }

    fn index(&self, key: MetaKey) -> StorageResult<usize> {
        match self.engine.get_meta(key)? {
            None => Ok(0),
            Some(bytes) => {
                let what = "stored index";
                codec::index_from_u64(what, codec::u64_from_le(what, &bytes)?)
            }
        }
    }

    fn ballot(&self, key: MetaKey) -> StorageResult<Option<Ballot>> {
        self.engine.get_meta(key)?.map(|bytes| codec::ballot_from_bytes(&bytes)).transpose()
    }

    /// Reads the metadata and checks the two ends of the log against the bounds.
    fn load(&self) -> StorageResult<Cached> {
        let bounds = LogBounds {
            compacted_idx: self.index(MetaKey::Compacted)?,
            log_end: self.index(MetaKey::LogEnd)?,
            decided_idx: self.index(MetaKey::Decided)?,
            has_stopsign: self.engine.get_meta(MetaKey::Stopsign)?.is_some(),
        };
        if !bounds.is_consistent() {
            return Err(StorageError::Corruption {
                location: format!(
                    "{} (metadata compacted, log_end, decided, stopsign)",
                    self.path.display()
                ),
                detail: format!("inconsistent bounds {bounds:?}"),
            });
        }
        let span = self.engine.entry_span()?;
        let expected = (bounds.log_len() > 0)
            .then(|| (bounds.compacted_idx as u64, bounds.log_end as u64 - 1));
        if span != expected {
            return Err(StorageError::Corruption {
                location: format!("{} (entry keys)", self.path.display()),
                detail: format!(
                    "entries do not span [{}, {}): stored entry keys run {span:?} (first, last)",
                    bounds.compacted_idx, bounds.log_end
                ),
            });
        }
        Ok(Cached {
            bounds,
            promise: self.ballot(MetaKey::Promise)?,
            accepted_round: self.ballot(MetaKey::Accepted)?,
        })
    }

    fn check_poisoned(&self) -> StorageResult<()> {
        match &self.poisoned {
            Some(cause) => Err(StorageError::poisoned_by(cause)),
            None => Ok(()),
        }
    }

    /// The writes of `ops` and the cache after them; refuses the batch at its first
    /// invalid op, before anything is written. The writes are the batch's net effect,
    /// its [`paxstore::BatchPlan`]: entries a later op of the batch cuts or trims are never put.
    fn stage(&self, ops: Vec<StorageOp<T>>) -> StorageResult<(KvBatch, Cached)> {
        let plan = self.cached.bounds.validate_batch(&ops)?;
        let values = plan.into_values(ops);
        let mut batch = KvBatch::default();
        for removed in plan.removed() {
            if !removed.is_empty() {
                let (from, to) = (removed.start as u64, removed.end as u64);
                batch.push(KvOp::DeleteEntries { from, to });
            }
        }
        for (idx, entry) in (plan.append_from..plan.after.log_end).zip(&values.entries) {
            batch.push(KvOp::PutEntry { idx: idx as u64, value: codec::encode("entry", entry)? });
        }
        if let Some(stopsign) = values.stopsign {
            let value = stopsign.map(|s| codec::encode("stopsign", &s)).transpose()?;
            put_or_delete(&mut batch, MetaKey::Stopsign, value);
        }
        if let Some(snapshot) = values.snapshot {
            let value = snapshot.map(|s| codec::encode("snapshot", &s)).transpose()?;
            put_or_delete(&mut batch, MetaKey::Snapshot, value);
        }
        let (old, new) = (plan.before, plan.after);
        for (key, new, old) in [
            (MetaKey::Compacted, new.compacted_idx, old.compacted_idx),
            (MetaKey::LogEnd, new.log_end, old.log_end),
            (MetaKey::Decided, new.decided_idx, old.decided_idx),
        ] {
            if new != old {
                batch.push(KvOp::PutMeta { key, value: (new as u64).to_le_bytes().to_vec() });
            }
        }
        let next = Cached {
            bounds: plan.after,
            promise: plan.promise.or(self.cached.promise),
            accepted_round: plan.accepted_round.or(self.cached.accepted_round),
        };
        for (key, new, old) in [
            (MetaKey::Promise, next.promise, self.cached.promise),
            (MetaKey::Accepted, next.accepted_round, self.cached.accepted_round),
        ] {
            if let Some(ballot) = new.filter(|_| new != old) {
                batch.push(KvOp::PutMeta { key, value: codec::ballot_to_bytes(&ballot).to_vec() });
            }
        }
        Ok((batch, next))
    }

    fn missing_entry(&self, expected: u64, found: Option<u64>) -> StorageError {
        StorageError::Corruption {
            location: format!("{} (entry {expected})", self.path.display()),
            detail: format!(
                "entry {expected} is missing inside the stored log; next entry found: {found:?}"
            ),
        }
    }
}

fn put_or_delete(batch: &mut KvBatch, key: MetaKey, value: Option<Vec<u8>>) {
    batch.push(match value {
        Some(value) => KvOp::PutMeta { key, value },
        None => KvOp::DeleteMeta(key),
    });
}

impl<E: KvEngine, T: PersistentEntry> Storage<T> for KvStorage<E, T> {
    fn write_atomically(&mut self, ops: Vec<StorageOp<T>>) -> StorageResult<()> {
        self.check_poisoned()?;
        if ops.is_empty() {
            return Ok(());
        }
        let (batch, next) = self.stage(ops)?;
        let sync = self.durability == Durability::Immediate;
        if let Err(err) = self.engine.commit(&batch, sync) {
            // The engine may have written part of the way (a log record without its
            // sync, a batch applied in memory): only a reopen tells what is durable.
            self.poisoned = Some(StorageError::poisoned_by(&err));
            return Err(err);
        }
        self.cached = next;
        Ok(())
    }

    fn flush(&mut self) -> StorageResult<()> {
        self.check_poisoned()?;
        if let Err(err) = self.engine.flush() {
            // A failed sync may have dropped what it was to write: reopen to find out.
            self.poisoned = Some(StorageError::poisoned_by(&err));
            return Err(err);
        }
        Ok(())
    }

    fn get_entries(&self, from: usize, to: usize) -> StorageResult<Vec<T>> {
        self.check_poisoned()?;
        self.cached.bounds.check_range("get_entries", from, to)?;
        let mut out = Vec::with_capacity(to - from);
        if from == to {
            return Ok(out);
        }
        let mut next = from as u64;
        self.engine.scan_entries(from as u64, to as u64, &mut |idx, value| {
            if idx != next {
                return Err(self.missing_entry(next, Some(idx)));
            }
            out.push(codec::decode("entry", value)?);
            next += 1;
            Ok(())
        })?;
        if next != to as u64 {
            return Err(self.missing_entry(next, None));
        }
        Ok(out)
    }

    fn get_log_len(&self) -> StorageResult<usize> {
        self.check_poisoned()?;
        Ok(self.cached.bounds.log_len())
    }

    fn get_decided_idx(&self) -> StorageResult<usize> {
        self.check_poisoned()?;
        Ok(self.cached.bounds.decided_idx)
    }

    fn get_promise(&self) -> StorageResult<Option<Ballot>> {
        self.check_poisoned()?;
        Ok(self.cached.promise)
    }

    fn get_accepted_round(&self) -> StorageResult<Option<Ballot>> {
        self.check_poisoned()?;
        Ok(self.cached.accepted_round)
    }

    fn get_compacted_idx(&self) -> StorageResult<usize> {
        self.check_poisoned()?;
        Ok(self.cached.bounds.compacted_idx)
    }

    fn get_stopsign(&self) -> StorageResult<Option<StopSign>> {
        self.check_poisoned()?;
        let value = self.engine.get_meta(MetaKey::Stopsign)?;
        value.map(|bytes| codec::decode("stopsign", &bytes)).transpose()
    }

    fn get_snapshot(&self) -> StorageResult<Option<T::Snapshot>> {
        self.check_poisoned()?;
        let value = self.engine.get_meta(MetaKey::Snapshot)?;
        value.map(|bytes| codec::decode("snapshot", &bytes)).transpose()
    }
}
