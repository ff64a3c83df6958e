//! OmniPaxos 0.2.4 as a [`RoundNode`], so the replica table measures it with the same
//! driver, the same entries and the same rounds as paxstore's replica: over each paxstore
//! backend through `paxstore_omnipaxos::OmniStorage` ([`OmniCluster`]), and over
//! OmniPaxos' own `omnipaxos_storage::MemoryStorage` ([`memory_cluster`]).
//!
//! Every OmniPaxos storage call that changes state is counted as one write; through
//! `OmniStorage` each is exactly one paxstore `write_atomically`, with the backend's
//! durability. Syncs are counted by the WAL itself, as for paxstore's replica.

use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;

use omnipaxos::ballot_leader_election::Ballot;
use omnipaxos::messages::Message as OmniMessage;
use omnipaxos::storage::{NoSnapshot, StopSign, Storage, StorageOp, StorageResult};
use omnipaxos::{ClusterConfig, OmniPaxos, OmniPaxosConfig, ServerConfig};
use omnipaxos_storage::memory_storage::MemoryStorage;
use paxstore::Durability;
use paxstore_backends::BackendKind;
use paxstore_omnipaxos::{OmniEntry, OmniStorage};
use tempfile::TempDir;

use crate::replica::{BenchStorage, RoundNode, Rounds, REPLICAS};
use crate::workload::BenchEntry;
use crate::BenchError;

impl omnipaxos::storage::Entry for BenchEntry {
    type Snapshot = NoSnapshot;
}

/// OmniPaxos' storage over a paxstore backend, as the benches open it.
pub type OverPaxstore = OmniStorage<BenchStorage<OmniEntry<BenchEntry>>>;

/// An OmniPaxos storage that may count its syncs.
pub trait CountsSyncs {
    /// Syncs so far, where counted.
    fn syncs(&self) -> Option<u64>;
}

impl CountsSyncs for MemoryStorage<BenchEntry> {
    fn syncs(&self) -> Option<u64> {
        Some(0)
    }
}

impl CountsSyncs for OverPaxstore {
    fn syncs(&self) -> Option<u64> {
        self.inner().syncs()
    }
}

/// An OmniPaxos storage with its mutating calls counted (each is one write), and its
/// syncs read after each.
pub struct Counted<S> {
    inner: S,
    writes: Rc<Cell<u64>>,
    syncs: Rc<Cell<Option<u64>>>,
}

impl<S: CountsSyncs> Counted<S> {
    fn write<R>(&mut self, call: impl FnOnce(&mut S) -> R) -> R {
        let result = call(&mut self.inner);
        self.writes.set(self.writes.get() + 1);
        self.syncs.set(self.inner.syncs());
        result
    }
}

impl<S: Storage<BenchEntry> + CountsSyncs> Storage<BenchEntry> for Counted<S> {
    fn write_atomically(&mut self, ops: Vec<StorageOp<BenchEntry>>) -> StorageResult<()> {
        self.write(|s| s.write_atomically(ops))
    }
    fn append_entry(&mut self, entry: BenchEntry) -> StorageResult<()> {
        self.write(|s| s.append_entry(entry))
    }
    fn append_entries(&mut self, entries: Vec<BenchEntry>) -> StorageResult<()> {
        self.write(|s| s.append_entries(entries))
    }
    fn append_on_prefix(&mut self, from_idx: usize, entries: Vec<BenchEntry>) -> StorageResult<()> {
        self.write(|s| s.append_on_prefix(from_idx, entries))
    }
    fn set_promise(&mut self, n_prom: Ballot) -> StorageResult<()> {
        self.write(|s| s.set_promise(n_prom))
    }
    fn set_decided_idx(&mut self, ld: usize) -> StorageResult<()> {
        self.write(|s| s.set_decided_idx(ld))
    }
    fn get_decided_idx(&self) -> StorageResult<usize> {
        self.inner.get_decided_idx()
    }
    fn set_accepted_round(&mut self, na: Ballot) -> StorageResult<()> {
        self.write(|s| s.set_accepted_round(na))
    }
    fn get_accepted_round(&self) -> StorageResult<Option<Ballot>> {
        self.inner.get_accepted_round()
    }
    fn get_entries(&self, from: usize, to: usize) -> StorageResult<Vec<BenchEntry>> {
        self.inner.get_entries(from, to)
    }
    fn get_log_len(&self) -> StorageResult<usize> {
        self.inner.get_log_len()
    }
    fn get_suffix(&self, from: usize) -> StorageResult<Vec<BenchEntry>> {
        self.inner.get_suffix(from)
    }
    fn get_promise(&self) -> StorageResult<Option<Ballot>> {
        self.inner.get_promise()
    }
    fn set_stopsign(&mut self, ss: Option<StopSign>) -> StorageResult<()> {
        self.write(|s| s.set_stopsign(ss))
    }
    fn get_stopsign(&self) -> StorageResult<Option<StopSign>> {
        self.inner.get_stopsign()
    }
    fn trim(&mut self, idx: usize) -> StorageResult<()> {
        self.write(|s| s.trim(idx))
    }
    fn set_compacted_idx(&mut self, idx: usize) -> StorageResult<()> {
        self.write(|s| s.set_compacted_idx(idx))
    }
    fn get_compacted_idx(&self) -> StorageResult<usize> {
        self.inner.get_compacted_idx()
    }
    fn set_snapshot(&mut self, snapshot: Option<NoSnapshot>) -> StorageResult<()> {
        self.write(|s| s.set_snapshot(snapshot))
    }
    fn get_snapshot(&self) -> StorageResult<Option<NoSnapshot>> {
        self.inner.get_snapshot()
    }
}

