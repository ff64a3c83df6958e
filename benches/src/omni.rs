//! OmniPaxos 0.2.4 as a [`RoundNode`], so the replica table measures it with the same
//! driver, the same entries and the same rounds as paxstore's replica.
//!
//! OmniPaxos runs over its own `omnipaxos_storage::MemoryStorage`, with its storage calls
//! counted. OmniPaxos over paxstore's durable backends (the WAL, RocksDB with sync) needs
//! the adapter crate `paxstore-omnipaxos` (issue 11); [`over_paxstore`] is where it plugs
//! in, and says so while the adapter is not in this workspace.

use std::cell::Cell;
use std::rc::Rc;

use omnipaxos::ballot_leader_election::Ballot;
use omnipaxos::messages::Message as OmniMessage;
use omnipaxos::storage::{NoSnapshot, StopSign, Storage, StorageOp, StorageResult};
use omnipaxos::{ClusterConfig, OmniPaxos, OmniPaxosConfig, ServerConfig};
use omnipaxos_storage::memory_storage::MemoryStorage;
use paxstore::Durability;
use paxstore_backends::BackendKind;

use crate::replica::{RoundNode, Rounds, REPLICAS};
use crate::workload::BenchEntry;
use crate::BenchError;

impl omnipaxos::storage::Entry for BenchEntry {
    type Snapshot = NoSnapshot;
}

/// An OmniPaxos storage with its mutating calls counted (each is one write).
pub struct Counted<S> {
    inner: S,
    writes: Rc<Cell<u64>>,
}

impl<S> Counted<S> {
    fn count(&self) {
        self.writes.set(self.writes.get() + 1);
    }
}

impl<S: Storage<BenchEntry>> Storage<BenchEntry> for Counted<S> {
    fn write_atomically(&mut self, ops: Vec<StorageOp<BenchEntry>>) -> StorageResult<()> {
        self.count();
        self.inner.write_atomically(ops)
    }
    fn append_entry(&mut self, entry: BenchEntry) -> StorageResult<()> {
        self.count();
        self.inner.append_entry(entry)
    }
    fn append_entries(&mut self, entries: Vec<BenchEntry>) -> StorageResult<()> {
        self.count();
        self.inner.append_entries(entries)
    }
    fn append_on_prefix(&mut self, from_idx: usize, entries: Vec<BenchEntry>) -> StorageResult<()> {
        self.count();
        self.inner.append_on_prefix(from_idx, entries)
    }
    fn set_promise(&mut self, n_prom: Ballot) -> StorageResult<()> {
        self.count();
        self.inner.set_promise(n_prom)
    }
    fn set_decided_idx(&mut self, ld: usize) -> StorageResult<()> {
        self.count();
        self.inner.set_decided_idx(ld)
    }
    fn get_decided_idx(&self) -> StorageResult<usize> {
        self.inner.get_decided_idx()
    }
    fn set_accepted_round(&mut self, na: Ballot) -> StorageResult<()> {
        self.count();
        self.inner.set_accepted_round(na)
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
    fn set_stopsign(&mut self, s: Option<StopSign>) -> StorageResult<()> {
        self.count();
        self.inner.set_stopsign(s)
    }
    fn get_stopsign(&self) -> StorageResult<Option<StopSign>> {
        self.inner.get_stopsign()
    }
    fn trim(&mut self, idx: usize) -> StorageResult<()> {
        self.count();
        self.inner.trim(idx)
    }
    fn set_compacted_idx(&mut self, idx: usize) -> StorageResult<()> {
        self.count();
        self.inner.set_compacted_idx(idx)
    }
    fn get_compacted_idx(&self) -> StorageResult<usize> {
        self.inner.get_compacted_idx()
    }
    fn set_snapshot(&mut self, snapshot: Option<NoSnapshot>) -> StorageResult<()> {
        self.count();
        self.inner.set_snapshot(snapshot)
    }
    fn get_snapshot(&self) -> StorageResult<Option<NoSnapshot>> {
        self.inner.get_snapshot()
    }
}

/// One OmniPaxos server, as a [`RoundNode`].
pub struct OmniNode<S: Storage<BenchEntry>> {
    op: OmniPaxos<BenchEntry, Counted<S>>,
    pid: u64,
    writes: Rc<Cell<u64>>,
    /// Syncs, if its storage counts them (none for memory).
    syncs: Option<u64>,
}

fn omni_err(detail: impl std::fmt::Debug) -> BenchError {
    BenchError::Cluster { backend: "omnipaxos".to_owned(), detail: format!("{detail:?}") }
}

impl<S: Storage<BenchEntry>> RoundNode for OmniNode<S> {
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
        self.syncs
    }
}

/// [`REPLICAS`] OmniPaxos servers over their own `MemoryStorage`, with `batch_size`, leader
/// elected.
pub fn memory_cluster(
    batch_size: usize,
) -> Result<Rounds<OmniNode<MemoryStorage<BenchEntry>>>, BenchError> {
    let nodes: Vec<u64> = (1..=REPLICAS as u64).collect();
    let mut servers = Vec::new();
    for &pid in &nodes {
        let config = OmniPaxosConfig {
            cluster_config: ClusterConfig {
                configuration_id: 1,
                nodes: nodes.clone(),
                flexible_quorum: None,
            },
            server_config: ServerConfig { pid, batch_size, ..ServerConfig::default() },
        };
        let writes = Rc::new(Cell::new(0));
        let storage = Counted { inner: MemoryStorage::default(), writes: Rc::clone(&writes) };
        let op = config.build(storage).map_err(omni_err)?;
        servers.push(OmniNode { op, pid, writes, syncs: Some(0) });
    }
    Rounds::new(servers, "omnipaxos over MemoryStorage".to_owned())
}

/// OmniPaxos over a paxstore backend (`kind` with `durability`), through the adapter
/// crate `paxstore-omnipaxos` (issue 11).
///
/// HOOK: the adapter is not in this workspace yet. Once it is, build each server over
/// `Counted { inner: paxstore_omnipaxos::OmniStorage::new(store), .. }` where `store` is a
/// [`crate::replica::BenchStorage`] of `kind` (so the WAL's syncs are counted the same
/// way), and return `Ok(Some(rounds))`; the runner already pairs these cells with
/// paxstore's (the WAL against RocksDB with sync).
pub fn over_paxstore(
    kind: BackendKind,
    durability: Durability,
    batch_size: usize,
) -> Result<Option<Rounds<OmniNode<MemoryStorage<BenchEntry>>>>, BenchError> {
    let _ = (kind, durability, batch_size);
    Ok(None)
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
}
