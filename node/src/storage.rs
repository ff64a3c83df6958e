//! The node's store: any backend, with a count of what it wrote and synced, so the
//! benchmark can report syncs per operation.

use std::path::Path;

use paxstore::{Ballot, Durability, StopSign, Storage, StorageOp, StorageResult};
use paxstore_backends::BackendKind;

use crate::kv::{Command, KvSnapshot};

/// The store a node's replica runs over.
pub(crate) enum NodeStorage {
    /// The WAL, which counts its own syncs (boxed: it is large beside a pointer).
    #[cfg(feature = "wal")]
    Wal(Box<paxstore_backends::wal::WalStorage<Command>>),
    /// Any other backend.
    Other(Box<dyn Storage<Command>>),
}

/// What the store did since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StorageCounts {
    /// Calls of `write_atomically`.
    pub writes: u64,
    /// Syncs to the disk: the WAL's own count; for the other persistent backends, one
    /// per write with `Immediate` (each backend syncs once per batch; see its module
    /// docs) and none with `Buffered`; none for the memory backend.
    pub syncs: u64,
}

/// [`NodeStorage`] and its counts.
pub(crate) struct CountedStorage {
    inner: NodeStorage,
    /// Whether each write of a backend other than the WAL is a sync.
    write_syncs: bool,
    writes: u64,
}

impl CountedStorage {
    /// Opens (creating) `kind`'s store at `path`.
    pub(crate) fn open(
        kind: BackendKind,
        path: &Path,
        durability: Durability,
    ) -> StorageResult<Self> {
        #[cfg(feature = "wal")]
        let inner = if kind == BackendKind::Wal {
            NodeStorage::Wal(Box::new(paxstore_backends::wal::WalStorage::open(path, durability)?))
        } else {
            NodeStorage::Other(kind.open(path, durability)?)
        };
        #[cfg(not(feature = "wal"))]
        let inner = NodeStorage::Other(kind.open(path, durability)?);
        let write_syncs = kind.is_persistent() && durability == Durability::Immediate;
        Ok(CountedStorage { inner, write_syncs, writes: 0 })
    }

    /// What the store wrote and synced since it was opened.
    pub(crate) fn counts(&self) -> StorageCounts {
        let syncs = match &self.inner {
            #[cfg(feature = "wal")]
            NodeStorage::Wal(wal) => wal.stats().syncs,
            NodeStorage::Other(_) if self.write_syncs => self.writes,
            NodeStorage::Other(_) => 0,
        };
        StorageCounts { writes: self.writes, syncs }
    }

    fn inner(&self) -> &dyn Storage<Command> {
        match &self.inner {
            #[cfg(feature = "wal")]
            NodeStorage::Wal(wal) => &**wal,
            NodeStorage::Other(other) => other.as_ref(),
        }
    }
}

impl Storage<Command> for CountedStorage {
    fn write_atomically(&mut self, mut ops: Vec<StorageOp<Command>>) -> StorageResult<()> {
        self.write_atomically_from(&mut ops)
    }
    fn write_atomically_from(&mut self, ops: &mut Vec<StorageOp<Command>>) -> StorageResult<()> {
        self.writes += 1;
        match &mut self.inner {
            #[cfg(feature = "wal")]
            NodeStorage::Wal(wal) => wal.write_atomically_from(ops),
            NodeStorage::Other(other) => other.write_atomically_from(ops),
        }
    }
    fn get_entries(&self, from: usize, to: usize) -> StorageResult<Vec<Command>> {
        self.inner().get_entries(from, to)
    }
    fn get_suffix(&self, from: usize) -> StorageResult<Vec<Command>> {
        self.inner().get_suffix(from)
    }
    fn get_log_len(&self) -> StorageResult<usize> {
        self.inner().get_log_len()
    }
    fn get_decided_idx(&self) -> StorageResult<usize> {
        self.inner().get_decided_idx()
    }
    fn get_promise(&self) -> StorageResult<Option<Ballot>> {
        self.inner().get_promise()
    }
    fn get_accepted_round(&self) -> StorageResult<Option<Ballot>> {
        self.inner().get_accepted_round()
    }
    fn get_compacted_idx(&self) -> StorageResult<usize> {
        self.inner().get_compacted_idx()
    }
    fn get_stopsign(&self) -> StorageResult<Option<StopSign>> {
        self.inner().get_stopsign()
    }
    fn get_snapshot(&self) -> StorageResult<Option<KvSnapshot>> {
        self.inner().get_snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What two writes add to the counts (opening a store may sync on its own).
    fn counts_of_two_writes(kind: BackendKind, durability: Durability) -> StorageCounts {
        let dir = tempfile::tempdir().unwrap();
        let mut store = CountedStorage::open(kind, &dir.path().join("store"), durability).unwrap();
        let before = store.counts();
        for _ in 0..2 {
            store.write_atomically(vec![StorageOp::SetDecidedIndex(0)]).unwrap();
        }
        let after = store.counts();
        StorageCounts { writes: after.writes - before.writes, syncs: after.syncs - before.syncs }
    }

    #[test]
    fn syncs_are_counted_only_where_the_disk_is_synced() {
        let memory = counts_of_two_writes(BackendKind::Memory, Durability::Immediate);
        assert_eq!(memory, StorageCounts { writes: 2, syncs: 0 });
        #[cfg(feature = "redb")]
        {
            let immediate = counts_of_two_writes(BackendKind::Redb, Durability::Immediate);
            assert_eq!(immediate, StorageCounts { writes: 2, syncs: 2 });
            let buffered = counts_of_two_writes(BackendKind::Redb, Durability::Buffered);
            assert_eq!(buffered, StorageCounts { writes: 2, syncs: 0 });
        }
        #[cfg(feature = "wal")]
        {
            let wal = counts_of_two_writes(BackendKind::Wal, Durability::Immediate);
            assert_eq!(wal, StorageCounts { writes: 2, syncs: 2 }, "the WAL's own count");
        }
    }
}