/// One OmniPaxos server, as a [`RoundNode`].
pub struct OmniNode<S: Storage<BenchEntry> + CountsSyncs> {
    op: OmniPaxos<BenchEntry, Counted<S>>,
    pid: u64,
    writes: Rc<Cell<u64>>,
    syncs: Rc<Cell<Option<u64>>>,
}

fn omni_err(detail: impl std::fmt::Debug) -> BenchError {
    BenchError::Cluster { backend: "omnipaxos".to_owned(), detail: format!("{detail:?}") }
}

impl<S: Storage<BenchEntry> + CountsSyncs> RoundNode for OmniNode<S> {
    type Msg = OmniMessage<BenchEntry>;

    fn append(&mut self, entry: BenchEntry) -> Result<(), BenchError> {
        self.op.append(entry).map_err(omni_err)
    }
    fn tick(&mut self) -> Result<(), BenchError> {
        self.op.tick();
        Ok(())
    }
    fn take(&mut self, out: &mut Vec<Self::Msg>) -> Result<(), BenchError> {
        self.op.take_outgoing_messages(out);
        Ok(())
    }
    fn receiver(msg: &Self::Msg) -> u64 {
        msg.get_receiver()
    }
    fn handle(&mut self, msg: Self::Msg) -> Result<(), BenchError> {
        self.op.handle_incoming(msg);
        Ok(())
    }
    fn decided_idx(&self) -> usize {
        self.op.get_decided_idx()
    }
    fn is_leader(&self) -> bool {
        self.op.get_current_leader() == Some((self.pid, true))
    }
    fn trim(&mut self) -> Result<(), BenchError> {
        match self.op.trim(None) {
            Ok(()) => Ok(()),
            Err(e) => Err(omni_err(e)),
        }
    }
    fn writes(&self) -> u64 {
        self.writes.get()
    }
    fn syncs(&self) -> Option<u64> {
        self.syncs.get()
    }
}

/// [`REPLICAS`] OmniPaxos servers over `stores` (pid `n` over the `n`-th), with
/// `batch_size`, leader elected.
fn build<S: Storage<BenchEntry> + CountsSyncs>(
    stores: Vec<S>,
    batch_size: usize,
    label: String,
) -> Result<Rounds<OmniNode<S>>, BenchError> {
    let nodes: Vec<u64> = (1..=stores.len() as u64).collect();
    let mut servers = Vec::new();
    for (pid, inner) in nodes.iter().copied().zip(stores) {
        let config = OmniPaxosConfig {
            cluster_config: ClusterConfig {
                configuration_id: 1,
                nodes: nodes.clone(),
                flexible_quorum: None,
            },
            server_config: ServerConfig { pid, batch_size, ..ServerConfig::default() },
        };
        let writes = Rc::new(Cell::new(0));
        let syncs = Rc::new(Cell::new(inner.syncs()));
        let storage = Counted { inner, writes: Rc::clone(&writes), syncs: Rc::clone(&syncs) };
        let op = config.build(storage).map_err(omni_err)?;
        servers.push(OmniNode { op, pid, writes, syncs });
    }
    Rounds::new(servers, label)
}

