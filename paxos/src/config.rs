//! The replica's configuration: who it is, its cluster, batching and timers.

use paxstore::ClusterConfig;

use crate::PaxosError;

/// How a [`Replica`](crate::Replica) is set up. Timers count calls of
/// [`Replica::tick`](crate::Replica::tick); the application decides how long a tick is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaConfig {
    /// This replica's id; must be one of `cluster.nodes`.
    pub pid: u64,
    /// The configuration this replica belongs to.
    pub cluster: ClusterConfig,
    /// Leader-election priority: among candidates of the same round, the highest wins.
    pub priority: u32,
    /// Entries gathered before the leader proposes them (default 1).
    pub batch_size: usize,
    /// Ticks before a partial batch is proposed anyway (default 1).
    pub flush_ticks: u32,
    /// Ticks per heartbeat round of leader election (default 10). A replica that misses
    /// two rounds of its leader's replies elects a new leader.
    pub heartbeat_ticks: u32,
    /// Ticks between the leader's retransmissions to replicas that made no progress
    /// (default 20).
    pub resend_ticks: u32,
    /// Ticks without a storage write after which a decided index that advanced is written
    /// on its own (default 10). It is otherwise written only with the next write that
    /// happens anyway: a decided index can be learned again, so it needs no sync of its
    /// own (see the crate docs on what a crash may take back).
    pub decided_write_ticks: u32,
}

impl ReplicaConfig {
    /// The configuration of replica `pid` of `cluster`, with default batching and timers.
    pub fn new(pid: u64, cluster: ClusterConfig) -> Self {
        ReplicaConfig {
            pid,
            cluster,
            priority: 0,
            batch_size: 1,
            flush_ticks: 1,
            heartbeat_ticks: 10,
            resend_ticks: 20,
            decided_write_ticks: 10,
        }
    }

    /// Sets [`batch_size`](ReplicaConfig::batch_size).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Checks that the configuration can run.
    pub fn validate(&self) -> Result<(), PaxosError> {
        let bad = |msg: String| Err(PaxosError::InvalidConfig(msg));
        let nodes = &self.cluster.nodes;
        if !nodes.contains(&self.pid) {
            return bad(format!("pid {} is not among the nodes {nodes:?}", self.pid));
        }
        let mut sorted = nodes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != nodes.len() {
            return bad(format!("the nodes {nodes:?} repeat an id"));
        }
        if self.batch_size == 0 || self.flush_ticks == 0 {
            return bad("batch_size and flush_ticks must be at least 1".into());
        }
        if self.heartbeat_ticks == 0 || self.resend_ticks == 0 || self.decided_write_ticks == 0 {
            return bad(
                "heartbeat_ticks, resend_ticks and decided_write_ticks must be at least 1".into()
            );
        }
        if let Some(fq) = self.cluster.flexible_quorum {
            let (r, w, n) =
                (fq.read_quorum_size as usize, fq.write_quorum_size as usize, nodes.len());
            if r == 0 || w == 0 || r > n || w > n || r + w <= n {
                return bad(format!(
                    "flexible quorum read {r} / write {w} must each be in 1..={n} and intersect (read + write > {n})"
                ));
            }
        }
        Ok(())
    }

    /// Replicas that must promise before a leader proposes.
    pub(crate) fn read_quorum(&self) -> usize {
        match self.cluster.flexible_quorum {
            Some(fq) => fq.read_quorum_size as usize,
            None => self.cluster.nodes.len() / 2 + 1,
        }
    }

    /// Replicas that must accept before an entry is decided.
    pub(crate) fn write_quorum(&self) -> usize {
        match self.cluster.flexible_quorum {
            Some(fq) => fq.write_quorum_size as usize,
            None => self.cluster.nodes.len() / 2 + 1,
        }
    }

    /// The other replicas of the configuration.
    pub(crate) fn peers(&self) -> Vec<u64> {
        self.cluster.nodes.iter().copied().filter(|&p| p != self.pid).collect()
    }
}
