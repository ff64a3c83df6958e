//! paxstore's replica under the driver: a [`RoundNode`] and a cluster of [`REPLICAS`].

use std::path::Path;

use paxstore::{ClusterConfig, Durability};
use paxstore_backends::BackendKind;
use paxstore_paxos::{Message, Replica, ReplicaConfig};
use tempfile::TempDir;

use super::{BenchStorage, RoundNode, Rounds, REPLICAS};
use crate::workload::BenchEntry;
use crate::BenchError;

/// paxstore's replica, as a [`RoundNode`].
pub struct PaxstoreNode {
    replica: Replica<BenchEntry, BenchStorage>,
    kind: BackendKind,
}

impl PaxstoreNode {
    fn err(&self, e: paxstore_paxos::PaxosError) -> BenchError {
        BenchError::Cluster { backend: self.kind.name().to_owned(), detail: e.to_string() }
    }
}

impl RoundNode for PaxstoreNode {
    type Msg = Message<BenchEntry>;

    fn append(&mut self, entry: BenchEntry) -> Result<(), BenchError> {
        self.replica.append(entry).map_err(|e| self.err(e))
    }
    fn tick(&mut self) -> Result<(), BenchError> {
        self.replica.tick().map_err(|e| self.err(e))
    }
    fn take(&mut self, out: &mut Vec<Self::Msg>) -> Result<(), BenchError> {
        self.replica.drain_outgoing_into(out).map_err(|e| self.err(e))
    }
    fn receiver(msg: &Self::Msg) -> u64 {
        msg.to
    }
    fn handle(&mut self, msg: Self::Msg) -> Result<(), BenchError> {
        self.replica.handle_incoming(msg).map_err(|e| self.err(e))
    }
    fn decided_idx(&self) -> usize {
        self.replica.decided_idx()
    }
    fn is_leader(&self) -> bool {
        self.replica.is_leader()
    }
    fn trim(&mut self) -> Result<(), BenchError> {
        let r = &mut self.replica;
        let idx = r.decided_idx();
        let result = match r.trim(idx) {
            Err(paxstore_paxos::PaxosError::NotDecided { decided, .. }) => r.trim(decided),
            other => other,
        };
        match result {
            Ok(()) | Err(paxstore_paxos::PaxosError::AlreadyCompacted { .. }) => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }
    fn writes(&self) -> u64 {
        self.replica.storage().writes()
    }
    fn syncs(&self) -> Option<u64> {
        self.replica.storage().syncs()
    }
}

/// [`REPLICAS`] paxstore replicas over fresh stores of `kind` in directories under
/// `parent` (kept until the cluster is dropped), with `batch_size`, leader elected.
pub struct PaxstoreCluster {
    // The replicas (and their stores) drop before their directories.
    /// The replicas, driven in rounds.
    pub rounds: Rounds<PaxstoreNode>,
    _dirs: Vec<TempDir>,
}

impl PaxstoreCluster {
    /// Builds the cluster and elects a leader.
    pub fn new(
        kind: BackendKind,
        durability: Option<Durability>,
        parent: &Path,
        batch_size: usize,
    ) -> Result<Self, BenchError> {
        let cluster = ClusterConfig {
            configuration_id: 1,
            nodes: (1..=REPLICAS as u64).collect(),
            flexible_quorum: None,
        };
        let mut nodes = Vec::new();
        let mut dirs = Vec::new();
        for pid in 1..=REPLICAS as u64 {
            let (storage, dir) = BenchStorage::for_replica(kind, durability, parent, pid)?;
            dirs.extend(dir);
            let config = ReplicaConfig::new(pid, cluster.clone()).with_batch_size(batch_size);
            let replica = Replica::new(config, storage).map_err(|(e, _)| BenchError::Cluster {
                backend: kind.name().to_owned(),
                detail: format!("building replica {pid}: {e}"),
            })?;
            nodes.push(PaxstoreNode { replica, kind });
        }
        let label = format!("paxstore over {}", kind.name());
        Ok(PaxstoreCluster { rounds: Rounds::new(nodes, label)?, _dirs: dirs })
    }
}