/// [`REPLICAS`] OmniPaxos servers over their own `MemoryStorage`, with `batch_size`, leader
/// elected.
pub fn memory_cluster(
    batch_size: usize,
) -> Result<Rounds<OmniNode<MemoryStorage<BenchEntry>>>, BenchError> {
    let stores = (0..REPLICAS).map(|_| MemoryStorage::default()).collect();
    build(stores, batch_size, "omnipaxos over MemoryStorage".to_owned())
}

/// [`REPLICAS`] OmniPaxos servers, each over a fresh paxstore store of one backend through
/// `paxstore_omnipaxos::OmniStorage`, in directories under `parent` (kept until the
/// cluster is dropped), with `batch_size`, leader elected.
pub struct OmniCluster {
    // The servers (and their stores) drop before their directories.
    /// The servers, driven in rounds.
    pub rounds: Rounds<OmniNode<OverPaxstore>>,
    _dirs: Vec<TempDir>,
}

impl OmniCluster {
    /// Builds the cluster over `kind` with `durability` and elects a leader.
    pub fn new(
        kind: BackendKind,
        durability: Option<Durability>,
        parent: &Path,
        batch_size: usize,
    ) -> Result<Self, BenchError> {
        let mut stores = Vec::new();
        let mut dirs = Vec::new();
        for pid in 1..=REPLICAS as u64 {
            let (store, dir) = BenchStorage::for_replica(kind, durability, parent, pid)?;
            dirs.extend(dir);
            stores.push(OmniStorage::new(store).map_err(BenchError::storage(kind.name()))?);
        }
        let label = format!("omnipaxos over {}", kind.name());
        Ok(OmniCluster { rounds: build(stores, batch_size, label)?, _dirs: dirs })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::replica::{timed_run, Mode};

    #[test]
    fn omnipaxos_decides_in_both_modes_under_the_same_driver() {
        for batch in [1, 10] {
            for mode in Mode::ALL {
                let mut rounds = memory_cluster(batch).unwrap();
                let run = timed_run(&mut rounds, mode, batch, Duration::ZERO).unwrap();
                assert!(run.decided >= batch, "{mode:?} {batch}: {run:?}");
                assert_eq!(run.latencies.len(), run.decided);
                assert!(run.writes > 0);
            }
        }
    }

    /// OmniPaxos over every compiled-in paxstore backend, through the adapter, decides
    /// under the same driver, with its writes counted, and its syncs where the backend
    /// counts them (the WAL, here with `Immediate`).
    #[test]
    fn omnipaxos_over_every_paxstore_backend_decides_under_the_same_driver() {
        let parent = tempfile::tempdir().unwrap();
        for kind in BackendKind::compiled_in() {
            let wal = kind.name() == "wal";
            let d = match (kind.is_persistent(), wal) {
                (false, _) => None,
                (true, true) => Some(Durability::Immediate),
                (true, false) => Some(Durability::Buffered),
            };
            for mode in Mode::ALL {
                let mut c = OmniCluster::new(kind, d, parent.path(), 10).unwrap();
                let run = timed_run(&mut c.rounds, mode, 10, Duration::ZERO).unwrap();
                assert!(run.decided >= 10, "{kind} {mode:?}: {run:?}");
                assert_eq!(run.latencies.len(), run.decided, "{kind} {mode:?}");
                assert!(run.writes > 0, "{kind} {mode:?}: {run:?}");
                match (kind.is_persistent(), wal) {
                    (false, _) => assert_eq!(run.syncs, Some(0), "{kind} {mode:?}"),
                    (true, true) => assert!(run.syncs.is_some_and(|s| s > 0), "{run:?}"),
                    (true, false) => assert_eq!(run.syncs, None, "{kind} {mode:?}"),
                }
            }
        }
    }
}
