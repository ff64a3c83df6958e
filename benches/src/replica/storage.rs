//! The replica's storage in the benches: a backend with its writes (and the WAL's syncs)
//! counted. Used by paxstore's replica and, through `OmniStorage`, by OmniPaxos.

use std::path::Path;

use paxstore::{Ballot, Durability, Entry, StopSign, Storage, StorageOp};
use paxstore_backends::BackendKind;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tempfile::TempDir;

use crate::workload::BenchEntry;
use crate::BenchError;

/// An entry type the benches store on every backend: serde for the persistent ones.
/// [`BenchEntry`] for paxstore's replica, `OmniEntry<BenchEntry>` for OmniPaxos over a
/// paxstore backend.
pub trait StoredEntry:
    Entry<Snapshot: Serialize + DeserializeOwned> + Serialize + DeserializeOwned
{
}

impl<T> StoredEntry for T where
    T: Entry<Snapshot: Serialize + DeserializeOwned> + Serialize + DeserializeOwned
{
}

/// A replica's storage in the benches: a backend, with its writes counted (and the WAL's
/// own syncs).
pub struct BenchStorage<E: StoredEntry = BenchEntry> {
    inner: Inner<E>,
    kind: BackendKind,
    writes: u64,
}

/// The memory backend is held as itself, not behind `dyn`, as OmniPaxos' `MemoryStorage`
/// is on its side of the comparison: neither pays a virtual call per write.
enum Inner<E: StoredEntry> {
    Memory(paxstore_backends::MemoryStorage<E>),
    Any(Box<dyn Storage<E>>),
    #[cfg(feature = "wal")]
    Wal(Box<paxstore_backends::wal::WalStorage<E>>),
}

impl<E: StoredEntry> BenchStorage<E> {
    /// A fresh store of `kind` at `path` (ignored by the memory backend).
    pub fn open(
        kind: BackendKind,
        durability: Durability,
        path: &Path,
    ) -> Result<Self, BenchError> {
        let inner = match kind {
            #[cfg(feature = "wal")]
            BackendKind::Wal => Inner::Wal(Box::new(
                paxstore_backends::wal::WalStorage::open(path, durability)
                    .map_err(BenchError::storage(kind.name()))?,
            )),
            BackendKind::Memory => Inner::Memory(paxstore_backends::MemoryStorage::new()),
            _ => Inner::Any(kind.open(path, durability).map_err(BenchError::storage(kind.name()))?),
        };
        Ok(BenchStorage { inner, kind, writes: 0 })
    }

    /// A fresh store of `kind` for replica `pid`: in its own directory under `parent`
    /// (returned, to be kept while the store is open) for a persistent backend.
    pub fn for_replica(
        kind: BackendKind,
        durability: Option<Durability>,
        parent: &Path,
        pid: u64,
    ) -> Result<(Self, Option<TempDir>), BenchError> {
        let durability = durability.unwrap_or_default();
        if !kind.is_persistent() {
            return Ok((BenchStorage::open(kind, durability, parent)?, None));
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}-replica{pid}-", kind.name()))
            .tempdir_in(parent)
            .map_err(BenchError::io("creating a replica directory", parent))?;
        let store = BenchStorage::open(kind, durability, &dir.path().join("store"))?;
        Ok((store, Some(dir)))
    }

    /// Successful `write_atomically` calls.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// Syncs: counted by the WAL; none for the memory backend; unknown for the others.
    pub fn syncs(&self) -> Option<u64> {
        match &self.inner {
            #[cfg(feature = "wal")]
            Inner::Wal(w) => Some(w.stats().syncs),
            Inner::Memory(_) => Some(0),
            Inner::Any(_) => (!self.kind.is_persistent()).then_some(0),
        }
    }

    fn get(&self) -> &dyn Storage<E> {
        match &self.inner {
            Inner::Memory(m) => m,
            Inner::Any(s) => s.as_ref(),
            #[cfg(feature = "wal")]
            Inner::Wal(w) => w,
        }
    }
}

impl<E: StoredEntry> Storage<E> for BenchStorage<E> {
    // Each way in goes to the same way in of the store, so a replica (or the floor, or
    // OmniPaxos through its adapter) is measured on the path it chose: routing one
    // through the other changed the floor's count by 2.4% at stream 1.
    fn write_atomically(&mut self, ops: Vec<StorageOp<E>>) -> paxstore::StorageResult<()> {
        match &mut self.inner {
            Inner::Memory(m) => m.write_atomically(ops)?,
            Inner::Any(s) => s.write_atomically(ops)?,
            #[cfg(feature = "wal")]
            Inner::Wal(w) => w.write_atomically(ops)?,
        }
        self.writes += 1;
        Ok(())
    }
    fn write_atomically_from(
        &mut self,
        ops: &mut Vec<StorageOp<E>>,
    ) -> paxstore::StorageResult<()> {
        match &mut self.inner {
            Inner::Memory(m) => m.write_atomically_from(ops)?,
            Inner::Any(s) => s.write_atomically_from(ops)?,
            #[cfg(feature = "wal")]
            Inner::Wal(w) => w.write_atomically_from(ops)?,
        }
        self.writes += 1;
        Ok(())
    }
    fn get_entries(&self, from: usize, to: usize) -> paxstore::StorageResult<Vec<E>> {
        self.get().get_entries(from, to)
    }
    fn get_suffix(&self, from: usize) -> paxstore::StorageResult<Vec<E>> {
        self.get().get_suffix(from)
    }
    fn get_log_len(&self) -> paxstore::StorageResult<usize> {
        self.get().get_log_len()
    }
    fn get_decided_idx(&self) -> paxstore::StorageResult<usize> {
        self.get().get_decided_idx()
    }
    fn get_promise(&self) -> paxstore::StorageResult<Option<Ballot>> {
        self.get().get_promise()
    }
    fn get_accepted_round(&self) -> paxstore::StorageResult<Option<Ballot>> {
        self.get().get_accepted_round()
    }
    fn get_compacted_idx(&self) -> paxstore::StorageResult<usize> {
        self.get().get_compacted_idx()
    }
    fn get_stopsign(&self) -> paxstore::StorageResult<Option<StopSign>> {
        self.get().get_stopsign()
    }
    fn get_snapshot(&self) -> paxstore::StorageResult<Option<<E as Entry>::Snapshot>> {
        self.get().get_snapshot()
    }
}
